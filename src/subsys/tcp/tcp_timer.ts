/**
 * The transmit timer (net/ipv4/tcp_timer.c tcp_write_timer_handler): a tail loss probe, or the
 * retransmission timeout (tcp_retransmit_timer: enter Loss, retransmit the head, back off the RTO).
 */

import type { TcpConn } from "./tcp.js";
import { tcp_rearm_rto, tcp_retransmit_skb, tcp_send_loss_probe, tcp_write_xmit } from "./tcp_output.js";
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

/** tcp_write_timer_handler: what the one transmit timer was armed for. */
export function tcp_write_timer(c: TcpConn): void {
  if (c.closed) return;
  if (c.xmitTimer === "probe") tcp_send_loss_probe(c);
  else if (c.xmitTimer === "reo") tcp_rack_reo_timeout(c);
  else tcp_retransmit_timer(c);
}
