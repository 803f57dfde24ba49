/**
 * include/net/tcp_states.h: the socket states and their TCPF_* bits, anonymous enums of every
 * vmlinux BTF whatever protocols a kernel runs (BPF programs test `skc_state` against them: a
 * qdisc classifying listeners, a CA, an iterator).
 */
import type { BtfBuilder } from "../btf/builder.js";

const TCP_STATES = [
  "ESTABLISHED",
  "SYN_SENT",
  "SYN_RECV",
  "FIN_WAIT1",
  "FIN_WAIT2",
  "TIME_WAIT",
  "CLOSE",
  "CLOSE_WAIT",
  "LAST_ACK",
  "LISTEN",
  "CLOSING",
  "NEW_SYN_RECV",
  "BOUND_INACTIVE",
] as const;

export function declareTcpStates(b: BtfBuilder): void {
  b.addEnum("", 4, [
    ...TCP_STATES.map((s, i) => ({ name: `TCP_${s}`, val: i + 1 })),
    { name: "TCP_MAX_STATES", val: TCP_STATES.length + 1 },
  ]);
  b.addEnum(
    "",
    4,
    TCP_STATES.map((s, i) => ({ name: `TCPF_${s}`, val: 1 << (i + 1) })),
  );
}
