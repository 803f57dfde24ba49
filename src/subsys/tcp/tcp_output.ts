/**
 * The send side (net/ipv4/tcp_output.c, tcp_rate.c): tcp_write_xmit under the congestion window,
 * retransmission of segments marked lost, the CA events fired on transmit, cwnd validation and the RTO
 * timer arming.
 */
import {
  CA_EVENT_CWND_RESTART,
  CA_EVENT_TX_START,
  TCP_CA_CWR,
  TCP_CA_Recovery,
  TCP_ECN_OK,
  TCP_ECN_QUEUE_CWR,
  TCP_ESTABLISHED,
} from "./btf.js";
import type { TcpConn } from "./tcp.js";
import { tcp_ca_event } from "./tcp_cong.js";
import { tcp_is_cwnd_limited } from "./tcp_reno.js";
import {
  TCP_INIT_CWND,
  TCP_RTO_MIN_US,
  TCP_TIMEOUT_INIT_S,
  TCP_TIMEOUT_MIN_US,
  TCPCB_EVER_RETRANS,
  TCPCB_LOST,
  TCPCB_SACKED_ACKED,
  TCPCB_SACKED_RETRANS,
  type TcpSkb,
} from "./tcp_skb.js";

const before = (a: number, b: number) => ((a - b) | 0) < 0;

/** tcp_in_cwnd_reduction: CWR or Recovery. */
export function tcp_in_cwnd_reduction(c: TcpConn): boolean {
  const s = c.sk.icsk_ca_state;
  return s === TCP_CA_CWR || s === TCP_CA_Recovery;
}

/** tcp_time_stamp_ms: the TSval clock. */
export function tcp_time_stamp_ms(c: TcpConn): number {
  return Math.floor(c.sk.tcp_mstamp / 1000) >>> 0;
}

/** tcp_rate_skb_sent: snapshot the delivery state for a later rate sample. */
function tcp_rate_skb_sent(c: TcpConn, skb: TcpSkb): void {
  const sk = c.sk;
  if (!sk.packets_out) {
    sk.first_tx_mstamp = skb.mstamp;
    sk.delivered_mstamp = skb.mstamp;
  }
  skb.tx_first_tx_mstamp = sk.first_tx_mstamp;
  skb.tx_delivered_mstamp = sk.delivered_mstamp;
  skb.tx_delivered = sk.delivered;
  skb.tx_delivered_ce = sk.delivered_ce;
  skb.tx_is_app_limited = sk.app_limited !== 0;
}

/** tcp_event_data_sent: TX_START when nothing was in flight, and lsndtime. */
function tcp_event_data_sent(c: TcpConn): void {
  if (c.inFlight() === 0) tcp_ca_event(c.sk, CA_EVENT_TX_START);
  c.sk.lsndtime = c.jiffies32();
}

/** tcp_rearm_rto: the RTO runs while anything is outstanding. */
export function tcp_rearm_rto(c: TcpConn): void {
  c.xmitTimer = "retrans";
  if (!c.sk.packets_out) {
    c.host.setRtoTimer(c, -1);
    return;
  }
  c.host.setRtoTimer(c, (c.sk.icsk_rto * 1e9) / c.host.clock.HZ);
}

function transmit(c: TcpConn, skb: TcpSkb, retrans: boolean): void {
  const sk = c.sk;
  skb.mstamp = sk.tcp_mstamp;
  skb.txSeq = ++c.txCounter;
  tcp_event_data_sent(c);
  tcp_rate_skb_sent(c, skb);
  let cwr = false;
  // tcp_ecn_send: CWR rides on the next new data segment.
  if (!retrans && sk.ecn_flags & TCP_ECN_QUEUE_CWR) {
    sk.ecn_flags = sk.ecn_flags & ~TCP_ECN_QUEUE_CWR;
    cwr = true;
  }
  const ect = (sk.ecn_flags & TCP_ECN_OK) !== 0 && (!retrans || c.cong.caNeedsEcn(sk));
  sk.segs_out = sk.segs_out + 1;
  sk.data_segs_out = sk.data_segs_out + 1;
  if (tcp_in_cwnd_reduction(c)) sk.prr_out = sk.prr_out + 1;
  c.host.xmit({
    flow: c.flow,
    idx: skb.idx,
    bytes: c.wireBytes,
    ect,
    ce: false,
    cwr,
    tsval: tcp_time_stamp_ms(c),
    retrans,
  });
}

/** tcp_retransmit_skb */
export function tcp_retransmit_skb(c: TcpConn, skb: TcpSkb): void {
  const sk = c.sk;
  transmit(c, skb, true);
  skb.sacked |= TCPCB_SACKED_RETRANS | TCPCB_EVER_RETRANS;
  sk.retrans_out = sk.retrans_out + 1;
  sk.total_retrans = sk.total_retrans + 1;
  c.retransmits++;
  // Save stamp of the first retransmit (spurious-retransmission detection with timestamps).
  if (!sk.retrans_stamp) sk.retrans_stamp = tcp_time_stamp_ms(c) || 1;
  if (sk.undo_retrans < 0) sk.undo_retrans = 0;
  sk.undo_retrans = sk.undo_retrans + 1;
  if (skb === c.rtx[0]) tcp_rearm_rto(c);
}

function newSkb(c: TcpConn): TcpSkb {
  return {
    idx: c.nxt,
    sacked: 0,
    mstamp: c.sk.tcp_mstamp,
    txSeq: 0,
    tx_delivered: 0,
    tx_delivered_ce: 0,
    tx_first_tx_mstamp: 0,
    tx_delivered_mstamp: 0,
    tx_is_app_limited: false,
  };
}

/**
 * Sends the next new segment, then tcp_event_new_data_sent's bookkeeping: snd_nxt advances, the
 * skb joins the retransmit queue, packets_out grows. Returns packets_out before it; the callers
 * decide about the RTO timer (tcp_write_xmit rearms when nothing was out, the loss probe always).
 */
function sendNewSkb(c: TcpConn): number {
  const skb = newSkb(c);
  transmit(c, skb, false);
  const prior_packets = c.sk.packets_out;
  c.rtx.push(skb);
  c.nxt++;
  c.sk.packets_out = prior_packets + 1;
  c.syncSeq();
  return prior_packets;
}

/** tcp_cwnd_validate: remember whether this window was cwnd-limited (CAs grow cwnd only if it was). */
function tcp_cwnd_validate(c: TcpConn, is_cwnd_limited: boolean): void {
  const sk = c.sk;
  if (
    !before(sk.snd_una, sk.cwnd_usage_seq) ||
    is_cwnd_limited ||
    (!sk.is_cwnd_limited && sk.packets_out > sk.max_packets_out)
  ) {
    sk.is_cwnd_limited = is_cwnd_limited ? 1 : 0;
    sk.max_packets_out = sk.packets_out;
    sk.cwnd_usage_seq = sk.snd_nxt;
  }
  if (tcp_is_cwnd_limited(sk)) {
    sk.snd_cwnd_stamp = c.jiffies32();
  }
}

/** tcp_write_xmit (with tcp_xmit_retransmit_queue first): send while in_flight < cwnd. */
export function tcp_write_xmit(c: TcpConn): void {
  const sk = c.sk;
  if (c.closed || sk.sk_state !== TCP_ESTABLISHED) return;
  c.mstampRefresh();
  let sent = 0;
  let sentNew = 0;
  if (sk.lost_out > 0) {
    for (let i = 0; i < c.rtx.length && c.inFlight() < sk.snd_cwnd; i++) {
      const skb = c.rtx[i]!;
      if ((skb.sacked & (TCPCB_LOST | TCPCB_SACKED_ACKED | TCPCB_SACKED_RETRANS)) === TCPCB_LOST) {
        tcp_retransmit_skb(c, skb);
        sent++;
      }
    }
  }
  while (c.nxt < c.appLimit && c.inFlight() < sk.snd_cwnd) {
    if (!sendNewSkb(c)) tcp_rearm_rto(c);
    sent++;
    sentNew++;
  }
  const is_cwnd_limited = c.inFlight() >= sk.snd_cwnd;
  if (c.nxt >= c.appLimit && !is_cwnd_limited) {
    // tcp_rate_check_app_limited: the application, not the network, is the bottleneck.
    sk.app_limited = (sk.delivered + c.inFlight()) >>> 0 || 1;
  }
  if (sent || is_cwnd_limited) tcp_cwnd_validate(c, is_cwnd_limited);
  // Send one loss probe per tail loss episode.
  if (sentNew) tcp_schedule_loss_probe(c, false);
}

/**
 * tcp_schedule_loss_probe: in Open or CWR, probe after ~2 RTT (plus the minimum RTO when a single
 * segment is out, for a delayed ACK) unless the RTO would come first.
 */
export function tcp_schedule_loss_probe(c: TcpConn, advancing_rto: boolean): boolean {
  const sk = c.sk;
  const st = sk.icsk_ca_state;
  if (!c.tlp || !sk.packets_out || (st !== 0 /* Open */ && st !== TCP_CA_CWR)) return false;
  const HZ = c.host.clock.HZ;
  const usToJiffies = (us: number) => Math.ceil((us * HZ) / 1e6);
  let timeout: number;
  if (sk.srtt_us) {
    let us = sk.srtt_us >>> 2;
    us += sk.packets_out === 1 ? TCP_RTO_MIN_US : TCP_TIMEOUT_MIN_US;
    timeout = usToJiffies(us);
  } else {
    timeout = TCP_TIMEOUT_INIT_S * HZ;
  }
  // If the RTO formula yields an earlier time, then use that time.
  const rtoUs = (sk.icsk_rto * 1e6) / HZ;
  const head = c.rtx[0];
  const rto_delta_us = advancing_rto || !head ? rtoUs : rtoUs - (sk.tcp_mstamp - head.mstamp);
  if (rto_delta_us > 0) timeout = Math.min(timeout, usToJiffies(rto_delta_us));
  c.xmitTimer = "probe";
  c.host.setRtoTimer(c, (timeout * 1e9) / HZ);
  return true;
}

/** tcp_send_loss_probe: one new segment (ignoring cwnd) or, with nothing new, the last one again. */
export function tcp_send_loss_probe(c: TcpConn): void {
  const sk = c.sk;
  c.mstampRefresh();
  if (c.tlpHighSeqIdx < 0 && sk.packets_out) {
    c.tlpRetrans = false;
    let probed = false;
    if (c.nxt < c.appLimit) {
      sendNewSkb(c);
      probed = true;
    } else {
      const skb = c.rtx[c.rtx.length - 1];
      if (skb && !(skb.sacked & TCPCB_SACKED_ACKED)) {
        // __tcp_retransmit_skb: not counted in retrans_out, only marked as ever retransmitted.
        transmit(c, skb, true);
        skb.sacked |= TCPCB_EVER_RETRANS;
        sk.total_retrans = sk.total_retrans + 1;
        c.retransmits++;
        c.tlpRetrans = true;
        probed = true;
      }
    }
    if (probed) {
      c.tlpHighSeqIdx = c.nxt;
      c.lossProbes++;
    }
  }
  tcp_rearm_rto(c);
}

/** tcp_slow_start_after_idle_check + tcp_cwnd_restart (RFC 2861) when the app writes after idling > RTO. */
export function tcp_slow_start_after_idle_check(c: TcpConn): void {
  const sk = c.sk;
  if (sk.packets_out || sk.icsk_ca_ops.cong_control) return;
  const now = c.jiffies32();
  let delta = (now - sk.lsndtime) | 0;
  if (delta <= sk.icsk_rto) return;
  tcp_ca_event(sk, CA_EVENT_CWND_RESTART);
  sk.snd_ssthresh = Math.max(sk.snd_ssthresh, ((sk.snd_cwnd >>> 1) + (sk.snd_cwnd >>> 2)) >>> 0);
  const restart_cwnd = Math.min(TCP_INIT_CWND, sk.snd_cwnd);
  let cwnd = sk.snd_cwnd;
  while ((delta -= sk.icsk_rto) > 0 && cwnd > restart_cwnd) cwnd >>>= 1;
  sk.snd_cwnd = Math.max(cwnd, restart_cwnd);
  sk.snd_cwnd_stamp = now;
}
