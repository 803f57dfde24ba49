/** Shared test fixtures: a spy congestion control that records every op call. */
import type { TcpCongestionOps } from "../../../src/subsys/tcp/tcp_cong.js";
import type { AckSample, TcpSock } from "../../../src/subsys/tcp/tcp_sock.js";

export interface SpyCall {
  op: string;
  arg?: number;
  sk: string;
}

/** Wrap `inner` so each op call is appended to `calls` (then forwarded). */
export function spyCc(inner: TcpCongestionOps, calls: SpyCall[], name = inner.name): TcpCongestionOps {
  return {
    name,
    flags: inner.flags,
    init(sk: TcpSock) {
      calls.push({ op: "init", sk: sk.name });
      inner.init?.(sk);
    },
    release(sk: TcpSock) {
      calls.push({ op: "release", sk: sk.name });
      inner.release?.(sk);
    },
    ssthresh(sk: TcpSock) {
      calls.push({ op: "ssthresh", sk: sk.name });
      return inner.ssthresh!(sk);
    },
    cong_avoid(sk: TcpSock, ack: number, acked: number) {
      calls.push({ op: "cong_avoid", arg: acked, sk: sk.name });
      inner.cong_avoid!(sk, ack, acked);
    },
    set_state(sk: TcpSock, s: number) {
      calls.push({ op: "set_state", arg: s, sk: sk.name });
      inner.set_state?.(sk, s);
    },
    cwnd_event(sk: TcpSock, ev: number) {
      calls.push({ op: "cwnd_event", arg: ev, sk: sk.name });
      inner.cwnd_event?.(sk, ev);
    },
    in_ack_event(sk: TcpSock, flags: number) {
      calls.push({ op: "in_ack_event", arg: flags, sk: sk.name });
      inner.in_ack_event?.(sk, flags);
    },
    pkts_acked(sk: TcpSock, s: AckSample) {
      calls.push({ op: "pkts_acked", arg: s.rtt_us, sk: sk.name });
      inner.pkts_acked?.(sk, s);
    },
    undo_cwnd(sk: TcpSock) {
      calls.push({ op: "undo_cwnd", sk: sk.name });
      return inner.undo_cwnd!(sk);
    },
  };
}

export const count = (calls: SpyCall[], op: string, arg?: number): number =>
  calls.filter((c) => c.op === op && (arg === undefined || c.arg === arg)).length;
