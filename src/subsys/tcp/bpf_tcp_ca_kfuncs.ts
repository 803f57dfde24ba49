/**
 * What TCP gives BPF congestion controls to call (net/ipv4/bpf_tcp_ca.c, tcp_cong.c, tcp_cubic.c,
 * net/core/filter.c): the kfuncs tcp_slow_start, tcp_cong_avoid_ai, tcp_reno_{ssthresh,cong_avoid,
 * undo_cwnd} and cubictcp_*, and the helpers bpf_tcp_send_ack and bpf_{set,get}sockopt with
 * TCP_CONGESTION. Each takes a `struct sock *` / `struct tcp_sock *` address and finds the TcpSock there.
 */
import type { HelperArgs, Kernel } from "../../kernel/kernel.js";
import { bpf_func_id } from "../../uapi/bpf.js";
import { BpfError, EBUSY, EINVAL, ENOTSUPP } from "../../uapi/errno.js";
import { TCP_CA_NAME_MAX } from "./btf.js";
import type { TcpCongControl, TcpCongestionOps } from "./tcp_cong.js";
import { tcpCubic } from "./tcp_cubic.js";
import {
  tcp_cong_avoid_ai,
  tcp_reno_cong_avoid,
  tcp_reno_ssthresh,
  tcp_reno_undo_cwnd,
  tcp_slow_start,
} from "./tcp_reno.js";
import type { AckSample, TcpSock } from "./tcp_sock.js";

export const SOL_TCP = 6;
export const TCP_CONGESTION = 13;

/** Where the kfuncs find sockets and the registry: the TCP stack of one kernel. */
export interface TcpBpfContext {
  cong: TcpCongControl;
  sockByAddr(addr: number): TcpSock | undefined;
  /** ack_sample structs by address (pkts_acked's argument). */
  ackSampleByAddr?(addr: number): AckSample | undefined;
  /** bpf_tcp_send_ack: ask the stack to send an ACK now. */
  sendAck?(sk: TcpSock, rcv_nxt: number): void;
}

type Fn = (c: HelperArgs, k: Kernel) => number;

function skArg(ctx: TcpBpfContext, c: HelperArgs, i: number): TcpSock {
  const sk = ctx.sockByAddr(c.argNum(i));
  // The verifier guarantees a trusted tcp_sock pointer; reaching here without one is a kernel bug.
  if (!sk) throw new BpfError(EINVAL, `no tcp_sock at 0x${c.argNum(i).toString(16)}`);
  return sk;
}

const u32 = (c: HelperArgs, i: number) => Number(c.arg(i) & 0xffffffffn);

/** The kfunc implementations by name (BTF FUNCs declared in btf.ts TCP_KFUNC_PROTOS). */
export function tcpKfuncs(ctx: TcpBpfContext): Map<string, Fn> {
  const cubic: TcpCongestionOps = tcpCubic();
  const m = new Map<string, Fn>();
  m.set("tcp_slow_start", (c) => tcp_slow_start(skArg(ctx, c, 1), u32(c, 2)));
  m.set("tcp_cong_avoid_ai", (c) => {
    tcp_cong_avoid_ai(skArg(ctx, c, 1), u32(c, 2), u32(c, 3));
    return 0;
  });
  m.set("tcp_reno_ssthresh", (c) => tcp_reno_ssthresh(skArg(ctx, c, 1)));
  m.set("tcp_reno_cong_avoid", (c) => {
    tcp_reno_cong_avoid(skArg(ctx, c, 1), u32(c, 2), u32(c, 3));
    return 0;
  });
  m.set("tcp_reno_undo_cwnd", (c) => tcp_reno_undo_cwnd(skArg(ctx, c, 1)));
  m.set("cubictcp_init", (c) => {
    cubic.init!(skArg(ctx, c, 1));
    return 0;
  });
  m.set("cubictcp_recalc_ssthresh", (c) => cubic.ssthresh!(skArg(ctx, c, 1)));
  m.set("cubictcp_cong_avoid", (c) => {
    cubic.cong_avoid!(skArg(ctx, c, 1), u32(c, 2), u32(c, 3));
    return 0;
  });
  m.set("cubictcp_state", (c) => {
    cubic.set_state!(skArg(ctx, c, 1), u32(c, 2) & 0xff);
    return 0;
  });
  m.set("cubictcp_cwnd_event", (c) => {
    cubic.cwnd_event!(skArg(ctx, c, 1), u32(c, 2));
    return 0;
  });
  m.set("cubictcp_acked", (c) => {
    const s = ctx.ackSampleByAddr?.(c.argNum(2));
    if (s) cubic.pkts_acked!(skArg(ctx, c, 1), s);
    return 0;
  });
  return m;
}

/** A C string of at most `len` bytes (stops at NUL). */
function cstr(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return new TextDecoder().decode(nul >= 0 ? bytes.subarray(0, nul) : bytes);
}

/** Sockets in the middle of a bpf_setsockopt(TCP_CONGESTION) (tp->bpf_chg_cc_inprogress). */
const chgCcInProgress = new WeakSet<TcpSock>();

/**
 * sol_tcp_sockopt_congestion (net/core/filter.c): "cdg" is refused (it keeps a pointer in icsk_ca_priv),
 * and a second TCP_CONGESTION from the init the first one triggered is EBUSY, which breaks
 * .init -> setsockopt -> .init loops.
 */
export function bpf_setsockopt_congestion(ctx: TcpBpfContext, sk: TcpSock, optval: Uint8Array): number {
  const n = Math.min(optval.length, TCP_CA_NAME_MAX - 1);
  const name = cstr(optval.subarray(0, n));
  if (optval.length >= 3 && cstr(optval) === "cdg") return -ENOTSUPP;
  if (chgCcInProgress.has(sk)) return -EBUSY;
  chgCcInProgress.add(sk);
  try {
    ctx.cong.tcp_set_congestion_control(sk, name, false, true);
    return 0;
  } catch (e) {
    return e instanceof BpfError ? -e.errno : -EINVAL;
  } finally {
    chgCcInProgress.delete(sk);
  }
}

/** Register the kfuncs and the helpers bpf_tcp_ca programs may call. */
export function registerTcpBpf(k: Kernel, ctx: TcpBpfContext): void {
  for (const [name, fn] of tcpKfuncs(ctx)) k.registerKfunc(name, undefined, fn);
  k.registerHelper(bpf_func_id.BPF_FUNC_tcp_send_ack, (c) => {
    ctx.sendAck?.(skArg(ctx, c, 1), u32(c, 2));
    return 0;
  });
  k.registerHelper(bpf_func_id.BPF_FUNC_setsockopt, (c) => {
    const sk = ctx.sockByAddr(c.argNum(1));
    if (!sk) return -EINVAL;
    const level = Number(BigInt.asIntN(32, c.arg(2)));
    const optname = Number(BigInt.asIntN(32, c.arg(3)));
    const optlen = Number(BigInt.asIntN(32, c.arg(5)));
    if (level !== SOL_TCP || optname !== TCP_CONGESTION) return -EINVAL;
    if (optlen <= 0) return -EINVAL;
    return bpf_setsockopt_congestion(ctx, sk, k.mem.bytes(c.argNum(4), optlen));
  });
  k.registerHelper(bpf_func_id.BPF_FUNC_getsockopt, (c) => {
    const sk = ctx.sockByAddr(c.argNum(1));
    const optlen = Number(BigInt.asIntN(32, c.arg(5)));
    const out = optlen > 0 ? k.mem.bytes(c.argNum(4), optlen) : new Uint8Array(0);
    const level = Number(BigInt.asIntN(32, c.arg(2)));
    const optname = Number(BigInt.asIntN(32, c.arg(3)));
    if (!sk || level !== SOL_TCP || optname !== TCP_CONGESTION || optlen <= 0) {
      out.fill(0); // the helper zeroes optval on failure
      return -EINVAL;
    }
    out.fill(0);
    const name = new TextEncoder().encode(sk.icsk_ca_ops.name).subarray(0, Math.min(optlen, TCP_CA_NAME_MAX) - 1);
    out.set(name);
    return 0;
  });
}
