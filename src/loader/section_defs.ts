/**
 * libbpf's SEC_DEF table: which program type (and expected attach type, flags) a program
 * section name means. A definition ending in `+` matches the exact name or the name
 * followed by `/...`; a definition ending in `/` is a legacy prefix; any other must match
 * exactly. A leading `?` in the section name turns autoload off and is not part of the
 * match (see bpfObjectInitProgs).
 */
import { bpf_attach_type as A, bpf_prog_type as P } from "../uapi/bpf.js";

/** enum sec_def_flags. */
export const SEC_NONE = 0;
export const SEC_EXP_ATTACH_OPT = 1;
export const SEC_ATTACHABLE = 2;
export const SEC_ATTACHABLE_OPT = SEC_ATTACHABLE | SEC_EXP_ATTACH_OPT;
export const SEC_ATTACH_BTF = 4;
export const SEC_SLEEPABLE = 8;
export const SEC_XDP_FRAGS = 16;
export const SEC_USDT = 32;

export interface BpfSecDef {
  sec: string;
  progType: number;
  expectedAttachType: number;
  flags: number;
}

function def(sec: string, progType: number, expectedAttachType: number, flags: number): BpfSecDef {
  return { sec, progType, expectedAttachType, flags };
}

export const SECTION_DEFS: readonly BpfSecDef[] = [
  def("socket", P.BPF_PROG_TYPE_SOCKET_FILTER, 0, SEC_NONE),
  def("sk_reuseport/migrate", P.BPF_PROG_TYPE_SK_REUSEPORT, A.BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, SEC_ATTACHABLE),
  def("sk_reuseport", P.BPF_PROG_TYPE_SK_REUSEPORT, A.BPF_SK_REUSEPORT_SELECT, SEC_ATTACHABLE),
  def("kprobe+", P.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE),
  def("uprobe+", P.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE),
  def("uprobe.s+", P.BPF_PROG_TYPE_KPROBE, 0, SEC_SLEEPABLE),
  def("kretprobe+", P.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE),
  def("uretprobe+", P.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE),
  def("uretprobe.s+", P.BPF_PROG_TYPE_KPROBE, 0, SEC_SLEEPABLE),
  def("kprobe.multi+", P.BPF_PROG_TYPE_KPROBE, A.BPF_TRACE_KPROBE_MULTI, SEC_NONE),
  def("kretprobe.multi+", P.BPF_PROG_TYPE_KPROBE, A.BPF_TRACE_KPROBE_MULTI, SEC_NONE),
  def("uprobe.multi+", P.BPF_PROG_TYPE_KPROBE, A.BPF_TRACE_UPROBE_MULTI, SEC_NONE),
  def("uretprobe.multi+", P.BPF_PROG_TYPE_KPROBE, A.BPF_TRACE_UPROBE_MULTI, SEC_NONE),
  def("ksyscall+", P.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE),
  def("kretsyscall+", P.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE),
  def("usdt+", P.BPF_PROG_TYPE_KPROBE, 0, SEC_USDT),
  def("usdt.s+", P.BPF_PROG_TYPE_KPROBE, 0, SEC_USDT | SEC_SLEEPABLE),
  def("tc/ingress", P.BPF_PROG_TYPE_SCHED_CLS, A.BPF_TCX_INGRESS, SEC_NONE),
  def("tc/egress", P.BPF_PROG_TYPE_SCHED_CLS, A.BPF_TCX_EGRESS, SEC_NONE),
  def("tcx/ingress", P.BPF_PROG_TYPE_SCHED_CLS, A.BPF_TCX_INGRESS, SEC_NONE),
  def("tcx/egress", P.BPF_PROG_TYPE_SCHED_CLS, A.BPF_TCX_EGRESS, SEC_NONE),
  def("tc", P.BPF_PROG_TYPE_SCHED_CLS, 0, SEC_NONE),
  def("classifier", P.BPF_PROG_TYPE_SCHED_CLS, 0, SEC_NONE),
  def("action", P.BPF_PROG_TYPE_SCHED_ACT, 0, SEC_NONE),
  def("tracepoint+", P.BPF_PROG_TYPE_TRACEPOINT, 0, SEC_NONE),
  def("tp+", P.BPF_PROG_TYPE_TRACEPOINT, 0, SEC_NONE),
  def("raw_tracepoint+", P.BPF_PROG_TYPE_RAW_TRACEPOINT, 0, SEC_NONE),
  def("raw_tp+", P.BPF_PROG_TYPE_RAW_TRACEPOINT, 0, SEC_NONE),
  def("raw_tracepoint.w+", P.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, 0, SEC_NONE),
  def("raw_tp.w+", P.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, 0, SEC_NONE),
  def("tp_btf+", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_RAW_TP, SEC_ATTACH_BTF),
  def("fentry+", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_FENTRY, SEC_ATTACH_BTF),
  def("fmod_ret+", P.BPF_PROG_TYPE_TRACING, A.BPF_MODIFY_RETURN, SEC_ATTACH_BTF),
  def("fexit+", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_FEXIT, SEC_ATTACH_BTF),
  def("fentry.s+", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_FENTRY, SEC_ATTACH_BTF | SEC_SLEEPABLE),
  def("fmod_ret.s+", P.BPF_PROG_TYPE_TRACING, A.BPF_MODIFY_RETURN, SEC_ATTACH_BTF | SEC_SLEEPABLE),
  def("fexit.s+", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_FEXIT, SEC_ATTACH_BTF | SEC_SLEEPABLE),
  def("freplace+", P.BPF_PROG_TYPE_EXT, 0, SEC_ATTACH_BTF),
  def("lsm+", P.BPF_PROG_TYPE_LSM, A.BPF_LSM_MAC, SEC_ATTACH_BTF),
  def("lsm.s+", P.BPF_PROG_TYPE_LSM, A.BPF_LSM_MAC, SEC_ATTACH_BTF | SEC_SLEEPABLE),
  def("lsm_cgroup+", P.BPF_PROG_TYPE_LSM, A.BPF_LSM_CGROUP, SEC_ATTACH_BTF),
  def("iter+", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_ITER, SEC_ATTACH_BTF),
  def("iter.s+", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_ITER, SEC_ATTACH_BTF | SEC_SLEEPABLE),
  def("syscall", P.BPF_PROG_TYPE_SYSCALL, 0, SEC_SLEEPABLE),
  def("xdp.frags/devmap", P.BPF_PROG_TYPE_XDP, A.BPF_XDP_DEVMAP, SEC_XDP_FRAGS),
  def("xdp/devmap", P.BPF_PROG_TYPE_XDP, A.BPF_XDP_DEVMAP, SEC_ATTACHABLE),
  def("xdp.frags/cpumap", P.BPF_PROG_TYPE_XDP, A.BPF_XDP_CPUMAP, SEC_XDP_FRAGS),
  def("xdp/cpumap", P.BPF_PROG_TYPE_XDP, A.BPF_XDP_CPUMAP, SEC_ATTACHABLE),
  def("xdp.frags", P.BPF_PROG_TYPE_XDP, A.BPF_XDP, SEC_XDP_FRAGS),
  def("xdp", P.BPF_PROG_TYPE_XDP, A.BPF_XDP, SEC_ATTACHABLE_OPT),
  def("perf_event", P.BPF_PROG_TYPE_PERF_EVENT, 0, SEC_NONE),
  def("lwt_in", P.BPF_PROG_TYPE_LWT_IN, 0, SEC_NONE),
  def("lwt_out", P.BPF_PROG_TYPE_LWT_OUT, 0, SEC_NONE),
  def("lwt_xmit", P.BPF_PROG_TYPE_LWT_XMIT, 0, SEC_NONE),
  def("lwt_seg6local", P.BPF_PROG_TYPE_LWT_SEG6LOCAL, 0, SEC_NONE),
  def("sockops", P.BPF_PROG_TYPE_SOCK_OPS, A.BPF_CGROUP_SOCK_OPS, SEC_ATTACHABLE_OPT),
  def("sk_skb/stream_parser", P.BPF_PROG_TYPE_SK_SKB, A.BPF_SK_SKB_STREAM_PARSER, SEC_ATTACHABLE_OPT),
  def("sk_skb/stream_verdict", P.BPF_PROG_TYPE_SK_SKB, A.BPF_SK_SKB_STREAM_VERDICT, SEC_ATTACHABLE_OPT),
  def("sk_skb/verdict", P.BPF_PROG_TYPE_SK_SKB, A.BPF_SK_SKB_VERDICT, SEC_ATTACHABLE_OPT),
  def("sk_skb", P.BPF_PROG_TYPE_SK_SKB, 0, SEC_NONE),
  def("sk_msg", P.BPF_PROG_TYPE_SK_MSG, A.BPF_SK_MSG_VERDICT, SEC_ATTACHABLE_OPT),
  def("lirc_mode2", P.BPF_PROG_TYPE_LIRC_MODE2, A.BPF_LIRC_MODE2, SEC_ATTACHABLE_OPT),
  def("flow_dissector", P.BPF_PROG_TYPE_FLOW_DISSECTOR, A.BPF_FLOW_DISSECTOR, SEC_ATTACHABLE_OPT),
  def("cgroup_skb/ingress", P.BPF_PROG_TYPE_CGROUP_SKB, A.BPF_CGROUP_INET_INGRESS, SEC_ATTACHABLE_OPT),
  def("cgroup_skb/egress", P.BPF_PROG_TYPE_CGROUP_SKB, A.BPF_CGROUP_INET_EGRESS, SEC_ATTACHABLE_OPT),
  def("cgroup/skb", P.BPF_PROG_TYPE_CGROUP_SKB, 0, SEC_NONE),
  def("cgroup/sock_create", P.BPF_PROG_TYPE_CGROUP_SOCK, A.BPF_CGROUP_INET_SOCK_CREATE, SEC_ATTACHABLE),
  def("cgroup/sock_release", P.BPF_PROG_TYPE_CGROUP_SOCK, A.BPF_CGROUP_INET_SOCK_RELEASE, SEC_ATTACHABLE),
  def("cgroup/sock", P.BPF_PROG_TYPE_CGROUP_SOCK, A.BPF_CGROUP_INET_SOCK_CREATE, SEC_ATTACHABLE_OPT),
  def("cgroup/post_bind4", P.BPF_PROG_TYPE_CGROUP_SOCK, A.BPF_CGROUP_INET4_POST_BIND, SEC_ATTACHABLE),
  def("cgroup/post_bind6", P.BPF_PROG_TYPE_CGROUP_SOCK, A.BPF_CGROUP_INET6_POST_BIND, SEC_ATTACHABLE),
  def("cgroup/bind4", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_INET4_BIND, SEC_ATTACHABLE),
  def("cgroup/bind6", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_INET6_BIND, SEC_ATTACHABLE),
  def("cgroup/connect4", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_INET4_CONNECT, SEC_ATTACHABLE),
  def("cgroup/connect6", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_INET6_CONNECT, SEC_ATTACHABLE),
  def("cgroup/sendmsg4", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_UDP4_SENDMSG, SEC_ATTACHABLE),
  def("cgroup/sendmsg6", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_UDP6_SENDMSG, SEC_ATTACHABLE),
  def("cgroup/recvmsg4", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_UDP4_RECVMSG, SEC_ATTACHABLE),
  def("cgroup/recvmsg6", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_UDP6_RECVMSG, SEC_ATTACHABLE),
  def("cgroup/getpeername4", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_INET4_GETPEERNAME, SEC_ATTACHABLE),
  def("cgroup/getpeername6", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_INET6_GETPEERNAME, SEC_ATTACHABLE),
  def("cgroup/getsockname4", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_INET4_GETSOCKNAME, SEC_ATTACHABLE),
  def("cgroup/getsockname6", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_INET6_GETSOCKNAME, SEC_ATTACHABLE),
  def("cgroup/connect_unix", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_UNIX_CONNECT, SEC_ATTACHABLE),
  def("cgroup/sendmsg_unix", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_UNIX_SENDMSG, SEC_ATTACHABLE),
  def("cgroup/recvmsg_unix", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_UNIX_RECVMSG, SEC_ATTACHABLE),
  def("cgroup/getpeername_unix", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_UNIX_GETPEERNAME, SEC_ATTACHABLE),
  def("cgroup/getsockname_unix", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_UNIX_GETSOCKNAME, SEC_ATTACHABLE),
  def("cgroup/sysctl", P.BPF_PROG_TYPE_CGROUP_SYSCTL, A.BPF_CGROUP_SYSCTL, SEC_ATTACHABLE),
  def("cgroup/getsockopt", P.BPF_PROG_TYPE_CGROUP_SOCKOPT, A.BPF_CGROUP_GETSOCKOPT, SEC_ATTACHABLE),
  def("cgroup/setsockopt", P.BPF_PROG_TYPE_CGROUP_SOCKOPT, A.BPF_CGROUP_SETSOCKOPT, SEC_ATTACHABLE),
  def("cgroup/dev", P.BPF_PROG_TYPE_CGROUP_DEVICE, A.BPF_CGROUP_DEVICE, SEC_ATTACHABLE_OPT),
  def("struct_ops+", P.BPF_PROG_TYPE_STRUCT_OPS, 0, SEC_NONE),
  def("struct_ops.s+", P.BPF_PROG_TYPE_STRUCT_OPS, 0, SEC_SLEEPABLE),
  def("sk_lookup", P.BPF_PROG_TYPE_SK_LOOKUP, A.BPF_SK_LOOKUP, SEC_ATTACHABLE),
  def("netfilter", P.BPF_PROG_TYPE_NETFILTER, A.BPF_NETFILTER, SEC_NONE),
];

/** sec_def_matches: the rules in the header comment. */
export function secDefMatches(d: BpfSecDef, secName: string): boolean {
  const s = d.sec;
  if (s.endsWith("+")) {
    const pfx = s.slice(0, -1);
    if (!secName.startsWith(pfx)) return false;
    const rest = secName.slice(pfx.length);
    return rest === "" || rest.startsWith("/");
  }
  if (s.endsWith("/")) return secName.startsWith(s);
  return secName === s;
}

/** find_sec_def: the first matching definition, or undefined (the section is not a program). */
export function findSecDef(secName: string): BpfSecDef | undefined {
  return SECTION_DEFS.find((d) => secDefMatches(d, secName));
}
