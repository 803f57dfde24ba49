/**
 * The transmit timer (net/ipv4/tcp_timer.c tcp_write_timer_handler): a tail loss probe, the
 * retransmission timeout (tcp_retransmit_timer: enter Loss, retransmit the head, back off the RTO),
 * or the zero-window probe (tcp_probe_timer, with tcp_output.c's tcp_send_probe0 / tcp_write_wakeup
 * and tcp_input.c's tcp_ack_probe).
 */

import { TCP_CLOSE } from "./btf.js";
import type { TcpConn } from "./tcp.js";
import {
  sendNewSkb,
  tcp_probe0_base,
  tcp_rearm_rto,
  tcp_reset_probe0,
  tcp_retransmit_skb,
  tcp_send_loss_probe,
  tcp_time_stamp_ms,
  tcp_write_xmit,
} from "./tcp_output.js";
import { tcp_enter_loss, tcp_rack_reo_timeout } from "./tcp_recovery.js";
import { TCP_RTO_MAX_S } from "./tcp_skb.js";

export function tcp_retransmit_timer(c: TcpConn): void {
  const sk = c.sk;
  if (c.closed || !sk.packets_out || c.rtx.length === 0) return;
  c.mstampRefresh();
  c.rtoCount++;
  tcp_enter_loss(c);
  sk.icsk_retransmits = sk.icsk_retransmits + 1;
  tcp_retransmit_skb(c, c.rtx[0]!);
  sk.icsk_backoff = sk.icsk_backoff + 1;
  sk.icsk_rto = Math.min(sk.icsk_rto * 2, TCP_RTO_MAX_S * c.host.clock.HZ);
  tcp_rearm_rto(c);
  tcp_write_xmit(c);
}

/** tcp_probe0_when: the base doubled per backoff (at most ilog2(TCP_RTO_MAX / TCP_RTO_MIN) + 1 times), capped at TCP_RTO_MAX. */
export function tcp_probe0_when(c: TcpConn): number {
  const backoff = Math.min(10, c.sk.icsk_backoff);
  return Math.min(tcp_probe0_base(c) * 2 ** backoff, TCP_RTO_MAX_S * c.host.clock.HZ);
}

/**
 * tcp_write_wakeup: if the window has room before the next segment's start, send it (Linux cuts the
 * skb to the window, tcp_fragment; segments here are whole, so one may pass the right edge by less
 * than an MSS, which the receiver takes as it would the head of a cut one); otherwise a zero-window
 * probe, a bare ACK at snd_una - 1, which the receiver answers with its window.
 */
function tcp_write_wakeup(c: TcpConn): void {
  const sk = c.sk;
  if (sk.sk_state === TCP_CLOSE) return;
  if (c.nxt < c.appLimit && (c.seqOf(c.nxt) - c.seqOf(c.una)) >>> 0 < sk.snd_wnd) {
    if (!sendNewSkb(c)) tcp_rearm_rto(c);
    return;
  }
  c.windowProbes++;
  sk.segs_out = sk.segs_out + 1;
  c.host.xmit({
    flow: c.flow,
    idx: c.una - 1,
    bytes: c.wireBytes - sk.mss_cache,
    ect: false,
    ce: false,
    cwr: false,
    tsval: tcp_time_stamp_ms(c),
    retrans: false,
    empty: true,
    probe: true,
  });
}

/** tcp_probe_timer -> tcp_send_probe0: probe, then back off (net.ipv4.tcp_retries2 = 15 at most). */
export function tcp_probe_timer(c: TcpConn): void {
  const sk = c.sk;
  c.probe0Armed = false;
  if (sk.packets_out || c.nxt >= c.appLimit) {
    c.probesOut = 0;
    return;
  }
  c.mstampRefresh();
  tcp_write_wakeup(c);
  if (sk.packets_out || c.nxt >= c.appLimit) {
    c.probesOut = 0;
    sk.icsk_backoff = 0;
    return;
  }
  c.probesOut++;
  if (sk.icsk_backoff < 15) sk.icsk_backoff = sk.icsk_backoff + 1;
  tcp_reset_probe0(c, tcp_probe0_when(c));
}

/**
 * tcp_ack_probe, on an ACK while the probe timer is pending: a window that now takes the next
 * segment ends the probing (the backoff cleared); otherwise the probe waits out its backoff again.
 */
export function tcp_ack_probe(c: TcpConn): void {
  if (!c.probe0Armed || c.nxt >= c.appLimit) return;
  const sk = c.sk;
  if ((c.seqOf(c.nxt + 1) - c.seqOf(c.una)) >>> 0 <= sk.snd_wnd) {
    sk.icsk_backoff = 0;
    c.probe0Armed = false;
    c.host.setRtoTimer(c, -1);
  } else {
    tcp_reset_probe0(c, tcp_probe0_when(c));
  }
}

/** tcp_write_timer_handler: what the one transmit timer was armed for. */
export function tcp_write_timer(c: TcpConn): void {
  if (c.closed) return;
  if (c.xmitTimer === "probe") tcp_send_loss_probe(c);
  else if (c.xmitTimer === "probe0") tcp_probe_timer(c);
  else if (c.xmitTimer === "reo") tcp_rack_reo_timeout(c);
  else tcp_retransmit_timer(c);
}
