/**
 * Loss recovery and the congestion state machine (net/ipv4/tcp_input.c tcp_fastretrans_alert and its
 * helpers, tcp_recovery.c RACK): loss marking, Open/Disorder/CWR/Recovery/Loss transitions with the CA's
 * ssthresh and set_state, PRR cwnd reduction, and undo of spurious reductions (D-SACK, timestamps).
 */
import {
  CA_EVENT_COMPLETE_CWR,
  CA_EVENT_LOSS,
  TCP_CA_CWR,
  TCP_CA_Disorder,
  TCP_CA_Loss,
  TCP_CA_Open,
  TCP_CA_Recovery,
  TCP_ECN_OK,
  TCP_ECN_QUEUE_CWR,
} from "./btf.js";
import type { TcpConn } from "./tcp.js";
import { tcp_ca_event, tcp_set_ca_state } from "./tcp_cong.js";
import { tcp_in_cwnd_reduction, tcp_rearm_rto, tcp_write_xmit } from "./tcp_output.js";
import { TCP_INFINITE_SSTHRESH } from "./tcp_reno.js";
import {
  FLAG_ECE,
  FLAG_SND_UNA_ADVANCED,
  TCP_TIMEOUT_MIN_US,
  TCPCB_EVER_RETRANS,
  TCPCB_LOST,
  TCPCB_SACKED_ACKED,
  TCPCB_SACKED_RETRANS,
  type TcpSkb,
} from "./tcp_skb.js";

/** tcp_mark_skb_lost */
export function tcp_mark_skb_lost(c: TcpConn, skb: TcpSkb): void {
  const sk = c.sk;
  if (skb.sacked & TCPCB_SACKED_ACKED) return;
  if (skb.sacked & TCPCB_LOST) {
    if (skb.sacked & TCPCB_SACKED_RETRANS) {
      // Account for retransmits that are lost again
      skb.sacked &= ~TCPCB_SACKED_RETRANS;
      sk.retrans_out = sk.retrans_out - 1;
      sk.lost = sk.lost + 1;
    }
  } else {
    sk.lost_out = sk.lost_out + 1;
    skb.sacked |= TCPCB_LOST;
    sk.lost = sk.lost + 1;
  }
}

/**
 * tcp_rack_reo_wnd: no reordering is ever seen on the simulated path, so the window is zero in recovery
 * or once dupthresh segments are SACKed, and min_rtt/4 before that.
 */
function tcp_rack_reo_wnd(c: TcpConn): number {
  const sk = c.sk;
  if (sk.icsk_ca_state >= TCP_CA_Recovery) return 0;
  if (sk.sacked_out >= sk.reordering) return 0;
  return Math.min(c.minRttUs >>> 2, sk.srtt_us >>> 3);
}

/**
 * tcp_rack_detect_loss: an outstanding segment sent before the most recently delivered one is lost once
 * it has been out longer than that segment's RTT plus the reordering window. Returns the time (us) until
 * the next one would qualify, 0 if none is waiting.
 */
function tcp_rack_detect_loss(c: TcpConn): number {
  const reo_wnd = tcp_rack_reo_wnd(c);
  const now = c.sk.tcp_mstamp;
  let timeout = 0;
  for (const skb of c.rtx) {
    if (skb.sacked & TCPCB_SACKED_ACKED) continue;
    // Skip ones marked lost but not yet retransmitted
    if (skb.sacked & TCPCB_LOST && !(skb.sacked & TCPCB_SACKED_RETRANS)) continue;
    if (skb.txSeq >= c.rackTxSeq) continue; // not sent before the RACK segment
    const remaining = c.rackRttUs + reo_wnd - (now - skb.mstamp);
    if (remaining <= 0) tcp_mark_skb_lost(c, skb);
    else timeout = Math.max(timeout, remaining);
  }
  return timeout;
}

/**
 * tcp_identify_packet_loss (tcp_rack_mark_lost): mark losses after something new was delivered; when
 * some are still within the reordering window, arm the REO timer (the transmit timer) for them.
 */
export function tcp_identify_packet_loss(c: TcpConn): void {
  if (c.rtx.length === 0 || !c.rackAdvanced) return;
  c.rackAdvanced = false;
  const timeout = tcp_rack_detect_loss(c);
  if (timeout) {
    const HZ = c.host.clock.HZ;
    const jiffies = Math.ceil((timeout * HZ) / 1e6) + Math.ceil((TCP_TIMEOUT_MIN_US * HZ) / 1e6);
    c.xmitTimer = "reo";
    c.host.setRtoTimer(c, (Math.min(jiffies, c.sk.icsk_rto) * 1e9) / HZ);
    c.reoArmed = true;
  }
}

/** tcp_rack_reo_timeout: the reordering window passed; what is still missing is lost. */
export function tcp_rack_reo_timeout(c: TcpConn): void {
  const prior_inflight = c.inFlight();
  c.mstampRefresh();
  tcp_rack_detect_loss(c);
  if (prior_inflight !== c.inFlight()) {
    if (c.sk.icsk_ca_state !== TCP_CA_Recovery) {
      tcp_enter_recovery(c, false);
      if (!c.sk.icsk_ca_ops.cong_control) tcp_cwnd_reduction(c, 1, 0, 0);
    }
    tcp_write_xmit(c);
  }
  if (c.xmitTimer !== "retrans") tcp_rearm_rto(c);
}

/** tcp_current_ssthresh */
function tcp_current_ssthresh(c: TcpConn): number {
  const sk = c.sk;
  if (tcp_in_cwnd_reduction(c)) return sk.snd_ssthresh;
  return Math.max(sk.snd_ssthresh, (sk.snd_cwnd >>> 1) + (sk.snd_cwnd >>> 2));
}

function setHighSeq(c: TcpConn): void {
  c.highSeqIdx = c.nxt;
  c.sk.high_seq = c.sk.snd_nxt;
}

/** tcp_init_undo */
function tcp_init_undo(c: TcpConn): void {
  c.undoMarkerIdx = c.una;
  c.sk.undo_marker = c.sk.snd_una;
  c.sk.undo_retrans = c.sk.retrans_out || -1;
}

/** tcp_init_cwnd_reduction: ask the CA for ssthresh, start PRR, queue CWR. */
export function tcp_init_cwnd_reduction(c: TcpConn): void {
  const sk = c.sk;
  setHighSeq(c);
  c.tlpHighSeqIdx = -1;
  sk.snd_cwnd_cnt = 0;
  sk.prior_cwnd = sk.snd_cwnd;
  sk.prr_delivered = 0;
  sk.prr_out = 0;
  sk.snd_ssthresh = sk.icsk_ca_ops.ssthresh!(sk);
  if (sk.ecn_flags & TCP_ECN_OK) sk.ecn_flags = sk.ecn_flags | TCP_ECN_QUEUE_CWR;
}

/** tcp_cwnd_reduction: Proportional Rate Reduction (RFC 6937). */
export function tcp_cwnd_reduction(c: TcpConn, newly_acked_sacked: number, newly_lost: number, flag: number): void {
  const sk = c.sk;
  if (newly_acked_sacked <= 0 || !sk.prior_cwnd) return;
  const delta = sk.snd_ssthresh - c.inFlight();
  let sndcnt: number;
  sk.prr_delivered = sk.prr_delivered + newly_acked_sacked;
  if (delta < 0) {
    const dividend = sk.snd_ssthresh * sk.prr_delivered + sk.prior_cwnd - 1;
    sndcnt = Math.floor(dividend / sk.prior_cwnd) - sk.prr_out;
  } else {
    sndcnt = Math.max(sk.prr_delivered - sk.prr_out, newly_acked_sacked);
    if (flag & FLAG_SND_UNA_ADVANCED && !newly_lost) sndcnt++;
    sndcnt = Math.min(delta, sndcnt);
  }
  // Force a fast retransmit upon entering fast recovery
  sndcnt = Math.max(sndcnt, sk.prr_out ? 0 : 1);
  sk.snd_cwnd = c.inFlight() + sndcnt;
}

/** tcp_end_cwnd_reduction: cwnd = ssthresh unless undone, then COMPLETE_CWR. */
export function tcp_end_cwnd_reduction(c: TcpConn): void {
  const sk = c.sk;
  if (sk.icsk_ca_ops.cong_control) return;
  if (sk.snd_ssthresh < TCP_INFINITE_SSTHRESH && (sk.icsk_ca_state === TCP_CA_CWR || c.undoMarkerIdx >= 0)) {
    sk.snd_cwnd = sk.snd_ssthresh;
    sk.snd_cwnd_stamp = c.jiffies32();
  }
  tcp_ca_event(sk, CA_EVENT_COMPLETE_CWR);
}

/** tcp_enter_cwr: ECE outside recovery. */
export function tcp_enter_cwr(c: TcpConn): void {
  const sk = c.sk;
  sk.prior_ssthresh = 0;
  if (sk.icsk_ca_state < TCP_CA_CWR) {
    c.undoMarkerIdx = -1;
    sk.undo_marker = 0;
    tcp_init_cwnd_reduction(c);
    tcp_set_ca_state(sk, TCP_CA_CWR);
  }
}

function tcp_any_retrans_done(c: TcpConn): boolean {
  if (c.sk.retrans_out) return true;
  const head = c.rtx[0];
  return head !== undefined && (head.sacked & TCPCB_EVER_RETRANS) !== 0;
}

/** tcp_undo_cwnd_reduction: the CA's undo_cwnd restores cwnd; ssthresh goes back up. */
function tcp_undo_cwnd_reduction(c: TcpConn, unmark_loss: boolean): void {
  const sk = c.sk;
  if (unmark_loss) {
    for (const skb of c.rtx) skb.sacked &= ~TCPCB_LOST;
    sk.lost_out = 0;
  }
  if (sk.prior_ssthresh) {
    sk.snd_cwnd = sk.icsk_ca_ops.undo_cwnd!(sk);
    if (sk.prior_ssthresh > sk.snd_ssthresh) {
      sk.snd_ssthresh = sk.prior_ssthresh;
      sk.ecn_flags = sk.ecn_flags & ~TCP_ECN_QUEUE_CWR; // tcp_ecn_withdraw_cwr
    }
  }
  sk.snd_cwnd_stamp = c.jiffies32();
  c.undoMarkerIdx = -1;
  sk.undo_marker = 0;
  c.undos++;
}

/** tcp_packet_delayed: the ACK echoes a timestamp older than our first retransmission. */
function tcp_packet_delayed(c: TcpConn): boolean {
  const rs = c.sk.retrans_stamp;
  return rs !== 0 && c.rcvTsecr !== 0 && ((c.rcvTsecr - rs) | 0) < 0;
}

function tcp_may_undo(c: TcpConn): boolean {
  return c.undoMarkerIdx >= 0 && (!c.sk.undo_retrans || tcp_packet_delayed(c));
}

/** tcp_try_undo_recovery; returns true to hold the state. */
function tcp_try_undo_recovery(c: TcpConn): boolean {
  if (tcp_may_undo(c)) tcp_undo_cwnd_reduction(c, false);
  tcp_set_ca_state(c.sk, TCP_CA_Open);
  c.sk.is_sack_reneg = 0;
  return false;
}

function tcp_try_undo_dsack(c: TcpConn): boolean {
  if (c.undoMarkerIdx >= 0 && !c.sk.undo_retrans) {
    tcp_undo_cwnd_reduction(c, false);
    return true;
  }
  return false;
}

function tcp_try_undo_loss(c: TcpConn): boolean {
  if (!tcp_may_undo(c)) return false;
  tcp_undo_cwnd_reduction(c, true);
  c.sk.icsk_retransmits = 0;
  tcp_set_ca_state(c.sk, TCP_CA_Open);
  c.sk.is_sack_reneg = 0;
  return true;
}

export function tcp_try_keep_open(c: TcpConn): void {
  const sk = c.sk;
  let state = TCP_CA_Open;
  if (sk.sacked_out + sk.lost_out || tcp_any_retrans_done(c)) state = TCP_CA_Disorder;
  if (sk.icsk_ca_state !== state) {
    tcp_set_ca_state(sk, state);
    setHighSeq(c);
  }
}

function tcp_try_to_open(c: TcpConn, flag: number): void {
  if (!tcp_any_retrans_done(c)) c.sk.retrans_stamp = 0;
  if (flag & FLAG_ECE) tcp_enter_cwr(c);
  if (c.sk.icsk_ca_state !== TCP_CA_CWR) tcp_try_keep_open(c);
}

/** tcp_enter_recovery */
function tcp_enter_recovery(c: TcpConn, ece_ack: boolean): void {
  const sk = c.sk;
  sk.prior_ssthresh = 0;
  tcp_init_undo(c);
  if (!tcp_in_cwnd_reduction(c)) {
    if (!ece_ack) sk.prior_ssthresh = tcp_current_ssthresh(c);
    tcp_init_cwnd_reduction(c);
  }
  tcp_set_ca_state(sk, TCP_CA_Recovery);
}

/** tcp_fastretrans_alert: the congestion state machine, on "dubious" ACKs. */
export function tcp_fastretrans_alert(c: TcpConn, flag: number): void {
  const sk = c.sk;
  const ece_ack = (flag & FLAG_ECE) !== 0;
  if (ece_ack) sk.prior_ssthresh = 0;

  // D. State exit once high_seq is acked.
  if (sk.icsk_ca_state === TCP_CA_Open) {
    sk.retrans_stamp = 0;
  } else if (c.una >= c.highSeqIdx) {
    if (sk.icsk_ca_state === TCP_CA_CWR) {
      if (c.una !== c.highSeqIdx) {
        tcp_end_cwnd_reduction(c);
        tcp_set_ca_state(sk, TCP_CA_Open);
      }
    } else if (sk.icsk_ca_state === TCP_CA_Recovery) {
      if (tcp_try_undo_recovery(c)) return;
      tcp_end_cwnd_reduction(c);
    }
  }

  // E. Process state.
  switch (sk.icsk_ca_state) {
    case TCP_CA_Recovery:
      if (tcp_try_undo_dsack(c)) tcp_try_to_open(c, flag);
      tcp_identify_packet_loss(c);
      if (sk.icsk_ca_state !== TCP_CA_Recovery) {
        if (!sk.lost_out) return;
        tcp_enter_recovery(c, ece_ack);
      }
      return;
    case TCP_CA_Loss: {
      const recovered = c.una >= c.highSeqIdx;
      if (flag & FLAG_SND_UNA_ADVANCED && tcp_try_undo_loss(c)) return;
      if (recovered) {
        tcp_try_undo_recovery(c);
        return;
      }
      tcp_identify_packet_loss(c);
      return;
    }
    default:
      if (sk.icsk_ca_state <= TCP_CA_Disorder) tcp_try_undo_dsack(c);
      tcp_identify_packet_loss(c);
      if (!sk.lost_out) {
        tcp_try_to_open(c, flag);
        return;
      }
      tcp_enter_recovery(c, ece_ack);
  }
}

/** tcp_enter_loss: the RTO fired. */
export function tcp_enter_loss(c: TcpConn): void {
  const sk = c.sk;
  // Reduce ssthresh if it has not yet been made inside this window.
  if (
    sk.icsk_ca_state <= TCP_CA_Disorder ||
    c.una >= c.highSeqIdx ||
    (sk.icsk_ca_state === TCP_CA_Loss && !sk.icsk_retransmits)
  ) {
    sk.prior_ssthresh = tcp_current_ssthresh(c);
    sk.prior_cwnd = sk.snd_cwnd;
    sk.snd_ssthresh = sk.icsk_ca_ops.ssthresh!(sk);
    tcp_ca_event(sk, CA_EVENT_LOSS);
    tcp_init_undo(c);
  }
  // tcp_timeout_mark_lost
  for (const skb of c.rtx) tcp_mark_skb_lost(c, skb);
  sk.snd_cwnd = c.inFlight() + 1;
  sk.snd_cwnd_cnt = 0;
  sk.snd_cwnd_stamp = c.jiffies32();
  tcp_set_ca_state(sk, TCP_CA_Loss);
  setHighSeq(c);
  if (sk.ecn_flags & TCP_ECN_OK) sk.ecn_flags = sk.ecn_flags | TCP_ECN_QUEUE_CWR;
}
