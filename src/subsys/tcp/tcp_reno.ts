/**
 * TCP Reno and the shared window arithmetic of net/ipv4/tcp_cong.c (tcp_slow_start, tcp_cong_avoid_ai,
 * tcp_reno_*), which BPF congestion controls also call as kfuncs (see bpf_tcp_ca_kfuncs.ts).
 */
import { TCP_CONG_NON_RESTRICTED } from "./btf.js";
import type { TcpCongestionOps } from "./tcp_cong.js";
import type { TcpSock } from "./tcp_sock.js";

export const TCP_INFINITE_SSTHRESH = 0x7fffffff;

/** tcp_in_slow_start: cwnd below ssthresh. */
export function tcp_in_slow_start(tp: TcpSock): boolean {
  return tp.snd_cwnd < tp.snd_ssthresh;
}

/** tcp_is_cwnd_limited: limited by cwnd last round, or in slow start with cwnd below twice what was in flight. */
export function tcp_is_cwnd_limited(tp: TcpSock): boolean {
  if (tp.is_cwnd_limited) return true;
  if (tcp_in_slow_start(tp)) return tp.snd_cwnd < 2 * tp.max_packets_out;
  return false;
}

/**
 * Slow start, handling stretch ACKs: grow by `acked` up to ssthresh and return the acks left over for
 * congestion avoidance.
 */
export function tcp_slow_start(tp: TcpSock, acked: number): number {
  const cwnd = Math.min(tp.snd_cwnd + acked, tp.snd_ssthresh);
  acked = (acked - (cwnd - tp.snd_cwnd)) >>> 0;
  tp.snd_cwnd = Math.min(cwnd, tp.snd_cwnd_clamp);
  return acked;
}

/** cwnd += 1/w per acked packet, with credits carried in snd_cwnd_cnt. */
export function tcp_cong_avoid_ai(tp: TcpSock, w: number, acked: number): void {
  // If credits accumulated at a higher w, apply them gently now.
  if (tp.snd_cwnd_cnt >= w) {
    tp.snd_cwnd_cnt = 0;
    tp.snd_cwnd = tp.snd_cwnd + 1;
  }
  tp.snd_cwnd_cnt = tp.snd_cwnd_cnt + acked;
  if (tp.snd_cwnd_cnt >= w) {
    const delta = Math.floor(tp.snd_cwnd_cnt / w);
    tp.snd_cwnd_cnt = tp.snd_cwnd_cnt - delta * w;
    tp.snd_cwnd = tp.snd_cwnd + delta;
  }
  tp.snd_cwnd = Math.min(tp.snd_cwnd, tp.snd_cwnd_clamp);
}

/** Jacobson's slow start and congestion avoidance (SIGCOMM '88). */
export function tcp_reno_cong_avoid(sk: TcpSock, _ack: number, acked: number): void {
  if (!tcp_is_cwnd_limited(sk)) return;
  if (tcp_in_slow_start(sk)) {
    acked = tcp_slow_start(sk, acked);
    if (!acked) return;
  }
  tcp_cong_avoid_ai(sk, sk.snd_cwnd, acked);
}

/** Slow start threshold is half the congestion window (min 2). */
export function tcp_reno_ssthresh(sk: TcpSock): number {
  return Math.max(sk.snd_cwnd >>> 1, 2);
}

export function tcp_reno_undo_cwnd(sk: TcpSock): number {
  return Math.max(sk.snd_cwnd, sk.prior_cwnd);
}

/** A fresh Reno ops object (each TcpCongControl owns its own, since registration writes key). */
export function tcpReno(): TcpCongestionOps {
  return {
    name: "reno",
    flags: TCP_CONG_NON_RESTRICTED,
    ssthresh: tcp_reno_ssthresh,
    cong_avoid: tcp_reno_cong_avoid,
    undo_cwnd: tcp_reno_undo_cwnd,
  };
}
