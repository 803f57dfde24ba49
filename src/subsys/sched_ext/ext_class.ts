/**
 * The ext sched_class (kernel/sched/ext.c: enqueue_task_scx, dequeue_task_scx, balance_one,
 * pick_task_scx, put_prev_task_scx, set_next_task_scx, select_task_rq_scx, task_tick_scx, the
 * dispatch buffer, direct dispatch, DSQ moves between CPUs, the watchdog) and the built-in idle
 * tracking of ext_idle.c, on the simulated scheduler core. The class object is structurally a
 * SchedClass of src/kernel/sched/sched.ts, filled into the core's ext slot at boot.
 */
import { type Rq, type SchedClass, type SchedCore, type SchedTask, task_weight } from "../../kernel/sched/sched.js";
import { memberOff, view } from "../../kernel/task.js";
import {
  SCX_DEQ_CORE_SCHED_EXEC,
  SCX_DEQ_SLEEP,
  SCX_DSP_MAX_LOOPS,
  SCX_DSQ_GLOBAL,
  SCX_DSQ_INVALID,
  SCX_DSQ_LOCAL,
  SCX_DSQ_LOCAL_CPU_MASK,
  SCX_DSQ_LOCAL_ON,
  SCX_ECODE_ACT_RESTART,
  SCX_ECODE_RSN_HOTPLUG,
  SCX_ENQ_DSQ_PRIQ,
  SCX_ENQ_HEAD,
  SCX_ENQ_LAST,
  SCX_ENQ_PREEMPT,
  SCX_EXIT_ERROR_STALL,
  SCX_EXIT_UNREG_KERN,
  SCX_KF_CPU_RELEASE,
  SCX_KF_DISPATCH,
  SCX_KF_ENQUEUE,
  SCX_KF_REST,
  SCX_KF_SELECT_CPU,
  SCX_KF_UNLOCKED,
  SCX_OPS_ENQ_LAST,
  SCX_OPS_KEEP_BUILTIN_IDLE,
  SCX_OPS_SWITCH_PARTIAL,
  SCX_PICK_IDLE_CORE,
  SCX_PICK_IDLE_IN_NODE,
  SCX_SLICE_DFL,
  SCX_TASK_ENABLED,
  SCX_TASK_INIT,
  SCX_TASK_NONE,
  SCX_TASK_QUEUED,
  SCX_TASK_READY,
  SCX_TASK_STATE_MASK,
  SCX_TASK_STATE_SHIFT,
} from "./consts.js";
import {
  OP_CPU_ACQUIRE,
  OP_CPU_OFFLINE,
  OP_CPU_ONLINE,
  OP_CPU_RELEASE,
  OP_DEQUEUE,
  OP_DISABLE,
  OP_DISPATCH,
  OP_DUMP,
  OP_DUMP_CPU,
  OP_DUMP_TASK,
  OP_ENABLE,
  OP_ENQUEUE,
  OP_EXIT_TASK,
  OP_INIT_TASK,
  OP_QUIESCENT,
  OP_RUNNABLE,
  OP_RUNNING,
  OP_SELECT_CPU,
  OP_SET_CPUMASK,
  OP_SET_WEIGHT,
  OP_STOPPING,
  OP_TICK,
  OP_UPDATE_IDLE,
  OP_YIELD,
  type ScxClassHost,
  type ScxSched,
  type ScxState,
} from "./ext.js";
import { ScxCgroups } from "./ext_cgroup.js";
import { ScxDispatchQ } from "./ext_dsq.js";
import { ScxIdle } from "./ext_idle.js";
import type { DsqIter, ScxMachine } from "./ext_kfuncs.js";
import { ScxKicks } from "./ext_kick.js";

type CoreRq = Rq;
type CoreTask = SchedTask;

const TASK_ON_RQ_MIGRATING = 2;
const DEQUEUE_SLEEP = 0x01;
const WF_EXEC = 0x02;
/** The core's enqueue flags (the low byte) as bigint enq_flags, made once. */
const ENQ_LOW: readonly bigint[] = Array.from({ length: 256 }, (_, i) => BigInt(i));
/** The enq_flags bits dispatch_enqueue tests, in the halves decodeEnq gives. */
const ENQ_HEAD_LO = Number(SCX_ENQ_HEAD);
const ENQ_PREEMPT_HI = Number(SCX_ENQ_PREEMPT >> 32n);
const ENQ_PRIQ_HI = Number(SCX_ENQ_DSQ_PRIQ >> 32n);
/** SCX_SLICE_DFL as a number. */
const SLICE_DFL = Number(SCX_SLICE_DFL);
/** The lowest of __SCX_ENQ_INTERNAL_MASK's bits (0xff << 56): flags at or above it set one of them. */
const SCX_ENQ_INTERNAL_MIN = 1n << 56n;
/** ops_state of a task in the BPF scheduler's custody (enqueued, not yet dispatched). */
const OPSS_NONE = 0;
const OPSS_QUEUED = 2;

/** struct sched_ext_entity: the kernel-side fields; slice, dsq_vtime, weight live in task memory. */
class ScxEntity {
  dsq: ScxDispatchQ<ScxEntity> | null = null;
  dsq_seq = 0;
  on_priq = false;
  priq_order = 0;
  sticky_cpu = -1;
  selected_cpu = -1;
  ddsp_dsq_id = SCX_DSQ_INVALID;
  ddsp_enq_flags = 0n;
  ops_state = OPSS_NONE;
  ops_qseq = 0;
  runnable_at = 0;
  runnable = false;

  /** Absolute addresses of the fields in task memory (a task_struct does not move). */
  private readonly aSlice: number;
  private readonly aVtime: number;
  private readonly aWeight: number;
  private readonly aFlags: number;

  constructor(
    readonly p: CoreTask,
    /** The whole memory's current view (VmMemory's dv, replaced when the memory grows). */
    private readonly mem: { readonly dv: DataView },
    off: Record<string, number>,
  ) {
    const a = p.task.addr;
    this.aSlice = a + off.slice!;
    this.aVtime = a + off.dsq_vtime!;
    this.aWeight = a + off.weight!;
    this.aFlags = a + off.flags!;
  }

  get slice(): bigint {
    return this.mem.dv.getBigUint64(this.aSlice, true);
  }
  set slice(v: bigint) {
    // (setBigUint64 wraps to 64 bits as ToBigUint64 does)
    this.mem.dv.setBigUint64(this.aSlice, v, true);
  }
  /** slice = SCX_SLICE_DFL (and any value below 2^53) without a bigint. */
  setSliceNum(v: number): void {
    const dv = this.mem.dv;
    const lo = v >>> 0;
    dv.setUint32(this.aSlice, lo, true);
    dv.setUint32(this.aSlice + 4, (v - lo) / 0x1_0000_0000, true);
  }
  /** slice != 0, read without making a bigint. */
  get hasSlice(): boolean {
    const dv = this.mem.dv;
    const o = this.aSlice;
    return dv.getUint32(o, true) !== 0 || dv.getUint32(o + 4, true) !== 0;
  }
  /** update_curr_scx's charge: slice -= ns (not below 0), SCX_SLICE_INF untouched; numbers while it fits. */
  chargeSlice(ns: number): void {
    const dv = this.mem.dv;
    const o = this.aSlice;
    const lo = dv.getUint32(o, true);
    const hi = dv.getUint32(o + 4, true);
    if (hi === 0xffff_ffff && lo === 0xffff_ffff) return;
    if (hi >= 0x20_0000) {
      const s = this.slice;
      const d = BigInt(ns);
      this.slice = s > d ? s - d : 0n;
      return;
    }
    const left = Math.max(0, hi * 0x1_0000_0000 + lo - ns);
    const l = left >>> 0;
    dv.setUint32(o, l, true);
    dv.setUint32(o + 4, (left - l) / 0x1_0000_0000, true);
  }
  get dsq_vtime(): bigint {
    return this.mem.dv.getBigUint64(this.aVtime, true);
  }
  set dsq_vtime(v: bigint) {
    this.mem.dv.setBigUint64(this.aVtime, v, true);
  }
  get weight(): number {
    return this.mem.dv.getUint32(this.aWeight, true);
  }
  set weight(v: number) {
    this.mem.dv.setUint32(this.aWeight, v, true);
  }
  get flags(): number {
    return this.mem.dv.getUint32(this.aFlags, true);
  }
  set flags(v: number) {
    this.mem.dv.setUint32(this.aFlags, v >>> 0, true);
  }
  get state(): number {
    return (this.flags & SCX_TASK_STATE_MASK) >> SCX_TASK_STATE_SHIFT;
  }
  set state(s: number) {
    this.flags = (this.flags & ~SCX_TASK_STATE_MASK) | (s << SCX_TASK_STATE_SHIFT);
  }
  get queued(): boolean {
    return (this.flags & SCX_TASK_QUEUED) !== 0;
  }
}

/** struct scx_rq. */
interface ScxRq {
  local: ScxDispatchQ<ScxEntity>;
  balKeep: boolean;
  opsQseq: number;
  /** A higher class took the CPU and ops.cpu_release was called; ops.cpu_acquire is owed. */
  cpuReleased: boolean;
}

/** One buffered scx_bpf_dsq_insert from ops.dispatch. */
interface DspBufEnt {
  p: ScxEntity;
  qseq: number;
  dsqId: bigint;
  enqFlags: bigint;
}

/** A DSQ id as the kernel's messages print it (%016llx). */
function hexId(id: bigint): string {
  return id.toString(16).padStart(16, "0");
}

/** preempt_reason_from_class(): enum scx_cpu_preempt_reason. */
function preemptReason(c: SchedClass): number {
  return c.name === "rt" ? 0 : c.name === "dl" ? 1 : c.name === "stop" ? 2 : 3;
}

/** sched_weight_to_cgroup(): the core's load weight (nice 0 = 1024) on sched_ext's 1..10000 scale. */
export function sched_weight_to_cgroup(w: number): number {
  return Math.min(10000, Math.max(1, Math.round((w * 100) / 1024)));
}

/** %*pb of a cpumask: hex, most significant CPU first, 32-bit groups separated by commas. */
function cpumaskHex(mask: Uint8Array): string {
  const words: string[] = [];
  for (let base = 0; base < mask.length; base += 32) {
    let w = 0;
    for (let i = 0; i < 32 && base + i < mask.length; i++) if (mask[base + i]) w |= 1 << i;
    // the most significant group only as wide as its bits need
    const top = base + 32 >= mask.length;
    words.unshift((w >>> 0).toString(16).padStart(top ? Math.ceil((mask.length - base) / 4) : 8, "0"));
  }
  return words.join(",");
}

export class ExtSchedClass implements SchedClass, ScxClassHost, ScxMachine {
  readonly name = "ext";
  private readonly global = new ScxDispatchQ<ScxEntity>(SCX_DSQ_GLOBAL);
  /** direct_dispatch_task: the task whose select_cpu/enqueue is running (null: none; "spoiled": inserted). */
  private ddspTask: ScxEntity | "spoiled" | null = null;
  private dsp: { rq: CoreRq; buf: DspBufEnt[]; nrTasks: number } | null = null;
  /** What dsp points to during a dispatch (one dispatch runs at a time): reused, not made per call. */
  private readonly dspState: { rq: CoreRq; buf: DspBufEnt[]; nrTasks: number };
  private readonly off: Record<string, number>;
  private readonly memView: { readonly dv: DataView };
  private lastWatchdog = 0;
  private readonly byAddr = new Map<number, ScxEntity>();
  readonly kicks: ScxKicks;
  /** ext_idle.c's idle masks. */
  private readonly idle: ScxIdle;

  constructor(
    readonly st: ScxState,
    readonly core: SchedCore,
  ) {
    const btf = st.kernel.btfVmlinux;
    if (!btf) throw new Error("sched_ext needs the kernel's BTF");
    const scx = memberOff(btf, "task_struct", "scx");
    const f = (n: string) => scx + memberOff(btf, "sched_ext_entity", n);
    this.off = { slice: f("slice"), dsq_vtime: f("dsq_vtime"), weight: f("weight"), flags: f("flags") };
    const mem = st.kernel.mem;
    // the task fields are read through VmMemory's view of all of memory (the kernel's default memory)
    if (!("dv" in mem && (mem as { dv: unknown }).dv instanceof DataView))
      throw new Error("sched_ext needs the kernel's memory to be the VM's (VmMemory)");
    this.memView = mem as unknown as { readonly dv: DataView };
    this.off.cpus_mask = memberOff(btf, "task_struct", "cpus_mask");
    this.idle = new ScxIdle(core);
    this.dspState = { rq: core.cpu_rq(0), buf: [], nrTasks: 0 };
    for (let c = 0; c < core.nr_cpu_ids; c++) {
      core.cpu_rq(c).scx = {
        local: new ScxDispatchQ<ScxEntity>(SCX_DSQ_LOCAL, c),
        balKeep: false,
        opsQseq: 1,
        cpuReleased: false,
      };
      if (core.idle_cpu(c)) this.setIdle(c, true);
    }
    st.dumpText = (sch) => this.dumpState(sch);
    this.kicks = new ScxKicks({
      core,
      ext: this,
      zeroSlice: (cpu) => {
        this.ent(core.cpu_rq(cpu).curr).slice = 0n;
      },
    });
    core.hooks.push({
      context_switch: (rq, prev, next) => {
        if (next === rq.idle) this.updateIdle(rq.cpu, true);
        else if (prev === rq.idle) this.updateIdle(rq.cpu, false);
      },
      fork: (p) => this.fork(p),
      dead: (p) => this.dead(p),
      tick: (rq) => this.tick(rq),
      cpu_activate: (rq) => this.handleHotplug(rq, true),
      cpu_deactivate: (rq) => this.handleHotplug(rq, false),
      tg_online: (cg) => this.cgroups.online(cg),
      tg_offline: (cg) => this.cgroups.offline(cg),
      cgroup_can_attach: (ts, from, to) => this.cgroups.canAttach(ts, from, to),
      cgroup_cancel_attach: (ts, from, to) => this.cgroups.cancelAttach(ts, from, to),
      cgroup_move_task: (p) => this.cgroups.moveTask(p),
      tg_set_weight: (cg, w) => this.cgroups.setWeight(cg, w),
      tg_set_bandwidth: (cg, period, quota, burst) => this.cgroups.setBandwidth(cg, period, quota, burst),
    });
    this.cgroups = new ScxCgroups(st, core);
  }

  /** The cgroup ops' state. */
  readonly cgroups: ScxCgroups;

  private above(a: SchedClass, b: SchedClass): boolean {
    return this.core.sched_class_above(a, b);
  }

  private get sch(): ScxSched | null {
    const s = this.st.root;
    return s && !s.disabled ? s : null;
  }

  private srq(rq: CoreRq): ScxRq {
    return rq.scx as ScxRq;
  }

  private ent(p: CoreTask): ScxEntity {
    let e = p.scx as ScxEntity | null;
    if (!e) {
      e = new ScxEntity(p, this.memView, this.off);
      p.scx = e;
      this.byAddr.set(p.task.addr, e);
    }
    return e;
  }

  /** The entity of a task_struct address a program passed (tasks known to the class). */
  private entByAddr(addr: number): ScxEntity | undefined {
    return this.byAddr.get(addr);
  }

  // ---- enable / disable (ScxClassHost) ----

  enable(sch: ScxSched): void {
    if (!this.cgroups.init(sch)) return;
    for (const p of this.core.tasks()) {
      if (!this.initTask(sch, p, false)) return;
    }
    this.core.ext_enabled = true;
    this.core.ext_switched_all = !(sch.flags & SCX_OPS_SWITCH_PARTIAL);
    this.core.reclass_all();
  }

  disable(sch: ScxSched): void {
    this.kicks.reset();
    for (let c = 0; c < this.core.nr_cpu_ids; c++) this.srq(this.core.cpu_rq(c)).cpuReleased = false;
    this.core.ext_enabled = false;
    this.core.ext_switched_all = false;
    this.core.reclass_all();
    for (const p of this.core.tasks()) {
      const e = this.ent(p);
      if (e.state !== SCX_TASK_NONE) this.exitTask(sch, e);
    }
    this.cgroups.exit(sch);
    this.global.list.length = 0;
  }

  /** scx_init_task(): ops.init_task, then READY. */
  private initTask(sch: ScxSched, p: CoreTask, fork: boolean): boolean {
    const e = this.ent(p);
    e.setSliceNum(SLICE_DFL);
    e.weight = sched_weight_to_cgroup(task_weight(p));
    if (sch.op[OP_INIT_TASK] !== undefined) {
      const args = this.st.kernel.mem.alloc(16, { perm: "r", kind: "kobj", name: "scx_init_task_args" });
      this.st.kernel.mem.bytes(args.addr, 1)[0] = fork ? 1 : 0;
      // .cgroup = tg_cgrp(task_group(p))
      const cg = this.cgroups.taskCgroup(p);
      if (cg) view(this.st.kernel, args.addr + 8, 8).setBigUint64(0, BigInt(cg.addr), true);
      const ret = sch.callN(OP_INIT_TASK, SCX_KF_UNLOCKED, p.task.addr, args.addr) | 0;
      this.st.kernel.mem.free(args);
      if (ret) {
        sch.error(`ops.init_task() failed (${ret}) for ${p.comm}[${p.pid}] while loading`);
        return false;
      }
    }
    e.state = SCX_TASK_INIT;
    e.state = SCX_TASK_READY;
    return true;
  }

  private exitTask(sch: ScxSched, e: ScxEntity): void {
    if (e.state === SCX_TASK_ENABLED) this.disableTask(sch, e);
    if (sch.op[OP_EXIT_TASK] !== undefined) {
      const args = this.st.kernel.mem.alloc(8, { perm: "r", kind: "kobj", name: "scx_exit_task_args" });
      sch.callN(OP_EXIT_TASK, SCX_KF_REST, e.p.task.addr, args.addr);
      this.st.kernel.mem.free(args);
    }
    e.state = SCX_TASK_NONE;
  }

  private enableTask(sch: ScxSched, e: ScxEntity): void {
    e.weight = sched_weight_to_cgroup(task_weight(e.p));
    sch.callN(OP_ENABLE, SCX_KF_REST, e.p.task.addr);
    e.state = SCX_TASK_ENABLED;
    if (sch.op[OP_SET_WEIGHT] !== undefined) sch.callN(OP_SET_WEIGHT, SCX_KF_REST, e.p.task.addr, e.weight);
  }

  private disableTask(sch: ScxSched, e: ScxEntity): void {
    sch.callN(OP_DISABLE, SCX_KF_REST, e.p.task.addr);
    e.state = SCX_TASK_READY;
  }

  /** scx_fork(): every new task is initialized while a scheduler is loaded. */
  private fork(p: CoreTask): void {
    const sch = this.sch;
    if (!sch || !this.core.ext_enabled || this.ent(p).state !== SCX_TASK_NONE) return;
    this.initTask(sch, p, true);
  }

  private dead(p: CoreTask): void {
    const sch = this.sch;
    const e = p.scx as ScxEntity | null;
    if (sch && e && e.state !== SCX_TASK_NONE) this.exitTask(sch, e);
    this.byAddr.delete(p.task.addr);
    this.flush();
  }

  /** The disable work and other deferred exits, from a safe point outside the class methods. */
  private flush(): void {
    if (this.st.pendingDisable) this.st.flushDisable();
  }

  // ---- SchedClass ----

  /** A task forked into ext: scx_fork's ops.init_task, then scx_post_fork's ops.enable. */
  task_fork(p: CoreTask): void {
    const sch = this.sch;
    const e = this.ent(p);
    if (!sch) return;
    if (e.state === SCX_TASK_NONE && !this.initTask(sch, p, true)) return;
    if (e.state === SCX_TASK_READY) this.enableTask(sch, e);
  }

  switching_to(_rq: CoreRq, p: CoreTask): void {
    const sch = this.sch;
    if (!sch) return;
    const e = this.ent(p);
    if (e.state === SCX_TASK_NONE && !this.initTask(sch, p, false)) return;
    if (e.state === SCX_TASK_READY) this.enableTask(sch, e);
  }

  switched_from(_rq: CoreRq, p: CoreTask): void {
    const sch = this.st.root;
    const e = this.ent(p);
    if (sch && e.state === SCX_TASK_ENABLED) this.disableTask(sch, e);
  }

  enqueue_task(rq: CoreRq, p: CoreTask, flags: number): void {
    const sch = this.sch;
    const e = this.ent(p);
    const sticky = e.sticky_cpu;
    if (sticky >= 0) e.sticky_cpu = -1;
    if (e.queued) return;
    e.runnable = true;
    e.runnable_at = this.core.now();
    e.flags |= SCX_TASK_QUEUED;
    const enq = ENQ_LOW[flags & 0xff]!;
    if (sch !== null && sch.op[OP_RUNNABLE] !== undefined && p.on_rq !== TASK_ON_RQ_MIGRATING)
      sch.callN(OP_RUNNABLE, SCX_KF_REST, p.task.addr, enq);
    this.doEnqueue(rq, e, enq, sticky);
  }

  /** do_enqueue_task(). */
  private doEnqueue(rq: CoreRq, e: ScxEntity, enqFlags: bigint, sticky: number): void {
    const sch = this.sch;
    if (sticky === rq.cpu) {
      this.dispatchEnqueue(this.srq(rq).local, e, enqFlags);
      return;
    }
    if (!sch) {
      this.refill(e);
      this.dispatchEnqueue(this.global, e, enqFlags);
      return;
    }
    if (e.ddsp_dsq_id !== SCX_DSQ_INVALID) {
      this.directDispatch(sch, rq, e, enqFlags);
      return;
    }
    if (sch.op[OP_ENQUEUE] === undefined) {
      this.refill(e);
      this.dispatchEnqueue(this.global, e, enqFlags);
      return;
    }
    const srq = this.srq(rq);
    e.ops_qseq = srq.opsQseq++;
    e.ops_state = OPSS_QUEUED;
    this.ddspTask = e;
    try {
      sch.callN(OP_ENQUEUE, SCX_KF_ENQUEUE, e.p.task.addr, enqFlags);
    } finally {
      this.ddspTask = null;
    }
    if (e.ddsp_dsq_id !== SCX_DSQ_INVALID) this.directDispatch(sch, rq, e, enqFlags);
  }

  private refill(e: ScxEntity): void {
    e.setSliceNum(SLICE_DFL);
    this.sch?.bumpEvent("SCX_EV_REFILL_SLICE_DFL");
  }

  /** direct_dispatch(). */
  private directDispatch(sch: ScxSched, rq: CoreRq, e: ScxEntity, enqFlags: bigint): void {
    const id = e.ddsp_dsq_id;
    const dd = e.ddsp_enq_flags;
    const flags = dd === 0n ? enqFlags : dd | enqFlags;
    e.ddsp_dsq_id = SCX_DSQ_INVALID;
    e.ddsp_enq_flags = 0n;
    e.ops_state = OPSS_NONE;
    const dsq = this.findDsqForDispatch(sch, rq, id, e);
    if (dsq.cpu >= 0 && dsq.cpu !== rq.cpu) {
      this.dispatchToLocal(sch, rq, dsq, e, flags);
      return;
    }
    this.dispatchEnqueue(dsq, e, flags);
  }

  /** find_dsq_for_dispatch(). */
  private findDsqForDispatch(sch: ScxSched, rq: CoreRq, id: bigint, e: ScxEntity): ScxDispatchQ<ScxEntity> {
    if (id === SCX_DSQ_LOCAL) return this.srq(rq).local;
    // (id & SCX_DSQ_LOCAL_ON) == SCX_DSQ_LOCAL_ON: its two top bits, the highest ids
    if (id >= SCX_DSQ_LOCAL_ON) {
      const cpu = Number(id & SCX_DSQ_LOCAL_CPU_MASK);
      if (cpu >= this.core.nr_cpu_ids) {
        sch.error(`invalid CPU ${cpu} in SCX_DSQ_LOCAL_ON dispatch verdict`);
        return this.global;
      }
      return this.srq(this.core.cpu_rq(cpu)).local;
    }
    if (id === SCX_DSQ_GLOBAL) return this.global;
    const dsq = sch.dsqs.get(id) as ScxDispatchQ<ScxEntity> | undefined;
    if (!dsq) {
      sch.error(`non-existent DSQ 0x${id.toString(16)} for ${e.p.comm}[${e.p.pid}]`);
      return this.global;
    }
    return dsq;
  }

  /** dispatch_enqueue(). */
  private dispatchEnqueue(dsq: ScxDispatchQ<ScxEntity>, e: ScxEntity, enqFlags: bigint): void {
    const sch = this.sch;
    this.decodeEnq(enqFlags);
    let priq = (this.enqHi & ENQ_PRIQ_HI) !== 0;
    if (dsq.builtin && priq) {
      sch?.error("cannot use vtime ordering for built-in DSQs");
      priq = false;
    }
    if (priq) {
      if (dsq.hasFifo) sch?.error(`DSQ ID 0x${hexId(dsq.id)} already had FIFO-enqueued tasks`);
      dsq.pushPriq(e);
    } else {
      if (dsq.hasPriq) sch?.error(`DSQ ID 0x${hexId(dsq.id)} already had PRIQ-enqueued tasks`);
      dsq.pushFifo(e, (this.enqLo & ENQ_HEAD_LO) !== 0);
    }
    e.ops_state = OPSS_NONE;
    if (dsq.cpu >= 0) {
      const rq = this.core.cpu_rq(dsq.cpu);
      let preempt = false;
      if (this.enqHi & ENQ_PREEMPT_HI && rq.curr !== e.p && rq.curr.sched_class === this) {
        this.ent(rq.curr).slice = 0n;
        preempt = true;
      }
      if (preempt || this.above(this, rq.curr.sched_class)) this.core.resched_curr(rq);
    }
  }

  /** The halves of the enq_flags last decoded (flags repeat: a bigint of a new value is split once). */
  private enqLast = 0n;
  private enqLo = 0;
  private enqHi = 0;

  private decodeEnq(flags: bigint): void {
    if (flags === this.enqLast) return;
    this.enqLast = flags;
    this.enqLo = Number(flags & 0xffff_ffffn);
    this.enqHi = Number((flags >> 32n) & 0xffff_ffffn);
  }

  /** task_can_run_on_remote_rq(). */
  private canRunOn(sch: ScxSched, e: ScxEntity, rq: CoreRq, enforce: boolean): boolean {
    if (!e.p.cpus_mask[rq.cpu]) {
      if (enforce) sch.error(`SCX_DSQ_LOCAL[_ON] target CPU ${rq.cpu} not allowed for ${e.p.comm}[${e.p.pid}]`);
      return false;
    }
    if (!rq.online) {
      if (enforce) sch.bumpEvent("SCX_EV_DISPATCH_LOCAL_DSQ_OFFLINE");
      return false;
    }
    return true;
  }

  /** dispatch_to_local_dsq(): onto another CPU's local DSQ, migrating the task there. */
  private dispatchToLocal(sch: ScxSched, _rq: CoreRq, dsq: ScxDispatchQ<ScxEntity>, e: ScxEntity, flags: bigint): void {
    const dst = this.core.cpu_rq(dsq.cpu);
    const src = this.core.task_rq(e.p);
    if (src === dst) {
      this.dispatchEnqueue(dsq, e, flags);
      return;
    }
    if (!this.canRunOn(sch, e, dst, true)) {
      this.dispatchEnqueue(this.global, e, flags);
      return;
    }
    // A running task is not moved: it goes to the global DSQ (it is still on its CPU).
    if (src.curr === e.p) {
      this.dispatchEnqueue(this.global, e, flags);
      return;
    }
    this.moveToRq(e, dst);
    this.dispatchEnqueue(dsq, e, flags);
  }

  /** move_remote_task_to_local_dsq(): deactivate, set_task_cpu, activate with sticky_cpu. */
  private moveToRq(e: ScxEntity, dst: CoreRq): void {
    const src = this.core.task_rq(e.p);
    e.sticky_cpu = dst.cpu;
    const held = e.dsq;
    this.core.move_queued_task(src, e.p, dst.cpu);
    // Arrived through enqueue_task with sticky_cpu: it sits on dst's local DSQ; the caller places it.
    if (e.dsq && e.dsq !== held) e.dsq.remove(e);
  }

  dequeue_task(rq: CoreRq, p: CoreTask, flags: number): boolean {
    const sch = this.sch;
    const e = this.ent(p);
    if (!e.queued) return true;
    if (e.ops_state === OPSS_QUEUED) {
      if (sch !== null && sch.op[OP_DEQUEUE] !== undefined)
        sch.callN(OP_DEQUEUE, SCX_KF_REST, p.task.addr, flags & 0xff);
      e.ops_state = OPSS_NONE;
    }
    if (sch !== null && sch.op[OP_STOPPING] !== undefined && rq.curr === p) {
      this.update_curr(rq);
      sch.callN(OP_STOPPING, SCX_KF_REST, p.task.addr, 0);
    }
    if (sch !== null && sch.op[OP_QUIESCENT] !== undefined && p.on_rq !== TASK_ON_RQ_MIGRATING) {
      sch.callN(OP_QUIESCENT, SCX_KF_REST, p.task.addr, flags & DEQUEUE_SLEEP ? SCX_DEQ_SLEEP : 0n);
    }
    e.flags &= ~SCX_TASK_QUEUED;
    e.runnable = false;
    e.dsq?.remove(e);
    return true;
  }

  wakeup_preempt(): void {}

  yield_task(rq: CoreRq): void {
    const sch = this.sch;
    const p = rq.curr;
    if (sch !== null && sch.op[OP_YIELD] !== undefined) sch.callN(OP_YIELD, SCX_KF_REST, p.task.addr, 0);
    else this.ent(p).slice = 0n;
  }

  /** update_curr_scx(). */
  update_curr(rq: CoreRq): void {
    const curr = rq.curr;
    if (curr.sched_class !== this) return;
    const delta = this.core.update_curr_common(rq);
    this.ent(curr).chargeSlice(Math.round(delta));
  }

  /** balance_one(). */
  balance(rq: CoreRq, prev: CoreTask): boolean {
    const k = this.kicks.rq(rq.cpu);
    k.inBalance = true;
    try {
      return this.balanceOne(rq, prev);
    } finally {
      k.inBalance = false;
    }
  }

  private balanceOne(rq: CoreRq, prev: CoreTask): boolean {
    const sch = this.sch;
    const srq = this.srq(rq);
    srq.balKeep = false;
    if (sch && srq.cpuReleased && this.cpuPreempt(sch)) {
      // the CPU is back from a higher class: ops.cpu_acquire complements the ops.cpu_release of switch_class
      if (sch.op[OP_CPU_ACQUIRE] !== undefined) sch.callN(OP_CPU_ACQUIRE, SCX_KF_REST, rq.cpu, 0);
      srq.cpuReleased = false;
    }
    const prevOnScx = prev.sched_class === this;
    const pe = prevOnScx ? this.ent(prev) : null;
    const prevOnRq = pe?.queued ?? false;
    if (prevOnScx) {
      this.update_curr(rq);
      if (prevOnRq && pe?.hasSlice) {
        srq.balKeep = true;
        return true;
      }
    }
    if (srq.local.nr) return true;
    if (this.consume(rq, this.global)) return true;
    if (!(sch !== null && sch.op[OP_DISPATCH] !== undefined) || !rq.online) return this.noTasks(sch, srq, prevOnRq);
    // The dispatch loop: until ops.dispatch makes no progress, at most SCX_DSP_MAX_LOOPS rounds.
    for (let loops = SCX_DSP_MAX_LOOPS; ; ) {
      const dsp = this.dspState;
      dsp.rq = rq;
      if (dsp.buf.length !== 0) dsp.buf.length = 0;
      dsp.nrTasks = 0;
      this.dsp = dsp;
      try {
        sch.callN(OP_DISPATCH, SCX_KF_DISPATCH, rq.cpu, prevOnScx ? prev.task.addr : 0);
        this.flushDispatchBuf(sch, rq);
      } finally {
        this.dsp = null;
      }
      const nr = dsp.nrTasks;
      if (prevOnRq && pe?.hasSlice) {
        srq.balKeep = true;
        return true;
      }
      if (srq.local.nr) return true;
      if (this.consume(rq, this.global)) return true;
      if (!--loops) {
        this.core.resched_curr(rq);
        break;
      }
      if (!nr) break;
    }
    return this.noTasks(sch, srq, prevOnRq);
  }

  private noTasks(sch: ScxSched | null, srq: ScxRq, prevOnRq: boolean): boolean {
    if (prevOnRq && (!sch || !(sch.flags & SCX_OPS_ENQ_LAST))) {
      srq.balKeep = true;
      sch?.bumpEvent("SCX_EV_DISPATCH_KEEP_LAST");
      return true;
    }
    return false;
  }

  /** consume_dispatch_q(): the first task of dsq that may run here goes to rq's local DSQ. */
  private consume(rq: CoreRq, dsq: ScxDispatchQ<ScxEntity>): boolean {
    const sch = this.sch;
    // the list is not changed until the task found is taken, and then the loop ends
    const list = dsq.list;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      const src = this.core.task_rq(e.p);
      if (src === rq) {
        dsq.remove(e);
        this.dispatchEnqueue(this.srq(rq).local, e, 0n);
        return true;
      }
      if (sch && this.canRunOn(sch, e, rq, false) && src.curr !== e.p) {
        dsq.remove(e);
        this.moveToRq(e, rq);
        this.dispatchEnqueue(this.srq(rq).local, e, 0n);
        return true;
      }
    }
    return false;
  }

  /** finish_dispatch() for every buffered insert: only tasks still in the BPF scheduler's custody. */
  private flushDispatchBuf(sch: ScxSched, rq: CoreRq): void {
    const d = this.dsp;
    if (!d) return;
    const buf = d.buf;
    const n = buf.length;
    for (let i = 0; i < n; i++) {
      const ent = buf[i]!;
      const e = ent.p;
      if (e.ops_state !== OPSS_QUEUED || e.ops_qseq !== ent.qseq || !e.queued) continue;
      e.ops_state = OPSS_NONE;
      const dsq = this.findDsqForDispatch(sch, rq, ent.dsqId, e);
      if (dsq.cpu >= 0) this.dispatchToLocal(sch, rq, dsq, e, ent.enqFlags);
      else this.dispatchEnqueue(dsq, e, ent.enqFlags);
    }
    // (finish_dispatch runs no BPF: nothing was added meanwhile)
    if (n !== 0) buf.length = 0;
    d.nrTasks += n;
  }

  pick_task(rq: CoreRq): CoreTask | null {
    const srq = this.srq(rq);
    if (srq.balKeep) {
      const e = this.ent(rq.curr);
      if (!e.hasSlice) this.refill(e);
      return rq.curr;
    }
    const e = srq.local.first();
    if (!e) return null;
    if (!e.hasSlice) this.refill(e);
    return e.p;
  }

  set_next_task(rq: CoreRq, p: CoreTask): void {
    const sch = this.sch;
    const e = this.ent(p);
    if (e.queued) {
      if (e.ops_state === OPSS_QUEUED) {
        if (sch !== null && sch.op[OP_DEQUEUE] !== undefined)
          sch.callN(OP_DEQUEUE, SCX_KF_REST, p.task.addr, SCX_DEQ_CORE_SCHED_EXEC);
        e.ops_state = OPSS_NONE;
      }
      e.dsq?.remove(e);
    }
    p.se.exec_start = rq.clock_task;
    if (sch !== null && sch.op[OP_RUNNING] !== undefined && e.queued) sch.callN(OP_RUNNING, SCX_KF_REST, p.task.addr);
    e.runnable = false;
  }

  put_prev_task(rq: CoreRq, p: CoreTask, next: CoreTask | null): void {
    const sch = this.sch;
    const e = this.ent(p);
    // a CPU spinning in SCX_KICK_WAIT for this one sees the task switched out
    this.kicks.bumpPntSeq(rq.cpu);
    this.update_curr(rq);
    if (sch !== null && sch.op[OP_STOPPING] !== undefined && e.queued)
      sch.callN(OP_STOPPING, SCX_KF_REST, p.task.addr, 1);
    if (e.queued) {
      e.runnable = true;
      e.runnable_at = this.core.now();
      if (e.hasSlice) this.dispatchEnqueue(this.srq(rq).local, e, SCX_ENQ_HEAD);
      else {
        const last = next && this.above(this, next.sched_class);
        this.doEnqueue(rq, e, last ? SCX_ENQ_LAST : 0n, -1);
      }
    }
    if (next && next.sched_class !== this) this.switchClass(rq, next);
  }

  /** SCX_OPS_HAS_CPU_PREEMPT, which scx_enable sets for a scheduler with cpu_acquire or cpu_release. */
  private cpuPreempt(sch: ScxSched): boolean {
    return sch.op[OP_CPU_ACQUIRE] !== undefined || sch.op[OP_CPU_RELEASE] !== undefined;
  }

  /** switch_class(): a higher class takes the CPU from SCX: ops.cpu_release, once until ops.cpu_acquire. */
  private switchClass(rq: CoreRq, next: CoreTask): void {
    const sch = this.sch;
    if (!sch || !this.cpuPreempt(sch)) return;
    // going idle is the BPF scheduler's own choice, not a preemption
    if (this.above(this, next.sched_class)) return;
    const srq = this.srq(rq);
    if (srq.cpuReleased) return;
    if (sch.op[OP_CPU_RELEASE] !== undefined) {
      const mem = this.st.kernel.mem;
      const args = mem.alloc(16, { perm: "r", kind: "kobj", name: "scx_cpu_release_args" });
      const b = mem.bytes(args.addr, 16);
      const dv = new DataView(b.buffer, b.byteOffset, 16);
      dv.setUint32(0, preemptReason(next.sched_class), true);
      dv.setBigUint64(8, BigInt(next.task.addr), true);
      try {
        sch.callN(OP_CPU_RELEASE, SCX_KF_CPU_RELEASE, rq.cpu, args.addr);
      } finally {
        mem.free(args);
      }
    }
    srq.cpuReleased = true;
  }

  /** select_task_rq_scx(). */
  select_task_rq(p: CoreTask, prevCpu: number, wakeFlags: number): number {
    const sch = this.sch;
    if (wakeFlags & WF_EXEC || !sch) return prevCpu;
    const e = this.ent(p);
    if (sch.op[OP_SELECT_CPU] !== undefined) {
      this.ddspTask = e;
      let cpu: number;
      try {
        cpu = sch.callN(OP_SELECT_CPU, SCX_KF_ENQUEUE | SCX_KF_SELECT_CPU, p.task.addr, prevCpu, wakeFlags) | 0;
      } finally {
        this.ddspTask = null;
      }
      e.selected_cpu = cpu;
      if (cpu >= 0 && cpu < this.core.nr_cpu_ids) return cpu;
      sch.error(`invalid CPU ${cpu} from ops.select_cpu()`);
      return prevCpu;
    }
    let cpu = this.selectCpuDflCore(p, prevCpu, null);
    if (cpu >= 0) {
      this.refill(e);
      e.ddsp_dsq_id = SCX_DSQ_LOCAL;
    } else cpu = prevCpu;
    e.selected_cpu = cpu;
    return cpu;
  }

  task_tick(rq: CoreRq, curr: CoreTask): void {
    const sch = this.sch;
    this.update_curr(rq);
    if (sch !== null && sch.op[OP_TICK] !== undefined) sch.callN(OP_TICK, SCX_KF_REST, curr.task.addr);
    if (!this.ent(curr).hasSlice) this.core.resched_curr(rq);
  }

  reweight_task(_rq: CoreRq, p: CoreTask, weight: number): void {
    p.se.weight = weight;
    const e = this.ent(p);
    e.weight = sched_weight_to_cgroup(weight);
    const sch = this.sch;
    if (sch !== null && sch.op[OP_SET_WEIGHT] !== undefined && e.state === SCX_TASK_ENABLED)
      sch.callN(OP_SET_WEIGHT, SCX_KF_REST, p.task.addr, e.weight);
  }

  // ---- the debug dump (scx_dump_state) ----

  /** ext.c's scx_dump_state(): the exit, ops.dump, each CPU with ops.dump_cpu, its tasks with ops.dump_task. */
  private dumpState(sch: ScxSched): string {
    const k = this.st.kernel;
    const ei = sch.exitInfo;
    const out: string[] = [];
    const mem = k.mem;
    const btf = k.btfVmlinux;
    const size = btf ? (btf.typeById(btf.findByNameKind("scx_dump_ctx", 4)) as { size: number }).size : 40;
    const reason = mem.alloc(ei.reason.length + 1, { perm: "r", kind: "kobj", name: "scx_dump_ctx reason" });
    mem.bytes(reason.addr, ei.reason.length).set(new TextEncoder().encode(ei.reason));
    const ctx = mem.alloc(size, { perm: "r", kind: "kobj", name: "scx_dump_ctx" });
    const cb = mem.bytes(ctx.addr, size);
    const dv = new DataView(cb.buffer, cb.byteOffset, size);
    if (btf) {
      const off = (m: string) => memberOff(btf, "scx_dump_ctx", m);
      dv.setUint32(off("kind"), ei.kind, true);
      dv.setBigInt64(off("exit_code"), ei.exit_code, true);
      dv.setBigUint64(off("reason"), BigInt(reason.addr), true);
      dv.setBigUint64(off("at_ns"), sch.exitAtNs, true);
      dv.setBigUint64(off("at_jiffies"), k.jiffies, true);
    }
    const line = (s: string) => out.push(s);
    try {
      line(`${sch.exitBy} triggered exit kind ${ei.kind}:`);
      line(`  ${ei.reason} (${ei.msg})`);
      line("");
      line("Backtrace:");
      if (sch.op[OP_DUMP] !== undefined) this.st.opsDump(out, "", () => sch.callN(OP_DUMP, SCX_KF_UNLOCKED, ctx.addr));
      line("");
      line("CPU states");
      line("----------");
      for (let cpu = 0; cpu < this.core.nr_cpu_ids; cpu++) {
        const rq = this.core.cpu_rq(cpu);
        const srq = this.srq(rq);
        const runnable = [...this.core.tasks()].filter(
          (p) => p.sched_class === this && p.cpu === cpu && rq.curr !== p && this.ent(p).queued,
        );
        const idle = !runnable.length && rq.curr === rq.idle;
        if (idle && sch.op[OP_DUMP_CPU] === undefined) continue;
        const ns: string[] = [];
        ns.push("");
        ns.push(
          `CPU ${String(cpu).padEnd(4)}: nr_run=${runnable.length + (rq.curr.sched_class === this ? 1 : 0)} ops_qseq=${srq.opsQseq}`,
        );
        ns.push(`          curr=${rq.curr.comm}[${rq.curr.pid}] class=${rq.curr.sched_class.name}_sched_class`);
        const used = ns.length;
        if (sch.op[OP_DUMP_CPU] !== undefined)
          this.st.opsDump(ns, "  ", () => sch.callN(OP_DUMP_CPU, SCX_KF_REST, ctx.addr, cpu, idle ? 1 : 0));
        if (idle && ns.length === used) continue;
        out.push(...ns);
        if (rq.curr.sched_class === this) this.dumpTask(sch, out, ctx.addr, rq.curr, "*");
        for (const p of runnable) this.dumpTask(sch, out, ctx.addr, p, " ");
      }
      line("");
      line("Event counters");
      line("--------------");
      for (const [e, v] of Object.entries(sch.events)) line(`${e.padStart(40)}: ${String(v).padStart(16)}`);
    } finally {
      mem.free(ctx);
      mem.free(reason);
    }
    return out.join("\n");
  }

  /** scx_dump_task(). */
  private dumpTask(sch: ScxSched, out: string[], ctx: number, p: CoreTask, marker: string): void {
    const e = this.ent(p);
    // jiffies_delta_msecs(runnable_at, at): negative for a task runnable since before the dump
    const ms = Math.trunc((e.runnable_at - this.core.now()) / 1e6);
    const state = p.on_rq ? "R" : "S";
    const dsq = e.dsq ? `0x${e.dsq.id.toString(16)}` : "(n/a)";
    out.push("");
    out.push(` ${marker}${state} ${p.comm}[${p.pid}] ${ms >= 0 ? "+" : ""}${ms}ms`);
    out.push(
      `      scx_state/flags=${e.state}/0x${(e.flags & ~SCX_TASK_STATE_MASK).toString(16)} ops_state/qseq=${e.ops_state}/${e.ops_qseq}`,
    );
    out.push(`      sticky/holding_cpu=${e.sticky_cpu}/-1 dsq_id=${dsq}`);
    out.push(`      dsq_vtime=${e.dsq_vtime} slice=${e.slice} weight=${e.weight}`);
    out.push(`      cpus=${cpumaskHex(p.cpus_mask)}`);
    if (sch.op[OP_DUMP_TASK] !== undefined)
      this.st.opsDump(out, "    ", () => sch.callN(OP_DUMP_TASK, SCX_KF_REST, ctx, p.task.addr));
  }

  /** set_cpus_allowed_scx(): the mask is set; ops.set_cpumask sees p->cpus_ptr. */
  set_cpus_allowed(p: CoreTask, _mask: Uint8Array): void {
    const sch = this.sch;
    if (!(sch !== null && sch.op[OP_SET_CPUMASK] !== undefined) || this.ent(p).state !== SCX_TASK_ENABLED) return;
    sch.callN(OP_SET_CPUMASK, SCX_KF_REST, p.task.addr, p.task.addr + this.off.cpus_mask);
  }

  // ---- CPU hotplug ----

  /**
   * handle_hotplug(): every CPU going on- or offline bumps the hotplug sequence; the scheduler's
   * ops.cpu_online/cpu_offline hear of it, or, without them, the scheduler is ended with
   * SCX_EXIT_UNREG_KERN asking userspace to restart it.
   */
  private handleHotplug(rq: CoreRq, online: boolean): void {
    // the idle selection's online mask follows rq->online, which changes before a CPU comes
    // online is announced and after its going offline is
    if (online) this.idle.setOnline(rq.cpu, true);
    try {
      this.hotplugOps(rq, online);
    } finally {
      if (!online) this.idle.setOnline(rq.cpu, false);
    }
  }

  private hotplugOps(rq: CoreRq, online: boolean): void {
    this.st.hotplugSeq++;
    // an offline CPU is no idle CPU to pick; back online it is idle
    this.setIdle(rq.cpu, online && rq.curr === rq.idle);
    const sch = this.sch;
    if (!sch) return;
    if (online && sch.op[OP_CPU_ONLINE] !== undefined) sch.callN(OP_CPU_ONLINE, SCX_KF_UNLOCKED, rq.cpu);
    else if (!online && sch.op[OP_CPU_OFFLINE] !== undefined) sch.callN(OP_CPU_OFFLINE, SCX_KF_UNLOCKED, rq.cpu);
    else
      sch.exit(
        SCX_EXIT_UNREG_KERN,
        SCX_ECODE_ACT_RESTART | SCX_ECODE_RSN_HOTPLUG,
        `cpu ${rq.cpu} going ${online ? "online" : "offline"}, exiting scheduler`,
      );
  }

  // ---- the tick: watchdog and deferred exits ----

  private tick(_rq: CoreRq): void {
    const sch = this.sch;
    if (sch) {
      const now = this.core.now();
      const timeoutNs = sch.timeoutMs * 1e6;
      if (now - this.lastWatchdog >= timeoutNs / 2) {
        this.lastWatchdog = now;
        this.checkTimeouts(sch, now, timeoutNs);
      }
    }
    this.flush();
  }

  /** check_rq_for_timeouts(): a runnable task that has waited longer than timeout_ms. */
  private checkTimeouts(sch: ScxSched, now: number, timeoutNs: number): void {
    for (const p of this.core.tasks()) {
      if (p.sched_class !== this) continue;
      const e = this.ent(p);
      if (!e.runnable || !e.queued) continue;
      const waited = now - e.runnable_at;
      if (waited > timeoutNs) {
        const ms = Math.floor(waited / 1e6);
        sch.exit(
          SCX_EXIT_ERROR_STALL,
          0n,
          `${p.comm}[${p.pid}] failed to run for ${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, "0")}s`,
        );
        return;
      }
    }
  }

  // ---- idle tracking (ext_idle.c) ----

  private setIdle(cpu: number, idle: boolean): void {
    this.idle.set(cpu, idle);
  }

  /** __scx_update_idle(). */
  private updateIdle(cpu: number, idle: boolean): void {
    const sch = this.sch;
    if (sch !== null && sch.op[OP_UPDATE_IDLE] !== undefined) {
      sch.callN(OP_UPDATE_IDLE, SCX_KF_REST, cpu, idle ? 1 : 0);
      if (!(sch.flags & SCX_OPS_KEEP_BUILTIN_IDLE)) return;
    }
    this.setIdle(cpu, idle);
  }

  /** check_builtin_idle_enabled(). */
  private builtinIdle(sch: ScxSched): boolean {
    if (sch.op[OP_UPDATE_IDLE] === undefined || sch.flags & SCX_OPS_KEEP_BUILTIN_IDLE) return true;
    sch.error("built-in idle tracking is disabled");
    return false;
  }

  /** scx_idle_test_and_clear_cpu(). */
  testAndClearCpuIdle(cpu: number): boolean {
    return this.idle.testAndClear(cpu);
  }

  /** cpumask_of_node(). */
  nodeMask(node: number): bigint {
    return this.idle.nodeBig(node);
  }

  nrNodes(): number {
    return this.core.nr_node_ids;
  }

  cpuNode(cpu: number): number {
    return this.core.cpu_to_node(cpu);
  }

  onlineMask(): bigint {
    const n = this.core.nr_cpu_ids;
    let m = 0n;
    // 30 CPUs at a time as a small integer, one bigint step per chunk
    for (let base = 0; base < n; base += 30) {
      let w = 0;
      const end = Math.min(n, base + 30);
      for (let c = base; c < end; c++) if (this.core.cpu_rq(c).online) w |= 1 << (c - base);
      if (w) m |= BigInt(w) << BigInt(base);
    }
    return m;
  }

  /**
   * scx_pick_idle_cpu() with a node: that node first, then (without SCX_PICK_IDLE_IN_NODE) the
   * other nodes in order from the next one; node -1 (NUMA_NO_NODE) searches the whole mask.
   */
  pickIdleNode(allowed: bigint, node: number, flags: bigint): number {
    if (node < 0) return this.pickIdle(allowed, flags);
    const n = this.core.nr_node_ids;
    for (let i = 0; i < n; i++) {
      const cpu = this.pickIdle(allowed & this.nodeMask((node + i) % n), flags);
      if (cpu >= 0 || flags & SCX_PICK_IDLE_IN_NODE) return cpu;
    }
    return -16;
  }

  /** scx_pick_idle_cpu(): the lowest idle CPU of the mask (whole idle cores with PICK_IDLE_CORE). */
  private pickIdle(allowed: bigint, flags: bigint): number {
    return this.idle.pickBig(allowed, (flags & SCX_PICK_IDLE_CORE) !== 0n);
  }

  /** scx_select_cpu_dfl(): prev if idle (a whole idle core first on SMT), then the LLC, the node, then any. */
  private selectCpuDflCore(p: CoreTask, prev: number, allowed: bigint | null): number {
    return this.idle.selectDfl(p.cpus_mask, prev, allowed === null ? null : this.idle.words(allowed), false);
  }

  // ---- ScxMachine (the kfuncs' view) ----

  dsqInsert(sch: ScxSched, pAddr: number, dsqId: bigint, slice: bigint, vtime: bigint | null, enqFlags: bigint): void {
    if (!sch.kfAllowed(SCX_KF_ENQUEUE | SCX_KF_DISPATCH)) return;
    const e = this.entByAddr(pAddr);
    if (!e) {
      sch.error("called with NULL task");
      return;
    }
    if (enqFlags >= SCX_ENQ_INTERNAL_MIN) {
      sch.error(`invalid enq_flags 0x${enqFlags.toString(16)}`);
      return;
    }
    // scx_dsq_insert_commit(): a zero slice keeps the task's, or 1 ns if it has none
    if (slice !== 0n) e.slice = slice;
    else if (!e.hasSlice) e.setSliceNum(1);
    let flags = enqFlags;
    if (vtime !== null) {
      e.dsq_vtime = vtime;
      flags |= SCX_ENQ_DSQ_PRIQ;
    }
    const dd = this.ddspTask;
    if (dd !== null && (dd === "spoiled" || dd === e || !this.dsp)) {
      // mark_direct_dispatch()
      this.ddspTask = "spoiled";
      if (dd !== e) {
        if (dd === "spoiled") sch.error(`${e.p.comm}[${e.p.pid}] already direct-dispatched`);
        else
          sch.error(`scheduling for ${dd.p.comm}[${dd.p.pid}] but trying to direct-dispatch ${e.p.comm}[${e.p.pid}]`);
        return;
      }
      e.ddsp_dsq_id = dsqId;
      e.ddsp_enq_flags = flags;
      return;
    }
    const d = this.dsp;
    if (!d) return;
    if (d.buf.length >= sch.dispatchMaxBatch) {
      sch.error("dispatch buffer overflow");
      return;
    }
    d.buf.push({ p: e, qseq: e.ops_qseq, dsqId, enqFlags: flags });
  }

  dispatchNrSlots(sch: ScxSched): number {
    return sch.dispatchMaxBatch - (this.dsp?.buf.length ?? 0);
  }

  dispatchCancel(): void {
    this.dsp?.buf.pop();
  }

  moveToLocal(sch: ScxSched, dsqId: bigint): boolean {
    const d = this.dsp;
    if (!d) return false;
    this.flushDispatchBuf(sch, d.rq);
    const dsq = sch.dsqs.get(dsqId) as ScxDispatchQ<ScxEntity> | undefined;
    if (!dsq) {
      sch.error(`invalid DSQ ID 0x${dsqId.toString(16).padStart(16, "0")}`);
      return false;
    }
    if (this.consume(d.rq, dsq)) {
      d.nrTasks++;
      return true;
    }
    return false;
  }

  dsqMove(sch: ScxSched, it: DsqIter, pAddr: number, dsqId: bigint, enqFlags: bigint, vtime: boolean): boolean {
    // scx_dsq_move(): from ops.dispatch or where no rq lock is held
    if (!sch.kfUnlocked() && !sch.kfAllowed(SCX_KF_DISPATCH)) return false;
    const e = this.entByAddr(pAddr);
    const slice = it.slice;
    const vt = it.vtime;
    // the set_slice/set_vtime of this iterator apply to one move attempt, done or not
    it.slice = undefined;
    it.vtime = undefined;
    // gone from the DSQ, or queued on it again after the iteration started
    if (!e || e.dsq !== it.dsq || e.dsq_seq > it.seq) return false;
    // SCX_DSQ_LOCAL is the local DSQ of the CPU doing the move
    const rq = this.dsp?.rq ?? this.core.cpu_rq(this.currentCpu());
    if (slice !== undefined) e.slice = slice;
    if (vt !== undefined) e.dsq_vtime = vt;
    let flags = enqFlags;
    if (vtime) flags |= SCX_ENQ_DSQ_PRIQ;
    e.dsq.remove(e);
    const dst = this.findDsqForDispatch(sch, rq, dsqId, e);
    if (dst.cpu >= 0) this.dispatchToLocal(sch, rq, dst, e, flags);
    else this.dispatchEnqueue(dst, e, flags);
    if (this.dsp) this.dsp.nrTasks++;
    return true;
  }

  reenqueueLocal(sch: ScxSched): number {
    const rq = this.core.cpu_rq(this.currentCpu());
    const local = this.srq(rq).local;
    const tasks = [...local.list];
    for (const e of tasks) {
      local.remove(e);
      this.doEnqueue(rq, e, 1n << 40n, -1);
    }
    void sch;
    return tasks.length;
  }

  localDsq(cpu: number): ScxDispatchQ | undefined {
    return cpu >= 0 && cpu < this.core.nr_cpu_ids ? (this.srq(this.core.cpu_rq(cpu)).local as ScxDispatchQ) : undefined;
  }

  globalDsq(): ScxDispatchQ {
    return this.global as ScxDispatchQ;
  }

  currentCpu(): number {
    return this.st.kernel.cpu;
  }

  kickCpu(sch: ScxSched, cpu: number, flags: bigint): void {
    this.kicks.kick(sch, this.currentCpu(), cpu, flags);
  }

  selectCpuDfl(sch: ScxSched, pAddr: number, prevCpu: number, allowed: bigint | null): number {
    if (prevCpu < 0 || prevCpu >= this.core.nr_cpu_ids) {
      sch.error(`invalid CPU ${prevCpu}`);
      return -22;
    }
    if (!this.builtinIdle(sch)) return -16;
    if (!sch.kfUnlocked() && !sch.kfAllowed(SCX_KF_SELECT_CPU | SCX_KF_ENQUEUE)) return -1;
    const e = this.entByAddr(pAddr);
    if (!e) return -22;
    return this.selectCpuDflCore(e.p, prevCpu, allowed);
  }

  taskCpu(pAddr: number): number {
    return this.entByAddr(pAddr)?.p.cpu ?? 0;
  }

  taskRunning(pAddr: number): boolean {
    const e = this.entByAddr(pAddr);
    return !!e && this.core.task_rq(e.p).curr === e.p;
  }

  cpuCurr(cpu: number): number {
    return this.core.cpu_rq(cpu).curr.task.addr;
  }

  idleMask(): bigint {
    return this.idle.big(this.idle.cpus);
  }

  idleSmtMask(): bigint {
    return this.idle.big(this.idle.smt);
  }

  pickIdleCpu(sch: ScxSched, allowed: bigint, flags: bigint): number {
    if (!this.builtinIdle(sch)) return -16;
    return this.pickIdle(allowed, flags);
  }

  pickAnyCpu(sch: ScxSched, allowed: bigint, flags: bigint): number {
    const cpu = this.builtinIdle(sch) ? this.pickIdle(allowed, flags) : -1;
    if (cpu >= 0) return cpu;
    for (let c = 0; c < this.core.nr_cpu_ids; c++) if ((allowed >> BigInt(c)) & 1n) return c;
    return -16;
  }

  now(): bigint {
    return BigInt(Math.round(this.core.now()));
  }

  dsqTasks(dsq: ScxDispatchQ): number[] {
    return (dsq as ScxDispatchQ<ScxEntity>).list.map((e) => e.p.task.addr);
  }

  taskSeq(pAddr: number): { dsq: ScxDispatchQ | null; seq: number } | undefined {
    const e = this.entByAddr(pAddr);
    return e ? { dsq: e.dsq as ScxDispatchQ | null, seq: e.dsq_seq } : undefined;
  }
}
