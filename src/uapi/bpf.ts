/** Numbers from include/uapi/linux/bpf.h, named as there. */

export const bpf_cmd = {
  BPF_MAP_CREATE: 0,
  BPF_MAP_LOOKUP_ELEM: 1,
  BPF_MAP_UPDATE_ELEM: 2,
  BPF_MAP_DELETE_ELEM: 3,
  BPF_MAP_GET_NEXT_KEY: 4,
  BPF_PROG_LOAD: 5,
  BPF_OBJ_PIN: 6,
  BPF_OBJ_GET: 7,
  BPF_PROG_ATTACH: 8,
  BPF_PROG_DETACH: 9,
  BPF_PROG_TEST_RUN: 10,
  BPF_PROG_GET_NEXT_ID: 11,
  BPF_MAP_GET_NEXT_ID: 12,
  BPF_PROG_GET_FD_BY_ID: 13,
  BPF_MAP_GET_FD_BY_ID: 14,
  BPF_OBJ_GET_INFO_BY_FD: 15,
  BPF_PROG_QUERY: 16,
  BPF_RAW_TRACEPOINT_OPEN: 17,
  BPF_BTF_LOAD: 18,
  BPF_BTF_GET_FD_BY_ID: 19,
  BPF_TASK_FD_QUERY: 20,
  BPF_MAP_LOOKUP_AND_DELETE_ELEM: 21,
  BPF_MAP_FREEZE: 22,
  BPF_BTF_GET_NEXT_ID: 23,
  BPF_MAP_LOOKUP_BATCH: 24,
  BPF_MAP_LOOKUP_AND_DELETE_BATCH: 25,
  BPF_MAP_UPDATE_BATCH: 26,
  BPF_MAP_DELETE_BATCH: 27,
  BPF_LINK_CREATE: 28,
  BPF_LINK_UPDATE: 29,
  BPF_LINK_GET_FD_BY_ID: 30,
  BPF_LINK_GET_NEXT_ID: 31,
  BPF_ENABLE_STATS: 32,
  BPF_ITER_CREATE: 33,
  BPF_LINK_DETACH: 34,
  BPF_PROG_BIND_MAP: 35,
  BPF_TOKEN_CREATE: 36,
} as const;
export type BpfCmd = (typeof bpf_cmd)[keyof typeof bpf_cmd];

export const bpf_map_type = {
  BPF_MAP_TYPE_UNSPEC: 0,
  BPF_MAP_TYPE_HASH: 1,
  BPF_MAP_TYPE_ARRAY: 2,
  BPF_MAP_TYPE_PROG_ARRAY: 3,
  BPF_MAP_TYPE_PERF_EVENT_ARRAY: 4,
  BPF_MAP_TYPE_PERCPU_HASH: 5,
  BPF_MAP_TYPE_PERCPU_ARRAY: 6,
  BPF_MAP_TYPE_STACK_TRACE: 7,
  BPF_MAP_TYPE_CGROUP_ARRAY: 8,
  BPF_MAP_TYPE_LRU_HASH: 9,
  BPF_MAP_TYPE_LRU_PERCPU_HASH: 10,
  BPF_MAP_TYPE_LPM_TRIE: 11,
  BPF_MAP_TYPE_ARRAY_OF_MAPS: 12,
  BPF_MAP_TYPE_HASH_OF_MAPS: 13,
  BPF_MAP_TYPE_DEVMAP: 14,
  BPF_MAP_TYPE_SOCKMAP: 15,
  BPF_MAP_TYPE_CPUMAP: 16,
  BPF_MAP_TYPE_XSKMAP: 17,
  BPF_MAP_TYPE_SOCKHASH: 18,
  BPF_MAP_TYPE_CGROUP_STORAGE: 19,
  BPF_MAP_TYPE_REUSEPORT_SOCKARRAY: 20,
  BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: 21,
  BPF_MAP_TYPE_QUEUE: 22,
  BPF_MAP_TYPE_STACK: 23,
  BPF_MAP_TYPE_SK_STORAGE: 24,
  BPF_MAP_TYPE_DEVMAP_HASH: 25,
  BPF_MAP_TYPE_STRUCT_OPS: 26,
  BPF_MAP_TYPE_RINGBUF: 27,
  BPF_MAP_TYPE_INODE_STORAGE: 28,
  BPF_MAP_TYPE_TASK_STORAGE: 29,
  BPF_MAP_TYPE_BLOOM_FILTER: 30,
  BPF_MAP_TYPE_USER_RINGBUF: 31,
  BPF_MAP_TYPE_CGRP_STORAGE: 32,
  BPF_MAP_TYPE_ARENA: 33,
} as const;

export const bpf_prog_type = {
  BPF_PROG_TYPE_UNSPEC: 0,
  BPF_PROG_TYPE_SOCKET_FILTER: 1,
  BPF_PROG_TYPE_KPROBE: 2,
  BPF_PROG_TYPE_SCHED_CLS: 3,
  BPF_PROG_TYPE_SCHED_ACT: 4,
  BPF_PROG_TYPE_TRACEPOINT: 5,
  BPF_PROG_TYPE_XDP: 6,
  BPF_PROG_TYPE_PERF_EVENT: 7,
  BPF_PROG_TYPE_CGROUP_SKB: 8,
  BPF_PROG_TYPE_CGROUP_SOCK: 9,
  BPF_PROG_TYPE_LWT_IN: 10,
  BPF_PROG_TYPE_LWT_OUT: 11,
  BPF_PROG_TYPE_LWT_XMIT: 12,
  BPF_PROG_TYPE_SOCK_OPS: 13,
  BPF_PROG_TYPE_SK_SKB: 14,
  BPF_PROG_TYPE_CGROUP_DEVICE: 15,
  BPF_PROG_TYPE_SK_MSG: 16,
  BPF_PROG_TYPE_RAW_TRACEPOINT: 17,
  BPF_PROG_TYPE_CGROUP_SOCK_ADDR: 18,
  BPF_PROG_TYPE_LWT_SEG6LOCAL: 19,
  BPF_PROG_TYPE_LIRC_MODE2: 20,
  BPF_PROG_TYPE_SK_REUSEPORT: 21,
  BPF_PROG_TYPE_FLOW_DISSECTOR: 22,
  BPF_PROG_TYPE_CGROUP_SYSCTL: 23,
  BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE: 24,
  BPF_PROG_TYPE_CGROUP_SOCKOPT: 25,
  BPF_PROG_TYPE_TRACING: 26,
  BPF_PROG_TYPE_STRUCT_OPS: 27,
  BPF_PROG_TYPE_EXT: 28,
  BPF_PROG_TYPE_LSM: 29,
  BPF_PROG_TYPE_SK_LOOKUP: 30,
  BPF_PROG_TYPE_SYSCALL: 31,
  BPF_PROG_TYPE_NETFILTER: 32,
} as const;

export const bpf_attach_type = {
  BPF_CGROUP_INET_INGRESS: 0,
  BPF_CGROUP_INET_EGRESS: 1,
  BPF_CGROUP_INET_SOCK_CREATE: 2,
  BPF_CGROUP_SOCK_OPS: 3,
  BPF_SK_SKB_STREAM_PARSER: 4,
  BPF_SK_SKB_STREAM_VERDICT: 5,
  BPF_CGROUP_DEVICE: 6,
  BPF_SK_MSG_VERDICT: 7,
  BPF_CGROUP_INET4_BIND: 8,
  BPF_CGROUP_INET6_BIND: 9,
  BPF_CGROUP_INET4_CONNECT: 10,
  BPF_CGROUP_INET6_CONNECT: 11,
  BPF_CGROUP_INET4_POST_BIND: 12,
  BPF_CGROUP_INET6_POST_BIND: 13,
  BPF_CGROUP_UDP4_SENDMSG: 14,
  BPF_CGROUP_UDP6_SENDMSG: 15,
  BPF_LIRC_MODE2: 16,
  BPF_FLOW_DISSECTOR: 17,
  BPF_CGROUP_SYSCTL: 18,
  BPF_CGROUP_UDP4_RECVMSG: 19,
  BPF_CGROUP_UDP6_RECVMSG: 20,
  BPF_CGROUP_GETSOCKOPT: 21,
  BPF_CGROUP_SETSOCKOPT: 22,
  BPF_TRACE_RAW_TP: 23,
  BPF_TRACE_FENTRY: 24,
  BPF_TRACE_FEXIT: 25,
  BPF_MODIFY_RETURN: 26,
  BPF_LSM_MAC: 27,
  BPF_TRACE_ITER: 28,
  BPF_CGROUP_INET4_GETPEERNAME: 29,
  BPF_CGROUP_INET6_GETPEERNAME: 30,
  BPF_CGROUP_INET4_GETSOCKNAME: 31,
  BPF_CGROUP_INET6_GETSOCKNAME: 32,
  BPF_XDP_DEVMAP: 33,
  BPF_CGROUP_INET_SOCK_RELEASE: 34,
  BPF_XDP_CPUMAP: 35,
  BPF_SK_LOOKUP: 36,
  BPF_XDP: 37,
  BPF_SK_SKB_VERDICT: 38,
  BPF_SK_REUSEPORT_SELECT: 39,
  BPF_SK_REUSEPORT_SELECT_OR_MIGRATE: 40,
  BPF_PERF_EVENT: 41,
  BPF_TRACE_KPROBE_MULTI: 42,
  BPF_LSM_CGROUP: 43,
  BPF_STRUCT_OPS: 44,
  BPF_NETFILTER: 45,
  BPF_TCX_INGRESS: 46,
  BPF_TCX_EGRESS: 47,
  BPF_TRACE_UPROBE_MULTI: 48,
  BPF_CGROUP_UNIX_CONNECT: 49,
  BPF_CGROUP_UNIX_SENDMSG: 50,
  BPF_CGROUP_UNIX_RECVMSG: 51,
  BPF_CGROUP_UNIX_GETPEERNAME: 52,
  BPF_CGROUP_UNIX_GETSOCKNAME: 53,
  BPF_NETKIT_PRIMARY: 54,
  BPF_NETKIT_PEER: 55,
  BPF_TRACE_KPROBE_SESSION: 56,
  BPF_TRACE_UPROBE_SESSION: 57,
} as const;

export const bpf_link_type = {
  BPF_LINK_TYPE_UNSPEC: 0,
  BPF_LINK_TYPE_RAW_TRACEPOINT: 1,
  BPF_LINK_TYPE_TRACING: 2,
  BPF_LINK_TYPE_CGROUP: 3,
  BPF_LINK_TYPE_ITER: 4,
  BPF_LINK_TYPE_NETNS: 5,
  BPF_LINK_TYPE_XDP: 6,
  BPF_LINK_TYPE_PERF_EVENT: 7,
  BPF_LINK_TYPE_KPROBE_MULTI: 8,
  BPF_LINK_TYPE_STRUCT_OPS: 9,
  BPF_LINK_TYPE_NETFILTER: 10,
  BPF_LINK_TYPE_TCX: 11,
  BPF_LINK_TYPE_UPROBE_MULTI: 12,
  BPF_LINK_TYPE_NETKIT: 13,
  BPF_LINK_TYPE_SOCKMAP: 14,
} as const;

/** Map creation flags (attr->map_flags). */
export const BPF_F_NO_PREALLOC = 1 << 0;
export const BPF_F_NO_COMMON_LRU = 1 << 1;
export const BPF_F_NUMA_NODE = 1 << 2;
export const BPF_F_RDONLY = 1 << 3;
export const BPF_F_WRONLY = 1 << 4;
export const BPF_F_STACK_BUILD_ID = 1 << 5;
export const BPF_F_ZERO_SEED = 1 << 6;
export const BPF_F_RDONLY_PROG = 1 << 7;
export const BPF_F_WRONLY_PROG = 1 << 8;
export const BPF_F_CLONE = 1 << 9;
export const BPF_F_MMAPABLE = 1 << 10;
export const BPF_F_PRESERVE_ELEMS = 1 << 11;
export const BPF_F_INNER_MAP = 1 << 12;
export const BPF_F_LINK = 1 << 13;
export const BPF_F_PATH_FD = 1 << 14;
export const BPF_F_VTYPE_BTF_OBJ_FD = 1 << 15;
export const BPF_F_TOKEN_FD = 1 << 16;
export const BPF_F_SEGV_ON_FAULT = 1 << 17;
export const BPF_F_NO_USER_CONV = 1 << 18;

/** Element update flags. */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
export const BPF_F_LOCK = 4;

/** attr->prog_flags. */
export const BPF_F_STRICT_ALIGNMENT = 1 << 0;
export const BPF_F_ANY_ALIGNMENT = 1 << 1;
export const BPF_F_TEST_RND_HI32 = 1 << 2;
export const BPF_F_TEST_STATE_FREQ = 1 << 3;
export const BPF_F_SLEEPABLE = 1 << 4;
export const BPF_F_XDP_HAS_FRAGS = 1 << 5;
export const BPF_F_XDP_DEV_BOUND_ONLY = 1 << 6;
export const BPF_F_TEST_REG_INVARIANTS = 1 << 7;

/** BPF_LINK_UPDATE flags. */
export const BPF_F_REPLACE = 1 << 2;

/** bpf_timer_start flags. */
export const BPF_F_TIMER_ABS = 1 << 0;
export const BPF_F_TIMER_CPU_PIN = 1 << 1;

/** BPF_PROG_TEST_RUN flags. */
export const BPF_F_TEST_RUN_ON_CPU = 1 << 0;
export const BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1;

/** ld_imm64 src_reg values. */
export const BPF_PSEUDO_MAP_FD = 1;
export const BPF_PSEUDO_MAP_VALUE = 2;
export const BPF_PSEUDO_BTF_ID = 3;
export const BPF_PSEUDO_FUNC = 4;
export const BPF_PSEUDO_MAP_IDX = 5;
export const BPF_PSEUDO_MAP_IDX_VALUE = 6;
/** call src_reg values. */
export const BPF_PSEUDO_CALL = 1;
export const BPF_PSEUDO_KFUNC_CALL = 2;

export const BPF_OBJ_NAME_LEN = 16;
export const BPF_TAG_SIZE = 8;
export const MAX_BPF_STACK = 512;
export const MAX_CALL_FRAMES = 8;
/** include/linux/bpf.h: tail calls one run may take. */
export const MAX_TAIL_CALL_CNT = 33;
export const BPF_MAX_VAR_SIZ = 1 << 29;
export const BPF_COMPLEXITY_LIMIT_INSNS = 1_000_000;
export const BPF_MAXINSNS = 4096;

/** enum bpf_struct_ops_state (include/linux/bpf.h). */
export const bpf_struct_ops_state = {
  BPF_STRUCT_OPS_STATE_INIT: 0,
  BPF_STRUCT_OPS_STATE_INUSE: 1,
  BPF_STRUCT_OPS_STATE_TOBEFREE: 2,
  BPF_STRUCT_OPS_STATE_READY: 3,
} as const;
export type BpfStructOpsState = (typeof bpf_struct_ops_state)[keyof typeof bpf_struct_ops_state];

/** Helper function ids (enum bpf_func_id), the ones structops provides or names in logs. */
export const bpf_func_id = {
  BPF_FUNC_unspec: 0,
  BPF_FUNC_map_lookup_elem: 1,
  BPF_FUNC_map_update_elem: 2,
  BPF_FUNC_map_delete_elem: 3,
  BPF_FUNC_probe_read: 4,
  BPF_FUNC_ktime_get_ns: 5,
  BPF_FUNC_trace_printk: 6,
  BPF_FUNC_get_prandom_u32: 7,
  BPF_FUNC_get_smp_processor_id: 8,
  BPF_FUNC_skb_store_bytes: 9,
  BPF_FUNC_l3_csum_replace: 10,
  BPF_FUNC_l4_csum_replace: 11,
  BPF_FUNC_tail_call: 12,
  BPF_FUNC_get_current_pid_tgid: 14,
  BPF_FUNC_get_current_uid_gid: 15,
  BPF_FUNC_get_current_comm: 16,
  BPF_FUNC_skb_vlan_push: 18,
  BPF_FUNC_skb_vlan_pop: 19,
  BPF_FUNC_redirect: 23,
  BPF_FUNC_skb_load_bytes: 26,
  BPF_FUNC_csum_diff: 28,
  BPF_FUNC_skb_change_proto: 31,
  BPF_FUNC_skb_change_type: 32,
  BPF_FUNC_get_hash_recalc: 34,
  BPF_FUNC_get_current_task: 35,
  BPF_FUNC_skb_change_tail: 38,
  BPF_FUNC_skb_pull_data: 39,
  BPF_FUNC_csum_update: 40,
  BPF_FUNC_set_hash_invalid: 41,
  BPF_FUNC_skb_change_head: 43,
  BPF_FUNC_xdp_adjust_head: 44,
  BPF_FUNC_set_hash: 48,
  BPF_FUNC_setsockopt: 49,
  BPF_FUNC_skb_adjust_room: 50,
  BPF_FUNC_xdp_adjust_meta: 54,
  BPF_FUNC_getsockopt: 57,
  BPF_FUNC_xdp_adjust_tail: 65,
  BPF_FUNC_skb_load_bytes_relative: 68,
  BPF_FUNC_map_push_elem: 87,
  BPF_FUNC_map_pop_elem: 88,
  BPF_FUNC_map_peek_elem: 89,
  BPF_FUNC_spin_lock: 93,
  BPF_FUNC_spin_unlock: 94,
  BPF_FUNC_sk_storage_get: 107,
  BPF_FUNC_sk_storage_delete: 108,
  BPF_FUNC_probe_read_user: 112,
  BPF_FUNC_probe_read_kernel: 113,
  BPF_FUNC_probe_read_user_str: 114,
  BPF_FUNC_probe_read_kernel_str: 115,
  BPF_FUNC_tcp_send_ack: 116,
  BPF_FUNC_jiffies64: 118,
  BPF_FUNC_ktime_get_boot_ns: 125,
  BPF_FUNC_ringbuf_output: 130,
  BPF_FUNC_ringbuf_reserve: 131,
  BPF_FUNC_ringbuf_submit: 132,
  BPF_FUNC_ringbuf_discard: 133,
  BPF_FUNC_ringbuf_query: 134,
  BPF_FUNC_csum_level: 135,
  BPF_FUNC_per_cpu_ptr: 153,
  BPF_FUNC_this_cpu_ptr: 154,
  BPF_FUNC_task_storage_get: 156,
  BPF_FUNC_task_storage_delete: 157,
  BPF_FUNC_get_current_task_btf: 158,
  BPF_FUNC_ktime_get_coarse_ns: 160,
  BPF_FUNC_for_each_map_elem: 164,
  BPF_FUNC_timer_init: 169,
  BPF_FUNC_timer_set_callback: 170,
  BPF_FUNC_timer_start: 171,
  BPF_FUNC_timer_cancel: 172,
  BPF_FUNC_snprintf: 165,
  BPF_FUNC_loop: 181,
  BPF_FUNC_strncmp: 182,
  BPF_FUNC_get_func_arg: 183,
  BPF_FUNC_get_func_ret: 184,
  BPF_FUNC_get_func_arg_cnt: 185,
  BPF_FUNC_xdp_get_buff_len: 188,
  BPF_FUNC_xdp_load_bytes: 189,
  BPF_FUNC_xdp_store_bytes: 190,
  BPF_FUNC_kptr_xchg: 194,
  BPF_FUNC_map_lookup_percpu_elem: 195,
  BPF_FUNC_dynptr_from_mem: 197,
  BPF_FUNC_ringbuf_reserve_dynptr: 198,
  BPF_FUNC_ringbuf_submit_dynptr: 199,
  BPF_FUNC_ringbuf_discard_dynptr: 200,
  BPF_FUNC_dynptr_read: 201,
  BPF_FUNC_dynptr_write: 202,
  BPF_FUNC_dynptr_data: 203,
  BPF_FUNC_ktime_get_tai_ns: 208,
  BPF_FUNC_user_ringbuf_drain: 209,
  BPF_FUNC_cgrp_storage_get: 210,
  BPF_FUNC_cgrp_storage_delete: 211,
} as const;

/** One past the last helper id of 6.18 (BPF_FUNC_cgrp_storage_delete is 211). */
export const __BPF_FUNC_MAX_ID = 212;

/** bpf_sk_storage_get flags. */
export const BPF_SK_STORAGE_GET_F_CREATE = 1 << 0;
/** bpf_task_storage_get (and the other local storages') flags. */
export const BPF_LOCAL_STORAGE_GET_F_CREATE = 1 << 0;

/** Reverse lookup for logs: "BPF_MAP_TYPE_ARRAY" -> "array" style names are built by callers. */
export function nameOf(table: Record<string, number>, value: number): string | undefined {
  for (const [k, v] of Object.entries(table)) if (v === value) return k;
  return undefined;
}
