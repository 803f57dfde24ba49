/**
 * The BTF of sched_ext (include/linux/sched/ext.h, kernel/sched/ext_internal.h, ext.c, ext_idle.c):
 * `struct sched_ext_entity` as `task_struct.scx`, the argument containers of the ops, `struct
 * sched_ext_ops` with its cfi stubs (`prev__nullable`, `to__nullable`) and struct_ops value type,
 * every SCX_* enum, and one FUNC per kfunc with the parameter names the verifier keys on.
 */
import type { BtfBuilder } from "../../btf/builder.js";
import type { KernelBaseTypes } from "../../kernel/init.js";
import { builderFind, declareStructOpsValueType } from "../../kernel/struct_ops.js";
import { taskStructAddMember } from "../../kernel/task.js";
import { BTF_FUNC_GLOBAL, BTF_FUNC_STATIC, BTF_KIND_ENUM, BTF_KIND_STRUCT, BTF_KIND_TYPEDEF } from "../../uapi/btf.js";
import { SCX_ENUMS, SCX_OPS_NAME_LEN } from "./consts.js";

export const SCHED_EXT_OPS = "sched_ext_ops";

type P = { name: string; type: number };

/** One op: name, return type key, parameters (type keys), in struct order. */
type OpDecl = readonly [string, string, readonly (readonly [string, string])[]];

/** struct sched_ext_ops' function members, in the kernel's order (CONFIG_EXT_GROUP_SCHED=y). */
export const SCX_OPS: readonly OpDecl[] = [
  [
    "select_cpu",
    "s32",
    [
      ["p", "task"],
      ["prev_cpu", "s32"],
      ["wake_flags", "u64"],
    ],
  ],
  [
    "enqueue",
    "void",
    [
      ["p", "task"],
      ["enq_flags", "u64"],
    ],
  ],
  [
    "dequeue",
    "void",
    [
      ["p", "task"],
      ["deq_flags", "u64"],
    ],
  ],
  [
    "dispatch",
    "void",
    [
      ["cpu", "s32"],
      ["prev", "task"],
    ],
  ],
  ["tick", "void", [["p", "task"]]],
  [
    "runnable",
    "void",
    [
      ["p", "task"],
      ["enq_flags", "u64"],
    ],
  ],
  ["running", "void", [["p", "task"]]],
  [
    "stopping",
    "void",
    [
      ["p", "task"],
      ["runnable", "bool"],
    ],
  ],
  [
    "quiescent",
    "void",
    [
      ["p", "task"],
      ["deq_flags", "u64"],
    ],
  ],
  [
    "yield",
    "bool",
    [
      ["from", "task"],
      ["to", "task"],
    ],
  ],
  [
    "core_sched_before",
    "bool",
    [
      ["a", "task"],
      ["b", "task"],
    ],
  ],
  [
    "set_weight",
    "void",
    [
      ["p", "task"],
      ["weight", "u32"],
    ],
  ],
  [
    "set_cpumask",
    "void",
    [
      ["p", "task"],
      ["cpumask", "ccpumask"],
    ],
  ],
  [
    "update_idle",
    "void",
    [
      ["cpu", "s32"],
      ["idle", "bool"],
    ],
  ],
  [
    "cpu_acquire",
    "void",
    [
      ["cpu", "s32"],
      ["args", "acquire_args"],
    ],
  ],
  [
    "cpu_release",
    "void",
    [
      ["cpu", "s32"],
      ["args", "release_args"],
    ],
  ],
  [
    "init_task",
    "s32",
    [
      ["p", "task"],
      ["args", "init_task_args"],
    ],
  ],
  [
    "exit_task",
    "void",
    [
      ["p", "task"],
      ["args", "exit_task_args"],
    ],
  ],
  ["enable", "void", [["p", "task"]]],
  ["disable", "void", [["p", "task"]]],
  ["dump", "void", [["ctx", "dump_ctx"]]],
  [
    "dump_cpu",
    "void",
    [
      ["ctx", "dump_ctx"],
      ["cpu", "s32"],
      ["idle", "bool"],
    ],
  ],
  [
    "dump_task",
    "void",
    [
      ["ctx", "dump_ctx"],
      ["p", "task"],
    ],
  ],
  [
    "cgroup_init",
    "s32",
    [
      ["cgrp", "cgroup"],
      ["args", "cgroup_init_args"],
    ],
  ],
  ["cgroup_exit", "void", [["cgrp", "cgroup"]]],
  [
    "cgroup_prep_move",
    "s32",
    [
      ["p", "task"],
      ["from", "cgroup"],
      ["to", "cgroup"],
    ],
  ],
  [
    "cgroup_move",
    "void",
    [
      ["p", "task"],
      ["from", "cgroup"],
      ["to", "cgroup"],
    ],
  ],
  [
    "cgroup_cancel_move",
    "void",
    [
      ["p", "task"],
      ["from", "cgroup"],
      ["to", "cgroup"],
    ],
  ],
  [
    "cgroup_set_weight",
    "void",
    [
      ["cgrp", "cgroup"],
      ["weight", "u32"],
    ],
  ],
  [
    "cgroup_set_bandwidth",
    "void",
    [
      ["cgrp", "cgroup"],
      ["period_us", "u64"],
      ["quota_us", "u64"],
      ["burst_us", "u64"],
    ],
  ],
  ["cpu_online", "void", [["cpu", "s32"]]],
  ["cpu_offline", "void", [["cpu", "s32"]]],
  ["init", "s32", []],
  ["exit", "void", [["info", "exit_info"]]],
];

/** Stub parameters renamed to carry a tag (where the verifier learns nullability). */
const STUB_PARAM_TAGS: Record<string, Record<string, string>> = {
  dispatch: { prev: "prev__nullable" },
  yield: { to: "to__nullable" },
};

/** cfi_stubs (__bpf_ops_sched_ext_ops): every op has one. */
export const SCX_OPS_STUBS: Readonly<Record<string, string>> = Object.fromEntries(
  SCX_OPS.map(([n]) => [n, `sched_ext_ops__${n}`]),
);

/** One kfunc: name, return type key, parameters. */
type KfuncDecl = readonly [string, string, readonly (readonly [string, string])[]];

/** The scx kfuncs of 6.18, with their parameter names. */
export const SCX_KFUNC_DECLS: readonly KfuncDecl[] = [
  [
    "scx_bpf_select_cpu_dfl",
    "s32",
    [
      ["p", "task"],
      ["prev_cpu", "s32"],
      ["wake_flags", "u64"],
      ["is_idle", "pbool"],
    ],
  ],
  [
    "scx_bpf_select_cpu_and",
    "s32",
    [
      ["p", "task"],
      ["prev_cpu", "s32"],
      ["wake_flags", "u64"],
      ["cpus_allowed", "ccpumask"],
      ["flags", "u64"],
    ],
  ],
  [
    "scx_bpf_dsq_insert",
    "void",
    [
      ["p", "task"],
      ["dsq_id", "u64"],
      ["slice", "u64"],
      ["enq_flags", "u64"],
    ],
  ],
  [
    "scx_bpf_dsq_insert_vtime",
    "void",
    [
      ["p", "task"],
      ["dsq_id", "u64"],
      ["slice", "u64"],
      ["vtime", "u64"],
      ["enq_flags", "u64"],
    ],
  ],
  ["scx_bpf_dispatch_nr_slots", "u32", []],
  ["scx_bpf_dispatch_cancel", "void", []],
  ["scx_bpf_dsq_move_to_local", "bool", [["dsq_id", "u64"]]],
  [
    "scx_bpf_dsq_move_set_slice",
    "void",
    [
      ["it__iter", "iter"],
      ["slice", "u64"],
    ],
  ],
  [
    "scx_bpf_dsq_move_set_vtime",
    "void",
    [
      ["it__iter", "iter"],
      ["vtime", "u64"],
    ],
  ],
  [
    "scx_bpf_dsq_move",
    "bool",
    [
      ["it__iter", "iter"],
      ["p", "task"],
      ["dsq_id", "u64"],
      ["enq_flags", "u64"],
    ],
  ],
  [
    "scx_bpf_dsq_move_vtime",
    "bool",
    [
      ["it__iter", "iter"],
      ["p", "task"],
      ["dsq_id", "u64"],
      ["enq_flags", "u64"],
    ],
  ],
  ["scx_bpf_reenqueue_local", "u32", []],
  [
    "scx_bpf_create_dsq",
    "s32",
    [
      ["dsq_id", "u64"],
      ["node", "s32"],
    ],
  ],
  [
    "scx_bpf_kick_cpu",
    "void",
    [
      ["cpu", "s32"],
      ["flags", "u64"],
    ],
  ],
  ["scx_bpf_dsq_nr_queued", "s32", [["dsq_id", "u64"]]],
  ["scx_bpf_destroy_dsq", "void", [["dsq_id", "u64"]]],
  [
    "bpf_iter_scx_dsq_new",
    "int",
    [
      ["it", "iter"],
      ["dsq_id", "u64"],
      ["flags", "u64"],
    ],
  ],
  ["bpf_iter_scx_dsq_next", "task", [["it", "iter"]]],
  ["bpf_iter_scx_dsq_destroy", "void", [["it", "iter"]]],
  [
    "scx_bpf_exit_bstr",
    "void",
    [
      ["exit_code", "s64"],
      ["fmt", "pchar"],
      ["data", "pull"],
      ["data__sz", "u32"],
    ],
  ],
  [
    "scx_bpf_error_bstr",
    "void",
    [
      ["fmt", "pchar"],
      ["data", "pull"],
      ["data__sz", "u32"],
    ],
  ],
  [
    "scx_bpf_dump_bstr",
    "void",
    [
      ["fmt", "pchar"],
      ["data", "pull"],
      ["data__sz", "u32"],
    ],
  ],
  ["scx_bpf_cpuperf_cap", "u32", [["cpu", "s32"]]],
  ["scx_bpf_cpuperf_cur", "u32", [["cpu", "s32"]]],
  [
    "scx_bpf_cpuperf_set",
    "void",
    [
      ["cpu", "s32"],
      ["perf", "u32"],
    ],
  ],
  ["scx_bpf_nr_node_ids", "u32", []],
  ["scx_bpf_nr_cpu_ids", "u32", []],
  ["scx_bpf_get_possible_cpumask", "ccpumask", []],
  ["scx_bpf_get_online_cpumask", "ccpumask", []],
  ["scx_bpf_put_cpumask", "void", [["cpumask", "ccpumask"]]],
  ["scx_bpf_task_running", "bool", [["p", "ctask"]]],
  ["scx_bpf_task_cpu", "s32", [["p", "ctask"]]],
  ["scx_bpf_cpu_rq", "rq", [["cpu", "s32"]]],
  ["scx_bpf_locked_rq", "rq", []],
  ["scx_bpf_cpu_curr", "task", [["cpu", "s32"]]],
  ["scx_bpf_task_cgroup", "cgroup", [["p", "task"]]],
  ["scx_bpf_now", "u64", []],
  [
    "scx_bpf_events",
    "void",
    [
      ["events", "events"],
      ["events__sz", "size_t"],
    ],
  ],
  ["scx_bpf_cpu_node", "int", [["cpu", "s32"]]],
  ["scx_bpf_get_idle_cpumask_node", "ccpumask", [["node", "int"]]],
  ["scx_bpf_get_idle_cpumask", "ccpumask", []],
  ["scx_bpf_get_idle_smtmask_node", "ccpumask", [["node", "int"]]],
  ["scx_bpf_get_idle_smtmask", "ccpumask", []],
  ["scx_bpf_put_idle_cpumask", "void", [["idle_mask", "ccpumask"]]],
  ["scx_bpf_test_and_clear_cpu_idle", "bool", [["cpu", "s32"]]],
  [
    "scx_bpf_pick_idle_cpu_node",
    "s32",
    [
      ["cpus_allowed", "ccpumask"],
      ["node", "int"],
      ["flags", "u64"],
    ],
  ],
  [
    "scx_bpf_pick_idle_cpu",
    "s32",
    [
      ["cpus_allowed", "ccpumask"],
      ["flags", "u64"],
    ],
  ],
  [
    "scx_bpf_pick_any_cpu_node",
    "s32",
    [
      ["cpus_allowed", "ccpumask"],
      ["node", "int"],
      ["flags", "u64"],
    ],
  ],
  [
    "scx_bpf_pick_any_cpu",
    "s32",
    [
      ["cpus_allowed", "ccpumask"],
      ["flags", "u64"],
    ],
  ],
];

/** struct scx_event_stats' counters (SCX_EV_*), s64 each. */
export const SCX_EVENTS = [
  "SCX_EV_SELECT_CPU_FALLBACK",
  "SCX_EV_DISPATCH_LOCAL_DSQ_OFFLINE",
  "SCX_EV_DISPATCH_KEEP_LAST",
  "SCX_EV_ENQ_SKIP_EXITING",
  "SCX_EV_ENQ_SKIP_MIGRATION_DISABLED",
  "SCX_EV_REFILL_SLICE_DFL",
  "SCX_EV_BYPASS_DURATION",
  "SCX_EV_BYPASS_DISPATCH",
  "SCX_EV_BYPASS_ACTIVATE",
] as const;

export interface ScxBtfIds {
  ops: number;
  value: number;
  entity: number;
  exitInfo: number;
}

function findOr(b: BtfBuilder, name: string, kind: number, add: () => number): number {
  const id = builderFind(b, name, kind);
  return id > 0 ? id : add();
}

export function declareScxTypes(b: BtfBuilder, base: KernelBaseTypes): ScxBtfIds {
  for (const e of SCX_ENUMS) {
    const vals = e.values.map(([name, val]) => ({ name, val }));
    if (e.size === 8) b.addEnum64(e.name, 8, vals, e.signed);
    else b.addEnum(e.name, 4, vals as { name: string; val: number }[], e.signed);
  }
  const enumId = (n: string) => builderFind(b, n, BTF_KIND_ENUM);
  const task = base.task_struct;
  const pTask = b.addPtr(task);
  const s64 = base.s64;
  const charPtr = b.addPtr(base.char);
  const rbFwd = b.addFwd("rb_node");
  const pRb = b.addPtr(rbFwd);
  const rbNode = b.addStructAuto("rb_node", [
    { name: "__rb_parent_color", type: base.ulong },
    { name: "rb_right", type: pRb },
    { name: "rb_left", type: pRb },
  ]);
  const rbRoot = b.addStructAuto("rb_root", [{ name: "rb_node", type: b.addPtr(rbNode) }]);
  const atomicLong = b.addTypedef(
    "atomic_long_t",
    b.addTypedef("atomic64_t", b.addStructAuto("", [{ name: "counter", type: s64 }])),
  );
  const lnode = b.addStructAuto("scx_dsq_list_node", [
    { name: "node", type: base.list_head },
    { name: "flags", type: base.u32 },
    { name: "priv", type: base.u32 },
  ]);
  const dsq = b.addStructAuto("scx_dispatch_q", [
    { name: "first_task", type: pTask },
    { name: "list", type: base.list_head },
    { name: "priq", type: rbRoot },
    { name: "nr", type: base.u32 },
    { name: "seq", type: base.u32 },
    { name: "id", type: base.u64 },
  ]);
  // The core declares struct cgroup (src/kernel/cgroup.ts); a kernel without it gets the two
  // fields schedulers read.
  const cgroup = findOr(b, "cgroup", BTF_KIND_STRUCT, () =>
    b.addStructAuto("cgroup", [
      { name: "kn", type: b.addPtr(b.addStructAuto("kernfs_node", [{ name: "id", type: base.u64 }])) },
      { name: "level", type: base.int },
    ]),
  );
  const entity = b.addStructAuto("sched_ext_entity", [
    { name: "dsq", type: b.addPtr(dsq) },
    { name: "dsq_list", type: lnode },
    { name: "dsq_priq", type: rbNode },
    { name: "dsq_seq", type: base.u32 },
    { name: "dsq_flags", type: base.u32 },
    { name: "flags", type: base.u32 },
    { name: "weight", type: base.u32 },
    { name: "sticky_cpu", type: base.int },
    { name: "holding_cpu", type: base.int },
    { name: "selected_cpu", type: base.int },
    { name: "kf_mask", type: base.u32 },
    { name: "kf_tasks", type: b.addArray(pTask, base.int, 2) },
    { name: "ops_state", type: atomicLong },
    { name: "runnable_node", type: base.list_head },
    { name: "runnable_at", type: base.ulong },
    { name: "core_sched_at", type: base.u64 },
    { name: "ddsp_dsq_id", type: base.u64 },
    { name: "ddsp_enq_flags", type: base.u64 },
    { name: "slice", type: base.u64 },
    { name: "dsq_vtime", type: base.u64 },
    { name: "disallow", type: base.bool },
    { name: "cgrp_moving_from", type: b.addPtr(cgroup) },
    { name: "tasks_node", type: base.list_head },
  ]);
  taskStructAddMember(b, "scx", entity);

  const exitInfo = b.addStructAuto("scx_exit_info", [
    { name: "kind", type: enumId("scx_exit_kind") },
    { name: "exit_code", type: s64 },
    { name: "flags", type: base.u64 },
    { name: "reason", type: b.addPtr(b.addConst(base.char)) },
    { name: "bt", type: b.addPtr(base.ulong) },
    { name: "bt_len", type: base.u32 },
    { name: "msg", type: charPtr },
    { name: "dump", type: charPtr },
  ]);
  const initTaskArgs = b.addStructAuto("scx_init_task_args", [
    { name: "fork", type: base.bool },
    { name: "cgroup", type: b.addPtr(cgroup) },
  ]);
  const exitTaskArgs = b.addStructAuto("scx_exit_task_args", [{ name: "cancelled", type: base.bool }]);
  const cgInitArgs = b.addStructAuto("scx_cgroup_init_args", [
    { name: "weight", type: base.u32 },
    { name: "bw_period_us", type: base.u64 },
    { name: "bw_quota_us", type: base.u64 },
    { name: "bw_burst_us", type: base.u64 },
  ]);
  const acquireArgs = b.addStructAuto("scx_cpu_acquire_args", []);
  const releaseArgs = b.addStructAuto("scx_cpu_release_args", [
    { name: "reason", type: enumId("scx_cpu_preempt_reason") },
    { name: "task", type: pTask },
  ]);
  const dumpCtx = b.addStructAuto("scx_dump_ctx", [
    { name: "kind", type: enumId("scx_exit_kind") },
    { name: "exit_code", type: s64 },
    { name: "reason", type: b.addPtr(b.addConst(base.char)) },
    { name: "at_ns", type: base.u64 },
    { name: "at_jiffies", type: base.u64 },
  ]);
  const events = b.addStructAuto(
    "scx_event_stats",
    SCX_EVENTS.map((name) => ({ name, type: s64 })),
  );
  const iter = b.addStructAuto("bpf_iter_scx_dsq", [{ name: "__opaque", type: b.addArray(base.u64, base.int, 6) }]);
  // The kernel's view of it: what the iterator kfuncs keep between calls.
  b.addStructAuto("bpf_iter_scx_dsq_kern", [
    { name: "cursor", type: lnode },
    { name: "dsq", type: b.addPtr(dsq) },
    { name: "slice", type: base.u64 },
    { name: "vtime", type: base.u64 },
  ]);
  const rq = findOr(b, "rq", BTF_KIND_STRUCT, () =>
    b.addStructAuto("rq", [
      { name: "nr_running", type: base.u32 },
      { name: "cpu", type: base.int },
      { name: "curr", type: pTask },
    ]),
  );
  const sizeT = findOr(b, "size_t", BTF_KIND_TYPEDEF, () => b.addTypedef("size_t", base.ulong));

  const types: Record<string, number> = {
    void: 0,
    s32: base.int,
    int: base.int,
    u32: base.u32,
    u64: base.u64,
    s64,
    bool: base.bool,
    size_t: sizeT,
    task: pTask,
    ctask: b.addPtr(b.addConst(task)),
    ccpumask: b.addPtr(b.addConst(base.cpumask)),
    pbool: b.addPtr(base.bool),
    pchar: charPtr,
    pull: b.addPtr(base.u64),
    iter: b.addPtr(iter),
    events: b.addPtr(events),
    rq: b.addPtr(rq),
    cgroup: b.addPtr(cgroup),
    acquire_args: b.addPtr(acquireArgs),
    release_args: b.addPtr(releaseArgs),
    init_task_args: b.addPtr(initTaskArgs),
    exit_task_args: b.addPtr(exitTaskArgs),
    cgroup_init_args: b.addPtr(cgInitArgs),
    dump_ctx: b.addPtr(dumpCtx),
    exit_info: b.addPtr(exitInfo),
  };
  const ty = (key: string): number => {
    const t = types[key];
    if (t === undefined) throw new Error(`sched_ext BTF: no type ${key}`);
    return t;
  };
  const params = (ps: readonly (readonly [string, string])[], rename?: Record<string, string>): P[] =>
    ps.map(([n, t]) => ({ name: rename?.[n] ?? n, type: ty(t) }));

  const members: { name: string; type: number }[] = [];
  for (const [name, ret, ps] of SCX_OPS) {
    members.push({ name, type: b.addPtr(b.addFuncProto(ty(ret), params(ps))) });
  }
  members.push(
    { name: "dispatch_max_batch", type: base.u32 },
    { name: "flags", type: base.u64 },
    { name: "timeout_ms", type: base.u32 },
    { name: "exit_dump_len", type: base.u32 },
    { name: "hotplug_seq", type: base.u64 },
    { name: "name", type: b.addArray(base.char, base.int, SCX_OPS_NAME_LEN) },
    { name: "priv", type: b.addPtr(0) },
  );
  const ops = b.addStructAuto(SCHED_EXT_OPS, members);
  for (const [name, ret, ps] of SCX_OPS) {
    b.addFunc(SCX_OPS_STUBS[name], b.addFuncProto(ty(ret), params(ps, STUB_PARAM_TAGS[name])), BTF_FUNC_STATIC);
  }
  const value = declareStructOpsValueType(b, SCHED_EXT_OPS);
  for (const [name, ret, ps] of SCX_KFUNC_DECLS) {
    b.addFunc(name, b.addFuncProto(ty(ret), params(ps)), BTF_FUNC_GLOBAL);
  }
  return { ops, value, entity, exitInfo };
}
