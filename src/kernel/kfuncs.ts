/**
 * The BPF core's generic kfuncs (kernel/bpf/helpers.c generic_kfunc_set and common_kfunc_set):
 * task references (bpf_task_acquire, bpf_task_release, bpf_task_from_pid), the RCU read-side
 * section (bpf_rcu_read_lock/unlock); with the cpumask kfuncs (kernel/bpf/cpumask.c) they are what sched_ext-style programs hold references to.
 */
import type { BtfBuilder } from "../btf/builder.js";
import { bpf_prog_type as T } from "../uapi/bpf.js";
import { BTF_FUNC_GLOBAL } from "../uapi/btf.js";
import { KF_ACQUIRE, KF_RCU, KF_RELEASE, KF_RET_NULL } from "../verifier/env.js";
import { registerBtfIdDtorKfuncs } from "./bpf_kptr.js";
import { declareCgroupTypes, registerCgroupKfuncs } from "./cgroup.js";
import { declareCpumaskTypes, registerCpumaskKfuncs } from "./cpumask.js";
import type { KernelBaseTypes } from "./init.js";
import type { Kernel, Subsystem } from "./kernel.js";
import { registerPercpuHelpers } from "./percpu.js";
import type { RcuToken } from "./rcu.js";
import { find_task_by_vpid, put_task_struct, tryget_task_struct } from "./task.js";

/**
 * Program types generic_kfunc_set is registered for (kernel/bpf/helpers.c kfunc_init); each
 * stands for its kfunc hook (CGROUP_SKB: every cgroup program and sock_ops).
 */
export const GENERIC_KFUNC_PROG_TYPES: readonly number[] = [
  T.BPF_PROG_TYPE_TRACING,
  T.BPF_PROG_TYPE_LSM,
  T.BPF_PROG_TYPE_SCHED_CLS,
  T.BPF_PROG_TYPE_XDP,
  T.BPF_PROG_TYPE_STRUCT_OPS,
  T.BPF_PROG_TYPE_SYSCALL,
  T.BPF_PROG_TYPE_CGROUP_SKB,
];

function declareTypes(b: BtfBuilder, base: KernelBaseTypes): void {
  const taskPtr = b.addPtr(base.task_struct);
  declareCpumaskTypes(b, base, base.cpumask_t, base.cpumask);
  const fn = (name: string, ret: number, params: { name: string; type: number }[]) =>
    b.addFunc(name, b.addFuncProto(ret, params), BTF_FUNC_GLOBAL);
  fn("bpf_task_acquire", taskPtr, [{ name: "p", type: taskPtr }]);
  fn("bpf_task_release", 0, [{ name: "p", type: taskPtr }]);
  fn("bpf_task_from_pid", taskPtr, [{ name: "pid", type: base.int }]);
  fn("bpf_rcu_read_lock", 0, []);
  fn("bpf_rcu_read_unlock", 0, []);
  declareCgroupTypes(b, base);
}

function register(k: Kernel): void {
  const rcu: RcuToken[] = [];
  const G = GENERIC_KFUNC_PROG_TYPES;
  k.registerKfunc(
    "bpf_task_acquire",
    undefined,
    (c) => {
      const t = k.taskByAddr.get(c.argNum(1));
      return t && tryget_task_struct(t) ? t.addr : 0;
    },
    KF_ACQUIRE | KF_RCU | KF_RET_NULL,
    G,
  );
  k.registerKfunc(
    "bpf_task_release",
    undefined,
    (c) => {
      const t = k.taskByAddr.get(c.argNum(1));
      if (!t) throw new Error(`bpf_task_release: no task at 0x${c.argNum(1).toString(16)}`);
      put_task_struct(t);
      return 0;
    },
    KF_RELEASE,
    G,
  );
  k.registerKfunc(
    "bpf_task_from_pid",
    undefined,
    (c) => {
      const t = find_task_by_vpid(k, Number(BigInt.asIntN(32, c.arg(1))));
      return t && tryget_task_struct(t) ? t.addr : 0;
    },
    KF_ACQUIRE | KF_RET_NULL,
    G,
  );
  k.registerKfunc("bpf_rcu_read_lock", undefined, () => {
    rcu.push(k.rcu.rcuReadLock());
    return 0;
  });
  k.registerKfunc("bpf_rcu_read_unlock", undefined, () => {
    const t = rcu.pop();
    if (t) k.rcu.rcuReadUnlock(t);
    return 0;
  });
  // A task may be held by a map as a referenced kptr (generic_dtors); the map's free path puts it.
  registerBtfIdDtorKfuncs(k, [
    {
      type: "task_struct",
      kfunc: "bpf_task_release_dtor",
      dtor: (kk, addr) => {
        const t = kk.taskByAddr.get(addr);
        if (t) put_task_struct(t);
      },
    },
  ]);
  registerCpumaskKfuncs(k);
  registerCgroupKfuncs(k);
  registerPercpuHelpers(k);
}

/** The core's kfuncs, declared and registered at boot like a subsystem's. */
export const bpfCoreKfuncs: Subsystem = { name: "bpf_core_kfuncs", declareTypes, register };
