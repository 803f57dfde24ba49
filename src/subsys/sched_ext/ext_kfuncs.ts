/**
 * The sched_ext kfuncs of 6.18 (kernel/sched/ext.c and ext_idle.c BTF_KFUNCS sets), with their
 * KF_* flags and the program types each set is registered for. Which op may call which kfunc is
 * checked when it runs (scx_kf_allowed), as the kernel does: a misuse ends the scheduler with an
 * error exit, not a verifier refusal. What needs the simulated CPUs goes to the ext class
 * (ScxMachine); without a machine those kfuncs see no tasks.
 */

import { cgroup_get, cgroupRoot } from "../../kernel/cgroup.js";
import { bpfSnprintf } from "../../kernel/helpers.js";
import type { HelperArgs, Kernel } from "../../kernel/kernel.js";
import { bpf_prog_type as T } from "../../uapi/bpf.js";
import { EINVAL, ENODEV, ENOENT, EOPNOTSUPP } from "../../uapi/errno.js";
import {
  KF_ACQUIRE,
  KF_ITER_DESTROY,
  KF_ITER_NEW,
  KF_ITER_NEXT,
  KF_RCU,
  KF_RCU_PROTECTED,
  KF_RELEASE,
  KF_RET_NULL,
  KF_SLEEPABLE,
  KF_TRUSTED_ARGS,
} from "../../verifier/env.js";
import { SCX_EVENTS } from "./btf.js";
import {
  __SCX_DSQ_ITER_USER_FLAGS,
  SCX_CPUPERF_ONE,
  SCX_DSQ_FLAG_BUILTIN,
  SCX_DSQ_ITER_REV,
  SCX_EXIT_ERROR_BPF,
  SCX_EXIT_UNREG_BPF,
  SCX_KF_CPU_RELEASE,
  SCX_KF_DISPATCH,
  SCX_OPS_BUILTIN_IDLE_PER_NODE,
  SCX_PICK_IDLE_IN_NODE,
} from "./consts.js";
import type { ScxSched, ScxState } from "./ext.js";

/** __SCX_KF_RQ_LOCKED: every mask of an op called with the rq locked. */
const __SCX_KF_RQ_LOCKED = 31;

import { ScxDispatchQ } from "./ext_dsq.js";

/** What the kfuncs need from the CPUs and tasks (the ext class implements it). */
export interface ScxMachine {
  /** scx_bpf_dsq_insert[_vtime]. */
  dsqInsert(sch: ScxSched, p: number, dsqId: bigint, slice: bigint, vtime: bigint | null, enqFlags: bigint): void;
  dispatchNrSlots(sch: ScxSched): number;
  dispatchCancel(sch: ScxSched): void;
  moveToLocal(sch: ScxSched, dsqId: bigint): boolean;
  /** scx_bpf_dsq_move[_vtime] of a task the iterator returned. */
  dsqMove(sch: ScxSched, it: DsqIter, p: number, dsqId: bigint, enqFlags: bigint, vtime: boolean): boolean;
  reenqueueLocal(sch: ScxSched): number;
  /** The DSQ a kfunc names (SCX_DSQ_LOCAL is the current CPU's). */
  localDsq(cpu: number): ScxDispatchQ | undefined;
  globalDsq(): ScxDispatchQ;
  currentCpu(): number;
  kickCpu(sch: ScxSched, cpu: number, flags: bigint): void;
  /** scx_bpf_select_cpu_dfl/and (wake_flags are not passed: SCX_WAKE_SYNC is not modelled). */
  selectCpuDfl(sch: ScxSched, p: number, prevCpu: number, allowed: bigint | null): number;
  taskCpu(p: number): number;
  taskRunning(p: number): boolean;
  cpuCurr(cpu: number): number;
  idleMask(): bigint;
  idleSmtMask(): bigint;
  testAndClearCpuIdle(cpu: number): boolean;
  pickIdleCpu(sch: ScxSched, allowed: bigint, flags: bigint): number;
  pickAnyCpu(sch: ScxSched, allowed: bigint, flags: bigint): number;
  /** scx_pick_idle_cpu() from a node (SCX_PICK_IDLE_IN_NODE: only there). */
  pickIdleNode(allowed: bigint, node: number, flags: bigint): number;
  nodeMask(node: number): bigint;
  nrNodes(): number;
  cpuNode(cpu: number): number;
  onlineMask(): bigint;
  now(): bigint;
  /** Tasks on a DSQ, as the iterator sees them (their addresses). */
  dsqTasks(dsq: ScxDispatchQ): number[];
  taskSeq(p: number): { dsq: ScxDispatchQ | null; seq: number } | undefined;
}

/** An open bpf_iter_scx_dsq. */
export interface DsqIter {
  dsq: ScxDispatchQ;
  seq: number;
  rev: boolean;
  tasks: number[];
  pos: number;
  /** scx_bpf_dsq_move_set_slice/vtime: what the next move applies (undefined: keep). */
  slice?: bigint;
  vtime?: bigint;
}

const SO = T.BPF_PROG_TYPE_STRUCT_OPS;
const SYSCALL = T.BPF_PROG_TYPE_SYSCALL;
const TRACING = T.BPF_PROG_TYPE_TRACING;
/** The sets and where register_btf_kfunc_id_set puts them. */
const SET_ENQUEUE_DISPATCH = [SO];
const SET_DISPATCH = [SO];
const SET_CPU_RELEASE = [SO];
const SET_UNLOCKED = [SO, SYSCALL];
const SET_ANY = [SO, TRACING, SYSCALL];
const SET_IDLE = [SO, TRACING, SYSCALL];

const union = (...sets: number[][]): number[] => [...new Set(sets.flat())];

export function registerScxKfuncs(k: Kernel, st: ScxState, machine: () => ScxMachine | null): void {
  const iters = new Map<number, DsqIter>();
  let nextIter = 1;
  const root = (): ScxSched | null => st.root;
  const reg = (name: string, flags: number, sets: number[], impl: (c: HelperArgs) => bigint | number) =>
    k.registerKfunc(name, undefined, impl, flags, sets);
  const s32 = (v: bigint) => Number(BigInt.asIntN(32, v));
  /** r`i` as an int (an s32 argument), from the register's low half without a bigint where the VM gives it. */
  const int = (c: HelperArgs, i: number) => (c.argLo ? c.argLo(i) | 0 : s32(c.arg(i)));
  const cpuArg = int;
  /**
   * r`i` as a u64: the bigint of the last value seen in its slot of a small table (DSQ ids,
   * slices and flags repeat from call to call), so the per-event kfuncs allocate rarely.
   */
  const memoLo = new Uint32Array(64);
  const memoHi = new Uint32Array(64);
  const memoV: bigint[] = new Array<bigint>(64).fill(0n);
  const u64 = (c: HelperArgs, i: number): bigint => {
    if (!c.argLo || !c.argHi) return c.arg(i);
    const lo = c.argLo(i);
    const hi = c.argHi(i);
    const h = (lo ^ (hi >>> 20) ^ (lo >>> 26)) & 63;
    if (memoLo[h] === lo && memoHi[h] === hi) return memoV[h]!;
    const v = c.arg(i);
    memoLo[h] = lo;
    memoHi[h] = hi;
    memoV[h] = v;
    return v;
  };
  // VmMemory reads and writes a field in place; another KernelMemory through a view of it
  const kmem = k.mem as typeof k.mem & {
    writeU8?(addr: number, v: number): void;
    readU32?(addr: number): number;
    writeU32?(addr: number, v: number): void;
  };
  const writeU8 = (addr: number, v: number) => {
    if (kmem.writeU8) kmem.writeU8(addr, v);
    else kmem.bytes(addr, 1)[0] = v;
  };
  const readU32 = (addr: number): number => {
    if (kmem.readU32) return kmem.readU32(addr);
    const b = kmem.bytes(addr, 4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  };
  const writeU32 = (addr: number, v: number) => {
    if (kmem.writeU32) kmem.writeU32(addr, v);
    else {
      const b = kmem.bytes(addr, 4);
      new DataView(b.buffer, b.byteOffset, 4).setUint32(0, v, true);
    }
  };
  const cpuValid = (sch: ScxSched, cpu: number, where = ""): boolean => {
    if (cpu >= 0 && cpu < k.nrCpus) return true;
    sch.error(`invalid CPU ${cpu}${where ? ` ${where}` : ""}`);
    return false;
  };
  /** A user DSQ by id (find_user_dsq). */
  const userDsq = (sch: ScxSched, id: bigint) => sch.dsqs.get(id);
  /** bstr_format: the format and its u64 array (arguments i, i+1, i+2), formatted as bpf_bprintf does. */
  const bstr = (c: HelperArgs, i: number): string => {
    const mem = k.mem as { readCString?(a: number, m: number): string; bytes(a: number, l: number): Uint8Array };
    const fmt = mem.readCString?.(c.argNum(i), 1024) ?? "";
    const n = Math.floor(Number(c.arg(i + 2) & 0xffffffffn) / 8);
    const args: bigint[] = [];
    if (n > 0) {
      const b = mem.bytes(c.argNum(i + 1), n * 8);
      const dv = new DataView(b.buffer, b.byteOffset, n * 8);
      for (let j = 0; j < n; j++) args.push(dv.getBigUint64(j * 8, true));
    }
    return bpfSnprintf(k, fmt, args);
  };
  const m = machine;

  // ---- idle (6.17 moved scx_bpf_select_cpu_dfl there: any op, and unlocked from syscall programs) ----
  reg("scx_bpf_select_cpu_dfl", KF_RCU, SET_IDLE, (c) => {
    const sch = root();
    if (!sch) return -ENODEV;
    const prev = cpuArg(c, 2);
    const mm = m();
    const cpu = mm ? mm.selectCpuDfl(sch, c.argNum(1), prev, null) : -1;
    writeU8(c.argNum(4), cpu >= 0 ? 1 : 0);
    return cpu >= 0 ? cpu : prev;
  });
  reg("scx_bpf_select_cpu_and", KF_RCU, SET_IDLE, (c) => {
    const sch = root();
    if (!sch) return -ENODEV;
    const mask = k.mem.bytes(c.argNum(4), 8);
    const allowed = new DataView(mask.buffer, mask.byteOffset, 8).getBigUint64(0, true);
    return m()?.selectCpuDfl(sch, c.argNum(1), cpuArg(c, 2), allowed) ?? -1;
  });

  // ---- enqueue_dispatch ----
  reg("scx_bpf_dsq_insert", KF_RCU, SET_ENQUEUE_DISPATCH, (c) => {
    const sch = root();
    if (sch) m()?.dsqInsert(sch, c.argNum(1), u64(c, 2), u64(c, 3), null, u64(c, 4));
    return 0;
  });
  reg("scx_bpf_dsq_insert_vtime", KF_RCU, SET_ENQUEUE_DISPATCH, (c) => {
    const sch = root();
    if (sch) m()?.dsqInsert(sch, c.argNum(1), u64(c, 2), u64(c, 3), c.arg(4), u64(c, 5));
    return 0;
  });

  // ---- dispatch ----
  reg("scx_bpf_dispatch_nr_slots", 0, SET_DISPATCH, () => {
    const sch = root();
    if (!sch?.kfAllowed(SCX_KF_DISPATCH)) return 0;
    return m()?.dispatchNrSlots(sch) ?? 0;
  });
  reg("scx_bpf_dispatch_cancel", 0, SET_DISPATCH, () => {
    const sch = root();
    if (sch?.kfAllowed(SCX_KF_DISPATCH)) m()?.dispatchCancel(sch);
    return 0;
  });
  reg("scx_bpf_dsq_move_to_local", 0, SET_DISPATCH, (c) => {
    const sch = root();
    if (!sch?.kfAllowed(SCX_KF_DISPATCH)) return 0;
    return m()?.moveToLocal(sch, u64(c, 1)) ? 1 : 0;
  });
  const iterOf = (c: HelperArgs): DsqIter | undefined => {
    return iters.get(readU32(c.argNum(1)));
  };
  const sets = union(SET_DISPATCH, SET_UNLOCKED);
  reg("scx_bpf_dsq_move_set_slice", KF_RCU, sets, (c) => {
    const it = iterOf(c);
    if (it) it.slice = c.arg(2);
    return 0;
  });
  reg("scx_bpf_dsq_move_set_vtime", KF_RCU, sets, (c) => {
    const it = iterOf(c);
    if (it) it.vtime = c.arg(2);
    return 0;
  });
  for (const [name, vtime] of [
    ["scx_bpf_dsq_move", false],
    ["scx_bpf_dsq_move_vtime", true],
  ] as const) {
    reg(name, KF_RCU, sets, (c) => {
      const sch = root();
      const it = iterOf(c);
      if (!sch || !it) return 0;
      return m()?.dsqMove(sch, it, c.argNum(2), c.arg(3), c.arg(4), vtime) ? 1 : 0;
    });
  }

  // ---- cpu_release ----
  reg("scx_bpf_reenqueue_local", 0, SET_CPU_RELEASE, () => {
    const sch = root();
    if (!sch?.kfAllowed(SCX_KF_CPU_RELEASE)) return 0;
    return m()?.reenqueueLocal(sch) ?? 0;
  });

  // ---- unlocked ----
  reg("scx_bpf_create_dsq", KF_SLEEPABLE, SET_UNLOCKED, (c) => {
    const sch = root();
    const id = c.arg(1);
    const node = s32(c.arg(2));
    if (node >= (m()?.nrNodes() ?? 1) || (node < 0 && node !== -1)) return -EINVAL;
    if (id & SCX_DSQ_FLAG_BUILTIN) return -EINVAL;
    if (!sch) return -ENODEV;
    if (sch.dsqs.has(id)) return -17; // EEXIST
    sch.dsqs.set(id, new ScxDispatchQ(id));
    return 0;
  });

  // ---- any ----
  reg("scx_bpf_kick_cpu", 0, SET_ANY, (c) => {
    const sch = root();
    if (sch) m()?.kickCpu(sch, cpuArg(c, 1), c.arg(2));
    return 0;
  });
  reg("scx_bpf_dsq_nr_queued", 0, SET_ANY, (c) => {
    const sch = root();
    if (!sch) return -ENODEV;
    const id = c.arg(1);
    const mm = m();
    const LOCAL = SCX_DSQ_FLAG_BUILTIN | 2n;
    const LOCAL_ON = SCX_DSQ_FLAG_BUILTIN | (1n << 62n);
    if (id === LOCAL) return mm?.localDsq(mm.currentCpu())?.nr ?? 0;
    if ((id & LOCAL_ON) === LOCAL_ON) {
      const cpu = Number(id & 0xffffffffn);
      if (!cpuValid(sch, cpu)) return -ENOENT;
      return mm?.localDsq(cpu)?.nr ?? 0;
    }
    return userDsq(sch, id)?.nr ?? -ENOENT;
  });
  reg("scx_bpf_destroy_dsq", 0, SET_ANY, (c) => {
    const sch = root();
    const d = sch ? userDsq(sch, c.arg(1)) : undefined;
    // destroy_dsq: a DSQ that still holds tasks is an error.
    if (sch && d) {
      if (d.nr) sch.error(`attempting to destroy in-use dsq 0x${d.id.toString(16).padStart(16, "0")} (nr=${d.nr})`);
      else sch.dsqs.delete(d.id);
    }
    return 0;
  });
  reg("bpf_iter_scx_dsq_new", KF_ITER_NEW | KF_RCU_PROTECTED, SET_ANY, (c) => {
    const slot = k.mem.bytes(c.argNum(1), 48);
    slot.fill(0);
    const sch = root();
    if (!sch) return -ENODEV;
    // flags: a u64 with no bit outside the user flags (all in the low half)
    const flags = c.argLo && c.argHi ? c.argLo(3) : Number(c.arg(3) & 0xffff_ffffn);
    const flagsHi = c.argLo && c.argHi ? c.argHi(3) : Number(c.arg(3) >> 32n);
    if (flagsHi !== 0 || (flags & ~__SCX_DSQ_ITER_USER_FLAGS) !== 0) return -EINVAL;
    const id = u64(c, 2);
    const mm = m();
    const dsq = id === (SCX_DSQ_FLAG_BUILTIN | 1n) ? mm?.globalDsq() : userDsq(sch, id);
    if (!dsq || !mm) return -ENOENT;
    const h = nextIter++;
    const rev = (flags & SCX_DSQ_ITER_REV) !== 0;
    const tasks = mm.dsqTasks(dsq);
    if (rev) tasks.reverse();
    iters.set(h, { dsq, seq: dsq.seq, rev, tasks, pos: 0 });
    writeU32(c.argNum(1), h);
    return 0;
  });
  reg("bpf_iter_scx_dsq_next", KF_ITER_NEXT | KF_RET_NULL, SET_ANY, (c) => {
    const it = iterOf(c);
    const mm = m();
    if (!it || !mm) return 0;
    // A task counts if it is still on this DSQ and was queued before the iteration began.
    while (it.pos < it.tasks.length) {
      const p = it.tasks[it.pos++];
      const s = mm.taskSeq(p);
      if (s && s.dsq === it.dsq && s.seq <= it.seq) return p;
    }
    return 0;
  });
  reg("bpf_iter_scx_dsq_destroy", KF_ITER_DESTROY, SET_ANY, (c) => {
    const at = c.argNum(1);
    iters.delete(readU32(at));
    k.mem.bytes(at, 8).fill(0);
    return 0;
  });
  reg("scx_bpf_exit_bstr", KF_TRUSTED_ARGS, SET_ANY, (c) => {
    root()?.exit(SCX_EXIT_UNREG_BPF, BigInt.asIntN(64, c.arg(1)), bstr(c, 2));
    return 0;
  });
  reg("scx_bpf_error_bstr", KF_TRUSTED_ARGS, SET_ANY, (c) => {
    root()?.exit(SCX_EXIT_ERROR_BPF, 0n, bstr(c, 1));
    return 0;
  });
  reg("scx_bpf_dump_bstr", KF_TRUSTED_ARGS, SET_ANY, (c) => {
    st.dumpLine(bstr(c, 1));
    return 0;
  });
  reg("scx_bpf_cpuperf_cap", 0, SET_ANY, (c) => {
    const sch = root();
    return sch && cpuValid(sch, cpuArg(c, 1)) ? SCX_CPUPERF_ONE : SCX_CPUPERF_ONE;
  });
  const perf = new Map<number, number>();
  reg("scx_bpf_cpuperf_cur", 0, SET_ANY, (c) => {
    const sch = root();
    const cpu = cpuArg(c, 1);
    return sch && cpuValid(sch, cpu) ? (perf.get(cpu) ?? SCX_CPUPERF_ONE) : SCX_CPUPERF_ONE;
  });
  reg("scx_bpf_cpuperf_set", 0, SET_ANY, (c) => {
    const sch = root();
    const cpu = cpuArg(c, 1);
    const v = Number(c.arg(2) & 0xffffffffn);
    if (!sch) return 0;
    if (v > SCX_CPUPERF_ONE) {
      sch.error(`Invalid cpuperf target ${v} for CPU ${cpu}`);
      return 0;
    }
    if (cpuValid(sch, cpu)) perf.set(cpu, v);
    return 0;
  });
  reg("scx_bpf_nr_node_ids", 0, SET_ANY, () => m()?.nrNodes() ?? 1);
  reg("scx_bpf_nr_cpu_ids", 0, SET_ANY, () => k.nrCpus);
  const maskRegion = (name: string, bits: () => bigint) => {
    const r = k.mem.alloc(8, { perm: "r", kind: "kobj", name });
    return () => {
      new DataView(k.mem.bytes(r.addr, 8).buffer, k.mem.bytes(r.addr, 8).byteOffset, 8).setBigUint64(0, bits(), true);
      return r.addr;
    };
  };
  const all = () => (1n << BigInt(k.nrCpus)) - 1n;
  const possible = maskRegion("cpu_possible_mask", all);
  const online = maskRegion("cpu_online_mask", () => m()?.onlineMask() ?? all());
  const idle = maskRegion("scx idle cpumask", () => m()?.idleMask() ?? 0n);
  const idleSmt = maskRegion("scx idle smtmask", () => m()?.idleSmtMask() ?? 0n);
  reg("scx_bpf_get_possible_cpumask", KF_ACQUIRE, SET_ANY, possible);
  reg("scx_bpf_get_online_cpumask", KF_ACQUIRE, SET_ANY, online);
  reg("scx_bpf_put_cpumask", KF_RELEASE, SET_ANY, () => 0);
  reg("scx_bpf_task_running", KF_RCU, SET_ANY, (c) => (m()?.taskRunning(c.argNum(1)) ? 1 : 0));
  reg("scx_bpf_task_cpu", KF_RCU, SET_ANY, (c) => m()?.taskCpu(c.argNum(1)) ?? 0);
  reg("scx_bpf_cpu_rq", 0, SET_ANY, () => 0);
  reg("scx_bpf_locked_rq", KF_RET_NULL, SET_ANY, () => 0);
  reg("scx_bpf_cpu_curr", KF_RET_NULL | KF_RCU_PROTECTED, SET_ANY, (c) => {
    const sch = root();
    const cpu = cpuArg(c, 1);
    if (!sch || !cpuValid(sch, cpu)) return 0;
    return m()?.cpuCurr(cpu) ?? 0;
  });
  // The root cgroup unless called from an op on p; always a reference.
  reg("scx_bpf_task_cgroup", KF_RCU | KF_ACQUIRE, SET_ANY, (c) => {
    const cgr = cgroupRoot(k);
    if (!cgr) return 0;
    let cg = cgr.cgrp;
    const sch = root();
    const p = c.argNum(1);
    const t = k.taskByAddr.get(p);
    if (sch && t && sch.kfAllowedOnArgTasks(__SCX_KF_RQ_LOCKED, p)) cg = cgr.taskCgroup(t);
    cgroup_get(cg);
    return cg.addr;
  });
  reg("scx_bpf_now", 0, SET_ANY, () => m()?.now() ?? 0n);
  reg("scx_bpf_events", KF_TRUSTED_ARGS, SET_ANY, (c) => {
    const sz = Number(c.arg(2));
    const out = k.mem.bytes(c.argNum(1), sz);
    const dv = new DataView(out.buffer, out.byteOffset, sz);
    const sch = root();
    SCX_EVENTS.forEach((e, i) => {
      if ((i + 1) * 8 <= sz) dv.setBigInt64(i * 8, sch ? sch.events[e] : 0n, true);
    });
    return 0;
  });

  // ---- idle (ext_idle.c) ----
  const NUMA_NO_NODE = -1;
  const perNode = (sch: ScxSched) => (sch.flags & SCX_OPS_BUILTIN_IDLE_PER_NODE) !== 0n;
  /** validate_node(): the node a *_node kfunc may use, or an -errno (most with an error exit). */
  const validateNode = (sch: ScxSched, node: number): number => {
    if (!perNode(sch)) {
      sch.error("per-node idle tracking is disabled");
      return -EOPNOTSUPP;
    }
    if (node === NUMA_NO_NODE) return -ENOENT;
    if (node < 0 || node >= (m()?.nrNodes() ?? 1)) {
      sch.error(`invalid node ${node}`);
      return -EINVAL;
    }
    return node;
  };
  reg("scx_bpf_cpu_node", 0, SET_IDLE, (c) => {
    const sch = root();
    const cpu = cpuArg(c, 1);
    if (!sch || !cpuValid(sch, cpu)) return NUMA_NO_NODE;
    return m()?.cpuNode(cpu) ?? 0;
  });
  const noneMask = maskRegion("cpu_none_mask", () => 0n);
  const nodeIdle = (smt: boolean) =>
    maskRegion(smt ? "scx idle smtmask of a node" : "scx idle cpumask of a node", () => {
      const mm = m();
      return mm ? (smt ? mm.idleSmtMask() : mm.idleMask()) & mm.nodeMask(nodeArg) : 0n;
    });
  let nodeArg = 0;
  const idleNodeRegion = nodeIdle(false);
  const idleSmtNodeRegion = nodeIdle(true);
  const getNode = (region: () => number) => (c: HelperArgs) => {
    const sch = root();
    if (!sch) return noneMask();
    const node = validateNode(sch, s32(c.arg(1)));
    if (node < 0) return noneMask();
    nodeArg = node;
    return region();
  };
  /** The global masks: not while idle tracking is per node. */
  const getGlobal = (region: () => number) => () => {
    const sch = root();
    if (sch && perNode(sch)) {
      sch.error("SCX_OPS_BUILTIN_IDLE_PER_NODE enabled");
      return noneMask();
    }
    return region();
  };
  reg("scx_bpf_get_idle_cpumask_node", KF_ACQUIRE, SET_IDLE, getNode(idleNodeRegion));
  reg("scx_bpf_get_idle_cpumask", KF_ACQUIRE, SET_IDLE, getGlobal(idle));
  reg("scx_bpf_get_idle_smtmask_node", KF_ACQUIRE, SET_IDLE, getNode(idleSmtNodeRegion));
  reg("scx_bpf_get_idle_smtmask", KF_ACQUIRE, SET_IDLE, getGlobal(idleSmt));
  reg("scx_bpf_put_idle_cpumask", KF_RELEASE, SET_IDLE, () => 0);
  reg("scx_bpf_test_and_clear_cpu_idle", 0, SET_IDLE, (c) => {
    const sch = root();
    const cpu = cpuArg(c, 1);
    if (!sch || !cpuValid(sch, cpu)) return 0;
    return m()?.testAndClearCpuIdle(cpu) ? 1 : 0;
  });
  const maskArg = (c: HelperArgs, i: number): bigint => {
    const b = k.mem.bytes(c.argNum(i), 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  };
  reg("scx_bpf_pick_idle_cpu_node", KF_RCU, SET_IDLE, (c) => {
    const sch = root();
    const mm = m();
    if (!sch || !mm) return -ENODEV;
    const node = validateNode(sch, s32(c.arg(2)));
    return node < 0 ? node : mm.pickIdleNode(maskArg(c, 1), node, c.arg(3));
  });
  reg("scx_bpf_pick_idle_cpu", KF_RCU, SET_IDLE, (c) => {
    const sch = root();
    if (sch && perNode(sch)) {
      sch.error("per-node idle tracking is enabled");
      return -16;
    }
    return sch ? (m()?.pickIdleCpu(sch, maskArg(c, 1), c.arg(2)) ?? -16) : -ENODEV;
  });
  reg("scx_bpf_pick_any_cpu_node", KF_RCU, SET_IDLE, (c) => {
    const sch = root();
    const mm = m();
    if (!sch || !mm) return -ENODEV;
    const node = validateNode(sch, s32(c.arg(2)));
    if (node < 0) return node;
    const allowed = maskArg(c, 1);
    const flags = c.arg(3);
    const cpu = mm.pickIdleNode(allowed, node, flags);
    if (cpu >= 0) return cpu;
    // any CPU of the mask, of the node first with SCX_PICK_IDLE_IN_NODE
    const pool = flags & SCX_PICK_IDLE_IN_NODE ? allowed & mm.nodeMask(node) : allowed;
    for (let i = 0; i < k.nrCpus; i++) if ((pool >> BigInt(i)) & 1n) return i;
    return -16;
  });
  reg("scx_bpf_pick_any_cpu", KF_RCU, SET_IDLE, (c) => {
    const sch = root();
    if (sch && perNode(sch)) {
      sch.error("per-node idle tracking is enabled");
      return -16;
    }
    return sch ? (m()?.pickAnyCpu(sch, maskArg(c, 1), c.arg(2)) ?? -16) : -ENODEV;
  });
}
