/**
 * The simulated kernel's TCP types: struct sock_common, sock, inet_sock, inet_connection_sock, tcp_sock,
 * ack_sample, rate_sample, tcp_congestion_ops and the tcp_ca_state / tcp_ca_event enums.
 *
 * Member names and C types follow Linux (include/net/{sock,inet_connection_sock,tcp}.h, include/linux/tcp.h),
 * but the layouts are deliberately not the host kernel's: fewer members and a different order. A BPF
 * congestion control compiled against the host's vmlinux.h therefore only works through CO-RE relocations.
 *
 * The description below is the single source of truth: `layoutTcpTypes()` computes the C (x86-64) layout
 * that the TypeScript accessors use, and `declareTcpTypes()` emits the same structs as BTF.
 */
import type { BtfBuilder } from "../../btf/builder.js";
import {
  BTF_FUNC_GLOBAL,
  BTF_INT_BOOL,
  BTF_INT_CHAR,
  BTF_INT_SIGNED,
  BTF_KIND_INT,
  BTF_KIND_STRUCT,
  BTF_KIND_TYPEDEF,
} from "../../uapi/btf.js";

/** A C member: `type` is a C spelling ("u32", "unsigned long", "struct sock *", "u64[13]", "char[16]"). */
export interface CMember {
  name: string;
  type: string;
  /** Bitfield width in bits. */
  bits?: number;
}

/** A function-pointer member of an ops struct: `ret (*name)(params...)`. */
export interface CFuncPtrMember {
  name: string;
  fn: { ret: string; params: { name: string; type: string }[] };
}

export interface CStruct {
  name: string;
  kind: "struct" | "union";
  members: (CMember | CFuncPtrMember)[];
  /** Extra alignment of the whole struct (`____cacheline_aligned_in_smp`). */
  align?: number;
  /** Anonymous in Linux (named here only so the description can refer to it): emitted nameless in BTF. */
  anonymous?: boolean;
}

export interface CEnum {
  name: string;
  values: [string, number][];
}

export const ICSK_CA_PRIV_SIZE = 13 * 8;
export const TCP_CA_NAME_MAX = 16;

/** enum tcp_ca_state */
export const TCP_CA_Open = 0;
export const TCP_CA_Disorder = 1;
export const TCP_CA_CWR = 2;
export const TCP_CA_Recovery = 3;
export const TCP_CA_Loss = 4;

/** enum tcp_ca_event */
export const CA_EVENT_TX_START = 0;
export const CA_EVENT_CWND_RESTART = 1;
export const CA_EVENT_COMPLETE_CWR = 2;
export const CA_EVENT_LOSS = 3;
export const CA_EVENT_ECN_NO_CE = 4;
export const CA_EVENT_ECN_IS_CE = 5;

/** enum tcp_ca_ack_event_flags (in_ack_event) */
export const CA_ACK_SLOWPATH = 1 << 0;
export const CA_ACK_WIN_UPDATE = 1 << 1;
export const CA_ACK_ECE = 1 << 2;

/** tcp_congestion_ops.flags */
export const TCP_CONG_NON_RESTRICTED = 0x1;
export const TCP_CONG_NEEDS_ECN = 0x2;
export const TCP_CONG_MASK = TCP_CONG_NON_RESTRICTED | TCP_CONG_NEEDS_ECN;

/** enum sk_pacing */
export const SK_PACING_NONE = 0;
export const SK_PACING_NEEDED = 1;
export const SK_PACING_FQ = 2;

/** tp->ecn_flags */
export const TCP_ECN_OK = 1;
export const TCP_ECN_QUEUE_CWR = 2;
export const TCP_ECN_DEMAND_CWR = 4;
export const TCP_ECN_SEEN = 8;

/** inet_connection_sock icsk_ack.pending bits */
export const ICSK_ACK_SCHED = 1;
export const ICSK_ACK_TIMER = 2;
export const ICSK_ACK_PUSHED = 4;
export const ICSK_ACK_PUSHED2 = 8;
export const ICSK_ACK_NOW = 0x10;
export const ICSK_ACK_NOMEM = 0x20;

/** include/uapi/linux/inet_diag.h attribute numbers get_info answers for. */
export const INET_DIAG_VEGASINFO = 3;
export const INET_DIAG_DCTCPINFO = 9;
export const INET_DIAG_BBRINFO = 16;

/** sk_state values used here (include/net/tcp_states.h) */
export const TCP_ESTABLISHED = 1;
export const TCP_FIN_WAIT1 = 4;
export const TCP_FIN_WAIT2 = 5;
export const TCP_TIME_WAIT = 6;
export const TCP_CLOSE = 7;
export const TCP_CLOSE_WAIT = 8;
export const TCP_LAST_ACK = 9;
export const TCP_LISTEN = 10;
export const TCP_CLOSING = 11;

export const TCP_ENUMS: CEnum[] = [
  {
    name: "tcp_ca_state",
    values: [
      ["TCP_CA_Open", TCP_CA_Open],
      ["TCP_CA_Disorder", TCP_CA_Disorder],
      ["TCP_CA_CWR", TCP_CA_CWR],
      ["TCP_CA_Recovery", TCP_CA_Recovery],
      ["TCP_CA_Loss", TCP_CA_Loss],
    ],
  },
  {
    name: "tcp_ca_event",
    values: [
      ["CA_EVENT_TX_START", CA_EVENT_TX_START],
      ["CA_EVENT_CWND_RESTART", CA_EVENT_CWND_RESTART],
      ["CA_EVENT_COMPLETE_CWR", CA_EVENT_COMPLETE_CWR],
      ["CA_EVENT_LOSS", CA_EVENT_LOSS],
      ["CA_EVENT_ECN_NO_CE", CA_EVENT_ECN_NO_CE],
      ["CA_EVENT_ECN_IS_CE", CA_EVENT_ECN_IS_CE],
    ],
  },
  {
    // Real congestion controls test icsk_ack.pending against these (DCTCP: ICSK_ACK_TIMER, ICSK_ACK_NOW).
    name: "inet_csk_ack_state_t",
    values: [
      ["ICSK_ACK_SCHED", ICSK_ACK_SCHED],
      ["ICSK_ACK_TIMER", ICSK_ACK_TIMER],
      ["ICSK_ACK_PUSHED", ICSK_ACK_PUSHED],
      ["ICSK_ACK_PUSHED2", ICSK_ACK_PUSHED2],
      ["ICSK_ACK_NOW", ICSK_ACK_NOW],
      ["ICSK_ACK_NOMEM", ICSK_ACK_NOMEM],
    ],
  },
  {
    // include/uapi/linux/inet_diag.h: get_info's `ext` bits are 1 << (INET_DIAG_* - 1).
    name: "inet_diag_attr",
    values: [
      ["INET_DIAG_NONE", 0],
      ["INET_DIAG_MEMINFO", 1],
      ["INET_DIAG_INFO", 2],
      ["INET_DIAG_VEGASINFO", INET_DIAG_VEGASINFO],
      ["INET_DIAG_CONG", 4],
      ["INET_DIAG_TOS", 5],
      ["INET_DIAG_TCLASS", 6],
      ["INET_DIAG_SKMEMINFO", 7],
      ["INET_DIAG_SHUTDOWN", 8],
      ["INET_DIAG_DCTCPINFO", INET_DIAG_DCTCPINFO],
      ["INET_DIAG_PROTOCOL", 10],
      ["INET_DIAG_SKV6ONLY", 11],
      ["INET_DIAG_LOCALS", 12],
      ["INET_DIAG_PEERS", 13],
      ["INET_DIAG_PAD", 14],
      ["INET_DIAG_MARK", 15],
      ["INET_DIAG_BBRINFO", INET_DIAG_BBRINFO],
    ],
  },
  {
    name: "sk_pacing",
    values: [
      ["SK_PACING_NONE", SK_PACING_NONE],
      ["SK_PACING_NEEDED", SK_PACING_NEEDED],
      ["SK_PACING_FQ", SK_PACING_FQ],
    ],
  },
];

const SK = "struct sock *";

export const TCP_STRUCTS: CStruct[] = [
  {
    name: "list_head",
    kind: "struct",
    members: [
      { name: "next", type: "struct list_head *" },
      { name: "prev", type: "struct list_head *" },
    ],
  },
  {
    name: "minmax_sample",
    kind: "struct",
    members: [
      { name: "t", type: "u32" },
      { name: "v", type: "u32" },
    ],
  },
  {
    // include/linux/win_minmax.h: BBR keeps its bandwidth filter in one, tcp_sock its min RTT.
    name: "minmax",
    kind: "struct",
    members: [{ name: "s", type: "struct minmax_sample[3]" }],
  },
  {
    name: "sock_common",
    kind: "struct",
    members: [
      { name: "skc_daddr", type: "__be32" },
      { name: "skc_rcv_saddr", type: "__be32" },
      { name: "skc_dport", type: "__be16" },
      { name: "skc_num", type: "__u16" },
      { name: "skc_family", type: "unsigned short" },
      { name: "skc_state", type: "unsigned char" },
      { name: "skc_reuse", type: "unsigned char", bits: 4 },
      { name: "skc_reuseport", type: "unsigned char", bits: 1 },
      { name: "skc_hash", type: "unsigned int" },
    ],
  },
  {
    name: "sock",
    kind: "struct",
    members: [
      { name: "__sk_common", type: "struct sock_common" },
      { name: "sk_rcvbuf", type: "int" },
      { name: "sk_sndbuf", type: "int" },
      { name: "sk_pacing_status", type: "u32" },
      { name: "sk_gso_max_size", type: "unsigned int" },
      { name: "sk_pacing_rate", type: "unsigned long" },
      { name: "sk_max_pacing_rate", type: "unsigned long" },
      { name: "sk_pacing_shift", type: "u8" },
      { name: "sk_gso_max_segs", type: "u16" },
      { name: "sk_mark", type: "u32" },
      { name: "sk_protocol", type: "u16" },
    ],
  },
  {
    name: "inet_sock",
    kind: "struct",
    members: [
      { name: "sk", type: "struct sock" },
      { name: "inet_saddr", type: "__be32" },
      { name: "inet_sport", type: "__be16" },
      { name: "tos", type: "__u8" },
      { name: "min_ttl", type: "__u8" },
    ],
  },
  {
    name: "icsk_ack",
    kind: "struct",
    anonymous: true,
    members: [
      { name: "pending", type: "__u8" },
      { name: "quick", type: "__u8" },
      { name: "pingpong", type: "__u8" },
      { name: "retry", type: "__u8" },
      { name: "ato", type: "__u32" },
      { name: "lrcvtime", type: "__u32" },
      { name: "last_seg_size", type: "__u16" },
      { name: "rcv_mss", type: "__u16" },
      { name: "timeout", type: "unsigned long" },
    ],
  },
  {
    name: "inet_connection_sock",
    kind: "struct",
    members: [
      { name: "icsk_inet", type: "struct inet_sock" },
      { name: "icsk_timeout", type: "unsigned long" },
      { name: "icsk_rto", type: "__u32" },
      { name: "icsk_rto_min", type: "__u32" },
      { name: "icsk_pmtu_cookie", type: "__u32" },
      { name: "icsk_ca_ops", type: "const struct tcp_congestion_ops *" },
      { name: "icsk_ca_state", type: "__u8", bits: 5 },
      { name: "icsk_ca_initialized", type: "__u8", bits: 1 },
      { name: "icsk_ca_setsockopt", type: "__u8", bits: 1 },
      { name: "icsk_ca_dst_locked", type: "__u8", bits: 1 },
      { name: "icsk_retransmits", type: "__u8" },
      { name: "icsk_pending", type: "__u8" },
      { name: "icsk_backoff", type: "__u8" },
      { name: "icsk_probes_out", type: "__u8" },
      // An anonymous struct, as in Linux: CO-RE resolves icsk_ack.pending by member names.
      { name: "icsk_ack", type: "struct icsk_ack" },
      { name: "icsk_ca_priv", type: "u64[13]" },
    ],
  },
  {
    name: "tcp_sock",
    kind: "struct",
    members: [
      { name: "inet_conn", type: "struct inet_connection_sock" },
      // Send side, roughly in the order the ACK path touches them (Linux orders by cache line groups).
      { name: "snd_cwnd", type: "u32" },
      { name: "snd_ssthresh", type: "u32" },
      { name: "snd_una", type: "u32" },
      { name: "snd_nxt", type: "u32" },
      { name: "packets_out", type: "u32" },
      { name: "sacked_out", type: "u32" },
      { name: "lost_out", type: "u32" },
      { name: "retrans_out", type: "u32" },
      { name: "snd_cwnd_cnt", type: "u32" },
      { name: "snd_cwnd_clamp", type: "u32" },
      { name: "snd_cwnd_used", type: "u32" },
      { name: "snd_cwnd_stamp", type: "u32" },
      { name: "prior_cwnd", type: "u32" },
      { name: "prior_ssthresh", type: "u32" },
      { name: "high_seq", type: "u32" },
      { name: "undo_marker", type: "u32" },
      { name: "undo_retrans", type: "int" },
      { name: "retrans_stamp", type: "u32" },
      { name: "prr_delivered", type: "u32" },
      { name: "prr_out", type: "u32" },
      { name: "reordering", type: "u32" },
      { name: "mss_cache", type: "u32" },
      { name: "srtt_us", type: "u32" },
      { name: "mdev_us", type: "u32" },
      { name: "mdev_max_us", type: "u32" },
      { name: "rttvar_us", type: "u32" },
      { name: "rtt_seq", type: "u32" },
      { name: "tcp_mstamp", type: "u64" },
      { name: "lsndtime", type: "u32" },
      { name: "max_packets_out", type: "u32" },
      { name: "cwnd_usage_seq", type: "u32" },
      { name: "chrono_type", type: "u8", bits: 2 },
      { name: "repair", type: "u8", bits: 1 },
      { name: "tcp_usec_ts", type: "u8", bits: 1 },
      { name: "is_sack_reneg", type: "u8", bits: 1 },
      { name: "is_cwnd_limited", type: "u8", bits: 1 },
      { name: "ecn_flags", type: "u8" },
      { name: "delivered", type: "u32" },
      { name: "delivered_ce", type: "u32" },
      { name: "lost", type: "u32" },
      { name: "app_limited", type: "u32" },
      { name: "first_tx_mstamp", type: "u64" },
      { name: "delivered_mstamp", type: "u64" },
      { name: "rate_delivered", type: "u32" },
      { name: "rate_interval_us", type: "u32" },
      { name: "rcv_nxt", type: "u32" },
      { name: "rcv_wnd", type: "u32" },
      { name: "snd_wnd", type: "u32" },
      { name: "write_seq", type: "u32" },
      { name: "bytes_acked", type: "u64" },
      { name: "bytes_received", type: "u64" },
      { name: "segs_out", type: "u32" },
      { name: "data_segs_out", type: "u32" },
      { name: "total_retrans", type: "u32" },
      { name: "rcv_tstamp", type: "u32" },
      // Appended so the members above keep their offsets: pacing's departure clock (EDT), the
      // transmit-time clock, and the windowed min RTT (tcp_min_rtt) that BBR starts from.
      { name: "tcp_wstamp_ns", type: "u64" },
      { name: "tcp_clock_cache", type: "u64" },
      { name: "rtt_min", type: "struct minmax" },
    ],
  },
  {
    name: "ack_sample",
    kind: "struct",
    members: [
      { name: "pkts_acked", type: "u32" },
      { name: "rtt_us", type: "s32" },
      { name: "in_flight", type: "u32" },
    ],
  },
  {
    name: "rate_sample",
    kind: "struct",
    members: [
      { name: "prior_mstamp", type: "u64" },
      { name: "prior_delivered", type: "u32" },
      { name: "prior_delivered_ce", type: "u32" },
      { name: "delivered", type: "s32" },
      { name: "delivered_ce", type: "s32" },
      { name: "interval_us", type: "long" },
      { name: "snd_interval_us", type: "u32" },
      { name: "rcv_interval_us", type: "u32" },
      { name: "rtt_us", type: "long" },
      { name: "losses", type: "int" },
      { name: "acked_sacked", type: "u32" },
      { name: "prior_in_flight", type: "u32" },
      { name: "last_end_seq", type: "u32" },
      { name: "is_app_limited", type: "bool" },
      { name: "is_retrans", type: "bool" },
      { name: "is_ack_delayed", type: "bool" },
    ],
  },
  {
    // include/uapi/linux/inet_diag.h: what get_info fills, one member per CA family.
    name: "tcpvegas_info",
    kind: "struct",
    members: [
      { name: "tcpv_enabled", type: "__u32" },
      { name: "tcpv_rttcnt", type: "__u32" },
      { name: "tcpv_rtt", type: "__u32" },
      { name: "tcpv_minrtt", type: "__u32" },
    ],
  },
  {
    name: "tcp_dctcp_info",
    kind: "struct",
    members: [
      { name: "dctcp_enabled", type: "__u16" },
      { name: "dctcp_ce_state", type: "__u16" },
      { name: "dctcp_alpha", type: "__u32" },
      { name: "dctcp_ab_ecn", type: "__u32" },
      { name: "dctcp_ab_tot", type: "__u32" },
    ],
  },
  {
    name: "tcp_bbr_info",
    kind: "struct",
    members: [
      { name: "bbr_bw_lo", type: "__u32" },
      { name: "bbr_bw_hi", type: "__u32" },
      { name: "bbr_min_rtt", type: "__u32" },
      { name: "bbr_pacing_gain", type: "__u32" },
      { name: "bbr_cwnd_gain", type: "__u32" },
    ],
  },
  {
    name: "tcp_cc_info",
    kind: "union",
    members: [
      { name: "vegas", type: "struct tcpvegas_info" },
      { name: "dctcp", type: "struct tcp_dctcp_info" },
      { name: "bbr", type: "struct tcp_bbr_info" },
    ],
  },
  {
    // Exact member order and types of kernel 6.18: a program's expected_attach_type is a member index.
    name: "tcp_congestion_ops",
    kind: "struct",
    align: 64,
    members: [
      { name: "ssthresh", fn: { ret: "u32", params: [{ name: "sk", type: SK }] } },
      {
        name: "cong_avoid",
        fn: {
          ret: "void",
          params: [
            { name: "sk", type: SK },
            { name: "ack", type: "u32" },
            { name: "acked", type: "u32" },
          ],
        },
      },
      {
        name: "set_state",
        fn: {
          ret: "void",
          params: [
            { name: "sk", type: SK },
            { name: "new_state", type: "u8" },
          ],
        },
      },
      {
        name: "cwnd_event",
        fn: {
          ret: "void",
          params: [
            { name: "sk", type: SK },
            { name: "ev", type: "enum tcp_ca_event" },
          ],
        },
      },
      {
        name: "in_ack_event",
        fn: {
          ret: "void",
          params: [
            { name: "sk", type: SK },
            { name: "flags", type: "u32" },
          ],
        },
      },
      {
        name: "pkts_acked",
        fn: {
          ret: "void",
          params: [
            { name: "sk", type: SK },
            { name: "sample", type: "const struct ack_sample *" },
          ],
        },
      },
      { name: "min_tso_segs", fn: { ret: "u32", params: [{ name: "sk", type: SK }] } },
      {
        name: "cong_control",
        fn: {
          ret: "void",
          params: [
            { name: "sk", type: SK },
            { name: "ack", type: "u32" },
            { name: "flag", type: "int" },
            { name: "rs", type: "const struct rate_sample *" },
          ],
        },
      },
      { name: "undo_cwnd", fn: { ret: "u32", params: [{ name: "sk", type: SK }] } },
      { name: "sndbuf_expand", fn: { ret: "u32", params: [{ name: "sk", type: SK }] } },
      {
        name: "get_info",
        fn: {
          ret: "size_t",
          params: [
            { name: "sk", type: SK },
            { name: "ext", type: "u32" },
            { name: "attr", type: "int *" },
            { name: "info", type: "union tcp_cc_info *" },
          ],
        },
      },
      { name: "name", type: "char[16]" },
      { name: "owner", type: "struct module *" },
      { name: "list", type: "struct list_head" },
      { name: "key", type: "u32" },
      { name: "flags", type: "u32" },
      { name: "init", fn: { ret: "void", params: [{ name: "sk", type: SK }] } },
      { name: "release", fn: { ret: "void", params: [{ name: "sk", type: SK }] } },
    ],
  },
];

/** C integer spellings: [size, signed]. Typedef chains (u32 -> __u32 -> unsigned int) are kept in BTF. */
export const C_INTS: Record<string, { size: number; signed: boolean; base?: string }> = {
  char: { size: 1, signed: true },
  "unsigned char": { size: 1, signed: false },
  short: { size: 2, signed: true },
  "unsigned short": { size: 2, signed: false },
  int: { size: 4, signed: true },
  "unsigned int": { size: 4, signed: false },
  long: { size: 8, signed: true },
  "unsigned long": { size: 8, signed: false },
  "long long": { size: 8, signed: true },
  "unsigned long long": { size: 8, signed: false },
  _Bool: { size: 1, signed: false },
};

/** Typedefs used above, as in include/uapi/asm-generic/int-ll64.h and include/linux/types.h. */
export const C_TYPEDEFS: Record<string, string> = {
  __u8: "unsigned char",
  __u16: "unsigned short",
  __u32: "unsigned int",
  __u64: "unsigned long long",
  __s32: "int",
  u8: "__u8",
  u16: "__u16",
  u32: "__u32",
  u64: "__u64",
  s32: "__s32",
  __be16: "__u16",
  __be32: "__u32",
  bool: "_Bool",
  size_t: "unsigned long",
};

export interface FieldLayout {
  /** Byte offset of the storage unit (for a bitfield: of its declared type). */
  offset: number;
  size: number;
  signed: boolean;
  /** Bitfield: bit offset inside the struct and width. */
  bitOffset: number;
  bits?: number;
}

export interface StructLayout {
  name: string;
  size: number;
  align: number;
  /** Members by dotted path from this struct, including nested struct members ("icsk_ack.pending"). */
  fields: Map<string, FieldLayout>;
}

function resolveTypedef(t: string): string {
  let cur = t;
  while (C_TYPEDEFS[cur] !== undefined) cur = C_TYPEDEFS[cur]!;
  return cur;
}

/** Parse a member type spelling into base + array count + pointer-ness. */
export function parseCType(t: string): { base: string; ptr: boolean; count?: number; isConst: boolean } {
  let s = t.trim();
  let count: number | undefined;
  const arr = /^(.*)\[(\d+)\]$/.exec(s);
  if (arr) {
    s = arr[1]!.trim();
    count = Number(arr[2]);
  }
  const isConst = s.startsWith("const ");
  if (isConst) s = s.slice(6);
  const ptr = s.endsWith("*");
  if (ptr) s = s.slice(0, -1).trim();
  return { base: s, ptr, count, isConst };
}

/** Compute x86-64 System V layouts for all TCP structs (what the simulated kernel's BTF describes). */
export function layoutTcpTypes(structs: CStruct[] = TCP_STRUCTS): Map<string, StructLayout> {
  const out = new Map<string, StructLayout>();
  const byName = new Map(structs.map((s) => [s.name, s]));

  const sizeAlign = (t: string): { size: number; align: number; signed: boolean; struct?: StructLayout } => {
    const p = parseCType(t);
    let size: number;
    let align: number;
    let signed = false;
    let struct: StructLayout | undefined;
    if (p.ptr) {
      size = 8;
      align = 8;
    } else if (p.base.startsWith("struct ") || p.base.startsWith("union ")) {
      const name = p.base.replace(/^(struct|union) /, "");
      struct = layoutOne(name);
      size = struct.size;
      align = struct.align;
    } else if (p.base.startsWith("enum ")) {
      size = 4;
      align = 4;
    } else {
      const int = C_INTS[resolveTypedef(p.base)];
      if (!int) throw new Error(`tcp btf: unknown C type '${t}'`);
      size = int.size;
      align = int.size;
      signed = int.signed;
    }
    if (p.count !== undefined) size *= p.count;
    return { size, align, signed, struct };
  };

  function layoutOne(name: string): StructLayout {
    const done = out.get(name);
    if (done) return done;
    const s = byName.get(name);
    if (!s) throw new Error(`tcp btf: unknown struct '${name}'`);
    const fields = new Map<string, FieldLayout>();
    let bit = 0; // current position in bits
    let maxAlign = 1;
    let maxEnd = 0;
    for (const m of s.members) {
      const isFn = "fn" in m;
      const { size, align, signed, struct } = isFn ? { size: 8, align: 8, signed: false } : sizeAlign(m.type);
      maxAlign = Math.max(maxAlign, align);
      const bits = isFn ? undefined : m.bits;
      if (bits !== undefined) {
        // SysV: a bitfield may not straddle an aligned unit of its declared type.
        const unitBits = size * 8;
        if (Math.floor(bit / unitBits) !== Math.floor((bit + bits - 1) / unitBits)) {
          bit = Math.ceil(bit / unitBits) * unitBits;
        }
        const unitOff = Math.floor(bit / unitBits) * size;
        fields.set(m.name, { offset: unitOff, size, signed, bitOffset: bit, bits });
        bit += bits;
      } else {
        const off = s.kind === "union" ? 0 : Math.ceil(bit / 8 / align) * align;
        fields.set(m.name, { offset: off, size, signed, bitOffset: off * 8 });
        if (struct) {
          for (const [sub, f] of struct.fields) {
            fields.set(`${m.name}.${sub}`, { ...f, offset: off + f.offset, bitOffset: off * 8 + f.bitOffset });
          }
        }
        bit = s.kind === "union" ? 0 : (off + size) * 8;
        maxEnd = Math.max(maxEnd, off + size);
      }
      maxEnd = Math.max(maxEnd, Math.ceil(bit / 8));
    }
    const align = Math.max(maxAlign, s.align ?? 1);
    const size = Math.ceil(maxEnd / align) * align;
    const l: StructLayout = { name, size, align, fields };
    out.set(name, l);
    return l;
  }

  for (const s of structs) layoutOne(s.name);
  return out;
}

/** DWARF spellings of the C integer types, as the kernel's base BTF names them (src/kernel/init.ts). */
const DWARF_INT_NAMES: Record<string, string> = {
  "unsigned short": "short unsigned int",
  long: "long int",
  "unsigned long": "long unsigned int",
  "long long": "long long int",
  "unsigned long long": "long long unsigned int",
};

/** The kfuncs struct_ops TCP congestion controls may call, with their C prototypes (BTF FUNCs in vmlinux). */
export const TCP_KFUNC_PROTOS: { name: string; ret: string; params: { name: string; type: string }[] }[] = [
  { name: "tcp_reno_ssthresh", ret: "u32", params: [{ name: "sk", type: SK }] },
  {
    name: "tcp_reno_cong_avoid",
    ret: "void",
    params: [
      { name: "sk", type: SK },
      { name: "ack", type: "u32" },
      { name: "acked", type: "u32" },
    ],
  },
  { name: "tcp_reno_undo_cwnd", ret: "u32", params: [{ name: "sk", type: SK }] },
  {
    name: "tcp_slow_start",
    ret: "u32",
    params: [
      { name: "tp", type: "struct tcp_sock *" },
      { name: "acked", type: "u32" },
    ],
  },
  {
    name: "tcp_cong_avoid_ai",
    ret: "void",
    params: [
      { name: "tp", type: "struct tcp_sock *" },
      { name: "w", type: "u32" },
      { name: "acked", type: "u32" },
    ],
  },
  { name: "cubictcp_init", ret: "void", params: [{ name: "sk", type: SK }] },
  { name: "cubictcp_recalc_ssthresh", ret: "u32", params: [{ name: "sk", type: SK }] },
  {
    name: "cubictcp_cong_avoid",
    ret: "void",
    params: [
      { name: "sk", type: SK },
      { name: "ack", type: "u32" },
      { name: "acked", type: "u32" },
    ],
  },
  {
    name: "cubictcp_state",
    ret: "void",
    params: [
      { name: "sk", type: SK },
      { name: "new_state", type: "u8" },
    ],
  },
  {
    name: "cubictcp_cwnd_event",
    ret: "void",
    params: [
      { name: "sk", type: SK },
      { name: "event", type: "enum tcp_ca_event" },
    ],
  },
  {
    name: "cubictcp_acked",
    ret: "void",
    params: [
      { name: "sk", type: SK },
      { name: "sample", type: "const struct ack_sample *" },
    ],
  },
  // tcp_bbr.c's tcp_bbr_check_kfunc_ids
  { name: "bbr_init", ret: "void", params: [{ name: "sk", type: SK }] },
  {
    name: "bbr_main",
    ret: "void",
    params: [
      { name: "sk", type: SK },
      { name: "ack", type: "u32" },
      { name: "flag", type: "int" },
      { name: "rs", type: "const struct rate_sample *" },
    ],
  },
  { name: "bbr_sndbuf_expand", ret: "u32", params: [{ name: "sk", type: SK }] },
  { name: "bbr_undo_cwnd", ret: "u32", params: [{ name: "sk", type: SK }] },
  {
    name: "bbr_cwnd_event",
    ret: "void",
    params: [
      { name: "sk", type: SK },
      { name: "event", type: "enum tcp_ca_event" },
    ],
  },
  { name: "bbr_ssthresh", ret: "u32", params: [{ name: "sk", type: SK }] },
  { name: "bbr_min_tso_segs", ret: "u32", params: [{ name: "sk", type: SK }] },
  {
    name: "bbr_set_state",
    ret: "void",
    params: [
      { name: "sk", type: SK },
      { name: "new_state", type: "u8" },
    ],
  },
  // tcp_dctcp.c's tcp_dctcp_check_kfunc_ids
  { name: "dctcp_init", ret: "void", params: [{ name: "sk", type: SK }] },
  {
    name: "dctcp_update_alpha",
    ret: "void",
    params: [
      { name: "sk", type: SK },
      { name: "flags", type: "u32" },
    ],
  },
  {
    name: "dctcp_cwnd_event",
    ret: "void",
    params: [
      { name: "sk", type: SK },
      { name: "ev", type: "enum tcp_ca_event" },
    ],
  },
  { name: "dctcp_ssthresh", ret: "u32", params: [{ name: "sk", type: SK }] },
  { name: "dctcp_cwnd_undo", ret: "u32", params: [{ name: "sk", type: SK }] },
  {
    name: "dctcp_state",
    ret: "void",
    params: [
      { name: "sk", type: SK },
      { name: "new_state", type: "u8" },
    ],
  },
];

/**
 * Emit the TCP types (and the kfunc FUNCs) into the vmlinux BTF under construction, reusing the base
 * integer types, typedefs, list_head and module the kernel declared first. Returns ids by C spelling.
 */
export function declareTcpTypes(b: BtfBuilder): Map<string, number> {
  const layouts = layoutTcpTypes();
  const ids = new Map<string, number>();
  const find = (name: string, kind: number): number => {
    for (let id = b.nrTypes; id >= 1; id--) {
      const t = b.typeById(id);
      if (t.kind === kind && t.name === name) return id;
    }
    return -1;
  };

  const typeId = (spelling: string): number => {
    if (spelling === "void") return 0;
    const hit = ids.get(spelling);
    if (hit !== undefined) return hit;
    const p = parseCType(spelling);
    let id: number;
    if (p.count !== undefined) {
      id = b.addArray(typeId(p.base + (p.ptr ? " *" : "")), typeId("int"), p.count);
    } else if (p.isConst) {
      id = b.addConst(typeId(spelling.trim().slice(6)));
    } else if (p.ptr) {
      // A struct not declared yet (a self or forward reference) is pointed to through a FWD.
      const m = /^(struct|union) (\w+)$/.exec(p.base);
      if (m && !ids.has(p.base) && find(m[2]!, BTF_KIND_STRUCT) < 0) {
        id = b.addPtr(b.addFwd(m[2]!, m[1] === "union"));
      } else {
        id = b.addPtr(typeId(p.base));
      }
    } else if (p.base.startsWith("struct ") || p.base.startsWith("union ")) {
      const name = p.base.replace(/^(struct|union) /, "");
      id = ids.get(`struct ${name}`) ?? find(name, BTF_KIND_STRUCT);
      if (id < 0) throw new Error(`tcp btf: struct ${name} used by value before it is declared`);
    } else if (p.base.startsWith("enum ")) {
      const e = TCP_ENUMS.find((x) => x.name === p.base.slice(5));
      id = b.addEnum(
        p.base.slice(5),
        4,
        (e ? e.values : []).map(([name, val]) => ({ name, val })),
      );
    } else if (C_TYPEDEFS[p.base] !== undefined) {
      id = find(p.base, BTF_KIND_TYPEDEF);
      if (id < 0) id = b.addTypedef(p.base, typeId(C_TYPEDEFS[p.base]!));
    } else {
      const int = C_INTS[p.base];
      if (!int) throw new Error(`tcp btf: unknown C type '${spelling}'`);
      const name = DWARF_INT_NAMES[p.base] ?? p.base;
      id = find(name, BTF_KIND_INT);
      if (id < 0) {
        const enc = p.base === "_Bool" ? BTF_INT_BOOL : int.signed ? BTF_INT_SIGNED : 0;
        id = b.addInt(name, int.size, enc | (int.size === 1 && p.base.endsWith("char") ? BTF_INT_CHAR : 0));
      }
    }
    ids.set(spelling, id);
    return id;
  };

  for (const e of TCP_ENUMS) typeId(`enum ${e.name}`);
  for (const s of TCP_STRUCTS) {
    const existing = find(s.name, BTF_KIND_STRUCT);
    if (existing > 0) {
      // list_head and friends come from the kernel's base types.
      ids.set(`struct ${s.name}`, existing);
      continue;
    }
    const l = layouts.get(s.name)!;
    const members = s.members.map((m) => {
      const f = l.fields.get(m.name)!;
      let type: number;
      if ("fn" in m) {
        // pahole leaves the parameters of a function-pointer member's prototype unnamed
        // (bpftool prints `u32 (struct sock *)`); only a FUNC's own prototype names them.
        const proto = b.addFuncProto(
          typeId(m.fn.ret),
          m.fn.params.map((q) => ({ name: "", type: typeId(q.type) })),
        );
        type = b.addPtr(proto);
      } else {
        type = typeId(m.type);
      }
      const bits = "bits" in m ? m.bits : undefined;
      return { name: m.name, type, bitOffset: f.bitOffset, bitfieldSize: bits };
    });
    const btfName = s.anonymous ? "" : s.name;
    const id = s.kind === "union" ? b.addUnion(btfName, l.size, members) : b.addStruct(btfName, l.size, members);
    ids.set(`${s.kind} ${s.name}`, id);
  }
  for (const k of TCP_KFUNC_PROTOS) {
    const proto = b.addFuncProto(
      typeId(k.ret),
      k.params.map((q) => ({ name: q.name, type: typeId(q.type) })),
    );
    ids.set(`func ${k.name}`, b.addFunc(k.name, proto, BTF_FUNC_GLOBAL));
  }
  return ids;
}
