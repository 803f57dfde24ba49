/**
 * The sched_ext constants of Linux 6.18 (kernel/sched/ext_internal.h, include/linux/sched/ext.h,
 * ext_idle.c): the enums a scheduler reads from kernel BTF, as numbers the core uses and as the
 * (name, value) lists the BTF declares. One table feeds both, so they cannot disagree.
 */

const B = (n: number): bigint => 1n << BigInt(n);

export const NSEC_PER_MSEC = 1_000_000n;
/** CONFIG_HZ of the simulated kernel. */
export const HZ = 1000;

/** enum scx_public_consts. */
export const SCX_OPS_NAME_LEN = 128;
export const SCX_SLICE_DFL = 20n * NSEC_PER_MSEC;
export const SCX_SLICE_INF = 0xffff_ffff_ffff_ffffn;

/** enum scx_consts. */
export const SCX_DSP_DFL_MAX_BATCH = 32;
export const SCX_DSP_MAX_LOOPS = 32;
export const SCX_WATCHDOG_MAX_TIMEOUT_MS = 30_000;
export const SCX_EXIT_BT_LEN = 64;
export const SCX_EXIT_MSG_LEN = 1024;
export const SCX_EXIT_DUMP_DFL_LEN = 32768;
export const SCX_CPUPERF_ONE = 1024;

/** enum scx_dsq_id_flags. */
export const SCX_DSQ_FLAG_BUILTIN = B(63);
export const SCX_DSQ_FLAG_LOCAL_ON = B(62);
export const SCX_DSQ_INVALID = SCX_DSQ_FLAG_BUILTIN | 0n;
export const SCX_DSQ_GLOBAL = SCX_DSQ_FLAG_BUILTIN | 1n;
export const SCX_DSQ_LOCAL = SCX_DSQ_FLAG_BUILTIN | 2n;
export const SCX_DSQ_LOCAL_ON = SCX_DSQ_FLAG_BUILTIN | SCX_DSQ_FLAG_LOCAL_ON;
export const SCX_DSQ_LOCAL_CPU_MASK = 0xffff_ffffn;

/** enum scx_enq_flags. */
export const SCX_ENQ_WAKEUP = 1n;
export const SCX_ENQ_HEAD = B(4);
export const SCX_ENQ_CPU_SELECTED = B(10);
export const SCX_ENQ_PREEMPT = B(32);
export const SCX_ENQ_REENQ = B(40);
export const SCX_ENQ_LAST = B(41);
export const SCX_ENQ_CLEAR_OPSS = B(56);
export const SCX_ENQ_DSQ_PRIQ = B(57);

/** enum scx_deq_flags. */
export const SCX_DEQ_SLEEP = 1n;
export const SCX_DEQ_CORE_SCHED_EXEC = B(32);

/** enum scx_kick_flags. */
export const SCX_KICK_IDLE = 1n;
export const SCX_KICK_PREEMPT = 2n;
export const SCX_KICK_WAIT = 4n;

/** enum scx_pick_idle_cpu_flags. */
export const SCX_PICK_IDLE_CORE = 1n;
export const SCX_PICK_IDLE_IN_NODE = 2n;

/** enum scx_ops_flags. */
export const SCX_OPS_KEEP_BUILTIN_IDLE = B(0);
export const SCX_OPS_ENQ_LAST = B(1);
export const SCX_OPS_ENQ_EXITING = B(2);
export const SCX_OPS_SWITCH_PARTIAL = B(3);
export const SCX_OPS_ENQ_MIGRATION_DISABLED = B(4);
export const SCX_OPS_ALLOW_QUEUED_WAKEUP = B(5);
export const SCX_OPS_BUILTIN_IDLE_PER_NODE = B(6);
export const SCX_OPS_HAS_CGROUP_WEIGHT = B(16);
export const SCX_OPS_ALL_FLAGS =
  SCX_OPS_KEEP_BUILTIN_IDLE |
  SCX_OPS_ENQ_LAST |
  SCX_OPS_ENQ_EXITING |
  SCX_OPS_ENQ_MIGRATION_DISABLED |
  SCX_OPS_ALLOW_QUEUED_WAKEUP |
  SCX_OPS_SWITCH_PARTIAL |
  SCX_OPS_BUILTIN_IDLE_PER_NODE |
  SCX_OPS_HAS_CGROUP_WEIGHT;
export const SCX_OPS_HAS_CPU_PREEMPT = B(56);

/** enum scx_exit_kind. */
export const SCX_EXIT_NONE = 0;
export const SCX_EXIT_DONE = 1;
export const SCX_EXIT_UNREG = 64;
export const SCX_EXIT_UNREG_BPF = 65;
export const SCX_EXIT_UNREG_KERN = 66;
export const SCX_EXIT_SYSRQ = 67;
export const SCX_EXIT_ERROR = 1024;
export const SCX_EXIT_ERROR_BPF = 1025;
export const SCX_EXIT_ERROR_STALL = 1026;

/** enum scx_exit_code. */
export const SCX_ECODE_RSN_HOTPLUG = B(32);
export const SCX_ECODE_ACT_RESTART = B(48);

/** enum scx_exit_flags. */
export const SCX_EFLAG_INITIALIZED = 1n;

/** enum scx_kf_mask: which kfuncs the op being run may call (current->scx.kf_mask). */
export const SCX_KF_UNLOCKED = 0;
export const SCX_KF_CPU_RELEASE = 1 << 0;
export const SCX_KF_DISPATCH = 1 << 1;
export const SCX_KF_ENQUEUE = 1 << 2;
export const SCX_KF_SELECT_CPU = 1 << 3;
export const SCX_KF_REST = 1 << 4;

/** enum scx_ent_flags (p->scx.flags). */
export const SCX_TASK_QUEUED = 1 << 0;
export const SCX_TASK_RESET_RUNNABLE_AT = 1 << 2;
export const SCX_TASK_DEQD_FOR_SLEEP = 1 << 3;
export const SCX_TASK_STATE_SHIFT = 8;
export const SCX_TASK_STATE_BITS = 2;
export const SCX_TASK_STATE_MASK = 3 << 8;
export const SCX_TASK_CURSOR = 2 ** 31;

/** enum scx_task_state. */
export const SCX_TASK_NONE = 0;
export const SCX_TASK_INIT = 1;
export const SCX_TASK_READY = 2;
export const SCX_TASK_ENABLED = 3;

/** enum scx_dsq_iter_flags. */
export const SCX_DSQ_ITER_REV = 1 << 16;
export const __SCX_DSQ_ITER_HAS_SLICE = 1 << 30;
export const __SCX_DSQ_ITER_HAS_VTIME = 2 ** 31;
export const __SCX_DSQ_ITER_USER_FLAGS = SCX_DSQ_ITER_REV;

/** enum scx_wake_flags (SCX_WAKE_*: the core's WF_* values). */
export const SCX_WAKE_FORK = 0x04;
export const SCX_WAKE_TTWU = 0x08;
export const SCX_WAKE_SYNC = 0x10;

/** SCHED_EXT, the policy number. */
export const SCHED_EXT = 7;

/** Weights: nice 0 is 1024 in the core, 100 for sched_ext (sched_weight_to_cgroup). */
export const SCX_WEIGHT_DFL = 100;

type Enum = { name: string; size: 4 | 8; signed?: boolean; values: [string, number | bigint][] };

/** Every enum userspace or a scheduler reads from kernel BTF, in declaration order. */
export const SCX_ENUMS: readonly Enum[] = [
  {
    name: "scx_public_consts",
    size: 8,
    values: [
      ["SCX_OPS_NAME_LEN", SCX_OPS_NAME_LEN],
      ["SCX_SLICE_DFL", SCX_SLICE_DFL],
      ["SCX_SLICE_INF", SCX_SLICE_INF],
    ],
  },
  {
    name: "scx_consts",
    size: 4,
    values: [
      ["SCX_DSP_DFL_MAX_BATCH", SCX_DSP_DFL_MAX_BATCH],
      ["SCX_DSP_MAX_LOOPS", SCX_DSP_MAX_LOOPS],
      ["SCX_WATCHDOG_MAX_TIMEOUT", (SCX_WATCHDOG_MAX_TIMEOUT_MS * HZ) / 1000],
      ["SCX_EXIT_BT_LEN", SCX_EXIT_BT_LEN],
      ["SCX_EXIT_MSG_LEN", SCX_EXIT_MSG_LEN],
      ["SCX_EXIT_DUMP_DFL_LEN", SCX_EXIT_DUMP_DFL_LEN],
      ["SCX_CPUPERF_ONE", SCX_CPUPERF_ONE],
      ["SCX_TASK_ITER_BATCH", 32],
    ],
  },
  {
    name: "scx_exit_kind",
    size: 4,
    values: [
      ["SCX_EXIT_NONE", SCX_EXIT_NONE],
      ["SCX_EXIT_DONE", SCX_EXIT_DONE],
      ["SCX_EXIT_UNREG", SCX_EXIT_UNREG],
      ["SCX_EXIT_UNREG_BPF", SCX_EXIT_UNREG_BPF],
      ["SCX_EXIT_UNREG_KERN", SCX_EXIT_UNREG_KERN],
      ["SCX_EXIT_SYSRQ", SCX_EXIT_SYSRQ],
      ["SCX_EXIT_ERROR", SCX_EXIT_ERROR],
      ["SCX_EXIT_ERROR_BPF", SCX_EXIT_ERROR_BPF],
      ["SCX_EXIT_ERROR_STALL", SCX_EXIT_ERROR_STALL],
    ],
  },
  {
    name: "scx_exit_code",
    size: 8,
    values: [
      ["SCX_ECODE_RSN_HOTPLUG", SCX_ECODE_RSN_HOTPLUG],
      ["SCX_ECODE_ACT_RESTART", SCX_ECODE_ACT_RESTART],
    ],
  },
  { name: "scx_exit_flags", size: 8, values: [["SCX_EFLAG_INITIALIZED", SCX_EFLAG_INITIALIZED]] },
  {
    name: "scx_ops_flags",
    size: 8,
    values: [
      ["SCX_OPS_KEEP_BUILTIN_IDLE", SCX_OPS_KEEP_BUILTIN_IDLE],
      ["SCX_OPS_ENQ_LAST", SCX_OPS_ENQ_LAST],
      ["SCX_OPS_ENQ_EXITING", SCX_OPS_ENQ_EXITING],
      ["SCX_OPS_SWITCH_PARTIAL", SCX_OPS_SWITCH_PARTIAL],
      ["SCX_OPS_ENQ_MIGRATION_DISABLED", SCX_OPS_ENQ_MIGRATION_DISABLED],
      ["SCX_OPS_ALLOW_QUEUED_WAKEUP", SCX_OPS_ALLOW_QUEUED_WAKEUP],
      ["SCX_OPS_BUILTIN_IDLE_PER_NODE", SCX_OPS_BUILTIN_IDLE_PER_NODE],
      ["SCX_OPS_HAS_CGROUP_WEIGHT", SCX_OPS_HAS_CGROUP_WEIGHT],
      ["SCX_OPS_ALL_FLAGS", SCX_OPS_ALL_FLAGS],
      ["__SCX_OPS_INTERNAL_MASK", 0xffn << 56n],
      ["SCX_OPS_HAS_CPU_PREEMPT", SCX_OPS_HAS_CPU_PREEMPT],
    ],
  },
  {
    name: "scx_cpu_preempt_reason",
    size: 4,
    values: [
      ["SCX_CPU_PREEMPT_RT", 0],
      ["SCX_CPU_PREEMPT_DL", 1],
      ["SCX_CPU_PREEMPT_STOP", 2],
      ["SCX_CPU_PREEMPT_UNKNOWN", 3],
    ],
  },
  {
    name: "scx_dsq_id_flags",
    size: 8,
    values: [
      ["SCX_DSQ_FLAG_BUILTIN", SCX_DSQ_FLAG_BUILTIN],
      ["SCX_DSQ_FLAG_LOCAL_ON", SCX_DSQ_FLAG_LOCAL_ON],
      ["SCX_DSQ_INVALID", SCX_DSQ_INVALID],
      ["SCX_DSQ_GLOBAL", SCX_DSQ_GLOBAL],
      ["SCX_DSQ_LOCAL", SCX_DSQ_LOCAL],
      ["SCX_DSQ_LOCAL_ON", SCX_DSQ_LOCAL_ON],
      ["SCX_DSQ_LOCAL_CPU_MASK", SCX_DSQ_LOCAL_CPU_MASK],
    ],
  },
  {
    name: "scx_enq_flags",
    size: 8,
    values: [
      ["SCX_ENQ_WAKEUP", SCX_ENQ_WAKEUP],
      ["SCX_ENQ_HEAD", SCX_ENQ_HEAD],
      ["SCX_ENQ_CPU_SELECTED", SCX_ENQ_CPU_SELECTED],
      ["SCX_ENQ_PREEMPT", SCX_ENQ_PREEMPT],
      ["SCX_ENQ_REENQ", SCX_ENQ_REENQ],
      ["SCX_ENQ_LAST", SCX_ENQ_LAST],
      ["__SCX_ENQ_INTERNAL_MASK", 0xffn << 56n],
      ["SCX_ENQ_CLEAR_OPSS", SCX_ENQ_CLEAR_OPSS],
      ["SCX_ENQ_DSQ_PRIQ", SCX_ENQ_DSQ_PRIQ],
    ],
  },
  {
    name: "scx_deq_flags",
    size: 8,
    values: [
      ["SCX_DEQ_SLEEP", SCX_DEQ_SLEEP],
      ["SCX_DEQ_CORE_SCHED_EXEC", SCX_DEQ_CORE_SCHED_EXEC],
    ],
  },
  {
    name: "scx_pick_idle_cpu_flags",
    size: 4,
    values: [
      ["SCX_PICK_IDLE_CORE", Number(SCX_PICK_IDLE_CORE)],
      ["SCX_PICK_IDLE_IN_NODE", Number(SCX_PICK_IDLE_IN_NODE)],
    ],
  },
  {
    name: "scx_kick_flags",
    size: 4,
    values: [
      ["SCX_KICK_IDLE", Number(SCX_KICK_IDLE)],
      ["SCX_KICK_PREEMPT", Number(SCX_KICK_PREEMPT)],
      ["SCX_KICK_WAIT", Number(SCX_KICK_WAIT)],
    ],
  },
  {
    name: "scx_tg_flags",
    size: 4,
    values: [
      ["SCX_TG_ONLINE", 1],
      ["SCX_TG_INITED", 2],
    ],
  },
  {
    name: "scx_enable_state",
    size: 4,
    values: [
      ["SCX_ENABLING", 0],
      ["SCX_ENABLED", 1],
      ["SCX_DISABLING", 2],
      ["SCX_DISABLED", 3],
    ],
  },
  {
    name: "scx_ops_state",
    size: 4,
    values: [
      ["SCX_OPSS_NONE", 0],
      ["SCX_OPSS_QUEUEING", 1],
      ["SCX_OPSS_QUEUED", 2],
      ["SCX_OPSS_DISPATCHING", 3],
      ["SCX_OPSS_QSEQ_SHIFT", 2],
    ],
  },
  {
    name: "scx_rq_flags",
    size: 4,
    values: [
      ["SCX_RQ_ONLINE", 1 << 0],
      ["SCX_RQ_CAN_STOP_TICK", 1 << 1],
      ["SCX_RQ_BAL_PENDING", 1 << 2],
      ["SCX_RQ_BAL_KEEP", 1 << 3],
      ["SCX_RQ_BYPASSING", 1 << 4],
      ["SCX_RQ_CLK_VALID", 1 << 5],
      ["SCX_RQ_IN_WAKEUP", 1 << 16],
      ["SCX_RQ_IN_BALANCE", 1 << 17],
    ],
  },
  {
    name: "scx_ent_flags",
    size: 4,
    values: [
      ["SCX_TASK_QUEUED", SCX_TASK_QUEUED],
      ["SCX_TASK_RESET_RUNNABLE_AT", SCX_TASK_RESET_RUNNABLE_AT],
      ["SCX_TASK_DEQD_FOR_SLEEP", SCX_TASK_DEQD_FOR_SLEEP],
      ["SCX_TASK_STATE_SHIFT", SCX_TASK_STATE_SHIFT],
      ["SCX_TASK_STATE_BITS", SCX_TASK_STATE_BITS],
      ["SCX_TASK_STATE_MASK", SCX_TASK_STATE_MASK],
      ["SCX_TASK_CURSOR", SCX_TASK_CURSOR],
    ],
  },
  {
    name: "scx_task_state",
    size: 4,
    values: [
      ["SCX_TASK_NONE", SCX_TASK_NONE],
      ["SCX_TASK_INIT", SCX_TASK_INIT],
      ["SCX_TASK_READY", SCX_TASK_READY],
      ["SCX_TASK_ENABLED", SCX_TASK_ENABLED],
      ["SCX_TASK_NR_STATES", 4],
    ],
  },
  { name: "scx_ent_dsq_flags", size: 4, values: [["SCX_TASK_DSQ_ON_PRIQ", 1]] },
  {
    name: "scx_kf_mask",
    size: 4,
    values: [
      ["SCX_KF_UNLOCKED", SCX_KF_UNLOCKED],
      ["SCX_KF_CPU_RELEASE", SCX_KF_CPU_RELEASE],
      ["SCX_KF_DISPATCH", SCX_KF_DISPATCH],
      ["SCX_KF_ENQUEUE", SCX_KF_ENQUEUE],
      ["SCX_KF_SELECT_CPU", SCX_KF_SELECT_CPU],
      ["SCX_KF_REST", SCX_KF_REST],
      ["__SCX_KF_RQ_LOCKED", 31],
      ["__SCX_KF_TERMINAL", SCX_KF_ENQUEUE | SCX_KF_SELECT_CPU | SCX_KF_REST],
    ],
  },
  { name: "scx_dsq_lnode_flags", size: 4, values: [["SCX_DSQ_LNODE_ITER_CURSOR", 1]] },
  {
    name: "scx_dsq_iter_flags",
    size: 4,
    values: [
      ["SCX_DSQ_ITER_REV", SCX_DSQ_ITER_REV],
      ["__SCX_DSQ_ITER_HAS_SLICE", __SCX_DSQ_ITER_HAS_SLICE],
      ["__SCX_DSQ_ITER_HAS_VTIME", __SCX_DSQ_ITER_HAS_VTIME],
      ["__SCX_DSQ_ITER_USER_FLAGS", __SCX_DSQ_ITER_USER_FLAGS],
      ["__SCX_DSQ_ITER_ALL_FLAGS", __SCX_DSQ_ITER_USER_FLAGS | __SCX_DSQ_ITER_HAS_SLICE | __SCX_DSQ_ITER_HAS_VTIME],
    ],
  },
  {
    name: "scx_wake_flags",
    size: 4,
    values: [
      ["SCX_WAKE_FORK", SCX_WAKE_FORK],
      ["SCX_WAKE_TTWU", SCX_WAKE_TTWU],
      ["SCX_WAKE_SYNC", SCX_WAKE_SYNC],
    ],
  },
];

/** SCX_EXIT_* -> the reason text scx_exit_reason() gives. */
export function scx_exit_reason(kind: number): string {
  switch (kind) {
    case SCX_EXIT_UNREG:
      return "unregistered from user space";
    case SCX_EXIT_UNREG_BPF:
      return "unregistered from BPF";
    case SCX_EXIT_UNREG_KERN:
      return "unregistered from the main kernel";
    case SCX_EXIT_SYSRQ:
      return "disabled by sysrq-S";
    case SCX_EXIT_ERROR:
      return "runtime error";
    case SCX_EXIT_ERROR_BPF:
      return "scx_bpf_error";
    case SCX_EXIT_ERROR_STALL:
      return "runnable task stall";
    default:
      return "<UNKNOWN>";
  }
}
