/**
 * The ACK path (net/ipv4/tcp_input.c tcp_ack, tcp_rate.c): SACK scoreboard, RTT estimation and RTO,
 * delivery-rate samples, the CA calls Linux makes per ACK (in_ack_event, pkts_acked, cong_avoid or
 * cong_control), then the state machine in tcp_recovery.ts and transmission.
 */
import {
  CA_ACK_ECE,
  CA_ACK_SLOWPATH,
  CA_ACK_WIN_UPDATE,
  TCP_CA_CWR,
  TCP_CA_Open,
  TCP_ECN_OK,
  TCP_ESTABLISHED,
} from "./btf.js";
import type { TcpConn } from "./tcp.js";
import { tcp_set_ca_state } from "./tcp_cong.js";
import {
  tcp_in_cwnd_reduction,
  tcp_rearm_rto,
  tcp_schedule_loss_probe,
  tcp_time_stamp_ms,
  tcp_write_xmit,
} from "./tcp_output.js";
import {
  tcp_cwnd_reduction,
  tcp_end_cwnd_reduction,
  tcp_fastretrans_alert,
  tcp_init_cwnd_reduction,
  tcp_try_keep_open,
} from "./tcp_recovery.js";
import {
  FLAG_ACKED,
  FLAG_CA_ALERT,
  FLAG_DATA_ACKED,
  FLAG_DATA_SACKED,
  FLAG_DSACK_TLP,
  FLAG_DSACKING_ACK,
  FLAG_ECE,
  FLAG_NOT_DUP,
  FLAG_ORIG_SACK_ACKED,
  FLAG_RETRANS_DATA_ACKED,
  FLAG_SLOWPATH,
  FLAG_SND_UNA_ADVANCED,
  FLAG_WIN_UPDATE,
  TCP_RTO_MAX_S,
  TCP_RTO_MIN_US,
  TCPCB_EVER_RETRANS,
  TCPCB_LOST,
  TCPCB_SACKED_ACKED,
  TCPCB_SACKED_RETRANS,
  type TcpAck,
  type TcpSkb,
} from "./tcp_skb.js";
import { tcp_ack_probe } from "./tcp_timer.js";
import { minmax_running_min } from "./win_minmax.js";

const TCPCB_RETRANS = TCPCB_SACKED_RETRANS | TCPCB_EVER_RETRANS;

/** Per-ACK scratch state (struct tcp_sacktag_state plus the RACK "most recently delivered" stamp). */
interface AckState {
  now: number;
  ece: boolean;
  sack_rtt_us: number;
  lastSackt: number;
}

/** tcp_count_delivered */
function tcp_count_delivered(c: TcpConn, n: number, ece: boolean): void {
  c.sk.delivered = c.sk.delivered + n;
  if (ece) c.sk.delivered_ce = c.sk.delivered_ce + n;
}

/** tcp_rate_skb_delivered: the most recently sent delivered skb defines the rate sample's start. */
function tcp_rate_skb_delivered(c: TcpConn, skb: TcpSkb): void {
  const rs = c.rateSample;
  const sk = c.sk;
  if (!skb.tx_delivered_mstamp) return;
  if (
    !rs.prior_delivered ||
    skb.mstamp > sk.first_tx_mstamp ||
    (skb.mstamp === sk.first_tx_mstamp && skb.idx > c.rateLastIdx)
  ) {
    rs.prior_delivered_ce = skb.tx_delivered_ce;
    rs.prior_delivered = skb.tx_delivered;
    rs.prior_mstamp = skb.tx_delivered_mstamp;
    rs.is_app_limited = skb.tx_is_app_limited ? 1 : 0;
    rs.is_retrans = skb.sacked & TCPCB_RETRANS ? 1 : 0;
    rs.last_end_seq = c.seqOf(skb.idx + 1);
    c.rateLastIdx = skb.idx;
    sk.first_tx_mstamp = skb.mstamp;
    rs.interval_us = skb.mstamp - skb.tx_first_tx_mstamp;
  }
  if (skb.sacked & TCPCB_SACKED_ACKED) skb.tx_delivered_mstamp = 0;
}

/** tcp_rack_advance: remember the most recently sent segment known delivered, and its RTT. */
function tcp_rack_advance(c: TcpConn, skb: TcpSkb, now: number): void {
  const rtt_us = now - skb.mstamp;
  // A retransmission acked faster than min RTT is ambiguous: it may be the original that arrived.
  if (skb.sacked & TCPCB_RETRANS && rtt_us < c.minRttUs) return;
  c.rackAdvanced = true;
  c.rackRttUs = rtt_us;
  if (skb.txSeq > c.rackTxSeq) {
    c.rackMstamp = skb.mstamp;
    c.rackTxSeq = skb.txSeq;
  }
}

/** tcp_sacktag_write_queue + tcp_check_dsack */
function tcp_sacktag_write_queue(c: TcpConn, a: TcpAck, st: AckState): number {
  const sk = c.sk;
  let flag = 0;
  if (a.dsack) {
    flag |= FLAG_DSACKING_ACK;
    const [s, e] = a.dsack;
    // The D-SACK covers the TLP retransmission: original and probe both arrived.
    if (c.tlpRetrans && c.tlpHighSeqIdx >= 0 && e === c.tlpHighSeqIdx) flag |= FLAG_DSACK_TLP;
    if (c.undoMarkerIdx >= 0 && sk.undo_retrans > 0 && e > c.undoMarkerIdx) {
      sk.undo_retrans = Math.max(0, sk.undo_retrans - (e - Math.max(s, c.undoMarkerIdx)));
    }
  }
  for (const [s, e] of a.sack) {
    const lo = Math.max(s, c.una);
    const hi = Math.min(e, c.nxt);
    for (let idx = lo; idx < hi; idx++) {
      const skb = c.rtx[idx - c.una]!;
      if (skb.sacked & TCPCB_SACKED_ACKED) continue;
      if (skb.sacked & TCPCB_SACKED_RETRANS) {
        skb.sacked &= ~TCPCB_SACKED_RETRANS;
        sk.retrans_out = sk.retrans_out - 1;
      }
      if (skb.sacked & TCPCB_LOST) {
        skb.sacked &= ~TCPCB_LOST;
        sk.lost_out = sk.lost_out - 1;
      }
      if (!(skb.sacked & TCPCB_RETRANS)) {
        if (skb.mstamp > st.lastSackt) st.lastSackt = skb.mstamp;
        flag |= FLAG_ORIG_SACK_ACKED;
      }
      skb.sacked |= TCPCB_SACKED_ACKED;
      sk.sacked_out = sk.sacked_out + 1;
      flag |= FLAG_DATA_SACKED;
      tcp_count_delivered(c, 1, st.ece);
      tcp_rate_skb_delivered(c, skb);
      tcp_rack_advance(c, skb, st.now);
      if (idx > c.highSacked) c.highSacked = idx;
    }
  }
  if (st.lastSackt) st.sack_rtt_us = st.now - st.lastSackt;
  return flag;
}

/** tcp_rtt_estimator: Van Jacobson's srtt (<<3) and mdev (<<2), with Linux's rttvar smoothing per RTT. */
function tcp_rtt_estimator(c: TcpConn, mrtt_us: number): void {
  const sk = c.sk;
  let m = mrtt_us;
  let srtt = sk.srtt_us;
  if (srtt !== 0) {
    m -= srtt >>> 3;
    srtt += m;
    if (m < 0) {
      m = -m;
      m -= sk.mdev_us >>> 2;
      if (m > 0) m >>= 3;
    } else {
      m -= sk.mdev_us >>> 2;
    }
    sk.mdev_us = sk.mdev_us + m;
    if (sk.mdev_us > sk.mdev_max_us) {
      sk.mdev_max_us = sk.mdev_us;
      if (sk.mdev_max_us > sk.rttvar_us) sk.rttvar_us = sk.mdev_max_us;
    }
    if (c.una > c.rttSeqIdx) {
      if (sk.mdev_max_us < sk.rttvar_us) sk.rttvar_us = sk.rttvar_us - ((sk.rttvar_us - sk.mdev_max_us) >>> 2);
      c.rttSeqIdx = c.nxt;
      sk.rtt_seq = sk.snd_nxt;
      sk.mdev_max_us = TCP_RTO_MIN_US;
    }
  } else {
    srtt = m << 3;
    sk.mdev_us = m << 1;
    sk.rttvar_us = Math.max(sk.mdev_us, TCP_RTO_MIN_US);
    sk.mdev_max_us = sk.rttvar_us;
    c.rttSeqIdx = c.nxt;
    sk.rtt_seq = sk.snd_nxt;
  }
  sk.srtt_us = Math.max(1, srtt);
}

/** tcp_set_rto: srtt + rttvar (rttvar already at least rto_min), in jiffies, bounded by TCP_RTO_MAX. */
function tcp_set_rto(c: TcpConn): void {
  const sk = c.sk;
  const HZ = c.host.clock.HZ;
  const us = (sk.srtt_us >>> 3) + sk.rttvar_us;
  sk.icsk_rto = Math.min(Math.ceil((us * HZ) / 1e6), TCP_RTO_MAX_S * HZ);
}

/** tcp_ack_update_rtt: prefer the ACK's own timing (Karn), fall back to the echoed timestamp. */
function tcp_ack_update_rtt(
  c: TcpConn,
  flag: number,
  seq_rtt_us: number,
  sack_rtt_us: number,
  ca_rtt_us: number,
): void {
  if (seq_rtt_us < 0) seq_rtt_us = sack_rtt_us;
  if (seq_rtt_us < 0 && c.rcvTsecr && flag & FLAG_ACKED) {
    const delta = (tcp_time_stamp_ms(c) - c.rcvTsecr) >>> 0;
    if (delta < 0x7fffffff / 1000) {
      seq_rtt_us = Math.max(1, delta) * 1000;
      ca_rtt_us = seq_rtt_us;
    }
  }
  c.rateSample.rtt_us = ca_rtt_us;
  if (seq_rtt_us < 0) return;
  // tcp_update_rtt_min: net.ipv4.tcp_min_rtt_wlen = 300 s.
  const sk = c.sk;
  if (ca_rtt_us >= 0) {
    const HZ = c.host.clock.HZ;
    minmax_running_min(sk.rtt_min, 300 * HZ, c.jiffies32(), ca_rtt_us || Math.ceil(1e6 / HZ));
  }
  if (ca_rtt_us >= 0 && (c.minRttUs === 0 || ca_rtt_us < c.minRttUs)) c.minRttUs = Math.max(1, ca_rtt_us);
  tcp_rtt_estimator(c, seq_rtt_us);
  tcp_set_rto(c);
  sk.icsk_backoff = 0;
}

/**
 * The SYN-ACK acknowledges the SYN (tcp_rcv_synsent_state_process -> tcp_ack -> tcp_clean_rtx_queue):
 * its RTT is the socket's first sample (srtt, rtt_min, RTO) before tcp_init_transfer runs the CA's init,
 * which is why BBR's first pacing rate and min_rtt come from the handshake.
 */
export function tcp_synack_rtt_sample(c: TcpConn, rtt_us: number): void {
  tcp_ack_update_rtt(c, FLAG_ACKED, rtt_us, -1, rtt_us);
}

/** tcp_clean_rtx_queue: drop cumulatively acked segments, take RTT samples, call pkts_acked. */
function tcp_clean_rtx_queue(c: TcpConn, ack: number, st: AckState, prior_delivered_rs: () => number): number {
  const sk = c.sk;
  let flag = 0;
  let pkts_acked = 0;
  let first_ackt = -1;
  let last_ackt = -1;
  while (c.una < ack) {
    const skb = c.rtx.shift()!;
    c.una++;
    const sacked = skb.sacked;
    if (sacked & TCPCB_RETRANS) {
      if (sacked & TCPCB_SACKED_RETRANS) sk.retrans_out = sk.retrans_out - 1;
      flag |= FLAG_RETRANS_DATA_ACKED;
    } else if (!(sacked & TCPCB_SACKED_ACKED)) {
      last_ackt = skb.mstamp;
      if (first_ackt < 0) first_ackt = last_ackt;
      if (skb.idx < c.highSeqIdx) flag |= FLAG_ORIG_SACK_ACKED;
    }
    if (sacked & TCPCB_SACKED_ACKED) {
      sk.sacked_out = sk.sacked_out - 1;
    } else {
      tcp_count_delivered(c, 1, st.ece);
      tcp_rack_advance(c, skb, st.now);
    }
    if (sacked & TCPCB_LOST) sk.lost_out = sk.lost_out - 1;
    tcp_rate_skb_delivered(c, skb);
    sk.packets_out = sk.packets_out - 1;
    sk.bytes_acked = sk.bytes_acked + sk.mss_cache;
    pkts_acked++;
    flag |= FLAG_DATA_ACKED;
  }
  c.syncSeq();
  const seq_rtt_us = first_ackt >= 0 ? st.now - first_ackt : -1;
  let ca_rtt_us = last_ackt >= 0 ? st.now - last_ackt : -1;
  if (ca_rtt_us < 0 && st.sack_rtt_us >= 0) ca_rtt_us = st.sack_rtt_us;
  tcp_ack_update_rtt(c, flag, seq_rtt_us, st.sack_rtt_us, ca_rtt_us);
  const ops = sk.icsk_ca_ops;
  if (ops.pkts_acked) {
    const s = c.ackSample;
    s.pkts_acked = pkts_acked;
    s.rtt_us = c.rateSample.rtt_us;
    s.in_flight = (sk.mss_cache * (sk.delivered - prior_delivered_rs())) >>> 0;
    ops.pkts_acked(sk, s);
  }
  return flag;
}

/** tcp_update_pacing_rate: 200% of cwnd/srtt in slow start, 120% after. */
function tcp_update_pacing_rate(c: TcpConn): void {
  const sk = c.sk;
  let rate = sk.mss_cache * ((1e6 / 100) << 3);
  rate *= sk.snd_cwnd < sk.snd_ssthresh / 2 ? 200 : 120;
  rate *= Math.max(sk.snd_cwnd, sk.packets_out);
  if (sk.srtt_us) rate = Math.floor(rate / sk.srtt_us);
  sk.sk_pacing_rate = Math.min(rate, sk.sk_max_pacing_rate);
}

/** tcp_rate_gen: finish the rate sample for this ACK. */
function tcp_rate_gen(c: TcpConn, delivered: number, lost: number): void {
  const sk = c.sk;
  const rs = c.rateSample;
  if (sk.app_limited && ((sk.delivered - sk.app_limited) | 0) > 0) sk.app_limited = 0;
  if (delivered) sk.delivered_mstamp = sk.tcp_mstamp;
  rs.acked_sacked = delivered;
  rs.losses = lost;
  if (!rs.prior_mstamp) {
    rs.delivered = -1;
    rs.interval_us = -1;
    return;
  }
  rs.delivered = sk.delivered - rs.prior_delivered;
  rs.delivered_ce = sk.delivered_ce - rs.prior_delivered_ce;
  const snd_us = rs.interval_us;
  const ack_us = sk.tcp_mstamp - rs.prior_mstamp;
  rs.interval_us = Math.max(snd_us, ack_us);
  rs.snd_interval_us = snd_us;
  rs.rcv_interval_us = ack_us;
  if (rs.interval_us < c.minRttUs) {
    rs.interval_us = -1;
    return;
  }
  if (!rs.is_app_limited || rs.delivered * sk.rate_interval_us >= sk.rate_delivered * rs.interval_us) {
    sk.rate_delivered = rs.delivered;
    sk.rate_interval_us = rs.interval_us;
  }
}

/** tcp_cong_control: a CA with cong_control owns cwnd; otherwise PRR in reduction or cong_avoid. */
function tcp_cong_control(c: TcpConn, ack: number, acked_sacked: number, flag: number): void {
  const sk = c.sk;
  const ops = sk.icsk_ca_ops;
  if (ops.cong_control) {
    ops.cong_control(sk, ack, flag, c.rateSample);
    return;
  }
  if (tcp_in_cwnd_reduction(c)) {
    tcp_cwnd_reduction(c, acked_sacked, c.rateSample.losses, flag);
  } else if (flag & FLAG_DATA_ACKED) {
    // tcp_may_raise_cwnd (no reordering seen) then tcp_cong_avoid
    ops.cong_avoid!(sk, ack, acked_sacked);
    sk.snd_cwnd_stamp = c.jiffies32();
  }
  tcp_update_pacing_rate(c);
}

/** tcp_in_ack_event: the CA's view of this ACK's flags. */
function tcp_in_ack_event(c: TcpConn, flag: number): void {
  const ops = c.sk.icsk_ca_ops;
  if (!ops.in_ack_event) return;
  let ev = 0;
  if (flag & FLAG_WIN_UPDATE) ev |= CA_ACK_WIN_UPDATE;
  if (flag & FLAG_SLOWPATH) {
    ev |= CA_ACK_SLOWPATH;
    if (flag & FLAG_ECE) ev |= CA_ACK_ECE;
  }
  ops.in_ack_event(c.sk, ev);
}

/** tcp_process_tlp_ack: did the loss probe repair a loss (then a CWR episode) or was nothing lost? */
function tcp_process_tlp_ack(c: TcpConn, ack: number, flag: number): void {
  if (ack < c.tlpHighSeqIdx) return;
  if (!c.tlpRetrans) {
    c.tlpHighSeqIdx = -1; // TLP of new data has been acknowledged
  } else if (flag & FLAG_DSACK_TLP) {
    c.tlpHighSeqIdx = -1;
  } else if (ack > c.tlpHighSeqIdx) {
    // ACK advances past the probe: there was a loss, so reduce cwnd.
    tcp_init_cwnd_reduction(c);
    tcp_set_ca_state(c.sk, TCP_CA_CWR);
    tcp_end_cwnd_reduction(c);
    tcp_try_keep_open(c);
  } else if (!(flag & (FLAG_SND_UNA_ADVANCED | FLAG_NOT_DUP | FLAG_DATA_SACKED))) {
    c.tlpHighSeqIdx = -1; // pure dupack: original and probe arrived
  }
}

/**
 * tcp_ack_update_window for a peer advertising a window: header prediction fails on a window field
 * other than the one predicted (the slow path); tcp_may_update_window takes a window from an ACK that
 * advances snd_una, or a larger or zero one on a duplicate (the receiver sends no data, so snd_wl1
 * never moves).
 */
function tcp_ack_update_window(c: TcpConn, field: number, ack: number): number {
  const sk = c.sk;
  const nwin = field * 2 ** c.sndWscale;
  let flag = 0;
  if (nwin !== sk.snd_wnd) flag |= FLAG_SLOWPATH;
  if (ack > c.una || nwin > sk.snd_wnd || nwin === 0) {
    flag |= FLAG_WIN_UPDATE;
    sk.snd_wnd = nwin;
  }
  return flag;
}

/** tcp_ack: process one incoming ACK, then transmit what the window allows. */
export function tcp_ack(c: TcpConn, a: TcpAck): void {
  const sk = c.sk;
  if (a.ack > c.nxt) return; // acks something we never sent
  const ack = Math.max(a.ack, c.una);
  const now = c.mstampRefresh();
  const prior_delivered = sk.delivered;
  const prior_lost = sk.lost;
  const rs = c.rateSample;
  rs.prior_delivered = 0;
  rs.prior_delivered_ce = 0;
  rs.prior_mstamp = 0;
  rs.interval_us = 0;
  rs.rtt_us = -1;
  rs.is_app_limited = 0;
  rs.prior_in_flight = c.inFlight();
  c.rcvTsecr = a.tsecr;

  let flag = 0;
  if (ack > c.una) flag |= FLAG_SND_UNA_ADVANCED;
  const ece = a.ece && (sk.ecn_flags & TCP_ECN_OK) !== 0;
  // Outside ESTABLISHED every segment goes through tcp_rcv_state_process, which asks for the slow path.
  if (a.sack.length || a.dsack || ece || ack === c.una || sk.sk_state !== TCP_ESTABLISHED) flag |= FLAG_SLOWPATH;
  if (ece) flag |= FLAG_ECE;
  // An ACK moving snd_una updates the window: on the fast path, or tcp_may_update_window on the slow one.
  if (ack > c.una) flag |= FLAG_WIN_UPDATE;
  if (c.windowed && a.win !== undefined) flag |= tcp_ack_update_window(c, a.win, ack);

  const st: AckState = { now, ece, sack_rtt_us: -1, lastSackt: 0 };
  if (a.sack.length || a.dsack) flag |= tcp_sacktag_write_queue(c, a, st);
  if (!sk.packets_out) {
    // no_queue: nothing outstanding, but a D-SACK may still prove a past reduction spurious.
    tcp_in_ack_event(c, flag);
    if (flag & FLAG_DSACKING_ACK) tcp_fastretrans_alert(c, flag);
    // tcp_ack_probe, then tcp_data_snd_check: a window that opened lets the queued data go.
    if (c.windowed) {
      tcp_ack_probe(c);
      tcp_write_xmit(c);
    }
    return;
  }

  flag |= tcp_clean_rtx_queue(c, ack, st, () => rs.prior_delivered);

  // After the queue is cleaned (since 6.14), so the CA sees this ACK's delivered and delivered_ce.
  tcp_in_ack_event(c, flag);
  if (c.tlpHighSeqIdx >= 0) tcp_process_tlp_ack(c, ack, flag);
  c.reoArmed = false;

  if (!(flag & FLAG_NOT_DUP) || flag & FLAG_CA_ALERT || sk.icsk_ca_state !== TCP_CA_Open) {
    tcp_fastretrans_alert(c, flag);
  }
  // tcp_set_xmit_timer: a loss probe if one may be scheduled, else the RTO.
  // (Not when loss detection just armed the REO timer.)
  if (flag & FLAG_ACKED && !c.reoArmed && !tcp_schedule_loss_probe(c, true)) tcp_rearm_rto(c);

  const delivered = sk.delivered - prior_delivered;
  tcp_rate_gen(c, delivered, sk.lost - prior_lost);
  tcp_cong_control(c, sk.snd_una, delivered, flag);
  tcp_write_xmit(c);
  // tcp_data_snd_check -> tcp_check_space: the ACK freed send-buffer space.
  if (flag & FLAG_DATA_ACKED) tcp_check_space(c);
}

/** net.ipv4.tcp_wmem = 4096 16384 4194304: a socket's initial and largest send buffer. */
export const TCP_WMEM_DEFAULT = 16384;
export const TCP_WMEM_MAX = 4194304;
/** What one MSS costs in the send buffer: roundup_pow_of_two(mss + MAX_TCP_HEADER + skb_shared_info)
 * + sizeof(struct sk_buff), with x86-64's 320, 320 and 256 bytes. */
function per_mss_truesize(mss: number): number {
  let v = mss + 320 + 320;
  let p = 1;
  while (p < v) p *= 2;
  v = p + 256;
  return v;
}

/** tcp_sndbuf_expand: room for max(cwnd, reordering + 1) segments, times the CA's sndbuf_expand (2). */
export function tcp_sndbuf_expand(c: TcpConn): void {
  const sk = c.sk;
  const ops = sk.icsk_ca_ops;
  let nr_segs = Math.max(10, sk.snd_cwnd);
  nr_segs = Math.max(nr_segs, sk.reordering + 1);
  const factor = ops.sndbuf_expand ? ops.sndbuf_expand(sk) : 2;
  const sndmem = factor * nr_segs * per_mss_truesize(sk.mss_cache);
  if (sk.sk_sndbuf < sndmem) sk.sk_sndbuf = Math.min(sndmem, TCP_WMEM_MAX);
}

/** tcp_init_buffer_space (send side), at establishment. */
export function tcp_init_buffer_space(c: TcpConn): void {
  tcp_sndbuf_expand(c);
}

/**
 * tcp_check_space -> tcp_new_space: a writer blocked on a full send buffer (SOCK_NOSPACE; a bulk
 * sender always is) gets a bigger one while cwnd has room (tcp_should_expand_sndbuf).
 */
function tcp_check_space(c: TcpConn): void {
  if (Number.isFinite(c.appLimit)) return;
  if (c.inFlight() >= c.sk.snd_cwnd) return;
  tcp_sndbuf_expand(c);
  c.sk.snd_cwnd_stamp = c.jiffies32();
}
