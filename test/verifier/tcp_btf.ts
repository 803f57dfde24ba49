/**
 * A small kernel BTF with the TCP types struct_ops programs see (sock_common inside sock inside
 * inet_connection_sock inside tcp_sock, tcp_congestion_ops), and a StructOpsTable with the rules
 * of net/ipv4/bpf_tcp_ca.c, for testing the verifier alone.
 */
import type { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/builder.js";
import type { Insn } from "../../src/isa/insn.js";
import { bpf_prog_type } from "../../src/uapi/bpf.js";
import type { KfuncInfo, StructOpsInfo, VerifierEnv } from "../../src/verifier/env.js";
import { tcpCaGetFuncProto } from "../../src/verifier/helper_protos.js";

export interface TcpBtf {
  btf: Btf;
  ops: number;
  sock: number;
  tcpSock: number;
  /** Byte offsets of tcp_sock fields. */
  off: Record<string, number>;
  /** Member index by name (= expected_attach_type). */
  member: Record<string, number>;
  kfuncSlowStart: number;
  kfuncNotAllowed: number;
}

export function tcpBtf(): TcpBtf {
  const b = new BtfBuilder();
  const u8 = b.addInt("unsigned char", 1);
  const u32 = b.addInt("unsigned int", 4);
  const u64 = b.addInt("long long unsigned int", 8);
  const int = b.addInt("int", 4, 1);
  const char = b.addInt("char", 1, 2);
  const idx = b.addInt("__ARRAY_SIZE_TYPE__", 4);
  const sockCommon = b.addStructAuto("sock_common", [
    { name: "skc_daddr", type: u32 },
    { name: "skc_rcv_saddr", type: u32 },
  ]);
  const sock = b.addStructAuto("sock", [
    { name: "__sk_common", type: sockCommon },
    { name: "sk_pacing_rate", type: u64 },
    { name: "sk_pacing_status", type: u32 },
    { name: "sk_mark", type: u32 },
  ]);
  const sockPtr = b.addPtr(sock);
  const icsk = b.addStructAuto("inet_connection_sock", [
    { name: "icsk_inet", type: sock },
    { name: "icsk_ca_priv", type: b.addArray(u64, idx, 13) },
    { name: "icsk_retransmits", type: u8 },
  ]);
  const tcpSock = b.addStructAuto("tcp_sock", [
    { name: "inet_conn", type: icsk },
    { name: "snd_cwnd", type: u32 },
    { name: "snd_ssthresh", type: u32 },
    { name: "srtt_us", type: u32 },
    { name: "listener", type: sockPtr },
  ]);
  const rs = b.addStructAuto("rate_sample", [{ name: "delivered", type: int }]);
  const rsPtr = b.addPtr(rs);
  const fp = (ret: number, params: [string, number][]) =>
    b.addPtr(
      b.addFuncProto(
        ret,
        params.map(([name, type]) => ({ name, type })),
      ),
    );
  const ops = b.addStructAuto("tcp_congestion_ops", [
    { name: "ssthresh", type: fp(u32, [["sk", sockPtr]]) },
    {
      name: "cong_avoid",
      type: fp(0, [
        ["sk", sockPtr],
        ["ack", u32],
        ["acked", u32],
      ]),
    },
    {
      name: "cong_control",
      type: fp(0, [
        ["sk", sockPtr],
        ["ack", u32],
        ["flag", int],
        ["rs", rsPtr],
      ]),
    },
    { name: "undo_cwnd", type: fp(u32, [["sk", sockPtr]]) },
    {
      name: "get_info",
      type: fp(u64, [
        ["sk", sockPtr],
        ["ext", u32],
      ]),
    },
    { name: "name", type: b.addArray(char, idx, 16) },
    { name: "init", type: fp(0, [["sk", sockPtr]]) },
    { name: "release", type: fp(0, [["sk", sockPtr]]) },
  ]);
  const tcpSockPtr = b.addPtr(tcpSock);
  const slowStart = b.addFunc(
    "tcp_slow_start",
    b.addFuncProto(u32, [
      { name: "tp", type: tcpSockPtr },
      { name: "acked", type: u32 },
    ]),
  );
  const notAllowed = b.addFunc("bpf_obj_new_impl", b.addFuncProto(u64, [{ name: "x", type: u64 }]));
  const btf = b.toBtf();
  const t = btf.typeById(tcpSock);
  const off: Record<string, number> = {};
  if (t.kind === 4) for (const m of t.members) off[m.name] = m.bitOffset / 8;
  off.sk_pacing_rate = 8;
  off.icsk_ca_priv = 32;
  const o = btf.typeById(ops);
  const member: Record<string, number> = {};
  if (o.kind === 4) for (const [i, m] of o.members.entries()) member[m.name] = i;
  return { btf, ops, sock, tcpSock, off, member, kfuncSlowStart: slowStart, kfuncNotAllowed: notAllowed };
}

/** bpf_tcp_ca's verifier side, as the TCP subsystem registers it. */
export function tcpStructOps(t: TcpBtf, opts: { sleepableOk?: boolean } = {}): StructOpsInfo {
  const o = t.btf.typeById(t.ops);
  if (o.kind !== 4) throw new Error("tcp_congestion_ops");
  const writable: [number, number][] = [
    [t.off.sk_pacing_rate, 8],
    [t.off.snd_cwnd, 4],
    [t.off.snd_ssthresh, 4],
  ];
  return {
    name: "tcp_congestion_ops",
    typeId: t.ops,
    type: o,
    members: o.members,
    isSupported: (idx) => o.members[idx]?.name !== "get_info",
    checkMember: opts.sleepableOk ? undefined : (_idx, prog) => (prog.sleepable ? undefined : undefined),
    argMayBeNull: (idx, arg) => o.members[idx]?.name === "cong_control" && arg === 3,
    ctxArgBtfId: (id) => (id === t.sock ? t.tcpSock : id),
    btfStructAccess(btfId, off, size) {
      if (btfId !== t.tcpSock) return "only read is supported";
      const ok =
        writable.some(([s, n]) => off === s && off + size <= s + n) ||
        (off >= t.off.icsk_ca_priv && off + size <= t.off.icsk_ca_priv + 104);
      return ok ? undefined : `no write support to tcp_sock at off ${off}`;
    },
    getFuncProto: (funcId, memberIdx) => tcpCaGetFuncProto(funcId, o.members[memberIdx]?.name ?? "", true),
  };
}

export function structOpsEnv(
  t: TcpBtf,
  member: string,
  insns: Insn[],
  extra: Partial<VerifierEnv> = {},
  info: StructOpsInfo = tcpStructOps(t),
): VerifierEnv {
  const kfuncs = new Map<number, KfuncInfo>([[t.kfuncSlowStart, { name: "tcp_slow_start", btfId: t.kfuncSlowStart }]]);
  return {
    insns,
    progType: bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS,
    attachBtfId: t.ops,
    expectedAttachType: t.member[member] ?? 99,
    gpl: true,
    privileged: true,
    logLevel: 2,
    btf: t.btf,
    kfuncs,
    structOps: { findStructOps: (id) => (id === t.ops ? info : undefined) },
    ...extra,
  };
}
