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
import { tcpBbr } from "./tcp_bbr.js";
import type { TcpCongControl, TcpCongestionOps } from "./tcp_cong.js";
import { tcpCubic } from "./tcp_cubic.js";
import { tcpDctcp } from "./tcp_dctcp.js";
import {
  tcp_cong_avoid_ai,
  tcp_reno_cong_avoid,
  tcp_reno_ssthresh,
  tcp_reno_undo_cwnd,
  tcp_slow_start,
} from "./tcp_reno.js";
import type { AckSample, RateSample, TcpSock } from "./tcp_sock.js";

export const SOL_TCP = 6;
export const TCP_CONGESTION = 13;

/** Where the kfuncs find sockets and the registry: the TCP stack of one kernel. */
export interface TcpBpfContext {
  cong: TcpCongControl;
  sockByAddr(addr: number): TcpSock | undefined;
  /** ack_sample structs by address (pkts_acked's argument). */
  ackSampleByAddr?(addr: number): AckSample | undefined;
  /** rate_sample structs by address (cong_control's argument). */
  rateSampleByAddr?(addr: number): RateSample | undefined;
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

// The low half without a BigInt per argument: these run on every ACK.
const u32 = (c: HelperArgs, i: number) => (c.argLo ? c.argLo(i) : Number(c.arg(i) & 0xffffffffn));

const u8 = (c: HelperArgs, i: number) => u32(c, i) & 0xff;

/**
 * The kfunc sets TCP registers for BPF_PROG_TYPE_STRUCT_OPS, by name (BTF FUNCs declared in btf.ts
 * TCP_KFUNC_PROTOS), each as the kernel file that registers it: bpf_tcp_ca.c's
 * bpf_tcp_ca_check_kfunc_ids, tcp_cubic.c's, tcp_bbr.c's and tcp_dctcp.c's check_kfunc_ids.
 */
export function tcpKfuncSets(ctx: TcpBpfContext): Map<string, Map<string, Fn>> {
  const sk = (c: HelperArgs) => skArg(ctx, c, 1);
  const v =
    (f: (c: HelperArgs) => void): Fn =>
    (c) => {
      f(c);
      return 0;
    };
  const bpf_tcp_ca = new Map<string, Fn>([
    ["tcp_reno_ssthresh", (c) => tcp_reno_ssthresh(sk(c))],
    ["tcp_reno_cong_avoid", v((c) => tcp_reno_cong_avoid(sk(c), u32(c, 2), u32(c, 3)))],
    ["tcp_reno_undo_cwnd", (c) => tcp_reno_undo_cwnd(sk(c))],
    ["tcp_slow_start", (c) => tcp_slow_start(sk(c), u32(c, 2))],
    ["tcp_cong_avoid_ai", v((c) => tcp_cong_avoid_ai(sk(c), u32(c, 2), u32(c, 3)))],
  ]);
  const cubic: TcpCongestionOps = tcpCubic();
  const tcp_cubic = new Map<string, Fn>([
    ["cubictcp_init", v((c) => cubic.init!(sk(c)))],
    ["cubictcp_recalc_ssthresh", (c) => cubic.ssthresh!(sk(c))],
    ["cubictcp_cong_avoid", v((c) => cubic.cong_avoid!(sk(c), u32(c, 2), u32(c, 3)))],
    ["cubictcp_state", v((c) => cubic.set_state!(sk(c), u8(c, 2)))],
    ["cubictcp_cwnd_event", v((c) => cubic.cwnd_event!(sk(c), u32(c, 2)))],
    [
      "cubictcp_acked",
      v((c) => {
        const s = ctx.ackSampleByAddr?.(c.argNum(2));
        if (s) cubic.pkts_acked!(sk(c), s);
      }),
    ],
  ]);
  const bbr = tcpBbr();
  const tcp_bbr = new Map<string, Fn>([
    ["bbr_init", v((c) => bbr.init!(sk(c)))],
    [
      "bbr_main",
      v((c) => {
        const rs = ctx.rateSampleByAddr?.(c.argNum(4));
        if (rs) bbr.cong_control!(sk(c), u32(c, 2), Number(BigInt.asIntN(32, c.arg(3))), rs);
      }),
    ],
    ["bbr_sndbuf_expand", (c) => bbr.sndbuf_expand!(sk(c))],
    ["bbr_undo_cwnd", (c) => bbr.undo_cwnd!(sk(c))],
    ["bbr_cwnd_event", v((c) => bbr.cwnd_event!(sk(c), u32(c, 2)))],
    ["bbr_ssthresh", (c) => bbr.ssthresh!(sk(c))],
    ["bbr_min_tso_segs", (c) => bbr.min_tso_segs!(sk(c))],
    ["bbr_set_state", v((c) => bbr.set_state!(sk(c), u8(c, 2)))],
  ]);
  const dctcp = tcpDctcp({ sendAck: (s, rcv_nxt) => ctx.sendAck?.(s, rcv_nxt) });
  const tcp_dctcp = new Map<string, Fn>([
    ["dctcp_init", v((c) => dctcp.init!(sk(c)))],
    ["dctcp_update_alpha", v((c) => dctcp.in_ack_event!(sk(c), u32(c, 2)))],
    ["dctcp_cwnd_event", v((c) => dctcp.cwnd_event!(sk(c), u32(c, 2)))],
    ["dctcp_ssthresh", (c) => dctcp.ssthresh!(sk(c))],
    ["dctcp_cwnd_undo", (c) => dctcp.undo_cwnd!(sk(c))],
    ["dctcp_state", v((c) => dctcp.set_state!(sk(c), u8(c, 2)))],
  ]);
  return new Map([
    ["bpf_tcp_ca", bpf_tcp_ca],
    ["tcp_cubic", tcp_cubic],
    ["tcp_bbr", tcp_bbr],
    ["tcp_dctcp", tcp_dctcp],
  ]);
}

/** Every TCP kfunc by name. */
export function tcpKfuncs(ctx: TcpBpfContext): Map<string, Fn> {
  const m = new Map<string, Fn>();
  for (const set of tcpKfuncSets(ctx).values()) for (const [name, fn] of set) m.set(name, fn);
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
