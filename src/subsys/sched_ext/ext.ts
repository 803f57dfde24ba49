/**
 * The sched_ext core (kernel/sched/ext.c): one BPF scheduler at a time (scx_root), its life cycle
 * (scx_enable: ops.init, validate_ops, every task moved into the ext class; scx_disable: every
 * task back to fair, ops.exit with the exit info), the exit path every error goes through
 * (scx_exit/scx_error: the first exit wins, the scheduler is torn down from a safe point, as the
 * kernel's disable work does), the ops called with the kfunc mask of their context
 * (SCX_CALL_OP, scx_kf_allowed), and the per-scheduler state the kfuncs use: user DSQs, the
 * dispatch buffer, events.
 *
 * The scheduling itself (DSQs per CPU, the ext sched_class) is ext_class.ts; a kernel without a
 * simulated machine still registers, enables and disables schedulers (and calls init and exit).
 */
import type { Kernel } from "../../kernel/kernel.js";
import type { BpfStructOpsKdata } from "../../kernel/struct_ops.js";
import type { BpfStructOpsTrampoline } from "../../kernel/struct_ops_trampoline.js";
import { memberOff } from "../../kernel/task.js";
import { BpfError, EBUSY, EINVAL } from "../../uapi/errno.js";
import { SCX_EVENTS, SCX_OPS } from "./btf.js";
import {
  SCX_DSP_DFL_MAX_BATCH,
  SCX_ECODE_ACT_RESTART,
  SCX_ECODE_RSN_HOTPLUG,
  SCX_EFLAG_INITIALIZED,
  SCX_EXIT_DUMP_DFL_LEN,
  SCX_EXIT_ERROR,
  SCX_EXIT_MSG_LEN,
  SCX_EXIT_NONE,
  SCX_EXIT_UNREG,
  SCX_EXIT_UNREG_KERN,
  SCX_KF_CPU_RELEASE,
  SCX_KF_DISPATCH,
  SCX_KF_UNLOCKED,
  SCX_OPS_BUILTIN_IDLE_PER_NODE,
  SCX_OPS_ENQ_LAST,
  SCX_OPS_KEEP_BUILTIN_IDLE,
  SCX_WATCHDOG_MAX_TIMEOUT_MS,
  scx_exit_reason,
} from "./consts.js";
import { DsqMap } from "./ext_dsq.js";
import type { ScxMachine } from "./ext_kfuncs.js";

/** enum scx_enable_state. */
export const SCX_ENABLING = 0;
export const SCX_ENABLED = 1;
export const SCX_DISABLING = 2;
export const SCX_DISABLED = 3;

/** What userspace reads after the scheduler is gone (struct scx_exit_info, plus its strings). */
export interface ScxExitInfo {
  kind: number;
  exit_code: bigint;
  flags: bigint;
  reason: string;
  msg: string;
  dump: string;
}

/** The ext sched_class's side of enable/disable: moving every task in and out. */
export interface ScxClassHost {
  /** scx_enable's task walk: init every task, switch them into ext (false: an error exit happened). */
  enable(sch: ScxSched): void;
  /** scx_disable_workfn's task walk: every task back to fair, exit_task/disable called. */
  disable(sch: ScxSched): void;
}

/** An op's index in struct sched_ext_ops (SCX_OPS order): what ScxSched.op is indexed by. */
function opIndex(name: string): number {
  const i = SCX_OPS.findIndex((o) => o[0] === name);
  if (i < 0) throw new Error(`sched_ext_ops has no op ${name}`);
  return i;
}

export const OP_SELECT_CPU = opIndex("select_cpu");
export const OP_ENQUEUE = opIndex("enqueue");
export const OP_DEQUEUE = opIndex("dequeue");
export const OP_DISPATCH = opIndex("dispatch");
export const OP_TICK = opIndex("tick");
export const OP_RUNNABLE = opIndex("runnable");
export const OP_RUNNING = opIndex("running");
export const OP_STOPPING = opIndex("stopping");
export const OP_QUIESCENT = opIndex("quiescent");
export const OP_YIELD = opIndex("yield");
export const OP_SET_WEIGHT = opIndex("set_weight");
export const OP_SET_CPUMASK = opIndex("set_cpumask");
export const OP_UPDATE_IDLE = opIndex("update_idle");
export const OP_CPU_ACQUIRE = opIndex("cpu_acquire");
export const OP_CPU_RELEASE = opIndex("cpu_release");
export const OP_INIT_TASK = opIndex("init_task");
export const OP_EXIT_TASK = opIndex("exit_task");
export const OP_ENABLE = opIndex("enable");
export const OP_DISABLE = opIndex("disable");
export const OP_DUMP = opIndex("dump");
export const OP_DUMP_CPU = opIndex("dump_cpu");
export const OP_DUMP_TASK = opIndex("dump_task");
export const OP_CPU_ONLINE = opIndex("cpu_online");
export const OP_CPU_OFFLINE = opIndex("cpu_offline");

/** The ops ext.c calls through SCX_CALL_OP_TASK (1) or SCX_CALL_OP_2TASKS (2). */
const OPS_TASK_ARGS: Readonly<Record<string, number>> = {
  select_cpu: 1,
  enqueue: 1,
  dequeue: 1,
  tick: 1,
  runnable: 1,
  running: 1,
  stopping: 1,
  quiescent: 1,
  yield: 2,
  core_sched_before: 2,
  set_weight: 1,
  set_cpumask: 1,
  enable: 1,
  disable: 1,
  exit_task: 1,
  cgroup_move: 1,
};

/** higher_bits(): the masks above SCX_KF_CPU_RELEASE and SCX_KF_DISPATCH. */
const HIGHER_THAN_CPU_RELEASE = ~((SCX_KF_CPU_RELEASE << 1) - 1) & 0xffffffff;
const HIGHER_THAN_DISPATCH = ~((SCX_KF_DISPATCH << 1) - 1) & 0xffffffff;

/** struct scx_sched: one enabled BPF scheduler. */
export class ScxSched {
  readonly dsqs = new DsqMap();
  readonly events: Record<(typeof SCX_EVENTS)[number], bigint> = Object.fromEntries(
    SCX_EVENTS.map((e) => [e, 0n]),
  ) as Record<(typeof SCX_EVENTS)[number], bigint>;
  /** sch->exit_kind: the first exit wins (atomic cmpxchg from NONE). */
  exitKind = SCX_EXIT_NONE;
  readonly exitInfo: ScxExitInfo = { kind: 0, exit_code: 0n, flags: 0n, reason: "", msg: "", dump: "" };
  readonly flags: bigint;
  readonly name: string;
  readonly timeoutMs: number;
  readonly dispatchMaxBatch: number;
  readonly exitDumpLen: number;
  readonly hotplugSeq: bigint;
  /**
   * Per op, by index in SCX_OPS (OP_*): its trampoline, undefined where the program left the op
   * NULL. Filled once at enable: the ops called per scheduling event look nothing up by name.
   */
  readonly op: (BpfStructOpsTrampoline | undefined)[] = [];
  /** Per op: how many of its first arguments are the tasks it is called for (SCX_CALL_OP_TASK / _2TASKS). */
  private readonly opTasks: Uint8Array = new Uint8Array(SCX_OPS.length);
  /** Set once scx_disable has run its course. */
  disabled = false;
  /** `current` when the exit was recorded (the dump's "comm[pid] triggered exit kind"), and when. */
  exitBy = "";
  exitAtNs = 0n;

  constructor(
    readonly state: ScxState,
    readonly kdata: BpfStructOpsKdata,
    readonly link: object | null,
  ) {
    const v = kdata.view;
    const off = (n: string) => kdata.desc.memberOffsets[kdata.memberIndex(n)];
    this.flags = v.getBigUint64(off("flags"), true);
    this.name = kdata.cstring("name");
    const t = v.getUint32(off("timeout_ms"), true);
    this.timeoutMs = t || SCX_WATCHDOG_MAX_TIMEOUT_MS;
    this.dispatchMaxBatch = v.getUint32(off("dispatch_max_batch"), true) || SCX_DSP_DFL_MAX_BATCH;
    this.exitDumpLen = v.getUint32(off("exit_dump_len"), true) || SCX_EXIT_DUMP_DFL_LEN;
    this.hotplugSeq = v.getBigUint64(off("hotplug_seq"), true);
    for (let i = 0; i < SCX_OPS.length; i++) {
      const name = SCX_OPS[i]![0];
      const mi = kdata.memberIndex(name);
      this.op.push(mi < 0 ? undefined : kdata.funcs[mi]);
      this.opTasks[i] = OPS_TASK_ARGS[name] ?? 0;
    }
  }

  has(op: string): boolean {
    return this.op[opIndex(op)] !== undefined;
  }

  /** SCX_CALL_OP: run op with `mask` allowed (nesting only towards lower masks), r0 as a bigint. */
  call(
    op: string,
    mask: number,
    a0: number | bigint = 0,
    a1: number | bigint = 0,
    a2: number | bigint = 0,
    /** A fourth argument (ops.cgroup_set_bandwidth): the general, slower call. */
    a3?: bigint,
  ): bigint {
    const i = opIndex(op);
    const t = this.op[i];
    if (!t) return 0n;
    const st = this.state;
    const saved = st.kfMask;
    if (mask) st.kfMask |= mask;
    st.opDepth++;
    // SCX_CALL_OP_TASK / _2TASKS: the tasks the op is about, for scx_kf_allowed_on_arg_tasks().
    const nt = this.opTasks[i]!;
    const t0 = st.kfTasks0;
    const t1 = st.kfTasks1;
    if (nt) {
      st.kfTasks0 = Number(a0);
      st.kfTasks1 = nt === 2 ? Number(a1) : 0;
    }
    try {
      return a3 === undefined ? t.callU64x3(a0, a1, a2) : t.callU64(a0, a1, a2, a3);
    } finally {
      st.opDepth--;
      st.kfMask = saved;
      st.kfTasks0 = t0;
      st.kfTasks1 = t1;
    }
  }

  /**
   * SCX_CALL_OP for the ops called per scheduling event: r0 as the op's C type gives it (void,
   * s32, bool), a number. Arguments of at most 53 bits go as numbers, so the trampoline takes its
   * path that allocates nothing per call.
   */
  callN(op: number, mask: number, a0: number | bigint = 0, a1: number | bigint = 0, a2: number | bigint = 0): number {
    const t = this.op[op];
    if (t === undefined) return 0;
    const st = this.state;
    const saved = st.kfMask;
    if (mask) st.kfMask |= mask;
    st.opDepth++;
    const nt = this.opTasks[op]!;
    const t0 = st.kfTasks0;
    const t1 = st.kfTasks1;
    if (nt) {
      st.kfTasks0 = Number(a0);
      st.kfTasks1 = nt === 2 ? Number(a1) : 0;
    }
    try {
      return t.callx3(small(a0), small(a1), small(a2));
    } finally {
      st.opDepth--;
      st.kfMask = saved;
      st.kfTasks0 = t0;
      st.kfTasks1 = t1;
    }
  }

  /** scx_kf_allowed_on_arg_tasks(): the op may use the kfunc, and p is a task it was called for. */
  kfAllowedOnArgTasks(mask: number, p: number): boolean {
    if (!this.kfAllowed(mask)) return false;
    if (p !== this.state.kfTasks0 && p !== this.state.kfTasks1) {
      this.error("called on a task not being operated on");
      return false;
    }
    return true;
  }

  /** scx_kf_allowed(): may a kfunc of `mask` run in the op being called? */
  kfAllowed(mask: number): boolean {
    const cur = this.state.kfMask;
    if (!(cur & mask)) {
      this.error(`kfunc with mask 0x${mask.toString(16)} called from an operation only allowing 0x${cur.toString(16)}`);
      return false;
    }
    const highest = 1 << (31 - Math.clz32(mask));
    if (highest === SCX_KF_CPU_RELEASE && cur & HIGHER_THAN_CPU_RELEASE) {
      this.error("cpu_release kfunc called from a nested operation");
      return false;
    }
    if (highest === SCX_KF_DISPATCH && cur & HIGHER_THAN_DISPATCH) {
      this.error("dispatch kfunc called from a nested operation");
      return false;
    }
    return true;
  }

  /** scx_kf_allowed_if_unlocked(): outside any op with the rq lock held. */
  kfUnlocked(): boolean {
    return this.state.kfMask === SCX_KF_UNLOCKED;
  }

  /** scx_exit(): record the first exit and schedule the disable work. */
  exit(kind: number, exitCode: bigint, msg: string): void {
    if (this.exitKind !== SCX_EXIT_NONE) return;
    this.exitKind = kind;
    const cur = this.state.kernel.currentTask;
    this.exitBy = `${cur.comm}[${cur.pid}]`;
    this.exitAtNs = this.state.kernel.ktimeGetNs();
    const ei = this.exitInfo;
    ei.kind = kind;
    ei.exit_code = exitCode;
    ei.reason = scx_exit_reason(kind);
    ei.msg = truncate(msg, SCX_EXIT_MSG_LEN - 1);
    // The debug dump (ext.c's scx_dump_state from the error irq_work) is written at the safe
    // point where the disable work starts, before any task leaves the class: ops.dump* can run.
    this.state.pendingDisable = true;
  }

  /** scx_error(): an ERROR exit with a message. */
  error(msg: string): void {
    this.exit(SCX_EXIT_ERROR, 0n, msg);
  }

  bumpEvent(e: (typeof SCX_EVENTS)[number], n = 1n): void {
    this.events[e] += n;
  }
}

/** scx_dump_state's seq_buf of exit_dump_len bytes: an overflow ends in the truncation marker. */
function dumpTruncate(s: string, len: number): string {
  const marker = "\n\n~~~~ TRUNCATED ~~~~\n";
  if (new TextEncoder().encode(s).length <= len - 1) return s;
  return truncate(s, len - marker.length - 1) + marker;
}

function truncate(s: string, max: number): string {
  const b = new TextEncoder().encode(s);
  return b.length <= max ? s : new TextDecoder().decode(b.subarray(0, max));
}

/** Everything sched_ext keeps per kernel. */
export class ScxState {
  root: ScxSched | null = null;
  enableState = SCX_DISABLED;
  /** current->scx.kf_mask of the op running now (the simulation runs one op at a time). */
  kfMask = 0;
  /** current->scx.kf_tasks[0..1]: the tasks the running op was called for. */
  kfTasks0 = 0;
  kfTasks1 = 0;
  opDepth = 0;
  /** An exit was recorded: scx_disable_workfn runs at the next safe point. */
  pendingDisable = false;
  host: ScxClassHost | null = null;
  /** What the kfuncs act on (the machine's ext class), read on every kfunc call. */
  machine: ScxMachine | null = null;
  /** scx_hotplug_seq: CPUs gone on- or offline since boot (/sys/kernel/sched_ext/hotplug_seq). */
  hotplugSeq = 0n;
  /** Every scheduler that ran on this kernel, with how it ended (for userspace reporting). */
  readonly history: ScxSched[] = [];
  /** Builds the debug dump of an error exit (the machine knows the CPUs and tasks). */
  dumpText: (sch: ScxSched, kind: number) => string = () => "";

  /** The dump being written by ops.dump* (scx_bpf_dump_bstr appends to it), or null. */
  dumpBuf: string[] | null = null;
  /** ops_dump_init's state: the prefix of the op's lines, whether one was written, the line buffer. */
  private dumpPrefix = "";
  private dumpFirst = true;
  private dumpCursor = "";

  constructor(readonly kernel: Kernel) {}

  /**
   * scx_bpf_dump_bstr(): appends to the line buffer, flushed into the dump when it ends in a
   * newline or fills up (one line may take several calls). Outside ops.dump* it is an error.
   */
  dumpLine(s: string): void {
    if (!this.dumpBuf) {
      this.root?.error("scx_bpf_dump() must only be called from ops.dump() and friends");
      return;
    }
    this.dumpCursor = truncate(this.dumpCursor + s, SCX_EXIT_MSG_LEN);
    if (new TextEncoder().encode(this.dumpCursor).length >= SCX_EXIT_MSG_LEN || this.dumpCursor.endsWith("\n"))
      this.opsDumpFlush();
  }

  /** ops_dump_flush(): the buffered text as lines, each with the op's prefix; a blank line first. */
  private opsDumpFlush(): void {
    const out = this.dumpBuf;
    if (!out || !this.dumpCursor) return;
    if (this.dumpFirst) {
      out.push("");
      this.dumpFirst = false;
    }
    const text = this.dumpCursor.endsWith("\n") ? this.dumpCursor.slice(0, -1) : this.dumpCursor;
    for (const line of text.split("\n")) out.push(`${this.dumpPrefix}${line}`);
    this.dumpCursor = "";
  }

  /** ops_dump_init() .. ops_dump_exit() around one ops.dump/dump_cpu/dump_task call. */
  opsDump(out: string[], prefix: string, call: () => void): void {
    this.dumpBuf = out;
    this.dumpPrefix = prefix;
    this.dumpFirst = true;
    this.dumpCursor = "";
    try {
      call();
      this.opsDumpFlush();
    } finally {
      this.dumpBuf = null;
    }
  }

  /** scx_enable(): ops.init, validate_ops, then every task into the ext class. */
  enable(kdata: BpfStructOpsKdata, link: object | null): void {
    if (this.enableState !== SCX_DISABLED) throw new BpfError(EBUSY, "a sched_ext scheduler is already loaded");
    const sch = new ScxSched(this, kdata, link);
    this.history.push(sch);
    this.enableState = SCX_ENABLING;
    this.root = sch;
    this.enableSteps(sch);
    // scx_enable's err_disable: the error is reported through ops.exit, not as an errno; the
    // disable work is flushed before the attach returns.
    this.flushDisable();
  }

  /** What scx_enable does after the checks; an error exit stops it (err_disable). */
  private enableSteps(sch: ScxSched): void {
    if (sch.has("init")) {
      const ret = Number(BigInt.asIntN(32, sch.call("init", SCX_KF_UNLOCKED)));
      if (ret) {
        sch.error(`ops.init() failed (${ops_sanitize_err(sch, "init", ret)})`);
        return;
      }
      sch.exitInfo.flags |= SCX_EFLAG_INITIALIZED;
    }
    // check_hotplug_seq(): a CPU went on- or offline since userspace read the sequence
    if (sch.hotplugSeq && sch.hotplugSeq !== this.hotplugSeq)
      sch.exit(
        SCX_EXIT_UNREG_KERN,
        SCX_ECODE_ACT_RESTART | SCX_ECODE_RSN_HOTPLUG,
        `expected hotplug seq ${sch.hotplugSeq} did not match actual ${this.hotplugSeq}`,
      );
    if (!validate_ops(sch)) return;
    this.host?.enable(sch);
    if (this.enableState === SCX_ENABLING) this.enableState = SCX_ENABLED;
  }

  /** bpf_scx_unreg(): disable with SCX_EXIT_UNREG (if still enabled) and wait for it. */
  unreg(kdata: BpfStructOpsKdata): void {
    const sch = this.root;
    if (!sch || sch.kdata !== kdata) return;
    sch.exit(SCX_EXIT_UNREG, 0n, "");
    this.flushDisable();
  }

  /** The disable work, if an exit is pending and no op is running. */
  flushDisable(): void {
    if (!this.pendingDisable || this.opDepth > 0) return;
    const sch = this.root;
    this.pendingDisable = false;
    if (!sch || sch.disabled) return;
    this.enableState = SCX_DISABLING;
    if (sch.exitInfo.kind >= SCX_EXIT_ERROR)
      sch.exitInfo.dump = dumpTruncate(this.dumpText(sch, sch.exitInfo.kind), sch.exitDumpLen);
    this.host?.disable(sch);
    sch.call("exit", SCX_KF_UNLOCKED, this.exitInfoAddr(sch));
    this.freeExitInfo();
    sch.disabled = true;
    sch.dsqs.clear();
    this.root = null;
    this.enableState = SCX_DISABLED;
  }

  private exitRegions: { free(): void }[] = [];

  /** scx_exit_info in kernel memory for ops.exit, with its strings. */
  private exitInfoAddr(sch: ScxSched): number {
    const k = this.kernel;
    const btf = k.btfVmlinux;
    if (!btf) return 0;
    const size = (btf.typeById(btf.findByNameKind("scx_exit_info", 4)) as { size: number }).size;
    const ei = sch.exitInfo;
    const mem = k.mem;
    const str = (s: string, cap: number, name: string) => {
      const r = mem.alloc(cap, { perm: "r", kind: "kobj", name });
      mem.bytes(r.addr, cap).set(new TextEncoder().encode(s).subarray(0, cap - 1));
      this.exitRegions.push({ free: () => mem.free(r) });
      return r.addr;
    };
    const r = mem.alloc(size, { perm: "r", kind: "kobj", name: "scx_exit_info" });
    this.exitRegions.push({ free: () => mem.free(r) });
    const b = mem.bytes(r.addr, size);
    const dv = new DataView(b.buffer, b.byteOffset, size);
    const off = (m: string) => memberOff(btf, "scx_exit_info", m);
    dv.setUint32(off("kind"), ei.kind, true);
    dv.setBigInt64(off("exit_code"), ei.exit_code, true);
    dv.setBigUint64(off("flags"), ei.flags, true);
    dv.setBigUint64(off("reason"), BigInt(str(ei.reason, 64, "scx_exit_info reason")), true);
    dv.setBigUint64(off("msg"), BigInt(str(ei.msg, SCX_EXIT_MSG_LEN, "scx_exit_info msg")), true);
    dv.setBigUint64(off("dump"), BigInt(str(ei.dump, Math.max(1, ei.dump.length + 1), "scx_exit_info dump")), true);
    return r.addr;
  }

  private freeExitInfo(): void {
    for (const r of this.exitRegions) r.free();
    this.exitRegions = [];
  }
}

/** ops_sanitize_err(): an op's error must be a valid -errno. */
function ops_sanitize_err(sch: ScxSched, op: string, err: number): number {
  if (err < 0 && err >= -4095) return err;
  sch.error(`ops.${op}() returned an invalid errno ${err}`);
  return -EINVAL;
}

/** validate_ops(): flag combinations that need an op. */
function validate_ops(sch: ScxSched): boolean {
  if (sch.flags & SCX_OPS_ENQ_LAST && !sch.has("enqueue")) {
    sch.error("SCX_OPS_ENQ_LAST requires ops.enqueue() to be implemented");
    return false;
  }
  if (sch.flags & SCX_OPS_BUILTIN_IDLE_PER_NODE && sch.has("update_idle") && !(sch.flags & SCX_OPS_KEEP_BUILTIN_IDLE)) {
    sch.error("SCX_OPS_BUILTIN_IDLE_PER_NODE requires CPU idle selection enabled");
    return false;
  }
  return true;
}

/** A bigint argument that fits in 53 bits as a number (what the trampoline's number path takes). */
function small(v: number | bigint): number | bigint {
  return typeof v === "bigint" && v >= 0n && v <= 0x1f_ffff_ffff_ffffn ? Number(v) : v;
}
