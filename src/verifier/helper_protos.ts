/**
 * Helper prototypes (struct bpf_func_proto) for the helpers structops provides, mirroring
 * kernel/bpf/helpers.c, net/core/filter.c, net/core/bpf_sk_storage.c, net/ipv4/bpf_tcp_ca.c.
 */
import { bpf_attach_type, bpf_func_id, bpf_prog_type } from "../uapi/bpf.js";
import type { VerifierEnv } from "./env.js";

/** enum bpf_arg_type (the subset our helpers use). */
export const ARG_DONTCARE = 0;
export const ARG_CONST_MAP_PTR = 1;
export const ARG_PTR_TO_MAP_KEY = 2;
export const ARG_PTR_TO_MAP_VALUE = 3;
export const ARG_PTR_TO_MEM = 4;
export const ARG_CONST_SIZE = 5;
export const ARG_CONST_SIZE_OR_ZERO = 6;
export const ARG_PTR_TO_CTX = 7;
export const ARG_ANYTHING = 8;
export const ARG_PTR_TO_BTF_ID_SOCK_COMMON = 9;
export const ARG_PTR_TO_BTF_ID = 10;
export const ARG_PTR_TO_UNINIT_MEM = 11;
export const ARG_PTR_TO_FUNC = 12;
export const ARG_PTR_TO_STACK = 13;
export const ARG_PTR_TO_SPIN_LOCK = 14;
/** bpf_kptr_xchg's destination: a referenced kptr field of a map value or an allocated object. */
export const ARG_KPTR_XCHG_DEST = 15;
/** bpf_kptr_xchg's source (ARG_PTR_TO_BTF_ID_OR_NULL | OBJ_RELEASE, typed by the destination). */
export const ARG_KPTR_XCHG_SRC = 16;
/** A per-CPU BTF pointer (a per-CPU ksym). */
export const ARG_PTR_TO_PERCPU_BTF_ID = 17;
/** A struct bpf_timer inside a map value (src/verifier/timer.ts). */
export const ARG_PTR_TO_TIMER = 18;
/** ARG_PTR_TO_DYNPTR: a struct bpf_dynptr on the stack (src/verifier/dynptr.ts); DYNPTR_TYPE_* flags name its kind. */
export const ARG_PTR_TO_DYNPTR = 19;
/** ARG_CONST_ALLOC_SIZE_OR_ZERO: a known constant size of the memory returned. */
export const ARG_CONST_ALLOC_SIZE_OR_ZERO = 20;
/** ARG_PTR_TO_RINGBUF_MEM: a record bpf_ringbuf_reserve returned. */
export const ARG_PTR_TO_RINGBUF_MEM = 21;
/** ARG_PTR_TO_CONST_STR: a NUL-terminated string in a frozen read-only array map (.rodata). */
export const ARG_PTR_TO_CONST_STR = 22;
/** Flags on arg types. */
export const ARG_MAYBE_NULL = 1 << 8;
export const ARG_MEM_RDONLY = 1 << 9;
/** MEM_UNINIT: the helper fills the memory, which need not be initialized. */
export const ARG_MEM_UNINIT = 1 << 10;
/** MEM_WRITE: the helper writes the memory. */
export const ARG_MEM_WRITE = 1 << 11;
/** OBJ_RELEASE: the helper releases the reference the argument holds. */
export const OBJ_RELEASE = 1 << 12;

/** enum bpf_return_type (subset). */
export const RET_INTEGER = 0;
export const RET_VOID = 1;
export const RET_PTR_TO_MAP_VALUE_OR_NULL = 2;
export const RET_PTR_TO_MEM_OR_NULL = 3;
/** RET_PTR_TO_BTF_ID_TRUSTED: a trusted pointer to the struct named retBtfName. */
export const RET_PTR_TO_BTF_ID_TRUSTED = 4;
/** RET_PTR_TO_BTF_ID_OR_NULL typed by the call (bpf_kptr_xchg: the field's type). */
export const RET_PTR_TO_BTF_ID_OR_NULL = 5;
/** RET_PTR_TO_MEM_OR_BTF_ID | MEM_RDONLY: one CPU's copy of a per-CPU variable (retMaybeNull: or NULL). */
export const RET_PTR_TO_MEM_OR_BTF_ID = 6;
/** RET_PTR_TO_DYNPTR_MEM_OR_NULL: memory of the ARG_CONST_ALLOC_SIZE_OR_ZERO size inside a dynptr. */
export const RET_PTR_TO_DYNPTR_MEM_OR_NULL = 7;
/** RET_PTR_TO_RINGBUF_MEM_OR_NULL: an acquired record of the ARG_CONST_ALLOC_SIZE_OR_ZERO size. */
export const RET_PTR_TO_RINGBUF_MEM_OR_NULL = 8;

export interface FuncProto {
  readonly name: string;
  readonly funcId: number;
  readonly gplOnly?: boolean;
  readonly retType: number;
  readonly argTypes: readonly number[];
  /** ARG_PTR_TO_BTF_ID: the struct name each such argument must point to. */
  readonly argBtfNames?: readonly (string | undefined)[];
  /** RET_PTR_TO_MEM_OR_NULL: size of the returned memory. */
  readonly retSize?: number;
  /** RET_PTR_TO_BTF_ID_TRUSTED: the struct the returned pointer points to. */
  readonly retBtfName?: string;
  /** The returned pointer may be NULL (PTR_MAYBE_NULL on the return type). */
  readonly retMaybeNull?: boolean;
  /** Only for bpf_capable / perfmon_capable callers (bpf_base_func_proto's privileged part). */
  readonly privileged?: boolean;
  /** pkt_access: packet pointers may be passed as memory arguments. */
  readonly pktAccess?: boolean;
  /** fn->allowed: the program may call it ("helper call is not allowed in probe" otherwise). */
  readonly allowed?: (env: VerifierEnv) => boolean;
  /** do_refine_retval_range: R0 is at most the size argument's umax, at least -MAX_ERRNO. */
  readonly retSizeBound?: boolean;
  /** might_sleep: sleepable programs only ("helper call might sleep in a non-sleepable prog"). */
  readonly mightSleep?: boolean;
}

const F = bpf_func_id;

function proto(
  funcId: number,
  retType: number,
  argTypes: number[],
  extra: Partial<Omit<FuncProto, "funcId" | "retType" | "argTypes" | "name">> = {},
): FuncProto {
  return { name: funcIdName(funcId), funcId, retType, argTypes, ...extra };
}

/** func_id_str (kernel/bpf/disasm.c): every helper of 6.18 by id, from __BPF_FUNC_MAPPER. */
const FUNC_ID_STR: readonly string[] = (
  "unspec map_lookup_elem map_update_elem map_delete_elem probe_read ktime_get_ns trace_printk " +
  "get_prandom_u32 get_smp_processor_id skb_store_bytes l3_csum_replace l4_csum_replace tail_call " +
  "clone_redirect get_current_pid_tgid get_current_uid_gid get_current_comm get_cgroup_classid " +
  "skb_vlan_push skb_vlan_pop skb_get_tunnel_key skb_set_tunnel_key perf_event_read redirect " +
  "get_route_realm perf_event_output skb_load_bytes get_stackid csum_diff skb_get_tunnel_opt " +
  "skb_set_tunnel_opt skb_change_proto skb_change_type skb_under_cgroup get_hash_recalc " +
  "get_current_task probe_write_user current_task_under_cgroup skb_change_tail skb_pull_data " +
  "csum_update set_hash_invalid get_numa_node_id skb_change_head xdp_adjust_head probe_read_str " +
  "get_socket_cookie get_socket_uid set_hash setsockopt skb_adjust_room redirect_map sk_redirect_map " +
  "sock_map_update xdp_adjust_meta perf_event_read_value perf_prog_read_value getsockopt " +
  "override_return sock_ops_cb_flags_set msg_redirect_map msg_apply_bytes msg_cork_bytes msg_pull_data " +
  "bind xdp_adjust_tail skb_get_xfrm_state get_stack skb_load_bytes_relative fib_lookup " +
  "sock_hash_update msg_redirect_hash sk_redirect_hash lwt_push_encap lwt_seg6_store_bytes " +
  "lwt_seg6_adjust_srh lwt_seg6_action rc_repeat rc_keydown skb_cgroup_id get_current_cgroup_id " +
  "get_local_storage sk_select_reuseport skb_ancestor_cgroup_id sk_lookup_tcp sk_lookup_udp sk_release " +
  "map_push_elem map_pop_elem map_peek_elem msg_push_data msg_pop_data rc_pointer_rel spin_lock " +
  "spin_unlock sk_fullsock tcp_sock skb_ecn_set_ce get_listener_sock skc_lookup_tcp " +
  "tcp_check_syncookie sysctl_get_name sysctl_get_current_value sysctl_get_new_value " +
  "sysctl_set_new_value strtol strtoul sk_storage_get sk_storage_delete send_signal tcp_gen_syncookie " +
  "skb_output probe_read_user probe_read_kernel probe_read_user_str probe_read_kernel_str tcp_send_ack " +
  "send_signal_thread jiffies64 read_branch_records get_ns_current_pid_tgid xdp_output " +
  "get_netns_cookie get_current_ancestor_cgroup_id sk_assign ktime_get_boot_ns seq_printf seq_write " +
  "sk_cgroup_id sk_ancestor_cgroup_id ringbuf_output ringbuf_reserve ringbuf_submit ringbuf_discard " +
  "ringbuf_query csum_level skc_to_tcp6_sock skc_to_tcp_sock skc_to_tcp_timewait_sock " +
  "skc_to_tcp_request_sock skc_to_udp6_sock get_task_stack load_hdr_opt store_hdr_opt reserve_hdr_opt " +
  "inode_storage_get inode_storage_delete d_path copy_from_user snprintf_btf seq_printf_btf " +
  "skb_cgroup_classid redirect_neigh per_cpu_ptr this_cpu_ptr redirect_peer task_storage_get " +
  "task_storage_delete get_current_task_btf bprm_opts_set ktime_get_coarse_ns ima_inode_hash " +
  "sock_from_file check_mtu for_each_map_elem snprintf sys_bpf btf_find_by_name_kind sys_close " +
  "timer_init timer_set_callback timer_start timer_cancel get_func_ip get_attach_cookie task_pt_regs " +
  "get_branch_snapshot trace_vprintk skc_to_unix_sock kallsyms_lookup_name find_vma loop strncmp " +
  "get_func_arg get_func_ret get_func_arg_cnt get_retval set_retval xdp_get_buff_len xdp_load_bytes " +
  "xdp_store_bytes copy_from_user_task skb_set_tstamp ima_file_hash kptr_xchg map_lookup_percpu_elem " +
  "skc_to_mptcp_sock dynptr_from_mem ringbuf_reserve_dynptr ringbuf_submit_dynptr " +
  "ringbuf_discard_dynptr dynptr_read dynptr_write dynptr_data tcp_raw_gen_syncookie_ipv4 " +
  "tcp_raw_gen_syncookie_ipv6 tcp_raw_check_syncookie_ipv4 tcp_raw_check_syncookie_ipv6 " +
  "ktime_get_tai_ns user_ringbuf_drain cgrp_storage_get cgrp_storage_delete "
)
  .trim()
  .split(" ");

/** func_id_name(): "bpf_<name>" for an id of 6.18's helper enum, else "unknown". */
export function funcIdName(funcId: number): string {
  const n = funcId >= 0 && funcId < FUNC_ID_STR.length ? FUNC_ID_STR[funcId] : undefined;
  return n ? `bpf_${n}` : "unknown";
}

export const bpf_map_lookup_elem_proto = proto(
  F.BPF_FUNC_map_lookup_elem,
  RET_PTR_TO_MAP_VALUE_OR_NULL,
  [ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_KEY],
  { pktAccess: true },
);
export const bpf_map_update_elem_proto = proto(
  F.BPF_FUNC_map_update_elem,
  RET_INTEGER,
  [ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_KEY, ARG_PTR_TO_MAP_VALUE, ARG_ANYTHING],
  { pktAccess: true },
);
export const bpf_map_delete_elem_proto = proto(
  F.BPF_FUNC_map_delete_elem,
  RET_INTEGER,
  [ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_KEY],
  { pktAccess: true },
);
export const bpf_map_lookup_percpu_elem_proto = proto(F.BPF_FUNC_map_lookup_percpu_elem, RET_PTR_TO_MAP_VALUE_OR_NULL, [
  ARG_CONST_MAP_PTR,
  ARG_PTR_TO_MAP_KEY,
  ARG_ANYTHING,
]);
export const bpf_map_push_elem_proto = proto(
  F.BPF_FUNC_map_push_elem,
  RET_INTEGER,
  [ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_VALUE, ARG_ANYTHING],
  { pktAccess: true },
);
// pop and peek fill the value: the buffer may be uninitialized stack (ARG_PTR_TO_UNINIT_MAP_VALUE).
export const bpf_map_pop_elem_proto = proto(
  F.BPF_FUNC_map_pop_elem,
  RET_INTEGER,
  [ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_VALUE | ARG_MEM_UNINIT | ARG_MEM_WRITE],
  { pktAccess: true },
);
export const bpf_map_peek_elem_proto = proto(
  F.BPF_FUNC_map_peek_elem,
  RET_INTEGER,
  [ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_VALUE | ARG_MEM_UNINIT | ARG_MEM_WRITE],
  { pktAccess: true },
);
/** bpf_tail_call: no return when taken (r0 is then the callee's); falls through otherwise. */
export const bpf_tail_call_proto = proto(F.BPF_FUNC_tail_call, RET_VOID, [
  ARG_PTR_TO_CTX,
  ARG_CONST_MAP_PTR,
  ARG_ANYTHING,
]);
export const bpf_ktime_get_ns_proto = proto(F.BPF_FUNC_ktime_get_ns, RET_INTEGER, []);
export const bpf_ktime_get_boot_ns_proto = proto(F.BPF_FUNC_ktime_get_boot_ns, RET_INTEGER, []);
export const bpf_ktime_get_coarse_ns_proto = proto(F.BPF_FUNC_ktime_get_coarse_ns, RET_INTEGER, []);
export const bpf_ktime_get_tai_ns_proto = proto(F.BPF_FUNC_ktime_get_tai_ns, RET_INTEGER, []);
export const bpf_jiffies64_proto = proto(F.BPF_FUNC_jiffies64, RET_INTEGER, []);
export const bpf_get_prandom_u32_proto = proto(F.BPF_FUNC_get_prandom_u32, RET_INTEGER, []);
export const bpf_get_smp_processor_id_proto = proto(F.BPF_FUNC_get_smp_processor_id, RET_INTEGER, []);
// kernel/trace/bpf_trace.c types only fmt and fmt_size: the three varargs (r3-r5) are
// ARG_DONTCARE, so a call with fewer arguments leaves them unread and unchecked.
export const bpf_trace_printk_proto = proto(
  F.BPF_FUNC_trace_printk,
  RET_INTEGER,
  [ARG_PTR_TO_MEM | ARG_MEM_RDONLY, ARG_CONST_SIZE],
  { gplOnly: true, privileged: true },
);
export const bpf_probe_read_kernel_proto = proto(
  F.BPF_FUNC_probe_read_kernel,
  RET_INTEGER,
  [ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE_OR_ZERO, ARG_ANYTHING],
  { gplOnly: true, privileged: true },
);
export const bpf_probe_read_kernel_str_proto = proto(
  F.BPF_FUNC_probe_read_kernel_str,
  RET_INTEGER,
  [ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE_OR_ZERO, ARG_ANYTHING],
  { gplOnly: true, privileged: true },
);
/** bpf_strncmp(s1, s1_sz, s2): s2 a constant string, compared over at most s1_sz bytes. */
export const bpf_strncmp_proto = proto(F.BPF_FUNC_strncmp, RET_INTEGER, [
  ARG_PTR_TO_MEM | ARG_MEM_RDONLY,
  ARG_CONST_SIZE,
  ARG_PTR_TO_CONST_STR,
]);
export const bpf_loop_proto = proto(F.BPF_FUNC_loop, RET_INTEGER, [
  ARG_ANYTHING,
  ARG_PTR_TO_FUNC,
  ARG_PTR_TO_STACK | ARG_MAYBE_NULL,
  ARG_ANYTHING,
]);
export const bpf_for_each_map_elem_proto = proto(F.BPF_FUNC_for_each_map_elem, RET_INTEGER, [
  ARG_CONST_MAP_PTR,
  ARG_PTR_TO_FUNC,
  ARG_PTR_TO_STACK | ARG_MAYBE_NULL,
  ARG_ANYTHING,
]);
// kernel/bpf/ringbuf.c
export const bpf_user_ringbuf_drain_proto = proto(F.BPF_FUNC_user_ringbuf_drain, RET_INTEGER, [
  ARG_CONST_MAP_PTR,
  ARG_PTR_TO_FUNC,
  ARG_PTR_TO_STACK | ARG_MAYBE_NULL,
  ARG_ANYTHING,
]);
// kernel/bpf/helpers.c: the dynptr helpers (bpf_base_func_proto, bpf_capable). The dynptr
// argument's type flag is reg_state's DYNPTR_TYPE_LOCAL.
export const bpf_dynptr_from_mem_proto = proto(F.BPF_FUNC_dynptr_from_mem, RET_INTEGER, [
  ARG_PTR_TO_UNINIT_MEM,
  ARG_CONST_SIZE_OR_ZERO,
  ARG_ANYTHING,
  ARG_PTR_TO_DYNPTR | (1 << 16) | ARG_MEM_UNINIT | ARG_MEM_WRITE,
]);
export const bpf_dynptr_read_proto = proto(F.BPF_FUNC_dynptr_read, RET_INTEGER, [
  ARG_PTR_TO_UNINIT_MEM,
  ARG_CONST_SIZE_OR_ZERO,
  ARG_PTR_TO_DYNPTR | ARG_MEM_RDONLY,
  ARG_ANYTHING,
  ARG_ANYTHING,
]);
export const bpf_dynptr_write_proto = proto(F.BPF_FUNC_dynptr_write, RET_INTEGER, [
  ARG_PTR_TO_DYNPTR | ARG_MEM_RDONLY,
  ARG_ANYTHING,
  ARG_PTR_TO_MEM | ARG_MEM_RDONLY,
  ARG_CONST_SIZE_OR_ZERO,
  ARG_ANYTHING,
]);
export const bpf_dynptr_data_proto = proto(F.BPF_FUNC_dynptr_data, RET_PTR_TO_DYNPTR_MEM_OR_NULL, [
  ARG_PTR_TO_DYNPTR | ARG_MEM_RDONLY,
  ARG_ANYTHING,
  ARG_CONST_ALLOC_SIZE_OR_ZERO,
]);
// kernel/bpf/ringbuf.c. The dynptr arguments' type flag is reg_state's DYNPTR_TYPE_RINGBUF.
export const bpf_ringbuf_output_proto = proto(F.BPF_FUNC_ringbuf_output, RET_INTEGER, [
  ARG_CONST_MAP_PTR,
  ARG_PTR_TO_MEM | ARG_MEM_RDONLY,
  ARG_CONST_SIZE_OR_ZERO,
  ARG_ANYTHING,
]);
export const bpf_ringbuf_reserve_proto = proto(F.BPF_FUNC_ringbuf_reserve, RET_PTR_TO_RINGBUF_MEM_OR_NULL, [
  ARG_CONST_MAP_PTR,
  ARG_CONST_ALLOC_SIZE_OR_ZERO,
  ARG_ANYTHING,
]);
export const bpf_ringbuf_submit_proto = proto(F.BPF_FUNC_ringbuf_submit, RET_VOID, [
  ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE,
  ARG_ANYTHING,
]);
export const bpf_ringbuf_discard_proto = proto(F.BPF_FUNC_ringbuf_discard, RET_VOID, [
  ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE,
  ARG_ANYTHING,
]);
export const bpf_ringbuf_query_proto = proto(F.BPF_FUNC_ringbuf_query, RET_INTEGER, [ARG_CONST_MAP_PTR, ARG_ANYTHING]);
export const bpf_ringbuf_reserve_dynptr_proto = proto(F.BPF_FUNC_ringbuf_reserve_dynptr, RET_INTEGER, [
  ARG_CONST_MAP_PTR,
  ARG_ANYTHING,
  ARG_ANYTHING,
  ARG_PTR_TO_DYNPTR | (1 << 17) | ARG_MEM_UNINIT | ARG_MEM_WRITE,
]);
export const bpf_ringbuf_submit_dynptr_proto = proto(F.BPF_FUNC_ringbuf_submit_dynptr, RET_VOID, [
  ARG_PTR_TO_DYNPTR | (1 << 17) | OBJ_RELEASE,
  ARG_ANYTHING,
]);
export const bpf_ringbuf_discard_dynptr_proto = proto(F.BPF_FUNC_ringbuf_discard_dynptr, RET_VOID, [
  ARG_PTR_TO_DYNPTR | (1 << 17) | OBJ_RELEASE,
  ARG_ANYTHING,
]);
export const bpf_sk_storage_get_proto = proto(F.BPF_FUNC_sk_storage_get, RET_PTR_TO_MAP_VALUE_OR_NULL, [
  ARG_CONST_MAP_PTR,
  ARG_PTR_TO_BTF_ID_SOCK_COMMON,
  ARG_PTR_TO_MAP_VALUE | ARG_MAYBE_NULL,
  ARG_ANYTHING,
]);
export const bpf_sk_storage_delete_proto = proto(F.BPF_FUNC_sk_storage_delete, RET_INTEGER, [
  ARG_CONST_MAP_PTR,
  ARG_PTR_TO_BTF_ID_SOCK_COMMON,
]);
// kernel/bpf/bpf_task_storage.c: the task argument is ARG_PTR_TO_BTF_ID_OR_NULL (task_struct).
export const bpf_task_storage_get_proto = proto(
  F.BPF_FUNC_task_storage_get,
  RET_PTR_TO_MAP_VALUE_OR_NULL,
  [ARG_CONST_MAP_PTR, ARG_PTR_TO_BTF_ID | ARG_MAYBE_NULL, ARG_PTR_TO_MAP_VALUE | ARG_MAYBE_NULL, ARG_ANYTHING],
  { argBtfNames: [undefined, "task_struct"] },
);
export const bpf_task_storage_delete_proto = proto(
  F.BPF_FUNC_task_storage_delete,
  RET_INTEGER,
  [ARG_CONST_MAP_PTR, ARG_PTR_TO_BTF_ID | ARG_MAYBE_NULL],
  { argBtfNames: [undefined, "task_struct"] },
);
// kernel/bpf/bpf_cgrp_storage.c: the cgroup is ARG_PTR_TO_BTF_ID_OR_NULL (cgroup), as the 6.18 host
// accepts a NULL or unchecked one (the helpers answer NULL / -EINVAL).
export const bpf_cgrp_storage_get_proto = proto(
  F.BPF_FUNC_cgrp_storage_get,
  RET_PTR_TO_MAP_VALUE_OR_NULL,
  [ARG_CONST_MAP_PTR, ARG_PTR_TO_BTF_ID | ARG_MAYBE_NULL, ARG_PTR_TO_MAP_VALUE | ARG_MAYBE_NULL, ARG_ANYTHING],
  { argBtfNames: [undefined, "cgroup"] },
);
export const bpf_cgrp_storage_delete_proto = proto(
  F.BPF_FUNC_cgrp_storage_delete,
  RET_INTEGER,
  [ARG_CONST_MAP_PTR, ARG_PTR_TO_BTF_ID | ARG_MAYBE_NULL],
  { argBtfNames: [undefined, "cgroup"] },
);
// kernel/trace/bpf_trace.c
export const bpf_get_current_task_proto = proto(F.BPF_FUNC_get_current_task, RET_INTEGER, [], { gplOnly: true });
export const bpf_get_current_task_btf_proto = proto(F.BPF_FUNC_get_current_task_btf, RET_PTR_TO_BTF_ID_TRUSTED, [], {
  gplOnly: true,
  retBtfName: "task_struct",
});
export const bpf_get_current_pid_tgid_proto = proto(F.BPF_FUNC_get_current_pid_tgid, RET_INTEGER, []);
export const bpf_get_current_comm_proto = proto(F.BPF_FUNC_get_current_comm, RET_INTEGER, [
  ARG_PTR_TO_UNINIT_MEM,
  ARG_CONST_SIZE,
]);
export const bpf_tcp_send_ack_proto = proto(F.BPF_FUNC_tcp_send_ack, RET_INTEGER, [ARG_PTR_TO_BTF_ID, ARG_ANYTHING], {
  argBtfNames: ["tcp_sock"],
});
export const bpf_sk_setsockopt_proto = proto(F.BPF_FUNC_setsockopt, RET_INTEGER, [
  ARG_PTR_TO_BTF_ID_SOCK_COMMON,
  ARG_ANYTHING,
  ARG_ANYTHING,
  ARG_PTR_TO_MEM | ARG_MEM_RDONLY,
  ARG_CONST_SIZE,
]);
export const bpf_sk_getsockopt_proto = proto(F.BPF_FUNC_getsockopt, RET_INTEGER, [
  ARG_PTR_TO_BTF_ID_SOCK_COMMON,
  ARG_ANYTHING,
  ARG_ANYTHING,
  ARG_PTR_TO_UNINIT_MEM,
  ARG_CONST_SIZE,
]);

export const bpf_kptr_xchg_proto = proto(F.BPF_FUNC_kptr_xchg, RET_PTR_TO_BTF_ID_OR_NULL, [
  ARG_KPTR_XCHG_DEST,
  ARG_KPTR_XCHG_SRC | ARG_MAYBE_NULL,
]);
export const bpf_per_cpu_ptr_proto = proto(
  F.BPF_FUNC_per_cpu_ptr,
  RET_PTR_TO_MEM_OR_BTF_ID,
  [ARG_PTR_TO_PERCPU_BTF_ID, ARG_ANYTHING],
  { retMaybeNull: true },
);
export const bpf_this_cpu_ptr_proto = proto(F.BPF_FUNC_this_cpu_ptr, RET_PTR_TO_MEM_OR_BTF_ID, [
  ARG_PTR_TO_PERCPU_BTF_ID,
]);
export const bpf_spin_lock_proto = proto(F.BPF_FUNC_spin_lock, RET_VOID, [ARG_PTR_TO_SPIN_LOCK]);
export const bpf_spin_unlock_proto = proto(F.BPF_FUNC_spin_unlock, RET_VOID, [ARG_PTR_TO_SPIN_LOCK]);

// kernel/bpf/helpers.c: bpf_timer (GPL only, bpf_capable)
export const bpf_timer_init_proto = proto(
  F.BPF_FUNC_timer_init,
  RET_INTEGER,
  [ARG_PTR_TO_TIMER, ARG_CONST_MAP_PTR, ARG_ANYTHING],
  { gplOnly: true, privileged: true },
);
export const bpf_timer_set_callback_proto = proto(
  F.BPF_FUNC_timer_set_callback,
  RET_INTEGER,
  [ARG_PTR_TO_TIMER, ARG_PTR_TO_FUNC],
  { gplOnly: true, privileged: true },
);
export const bpf_timer_start_proto = proto(
  F.BPF_FUNC_timer_start,
  RET_INTEGER,
  [ARG_PTR_TO_TIMER, ARG_ANYTHING, ARG_ANYTHING],
  { gplOnly: true, privileged: true },
);
export const bpf_timer_cancel_proto = proto(F.BPF_FUNC_timer_cancel, RET_INTEGER, [ARG_PTR_TO_TIMER], {
  gplOnly: true,
  privileged: true,
});

/** Helper ids of 6.18 past those uapi/bpf.ts names. */
export const BPF_FUNC_get_stack = 67;
export const BPF_FUNC_d_path = 147;
export const BPF_FUNC_copy_from_user = 148;
export const BPF_FUNC_copy_from_user_task = 191;

// kernel/bpf/stackmap.c: the caller's kernel or user stack into a buffer; R0 is refined to the
// buffer's size.
export const bpf_get_stack_proto = proto(
  BPF_FUNC_get_stack,
  RET_INTEGER,
  [ARG_PTR_TO_CTX, ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE_OR_ZERO, ARG_ANYTHING],
  { gplOnly: true, retSizeBound: true },
);
// kernel/bpf/helpers.c: reads of user memory may fault pages in, so only sleepable programs.
export const bpf_copy_from_user_proto = proto(
  BPF_FUNC_copy_from_user,
  RET_INTEGER,
  [ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE_OR_ZERO, ARG_ANYTHING],
  { mightSleep: true },
);
export const bpf_copy_from_user_task_proto = proto(
  BPF_FUNC_copy_from_user_task,
  RET_INTEGER,
  [ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE_OR_ZERO, ARG_ANYTHING, ARG_PTR_TO_BTF_ID, ARG_ANYTHING],
  { gplOnly: true, mightSleep: true, argBtfNames: [undefined, undefined, undefined, "task_struct"] },
);
// kernel/trace/bpf_trace.c: a path's name, where the attach point cannot deadlock on it
// (bpf_d_path_allowed: iterators, sleepable LSM hooks, btf_allowlist_d_path).
export const bpf_d_path_proto = proto(
  BPF_FUNC_d_path,
  RET_INTEGER,
  [ARG_PTR_TO_BTF_ID, ARG_PTR_TO_MEM | ARG_MEM_WRITE, ARG_CONST_SIZE_OR_ZERO],
  {
    argBtfNames: ["path"],
    allowed: (env) =>
      (env.progType === bpf_prog_type.BPF_PROG_TYPE_TRACING &&
        env.expectedAttachType === bpf_attach_type.BPF_TRACE_ITER) ||
      env.attachTarget?.dPathAllowed === true,
  },
);

/** Every helper structops knows; an id outside this table is an "unknown func". */
export const ALL_HELPER_PROTOS: ReadonlyMap<number, FuncProto> = new Map(
  [
    bpf_map_lookup_elem_proto,
    bpf_map_update_elem_proto,
    bpf_map_delete_elem_proto,
    bpf_map_lookup_percpu_elem_proto,
    bpf_map_push_elem_proto,
    bpf_map_pop_elem_proto,
    bpf_map_peek_elem_proto,
    bpf_tail_call_proto,
    bpf_ktime_get_ns_proto,
    bpf_ktime_get_boot_ns_proto,
    bpf_ktime_get_coarse_ns_proto,
    bpf_ktime_get_tai_ns_proto,
    bpf_jiffies64_proto,
    bpf_get_prandom_u32_proto,
    bpf_get_smp_processor_id_proto,
    bpf_trace_printk_proto,
    bpf_probe_read_kernel_proto,
    bpf_probe_read_kernel_str_proto,
    bpf_loop_proto,
    bpf_strncmp_proto,
    bpf_for_each_map_elem_proto,
    bpf_user_ringbuf_drain_proto,
    bpf_sk_storage_get_proto,
    bpf_sk_storage_delete_proto,
    bpf_tcp_send_ack_proto,
    bpf_sk_setsockopt_proto,
    bpf_sk_getsockopt_proto,
    bpf_spin_lock_proto,
    bpf_spin_unlock_proto,
    bpf_kptr_xchg_proto,
    bpf_per_cpu_ptr_proto,
    bpf_this_cpu_ptr_proto,
    bpf_dynptr_from_mem_proto,
    bpf_dynptr_read_proto,
    bpf_dynptr_write_proto,
    bpf_dynptr_data_proto,
    bpf_task_storage_get_proto,
    bpf_task_storage_delete_proto,
    bpf_cgrp_storage_get_proto,
    bpf_cgrp_storage_delete_proto,
    bpf_ringbuf_output_proto,
    bpf_ringbuf_reserve_proto,
    bpf_ringbuf_submit_proto,
    bpf_ringbuf_discard_proto,
    bpf_ringbuf_query_proto,
    bpf_ringbuf_reserve_dynptr_proto,
    bpf_ringbuf_submit_dynptr_proto,
    bpf_ringbuf_discard_dynptr_proto,
    bpf_get_current_task_proto,
    bpf_get_current_task_btf_proto,
    bpf_get_current_pid_tgid_proto,
    bpf_get_current_comm_proto,
    bpf_timer_init_proto,
    bpf_timer_set_callback_proto,
    bpf_timer_start_proto,
    bpf_timer_cancel_proto,
    bpf_get_stack_proto,
    bpf_copy_from_user_proto,
    bpf_copy_from_user_task_proto,
    bpf_d_path_proto,
  ].map((p) => [p.funcId, p]),
);

/** bpf_base_func_proto: what every program type may call (privileged parts need bpf_capable). */
export function bpfBaseFuncProto(funcId: number, privileged: boolean): FuncProto | undefined {
  switch (funcId) {
    case F.BPF_FUNC_map_lookup_elem:
    case F.BPF_FUNC_map_update_elem:
    case F.BPF_FUNC_map_delete_elem:
    case F.BPF_FUNC_map_lookup_percpu_elem:
    case F.BPF_FUNC_map_push_elem:
    case F.BPF_FUNC_map_pop_elem:
    case F.BPF_FUNC_map_peek_elem:
    case F.BPF_FUNC_ktime_get_ns:
    case F.BPF_FUNC_ktime_get_boot_ns:
    case F.BPF_FUNC_ktime_get_tai_ns:
    case F.BPF_FUNC_jiffies64:
    case F.BPF_FUNC_get_prandom_u32:
    case F.BPF_FUNC_get_smp_processor_id:
    case F.BPF_FUNC_ringbuf_output:
    case F.BPF_FUNC_ringbuf_reserve:
    case F.BPF_FUNC_ringbuf_submit:
    case F.BPF_FUNC_ringbuf_discard:
    case F.BPF_FUNC_ringbuf_query:
    case F.BPF_FUNC_tail_call:
    case F.BPF_FUNC_strncmp:
      return ALL_HELPER_PROTOS.get(funcId);
    case F.BPF_FUNC_loop:
      return privileged ? bpf_loop_proto : undefined;
    case F.BPF_FUNC_for_each_map_elem:
      return privileged ? bpf_for_each_map_elem_proto : undefined;
    case F.BPF_FUNC_user_ringbuf_drain:
      return privileged ? bpf_user_ringbuf_drain_proto : undefined;
    case F.BPF_FUNC_spin_lock:
    case F.BPF_FUNC_spin_unlock:
    case F.BPF_FUNC_kptr_xchg:
    case F.BPF_FUNC_timer_init:
    case F.BPF_FUNC_timer_set_callback:
    case F.BPF_FUNC_timer_start:
    case F.BPF_FUNC_timer_cancel:
      return privileged ? ALL_HELPER_PROTOS.get(funcId) : undefined;
    // Task storage from any program type (bpf_capable), as syscall programs use it.
    case F.BPF_FUNC_task_storage_get:
      return privileged ? bpf_task_storage_get_proto : undefined;
    case F.BPF_FUNC_task_storage_delete:
      return privileged ? bpf_task_storage_delete_proto : undefined;
    case F.BPF_FUNC_cgrp_storage_get:
      return privileged ? bpf_cgrp_storage_get_proto : undefined;
    case F.BPF_FUNC_cgrp_storage_delete:
      return privileged ? bpf_cgrp_storage_delete_proto : undefined;
    case F.BPF_FUNC_trace_printk:
    case F.BPF_FUNC_probe_read_kernel:
    case F.BPF_FUNC_probe_read_kernel_str:
    case F.BPF_FUNC_get_current_task_btf:
    case F.BPF_FUNC_per_cpu_ptr:
    case F.BPF_FUNC_this_cpu_ptr:
    case F.BPF_FUNC_dynptr_from_mem:
    case F.BPF_FUNC_dynptr_read:
    case F.BPF_FUNC_dynptr_write:
    case F.BPF_FUNC_dynptr_data:
    case F.BPF_FUNC_ringbuf_reserve_dynptr:
    case F.BPF_FUNC_ringbuf_submit_dynptr:
    case F.BPF_FUNC_ringbuf_discard_dynptr:
      return privileged ? ALL_HELPER_PROTOS.get(funcId) : undefined;
    default:
      return undefined;
  }
}

/**
 * bpf_tracing_func_proto (kernel/trace/bpf_trace.c), the helpers structops provides of it:
 * tracing (fentry/fexit), raw_tp and the like; then the base protos.
 */
export function bpfTracingFuncProto(funcId: number, privileged: boolean): FuncProto | undefined {
  switch (funcId) {
    case BPF_FUNC_copy_from_user:
      return bpf_copy_from_user_proto;
    case BPF_FUNC_copy_from_user_task:
      return bpf_copy_from_user_task_proto;
    case F.BPF_FUNC_task_storage_get:
      return bpf_task_storage_get_proto;
    case F.BPF_FUNC_task_storage_delete:
      return bpf_task_storage_delete_proto;
    case F.BPF_FUNC_get_current_task:
      return bpf_get_current_task_proto;
    case F.BPF_FUNC_get_current_task_btf:
      return bpf_get_current_task_btf_proto;
    case F.BPF_FUNC_get_current_pid_tgid:
      return bpf_get_current_pid_tgid_proto;
    case F.BPF_FUNC_get_current_comm:
      return bpf_get_current_comm_proto;
    case F.BPF_FUNC_trace_printk:
    case F.BPF_FUNC_probe_read_kernel:
      return ALL_HELPER_PROTOS.get(funcId);
    default:
      return bpfBaseFuncProto(funcId, privileged);
  }
}

/**
 * raw_tp_prog_func_proto, which kprobe, tracepoint and perf_event programs' tables share here:
 * bpf_get_stack, then bpf_tracing_func_proto.
 */
export function bpfRawTpFuncProto(funcId: number, env: VerifierEnv): FuncProto | undefined {
  if (funcId === BPF_FUNC_get_stack) return bpf_get_stack_proto;
  return bpfTracingFuncProto(funcId, !!env.privileged);
}

/** tracing_prog_func_proto (fentry/fexit/fmod_ret, tp_btf, iterators; LSM falls back to it). */
export function tracingProgFuncProto(funcId: number, env: VerifierEnv): FuncProto | undefined {
  if (funcId === BPF_FUNC_d_path) return bpf_d_path_proto;
  return bpfRawTpFuncProto(funcId, env);
}

/**
 * bpf_tcp_ca_get_func_proto (net/ipv4/bpf_tcp_ca.c): tcp_send_ack, sk_storage, set/getsockopt
 * (not from `release`), ktime_get_coarse_ns, then the base protos.
 */
export function tcpCaGetFuncProto(funcId: number, memberName: string, privileged: boolean): FuncProto | undefined {
  switch (funcId) {
    case F.BPF_FUNC_tcp_send_ack:
      return bpf_tcp_send_ack_proto;
    case F.BPF_FUNC_sk_storage_get:
      return bpf_sk_storage_get_proto;
    case F.BPF_FUNC_sk_storage_delete:
      return bpf_sk_storage_delete_proto;
    case F.BPF_FUNC_setsockopt:
      return memberName === "release" ? undefined : bpf_sk_setsockopt_proto;
    case F.BPF_FUNC_getsockopt:
      return memberName === "release" ? undefined : bpf_sk_getsockopt_proto;
    case F.BPF_FUNC_ktime_get_coarse_ns:
      return bpf_ktime_get_coarse_ns_proto;
    default:
      return bpfBaseFuncProto(funcId, privileged);
  }
}
