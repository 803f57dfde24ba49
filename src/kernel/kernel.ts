/**
 * The simulated kernel: the BPF core's global state (id spaces, RCU, the VM address space, the
 * registries that map types, program types, link kinds, helpers and kfuncs plug into), processes,
 * a settable clock, and the bpf() syscall entry.
 */
import type { Btf } from "../btf/btf.js";
import { BpfError, EINVAL, ENXIO, EPERM } from "../uapi/errno.js";
import { VmMemory } from "../vm/memory.js";
import {
  type BpfLink,
  type BpfMap,
  type BpfMapOps,
  type BpfProg,
  type BpfProgTypeOps,
  BtfObject,
  type KernelMemory,
  type LinkCreateFn,
  type UserMapping,
} from "./bpf.js";
import type { BpfAttr } from "./bpf_attr.js";
import { HrtimerBase } from "./hrtimer.js";
import { Idr } from "./idr.js";
import { bootKernel } from "./init.js";
import { bpf_obj_unpin } from "./inode.js";
import { Process, type ProcessOptions, UserStruct } from "./process.js";
import { Rcu } from "./rcu.js";
import { sk_alloc, sock_map_fd } from "./sock.js";
import { fdinfo, objGetInfo, sysBpf } from "./syscall.js";
import { bpf_map_mmap } from "./syscall_map.js";
import { PF_KTHREAD, pidfd_open, type Task, task_alloc, task_exit } from "./task.js";

/** A helper's or kfunc's view of its call: r1..r5 (`arg(1)` is r1). The VM's HelperCall is one. */
export interface HelperArgs {
  arg(i: number): bigint;
  argNum(i: number): number;
  /** Low 32 bits of r`i`, unsigned, without a BigInt (the VM's calls have it). */
  argLo?(i: number): number;
  /** High 32 bits of r`i`, unsigned (as argLo). */
  argHi?(i: number): number;
  /** Run a BPF callback (bpf_loop, bpf_for_each_map_elem) by its function address; its r0. */
  invokeCallback?(fnAddr: bigint | number, args: readonly (bigint | number)[]): bigint;
}
/** A helper or kfunc implementation; returns r0 (negative numbers are -errno). */
export type KernelFn = (c: HelperArgs, k: Kernel) => bigint | number;

export interface Kfunc {
  readonly name: string;
  /** BTF id of the FUNC in vmlinux (0 until the vmlinux BTF declares it). */
  btfId: number;
  readonly protoBtfId?: number;
  readonly impl: KernelFn;
  /** Kfunc flags the verifier may read (KF_ACQUIRE, KF_RELEASE, KF_SLEEPABLE...). */
  readonly flags?: number;
  /** Program types whose kfunc set holds it (register_btf_kfunc_id_set); undefined: every type. */
  readonly progTypes?: readonly number[];
  /** The kfunc set's filter (btf_kfunc_id_set.filter): false refuses the kfunc to that program. */
  readonly filter?: (prog: import("../verifier/env.js").KfuncFilterProg) => boolean;
}

/** The verifier hook: called on every PROG_LOAD after ld_imm64 resolution; throw to refuse. */
export type VerifierHook = (env: import("./syscall_prog.js").VerifierEnv) => unknown;

/** What struct_ops (src/kernel/struct_ops.ts) plugs into the core. */
export interface StructOpsHooks {
  /** check_struct_ops_btf_id: called on PROG_LOAD of a BPF_PROG_TYPE_STRUCT_OPS program. */
  checkAttach(prog: BpfProg, log: string[]): void;
  /** The verifier's view of the registered struct_ops types. */
  verifierTable?: import("../verifier/env.js").StructOpsTable;
  /** convert_ctx_accesses: the type's gen_prologue/gen_epilogue around a verified program. */
  convertCtx?(prog: BpfProg): void;
}

/** A piece of the kernel that adds types, kfuncs and struct_ops types at boot (TCP, dummy ops...). */
export interface Subsystem {
  readonly name: string;
  /** (1) Add the subsystem's types to the vmlinux BTF being built. */
  declareTypes?(b: import("../btf/builder.js").BtfBuilder, base: import("./init.js").KernelBaseTypes): void;
  /** (2) Register kfuncs and helpers. (3) Register struct_ops types. Runs after vmlinux BTF exists. */
  register?(k: Kernel): void;
  /** (4) Boot is done: keep the handle. */
  boot?(k: Kernel): void;
}

export interface KernelOptions {
  subsystems?: readonly Subsystem[];
  /** Share an address space (default: a fresh VmMemory). */
  mem?: KernelMemory;
  /** Seed of bpf_get_prandom_u32. */
  prandomSeed?: number;
  /** Kconfig values readable through .kconfig (CONFIG_HZ...). */
  config?: Record<string, number | string | boolean>;
  /** Digest behind the program tag: "sha256" as v6.18+ (default), "sha1" as v6.4-v6.17. */
  progTagHash?: "sha1" | "sha256";
  /** Run src/verifier on every PROG_LOAD (default true; false leaves structural and runtime VM checks only). */
  verifier?: boolean;
  /** Skip building the vmlinux BTF (tests of the object core alone). */
  noVmlinuxBtf?: boolean;
  /** num_possible_cpus() (all possible CPUs are online): per-CPU map storage is this many copies. */
  nrCpus?: number;
}

export const PAGE_SIZE = 4096;
/** CONFIG_NR_CPUS of x86_64's defconfig range we accept. */
export const NR_CPUS = 512;
/** Possible CPUs of a kernel booted without `nrCpus`. */
export const DEFAULT_NR_CPUS = 2;

/** The BPF sysctls (kernel/bpf/syscall.c bpf_syscall_table). */
export class BpfSysctl {
  private unpriv = 2;
  /** kernel.bpf_stats_enabled: count run_cnt and run_time_ns of every program run. */
  bpfStatsEnabled = 0;

  /**
   * kernel.unprivileged_bpf_disabled: 0 allowed, 2 disabled (an admin may re-enable), 1 disabled
   * for good: once 1, writing anything but 1 is EPERM (bpf_unpriv_handler); other values EINVAL.
   */
  get unprivilegedBpfDisabled(): number {
    return this.unpriv;
  }

  set unprivilegedBpfDisabled(v: number) {
    if (v !== 0 && v !== 1 && v !== 2) throw new BpfError(EINVAL, `unprivileged_bpf_disabled: ${v} is not 0, 1 or 2`);
    if (this.unpriv === 1 && v !== 1) throw new BpfError(EPERM, "unprivileged_bpf_disabled is locked at 1");
    this.unpriv = v;
  }
}
export const NSEC_PER_SEC = 1_000_000_000n;

export class Kernel {
  readonly rcu = new Rcu();
  readonly mem: KernelMemory;
  readonly config: Record<string, number | string | boolean>;
  readonly progTagHash: "sha1" | "sha256";
  /** num_possible_cpus() and nr_cpu_ids: CPUs 0..nrCpus-1, all online. */
  nrCpus: number;
  /** smp_processor_id() of the code running now (a program's bpf_get_smp_processor_id). */
  cpu = 0;
  readonly sysctl = new BpfSysctl();
  /**
   * cond_resched(): long kernel work (the verifier's walk) calls it now and then; an embedder
   * watching for a stuck kernel (a watchdog, the fuzzer's heartbeat) sets it.
   */
  condResched?: () => void;
  readonly map_idr = new Idr<BpfMap>();
  readonly prog_idr = new Idr<BpfProg>();
  readonly link_idr = new Idr<BpfLink>();
  readonly btf_idr = new Idr<BtfObject>();
  readonly mapTypes = new Map<number, BpfMapOps>();
  readonly progTypes = new Map<number, BpfProgTypeOps>();
  readonly linkCreateByAttachType = new Map<number, LinkCreateFn>();
  readonly helpers = new Map<number, KernelFn>();
  readonly helperProtos = new Map<number, import("../verifier/helper_protos.js").FuncProto>();
  readonly kfuncs = new Map<number, Kfunc>();
  readonly kfuncsByName = new Map<string, Kfunc>();
  /** trace_printk output (/sys/kernel/tracing/trace_pipe). */
  readonly traceLog: string[] = [];
  /** The kernel's own log (dmesg): warnings such as the hrtimer hang. */
  readonly dmesg: string[] = [];
  /** hrtimers on the simulated clock (src/kernel/hrtimer.ts); setTimeNs fires them. */
  readonly hrtimerBase = new HrtimerBase(this);
  verifier?: VerifierHook;
  /** Binds a loaded program to the VM (bpf_prog_select_runtime); set at boot when the VM exists. */
  jit?: (prog: BpfProg) => void;
  /**
   * bpf_jit_supports_timed_may_goto(): false, so may_goto is rewritten to its counted form (see
   * src/verifier/fixups.ts); true gives x86-64's timed form, which the VM cannot run.
   */
  timedMayGoto = false;
  /** The VM programs run on (when the memory is a VmMemory). */
  vm: import("../vm/vm.js").Vm | null = null;
  /** The process inside bpf() (or running a program), for capability checks: `current`. */
  current: Process | null = null;
  /** Kernel symbols programs may take the address of (ld_imm64 BPF_PSEUDO_BTF_ID), by name. */
  readonly ksyms = new Map<string, number>();
  private readonly work: (() => void)[] = [];
  structOps?: StructOpsHooks;
  /** vmlinux BTF as a kernel BTF object (id 1, like the real kernel's). */
  btfVmlinuxObj: BtfObject | null = null;
  readonly subsystems: readonly Subsystem[];
  /** Map object addresses programs receive (ld_imm64 BPF_PSEUDO_MAP_FD) -> map. */
  readonly mapByAddr = new Map<number, BpfMap>();
  /** Tasks by `struct task_struct *` address and by pid; idle is pid 0. */
  readonly taskByAddr = new Map<number, Task>();
  readonly taskByPid = new Map<number, Task>();
  /** init_task ("swapper/0"): current when no process is running. */
  initTask!: Task;
  /** The task a program runs in when it is not the caller of bpf() (set by a scheduler). */
  runningTask: Task | null = null;
  /** Sockets' `struct sock *` addresses -> socket (bpf_sk_storage). */
  readonly sockByAddr = new Map<number, import("./sock.js").Sock>();

  private clockNs = 0n;
  private prandomState: number;
  private nextPid = 1;
  private readonly users = new Map<number, UserStruct>();

  constructor(opts: KernelOptions = {}) {
    this.mem = opts.mem ?? new VmMemory();
    this.prandomState = (opts.prandomSeed ?? 0x5eed) >>> 0 || 1;
    this.config = { CONFIG_HZ: 1000, CONFIG_BPF_SYSCALL: true, CONFIG_BPF_JIT: true, ...opts.config };
    this.subsystems = opts.subsystems ?? [];
    this.progTagHash = opts.progTagHash ?? "sha256";
    this.nrCpus = opts.nrCpus ?? DEFAULT_NR_CPUS;
    if (!Number.isInteger(this.nrCpus) || this.nrCpus < 1 || this.nrCpus > NR_CPUS) {
      throw new Error(`nrCpus must be an integer in 1..${NR_CPUS}`);
    }
    bootKernel(this, opts);
    this.initTask = task_alloc(this, 0, "swapper/0", { flags: PF_KTHREAD });
  }

  /** `current`: the running task (a scheduler's choice, else the process inside bpf(), else idle). */
  get currentTask(): Task {
    return this.runningTask ?? this.current?.task ?? this.initTask;
  }

  /** pidfd_open(2). */
  pidfdOpen(proc: Process, pid: number, flags = 0): number {
    return pidfd_open(this, proc, pid, flags);
  }

  /** kernel.unprivileged_bpf_disabled (also at sysctl.unprivilegedBpfDisabled). */
  get unprivilegedBpfDisabled(): number {
    return this.sysctl.unprivilegedBpfDisabled;
  }

  set unprivilegedBpfDisabled(v: number) {
    this.sysctl.unprivilegedBpfDisabled = v;
  }

  /** capable(cap) of the current task (the process inside bpf()); false outside any. */
  capable(cap: import("./capability.js").Capability): boolean {
    return this.current?.capable(cap) ?? false;
  }

  get btfVmlinux(): Btf | null {
    return this.btfVmlinuxObj?.btf ?? null;
  }

  // ---- processes ----

  user(uid: number): UserStruct {
    let u = this.users.get(uid);
    if (!u) this.users.set(uid, (u = new UserStruct(uid)));
    return u;
  }

  /** A new task. Privileged (all BPF-relevant capabilities, uid 0) unless told otherwise. */
  newProcess(opts: ProcessOptions = {}): Process {
    const uid = opts.uid ?? (opts.privileged === false ? 1000 : 0);
    const p = new Process(this.nextPid++, this.user(uid), opts);
    p.task = task_alloc(this, p.pid, p.comm, { parent: this.initTask });
    return p;
  }

  // ---- deferred work and grace periods ----

  /** schedule_work(): runs at the end of the current syscall, or at flushWork()/quiesce(). */
  scheduleWork(fn: () => void): void {
    this.work.push(fn);
    if (!this.current && !this.rcu.readLockHeld()) this.flushWork();
  }

  flushWork(): void {
    while (this.work.length > 0) this.work.shift()!();
  }

  /** Run deferred work and RCU grace periods until nothing is left that can run. */
  quiesce(): void {
    for (;;) {
      this.flushWork();
      if (this.rcu.quiesce() === 0 && this.work.length === 0) return;
    }
  }

  /** One grace period of each RCU flavour, then the work it queued. */
  advance(): void {
    this.rcu.advance();
    this.flushWork();
  }

  /**
   * Run `fn` on `cpu` (smp_call_function_single): what it reads as smp_processor_id() is `cpu`.
   * Throws ENXIO for a CPU that is not possible.
   */
  onCpu<R>(cpu: number, fn: () => R): R {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.nrCpus) {
      throw new BpfError(ENXIO, `cpu ${cpu} is not online (nr_cpu_ids ${this.nrCpus})`);
    }
    const prev = this.cpu;
    this.cpu = cpu;
    try {
      return fn();
    } finally {
      this.cpu = prev;
    }
  }

  // ---- time ----

  /** ktime_get_ns(): the settable monotonic clock. */
  ktimeGetNs(): bigint {
    return this.clockNs;
  }

  /** Move the clock to `ns`, firing on the way every hrtimer that expires by then (each at its expiry). */
  setTimeNs(ns: bigint): void {
    if (ns < this.clockNs) throw new Error("the clock does not go backwards");
    this.hrtimerBase.run(ns, this.clockNs, this.setClock);
    this.clockNs = ns;
  }

  advanceTimeNs(ns: bigint | number): void {
    this.setTimeNs(this.clockNs + BigInt(ns));
  }

  private readonly setClock = (ns: bigint): void => {
    this.clockNs = ns;
  };

  /** jiffies (64-bit), INITIAL_JIFFIES = 0 here, at CONFIG_HZ. */
  /**
   * jiffies_64, which Linux starts at INITIAL_JIFFIES = (u32)(-300 * HZ) so that 32-bit
   * wrap-around bugs show within five minutes of boot.
   */
  get jiffies(): bigint {
    const hz = Number(this.config.CONFIG_HZ);
    return (this.clockNs * BigInt(hz)) / NSEC_PER_SEC + BigInt((-300 * hz) >>> 0);
  }

  /** bpf_get_prandom_u32: deterministic (xorshift32 from the boot seed). */
  prandomU32(): number {
    let x = this.prandomState;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.prandomState = x;
    return x;
  }

  // ---- registries ----

  registerMapType(mapType: number, ops: BpfMapOps): void {
    this.mapTypes.set(mapType, ops);
  }

  registerProgType(progType: number, ops: BpfProgTypeOps): void {
    this.progTypes.set(progType, { ...this.progTypes.get(progType), ...ops });
  }

  registerLinkCreate(attachType: number, fn: LinkCreateFn): void {
    this.linkCreateByAttachType.set(attachType, fn);
  }

  /**
   * A helper by id. `proto` is its bpf_func_proto for the verifier, needed for helpers the
   * verifier's own table does not know.
   */
  registerHelper(funcId: number, impl: KernelFn, proto?: import("../verifier/helper_protos.js").FuncProto): void {
    this.helpers.set(funcId, impl);
    if (proto) this.helperProtos.set(funcId, proto);
  }

  /**
   * A kfunc by name. Its BTF id is the id of the FUNC `name` in vmlinux BTF when that exists
   * (subsystems declare the FUNC in declareTypes), else `protoBtfId` stands in.
   */
  registerKfunc(
    name: string,
    protoBtfId: number | undefined,
    impl: KernelFn,
    flags = 0,
    progTypes?: readonly number[],
    filter?: Kfunc["filter"],
  ): Kfunc {
    const vmlinux = this.btfVmlinux;
    let btfId = 0;
    if (vmlinux) {
      const id = vmlinux.findByNameKind(name, 12 /* BTF_KIND_FUNC */);
      if (id > 0) btfId = id;
    }
    if (btfId === 0 && protoBtfId) btfId = protoBtfId;
    const kf: Kfunc = { name, btfId, protoBtfId, impl, flags, progTypes, filter };
    // A kfunc is a kernel function with a kallsyms address (ldimm64 of its BTF id, bpf_ksym_exists).
    if (!this.ksyms.has(name)) this.ksyms.set(name, 0xffff_8100_0000 + this.ksyms.size * 16);
    if (btfId) this.kfuncs.set(btfId, kf);
    this.kfuncsByName.set(name, kf);
    return kf;
  }

  /** close(2): the fd goes; the object goes with its last reference (deferred frees run now). */
  close(proc: Process, fd: number): void {
    proc.files.close(fd);
    if (!this.rcu.readLockHeld()) this.flushWork();
  }

  /** do_exit(): every fd of the process is closed, lowest first; the task goes; deferred frees run. */
  exit(proc: Process): void {
    proc.files.closeAll();
    if (proc.task) task_exit(proc.task);
    if (!this.rcu.readLockHeld()) this.flushWork();
  }

  dup(proc: Process, fd: number): number {
    return proc.files.dup(fd);
  }

  /** unlink(2) of a bpffs pin. */
  unlink(path: string): void {
    bpf_obj_unpin(this, path);
  }

  /** poll(2) of one fd: the EPOLL* mask its file reports (0 for files without ->poll). */
  poll(proc: Process, fd: number): number {
    const f = proc.files.get(fd);
    return f.f_op.poll?.(f as never) ?? 0;
  }

  /** mmap(2) of a map fd (MAP_SHARED, offset pgoff pages): what the process sees of it. */
  mmap(proc: Process, fd: number, pgoff: number, len: number, write: boolean): UserMapping {
    return bpf_map_mmap(proc, fd, pgoff, len, write);
  }

  /** The text of /proc/<pid>/fdinfo/<fd>. */
  fdinfo(proc: Process, fd: number): string {
    return fdinfo(proc, fd);
  }

  /** BPF_OBJ_GET_INFO_BY_FD as a typed object (bpf_map_info, bpf_prog_info, bpf_link_info, bpf_btf_info). */
  objGetInfo(proc: Process, fd: number): Record<string, unknown> {
    return objGetInfo(proc, fd);
  }

  /** socket(2) for a bare socket (enough for sk_storage): returns its fd. */
  socket(proc: Process): number {
    return sock_map_fd(proc, sk_alloc(this));
  }

  /** The bpf() system call: a number >= 0 or a thrown BpfError. */
  bpf(proc: Process, cmd: number, attr: BpfAttr): number {
    return sysBpf(this, proc, cmd, attr);
  }
}

export { BtfObject };
