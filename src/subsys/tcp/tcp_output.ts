/**
 * The send side (net/ipv4/tcp_output.c, tcp_rate.c): tcp_write_xmit under the congestion window,
 * retransmission of segments marked lost, the CA events fired on transmit, cwnd validation and the RTO
 * timer arming.
 */
import {
  CA_EVENT_CWND_RESTART,
  CA_EVENT_TX_START,
  SK_PACING_NEEDED,
  SK_PACING_NONE,
  TCP_CA_CWR,
  TCP_CA_Recovery,
  TCP_CLOSE,
  TCP_ECN_OK,
  TCP_ECN_QUEUE_CWR,
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
  type TcpSegment,
  type TcpSkb,
} from "./tcp_skb.js";
import { tcp_min_rtt } from "./tcp_sock.js";

const before = (a: number, b: number) => ((a - b) | 0) < 0;
/** net.ipv4.tcp_min_tso_segs and net.ipv4.tcp_tso_rtt_log defaults. */
const TCP_MIN_TSO_SEGS = 2;
const TCP_TSO_RTT_LOG = 9;

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
  c.probe0Armed = false; // inet_csk_clear_xmit_timer / reset: the timer is shared with PROBE0
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
  const fin = skb.idx === c.finIdx;
  // A FIN of its own is no data (tcp_transmit_skb: skb->len == tcp_header_size).
  const empty = fin && c.finIdx === c.finData;
  if (!empty) tcp_event_data_sent(c);
  tcp_rate_skb_sent(c, skb);
  let cwr = false;
  // tcp_ecn_send: CWR rides on the next new data segment.
  if (!retrans && sk.ecn_flags & TCP_ECN_QUEUE_CWR) {
    sk.ecn_flags = sk.ecn_flags & ~TCP_ECN_QUEUE_CWR;
    cwr = true;
  }
  const ect = (sk.ecn_flags & TCP_ECN_OK) !== 0 && (!retrans || c.cong.caNeedsEcn(sk));
  sk.segs_out = sk.segs_out + 1;
  if (!empty) sk.data_segs_out = sk.data_segs_out + 1;
  if (tcp_in_cwnd_reduction(c)) sk.prr_out = sk.prr_out + 1;
  const seg: TcpSegment = {
    flow: c.flow,
    idx: skb.idx,
    bytes: empty ? c.wireBytes - sk.mss_cache : c.wireBytes,
    ect,
    ce: false,
    cwr,
    tsval: tcp_time_stamp_ms(c),
    retrans,
  };
  if (fin) {
    seg.fin = true;
    if (empty) seg.empty = true;
  }
  c.host.xmit(seg);
}

/**
 * tcp_send_fin: the FIN rides on the last skb not yet sent, or goes out in an skb of its own (no payload,
 * one sequence number); then __tcp_push_pending_frames.
 */
export function tcp_send_fin(c: TcpConn): void {
  c.finData = c.appLimit;
  if (c.nxt < c.appLimit) {
    c.finIdx = c.appLimit - 1;
  } else {
    c.finIdx = c.appLimit;
    c.appLimit++;
  }
  c.syncSeq();
  c.mstampRefresh();
  tcp_write_xmit(c);
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
export function sendNewSkb(c: TcpConn): number {
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

/** tcp_needs_internal_pacing: the CA asked for pacing (BBR) and no fq qdisc does it for us. */
function tcp_needs_internal_pacing(c: TcpConn): boolean {
  return c.sk.sk_pacing_status === SK_PACING_NEEDED;
}

/**
 * tcp_pacing_check: the next departure time (EDT, tcp_wstamp_ns) is still ahead; arm the pacing
 * timer for it and stop sending.
 */
function tcp_pacing_check(c: TcpConn): boolean {
  if (!tcp_needs_internal_pacing(c)) return false;
  const sk = c.sk;
  if (sk.tcp_wstamp_ns <= sk.tcp_clock_cache) return false;
  if (!c.pacingTimerQueued && c.host.setPacingTimer) {
    c.pacingTimerQueued = true;
    c.host.setPacingTimer(c, sk.tcp_wstamp_ns - sk.tcp_clock_cache);
  }
  return true;
}

/** tcp_pace_kick: the pacing timer fired; send what is due. */
export function tcp_pace_kick(c: TcpConn): void {
  c.pacingTimerQueued = false;
  tcp_write_xmit(c);
}

/** __tcp_transmit_skb's EDT stamp: an skb leaves no earlier than now. Returns the prior stamp. */
function tcp_wstamp_begin(c: TcpConn): number {
  const sk = c.sk;
  const prior = sk.tcp_wstamp_ns;
  if (sk.tcp_clock_cache > prior) sk.tcp_wstamp_ns = sk.tcp_clock_cache;
  return prior;
}

/**
 * tcp_update_skb_after_send: with pacing, the next skb may leave len/rate later (less half of the
 * credit an idle sender built up); like sch_fq, the first 10 segments are not paced.
 */
function tcp_update_skb_after_send(c: TcpConn, prior_wstamp: number, len: number): void {
  const sk = c.sk;
  if (sk.sk_pacing_status === SK_PACING_NONE) return;
  const rate = sk.sk_pacing_rate;
  if (rate && rate < sk.sk_max_pacing_rate && sk.data_segs_out >= 10) {
    let len_ns = Math.floor((len * 1e9) / rate);
    const credit = sk.tcp_wstamp_ns - prior_wstamp;
    len_ns -= Math.min(Math.floor(len_ns / 2), credit);
    sk.tcp_wstamp_ns = sk.tcp_wstamp_ns + len_ns;
  }
}

/**
 * tcp_tso_segs: how many segments one skb may carry now (tcp_tso_autosize: ~1 ms of the pacing
 * rate plus a share of 64 KB scaled by min RTT, at least the CA's min_tso_segs).
 */
export function tcp_tso_segs(c: TcpConn): number {
  const sk = c.sk;
  const ops = sk.icsk_ca_ops;
  const min_tso = ops.min_tso_segs ? ops.min_tso_segs(sk) : TCP_MIN_TSO_SEGS;
  let bytes = Math.floor(sk.sk_pacing_rate / 2 ** sk.sk_pacing_shift);
  const r = tcp_min_rtt(sk) >>> TCP_TSO_RTT_LOG;
  if (r < 32) bytes += Math.floor(sk.sk_gso_max_size / 2 ** r);
  bytes = Math.min(bytes, sk.sk_gso_max_size);
  const segs = Math.max(Math.floor(bytes / sk.mss_cache), min_tso);
  return Math.min(segs, sk.sk_gso_max_segs);
}

/** tcp_snd_wnd_test: the next skb's first segment ends within snd_una + snd_wnd. */
function tcp_snd_wnd_test(c: TcpConn): boolean {
  if (!c.windowed) return true;
  return (c.seqOf(c.nxt + 1) - c.seqOf(c.una)) >>> 0 <= c.sk.snd_wnd;
}

/** tcp_probe0_base: the RTO, at least TCP_RTO_MIN (jiffies). */
export function tcp_probe0_base(c: TcpConn): number {
  return Math.max(c.sk.icsk_rto, Math.ceil((TCP_RTO_MIN_US * c.host.clock.HZ) / 1e6));
}

export function tcp_reset_probe0(c: TcpConn, jiffies: number): void {
  c.xmitTimer = "probe0";
  c.probe0Armed = true;
  c.host.setRtoTimer(c, (jiffies * 1e9) / c.host.clock.HZ);
}

/** tcp_check_probe_timer: arm the zero-window probe unless something is in flight or a timer is pending. */
function tcp_check_probe_timer(c: TcpConn): void {
  if (!c.sk.packets_out && !c.probe0Armed) tcp_reset_probe0(c, tcp_probe0_base(c));
}

/** tcp_chrono_start / tcp_chrono_stop(TCP_CHRONO_RWND_LIMITED) as tcp_write_xmit ends. */
function tcp_chrono_rwnd(c: TcpConn, limited: boolean): void {
  const now = c.sk.tcp_mstamp;
  if (limited && c.rwndLimitedSince < 0) c.rwndLimitedSince = now;
  else if (!limited && c.rwndLimitedSince >= 0) {
    c.rwndLimitedUs += now - c.rwndLimitedSince;
    c.rwndLimitedSince = -1;
  }
}

/** tcp_write_xmit (with tcp_xmit_retransmit_queue first): send while in_flight < cwnd, paced when asked. */
export function tcp_write_xmit(c: TcpConn): void {
  const sk = c.sk;
  // Not before establishment nor after the socket is gone; queued data (and the FIN) still go out after close().
  if (c.closed || sk.sk_state === TCP_CLOSE) return;
  c.mstampRefresh();
  let sent = 0;
  let sentNew = 0;
  const max_segs = Math.max(1, tcp_tso_segs(c));
  if (sk.lost_out > 0) {
    let i = 0;
    // tcp_xmit_retransmit_queue: one skb (up to max_segs lost segments) per pacing slot.
    while (i < c.rtx.length && c.inFlight() < sk.snd_cwnd && !tcp_pacing_check(c)) {
      const prior = tcp_wstamp_begin(c);
      let segs = 0;
      for (; i < c.rtx.length && segs < max_segs && c.inFlight() < sk.snd_cwnd; i++) {
        const skb = c.rtx[i]!;
        if ((skb.sacked & (TCPCB_LOST | TCPCB_SACKED_ACKED | TCPCB_SACKED_RETRANS)) === TCPCB_LOST) {
          tcp_retransmit_skb(c, skb);
          sent++;
          segs++;
        } else if (segs) {
          i++;
          break;
        }
      }
      if (segs) tcp_update_skb_after_send(c, prior, segs * sk.mss_cache);
    }
  }
  let is_rwnd_limited = false;
  while (c.nxt < c.appLimit && c.inFlight() < sk.snd_cwnd && !tcp_pacing_check(c)) {
    if (!tcp_snd_wnd_test(c)) {
      is_rwnd_limited = true;
      break;
    }
    const prior = tcp_wstamp_begin(c);
    let segs = 0;
    // tcp_mss_split_point: an skb ends where the receive window does.
    while (segs < max_segs && c.nxt < c.appLimit && c.inFlight() < sk.snd_cwnd && tcp_snd_wnd_test(c)) {
      if (!sendNewSkb(c)) tcp_rearm_rto(c);
      sent++;
      sentNew++;
      segs++;
    }
    tcp_update_skb_after_send(c, prior, segs * sk.mss_cache);
  }
  if (c.windowed) tcp_chrono_rwnd(c, is_rwnd_limited);
  const is_cwnd_limited = c.inFlight() >= sk.snd_cwnd;
  if (c.nxt >= c.appLimit && !is_cwnd_limited) {
    // tcp_rate_check_app_limited: the application, not the network, is the bottleneck.
    sk.app_limited = (sk.delivered + c.inFlight()) >>> 0 || 1;
  }
  if (sent || is_cwnd_limited) tcp_cwnd_validate(c, is_cwnd_limited);
  // __tcp_push_pending_frames: nothing out and data held back by the window: probe it.
  if (c.windowed && !sent && !sk.packets_out && c.nxt < c.appLimit) tcp_check_probe_timer(c);
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
