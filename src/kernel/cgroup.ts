/**
 * cgroup v2 (kernel/cgroup/cgroup.c, include/linux/cgroup-defs.h) as far as BPF and the CPU
 * controller see it: one hierarchy of `struct cgroup`s in VM memory (id = `kn->id`, `level`,
 * `ancestors[]`, the `self` css), each task's membership through `task->cgroups->dfl_cgrp`,
 * mkdir/rmdir, migration with the controllers' can_attach / cancel_attach / attach, the cpu
 * controller's `cpu.weight`, references (cgroup_get / tryget / put, the memory freed a grace
 * period after the last one), and the BPF core's cgroup kfuncs (kernel/bpf/helpers.c:
 * bpf_cgroup_acquire / release / ancestor / from_id, bpf_task_under_cgroup).
 *
 * Ids are allocated in creation order from 1 (the root), as kernfs node ids are; kernfs files
 * are not modelled, so they take no ids. Namespaces and cgroup v1 are not modelled.
 */
import type { BtfBuilder } from "../btf/builder.js";
import { btfAlignOf, btfResolveSize } from "../btf/resolve.js";
import { BTF_FUNC_GLOBAL } from "../uapi/btf.js";
import { BpfError, EBADF, EBUSY, EEXIST, EINVAL, ENOENT } from "../uapi/errno.js";
import { KF_ACQUIRE, KF_RCU, KF_RELEASE, KF_RET_NULL } from "../verifier/env.js";
import type { BpfMap, MemRegion } from "./bpf.js";
import { bpf_cgrp_storage_free } from "./bpf_cgrp_storage.js";
import { registerBtfIdDtorKfuncs } from "./bpf_kptr.js";
import { File, type FileOps, O_CLOEXEC, O_RDONLY } from "./file.js";
import type { KernelBaseTypes } from "./init.js";
import type { Kernel } from "./kernel.js";
import { GENERIC_KFUNC_PROG_TYPES } from "./kfuncs.js";
import type { Process } from "./process.js";
import { memberOff, type Task, taskStructAddMember, view } from "./task.js";

/** CGROUP_WEIGHT_MIN / DFL / MAX (include/linux/cgroup.h): `cpu.weight`'s range. */
export const CGROUP_WEIGHT_MIN = 1;
export const CGROUP_WEIGHT_DFL = 100;
export const CGROUP_WEIGHT_MAX = 10000;

/**
 * A controller's callbacks (struct cgroup_subsys, the parts the CPU controller uses). A non-zero
 * return from `css_online` or `can_attach` is a negative errno that refuses the operation.
 */
export interface CgroupSubsys {
  readonly name: string;
  css_online?(cgrp: Cgroup): number;
  css_offline?(cgrp: Cgroup): void;
  /** One call for the whole migration; a refusal means no task moves. */
  can_attach?(tasks: readonly Task[], from: readonly Cgroup[], to: Cgroup): number;
  cancel_attach?(tasks: readonly Task[], from: readonly Cgroup[], to: Cgroup): void;
  attach?(tasks: readonly Task[], from: readonly Cgroup[], to: Cgroup): void;
  /** A new task joins its parent's cgroup (cgroup_post_fork). */
  fork?(task: Task, cgrp: Cgroup): void;
  /** `cpu.weight` written. */
  css_set_weight?(cgrp: Cgroup, weight: number): void;
  /** `cpu.max` written (tg_set_bandwidth): a non-zero return is a negative errno refusing it. */
  css_set_bandwidth?(cgrp: Cgroup, period_us: bigint, quota_us: bigint, burst_us: bigint): number;
}

/** RUNTIME_INF: cpu.max's "max". */
export const RUNTIME_INF = 0xffff_ffff_ffff_ffffn;
/** default_bw_period_us(): 100 ms. */
export const DEFAULT_BW_PERIOD_US = 100000n;

export class Cgroup {
  /** css.refcnt: the cgroup's own reference while it is online plus every one taken. */
  refcnt = 1;
  online = true;
  freed = false;
  /** `cpu.weight`. */
  weight = CGROUP_WEIGHT_DFL;
  /** `cpu.max` (quota, period) and `cpu.max.burst`, in us. */
  bw_period_us = DEFAULT_BW_PERIOD_US;
  bw_quota_us = RUNTIME_INF;
  bw_burst_us = 0n;
  readonly children = new Set<Cgroup>();
  /** The tasks whose css_set is this cgroup's (the only hierarchy is the default one). */
  readonly tasks = new Set<Task>();
  /** ancestors[0..level]: the root first, this cgroup last. */
  readonly ancestors: Cgroup[];
  /** Per-controller state (the CPU controller's task group). */
  readonly priv = new Map<string, unknown>();
  /** cgrp->bpf_cgrp_storage: one value region per CGRP_STORAGE map. */
  readonly bpf_cgrp_storage = new Map<BpfMap, MemRegion>();

  constructor(
    readonly root: CgroupRoot,
    readonly id: number,
    readonly name: string,
    readonly parent: Cgroup | null,
    /** struct cgroup, its ancestors[] after it. */
    readonly region: MemRegion,
    readonly knRegion: MemRegion,
    /** The css_set its tasks point to (dfl_cgrp = this). */
    readonly csetRegion: MemRegion,
  ) {
    this.ancestors = parent ? [...parent.ancestors, this] : [this];
  }

  get level(): number {
    return this.ancestors.length - 1;
  }

  get addr(): number {
    return this.region.addr;
  }

  /** The path from the root, "/" for the root. */
  get path(): string {
    return this.parent ? `${this.parent.parent ? this.parent.path : ""}/${this.name}` : "/";
  }
}

/** Byte offsets the kernel's C code has compiled in. */
interface Layout {
  cgroupSize: number;
  off: (struct: string, member: string) => number;
  knSize: number;
  csetSize: number;
}

/** cgrp_dfl_root: the hierarchy of one kernel. */
export class CgroupRoot {
  readonly byId = new Map<number, Cgroup>();
  readonly byAddr = new Map<number, Cgroup>();
  readonly subsys: CgroupSubsys[] = [];
  readonly cgrp: Cgroup;
  private nextId = 1;
  private readonly taskCgrp = new Map<Task, Cgroup>();

  constructor(
    readonly kernel: Kernel,
    private readonly l: Layout,
  ) {
    this.cgrp = this.create("", null);
  }

  private create(name: string, parent: Cgroup | null): Cgroup {
    const k = this.kernel;
    const l = this.l;
    const level = parent ? parent.level + 1 : 0;
    const region = k.mem.alloc(l.cgroupSize + 8 * (level + 1), { perm: "r", kind: "kobj", name: `cgroup ${name}` });
    const kn = k.mem.alloc(l.knSize, { perm: "r", kind: "kobj", name: `kernfs_node ${name}` });
    const cset = k.mem.alloc(l.csetSize, { perm: "r", kind: "kobj", name: `css_set ${name}` });
    const cg = new Cgroup(this, this.nextId++, name, parent, region, kn, cset);
    const cv = view(k, region.addr, l.cgroupSize + 8 * (level + 1));
    cv.setBigUint64(l.off("cgroup_subsys_state", "cgroup"), BigInt(region.addr), true);
    if (parent) cv.setBigUint64(l.off("cgroup_subsys_state", "parent"), BigInt(parent.addr), true);
    cv.setInt32(l.off("cgroup", "level"), level, true);
    cv.setInt32(l.off("cgroup", "max_depth"), 0x7fffffff, true);
    cv.setBigUint64(l.off("cgroup", "kn"), BigInt(kn.addr), true);
    const anc = l.off("cgroup", "ancestors");
    for (let i = 0; i <= level; i++) cv.setBigUint64(anc + 8 * i, BigInt(cg.ancestors[i].addr), true);
    const kv = view(k, kn.addr, l.knSize);
    kv.setBigUint64(l.off("kernfs_node", "id"), BigInt(cg.id), true);
    kv.setBigUint64(l.off("kernfs_node", "priv"), BigInt(region.addr), true);
    const sv = view(k, cset.addr, l.csetSize);
    sv.setBigUint64(l.off("css_set", "dfl_cgrp"), BigInt(region.addr), true);
    this.byId.set(cg.id, cg);
    this.byAddr.set(region.addr, cg);
    if (parent) {
      parent.children.add(cg);
      // A cgroup pins its parent until it is freed.
      cgroup_get(parent);
    }
    for (let a = parent; a; a = a.parent) this.bumpDescendants(a, 1);
    return cg;
  }

  private bumpDescendants(cg: Cgroup, d: number): void {
    const v = view(this.kernel, cg.addr + this.l.off("cgroup", "nr_descendants"), 4);
    v.setInt32(0, v.getInt32(0, true) + d, true);
  }

  /** mkdir(2) in the cgroup filesystem: EEXIST for a name taken, the controllers may refuse. */
  mkdir(parent: Cgroup, name: string): Cgroup {
    if (!parent.online) throw new BpfError(ENOENT, `cgroup ${parent.path} is being removed`);
    if (!name || name.includes("/")) throw new BpfError(EINVAL, `cgroup name "${name}"`);
    for (const c of parent.children) if (c.name === name) throw new BpfError(EEXIST, `cgroup ${c.path} exists`);
    const cg = this.create(name, parent);
    for (let i = 0; i < this.subsys.length; i++) {
      const err = this.subsys[i].css_online?.(cg) ?? 0;
      if (err) {
        for (let j = i - 1; j >= 0; j--) this.subsys[j].css_offline?.(cg);
        this.destroy(cg);
        throw new BpfError(-err, `cgroup ${cg.path}: ${this.subsys[i].name} refused it`);
      }
    }
    return cg;
  }

  /** rmdir(2): EBUSY while it has tasks or children; it goes offline, then away with its last reference. */
  rmdir(cg: Cgroup): void {
    if (!cg.parent) throw new BpfError(EBUSY, "the root cgroup cannot be removed");
    if (!cg.online) throw new BpfError(ENOENT, `cgroup ${cg.path} is being removed`);
    if (cg.tasks.size || cg.children.size) throw new BpfError(EBUSY, `cgroup ${cg.path} is not empty`);
    for (let i = this.subsys.length - 1; i >= 0; i--) this.subsys[i].css_offline?.(cg);
    this.destroy(cg);
  }

  private destroy(cg: Cgroup): void {
    cg.online = false;
    // kernfs_remove: no longer findable by id.
    this.byId.delete(cg.id);
    cg.parent?.children.delete(cg);
    for (let a = cg.parent; a; a = a.parent) this.bumpDescendants(a, -1);
    cgroup_put(cg);
  }

  /** Every online cgroup, parents before children (css_for_each_descendant_pre from the root). */
  descendantsPre(from: Cgroup = this.cgrp): Cgroup[] {
    const out: Cgroup[] = [];
    const walk = (c: Cgroup) => {
      if (!c.online) return;
      out.push(c);
      for (const ch of c.children) walk(ch);
    };
    walk(from);
    return out;
  }

  /** task_dfl_cgroup(). */
  taskCgroup(task: Task): Cgroup {
    return this.taskCgrp.get(task) ?? this.cgrp;
  }

  /** Point the task's `cgroups` at `cg`'s css_set. */
  private link(task: Task, cg: Cgroup): void {
    const prev = this.taskCgrp.get(task);
    prev?.tasks.delete(task);
    cg.tasks.add(task);
    this.taskCgrp.set(task, cg);
    const btf = this.kernel.btfVmlinux;
    if (btf)
      view(this.kernel, task.addr + memberOff(btf, "task_struct", "cgroups"), 8).setBigUint64(
        0,
        BigInt(cg.csetRegion.addr),
        true,
      );
  }

  /** cgroup_fork + cgroup_post_fork: the child starts in its parent's cgroup, or in `into` (CLONE_INTO_CGROUP). */
  fork(task: Task, parent: Task | undefined, into?: Cgroup): void {
    if (into && !into.online) throw new BpfError(ENOENT, `cgroup ${into.path} is being removed`);
    const cg = into ?? (parent && parent !== task ? this.taskCgroup(parent) : this.cgrp);
    this.link(task, cg);
    for (const s of this.subsys) s.fork?.(task, cg);
  }

  /** cgroup_exit: the task leaves its css_set. */
  exit(task: Task): void {
    this.taskCgrp.get(task)?.tasks.delete(task);
    this.taskCgrp.delete(task);
  }

  /**
   * cgroup_migrate (writing cgroup.procs): every controller's can_attach must agree, else those
   * that agreed cancel and nothing moves; then each task moves and the controllers' attach runs.
   */
  attach(tasks: readonly Task[], to: Cgroup): void {
    if (!to.online) throw new BpfError(ENOENT, `cgroup ${to.path} is being removed`);
    const moving = tasks.filter((t) => this.taskCgroup(t) !== to);
    if (!moving.length) return;
    const from = moving.map((t) => this.taskCgroup(t));
    for (let i = 0; i < this.subsys.length; i++) {
      const err = this.subsys[i].can_attach?.(moving, from, to) ?? 0;
      if (err) {
        for (let j = i - 1; j >= 0; j--) this.subsys[j].cancel_attach?.(moving, from, to);
        throw new BpfError(-err, `cgroup ${to.path}: ${this.subsys[i].name} refused the migration`);
      }
    }
    for (const t of moving) this.link(t, to);
    for (const s of this.subsys) s.attach?.(moving, from, to);
  }

  /** Writing `cpu.weight`: 1..10000. */
  setWeight(cg: Cgroup, weight: number): void {
    if (!Number.isInteger(weight) || weight < CGROUP_WEIGHT_MIN || weight > CGROUP_WEIGHT_MAX)
      throw new BpfError(EINVAL, `cpu.weight ${weight}: not in ${CGROUP_WEIGHT_MIN}..${CGROUP_WEIGHT_MAX}`);
    if (!cg.parent) throw new BpfError(EINVAL, "the root cgroup has no cpu.weight");
    cg.weight = weight;
    for (const s of this.subsys) s.css_set_weight?.(cg, weight);
  }

  /**
   * Writing `cpu.max` (cpu_max_write: cpu_period_quota_parse, then tg_set_bandwidth): "QUOTA
   * [PERIOD]" in us, QUOTA "max" for no limit, PERIOD kept when omitted. The root has no cpu.max.
   */
  setMax(cg: Cgroup, text: string): void {
    if (!cg.parent) throw new BpfError(EINVAL, "the root cgroup has no cpu.max");
    const m = /^\s*(\S{1,20})(?:\s+(\d+))?/.exec(text);
    if (!m) throw new BpfError(EINVAL, `cpu.max ${JSON.stringify(text)}: not "QUOTA [PERIOD]"`);
    let quota: bigint;
    if (/^\d+$/.test(m[1])) quota = BigInt(m[1]);
    else if (m[1] === "max") quota = RUNTIME_INF;
    else throw new BpfError(EINVAL, `cpu.max quota ${JSON.stringify(m[1])}: not a number or "max"`);
    const period = m[2] !== undefined ? BigInt(m[2]) : cg.bw_period_us;
    if (quota > RUNTIME_INF || period > RUNTIME_INF) throw new BpfError(EINVAL, "cpu.max: value out of range");
    this.setBandwidth(cg, period, quota, cg.bw_burst_us);
  }

  /** Writing `cpu.max.burst` (us). */
  setMaxBurst(cg: Cgroup, burst_us: bigint): void {
    if (!cg.parent) throw new BpfError(EINVAL, "the root cgroup has no cpu.max.burst");
    this.setBandwidth(cg, cg.bw_period_us, cg.bw_quota_us, burst_us);
  }

  private setBandwidth(cg: Cgroup, period: bigint, quota: bigint, burst: bigint): void {
    for (const s of this.subsys) {
      const err = s.css_set_bandwidth?.(cg, period, quota, burst) ?? 0;
      if (err)
        throw new BpfError(-err, `cpu.max of ${cg.path}: period ${period} quota ${quota} burst ${burst} refused`);
    }
    cg.bw_period_us = period;
    cg.bw_quota_us = quota;
    cg.bw_burst_us = burst;
  }

  /** Reading `cpu.max`: "max 100000" or "QUOTA PERIOD". */
  readMax(cg: Cgroup): string {
    return `${cg.bw_quota_us === RUNTIME_INF ? "max" : cg.bw_quota_us} ${cg.bw_period_us}`;
  }

  /** Look a cgroup up by its path ("/", "/a/b"). */
  lookup(path: string): Cgroup | undefined {
    let cg: Cgroup | undefined = this.cgrp;
    for (const part of path.split("/").filter(Boolean)) {
      cg = [...(cg?.children ?? [])].find((c) => c.name === part);
      if (!cg) return undefined;
    }
    return cg;
  }
}

const roots = new WeakMap<Kernel, CgroupRoot>();

/** The kernel's cgroup hierarchy (made at first use; null without vmlinux BTF, which lays it out). */
export function cgroupRoot(k: Kernel): CgroupRoot | null {
  let r = roots.get(k);
  if (r) return r;
  const btf = k.btfVmlinux;
  if (!btf) return null;
  const size = (name: string) => {
    const id = btf.findByNameKind(name, 4 /* BTF_KIND_STRUCT */);
    if (id <= 0) return -1;
    return (btf.typeById(id) as { size: number }).size;
  };
  const cgroupSize = size("cgroup");
  if (cgroupSize < 0 || size("css_set") < 0) return null;
  r = new CgroupRoot(k, {
    cgroupSize,
    knSize: size("kernfs_node"),
    csetSize: size("css_set"),
    off: (s, m) => memberOff(btf, s, m),
  });
  roots.set(k, r);
  return r;
}

/** cgroup_fork / cgroup_post_fork for a task just allocated (task_alloc). */
export function cgroup_fork(k: Kernel, task: Task, parent: Task | undefined, into?: Cgroup): void {
  cgroupRoot(k)?.fork(task, parent, into);
}

/** cgroup_exit for a task leaving (do_exit). */
export function cgroup_exit(k: Kernel, task: Task): void {
  roots.get(k)?.exit(task);
}

/** task_dfl_cgroup(p). */
export function task_dfl_cgroup(task: Task): Cgroup | null {
  return cgroupRoot(task.kernel)?.taskCgroup(task) ?? null;
}

/** cgroup_get. */
export function cgroup_get(cg: Cgroup): void {
  if (cg.refcnt <= 0 || cg.freed) throw new Error(`cgroup_get: cgroup ${cg.id} has no reference left`);
  cg.refcnt++;
}

/** cgroup_tryget (percpu_ref_tryget): false once the count reached zero. */
export function cgroup_tryget(cg: Cgroup): boolean {
  if (cg.refcnt <= 0 || cg.freed) return false;
  cg.refcnt++;
  return true;
}

/** cgroup_put: the last reference frees the cgroup after a grace period (css_free_rwork_fn). */
export function cgroup_put(cg: Cgroup): void {
  if (cg.refcnt <= 0 || cg.freed) throw new Error(`cgroup_put: cgroup ${cg.id} refcount underflow`);
  cg.refcnt--;
  if (cg.refcnt > 0) return;
  const root = cg.root;
  root.kernel.rcu.callRcu(() => {
    cg.freed = true;
    bpf_cgrp_storage_free(cg);
    root.byAddr.delete(cg.addr);
    root.kernel.mem.free(cg.region);
    root.kernel.mem.free(cg.knRegion);
    root.kernel.mem.free(cg.csetRegion);
    if (cg.parent) cgroup_put(cg.parent);
  });
}

/** An open cgroup directory: it pins the kernfs node, not the cgroup's css. */
export const cgroup_dir_fops: FileOps<Cgroup> = { kind: "other", release: () => {} };

/** open(2) of a cgroup v2 directory (O_RDONLY | O_DIRECTORY), by path ("/", "/a/b"). */
export function cgroup_open(k: Kernel, proc: Process, path: string): number {
  const cg = cgroupRoot(k)?.lookup(path);
  if (!cg) throw new BpfError(ENOENT, `no cgroup ${path}`);
  return proc.files.install(new File(cgroup_dir_fops, cg, O_RDONLY | O_CLOEXEC));
}

/**
 * cgroup_get_from_fd: EBADF for a bad fd or one that is not a cgroup directory, ENOENT once the
 * cgroup is offline (css_tryget_online_from_dir); the caller owns the reference it returns.
 */
export function cgroup_get_from_fd(proc: Process, fd: number): Cgroup {
  const f = proc.files.get(fd);
  if (f.f_op !== cgroup_dir_fops) throw new BpfError(EBADF, `fd ${fd} is not a cgroup directory`, { fd });
  const cg = f.private_data as Cgroup;
  if (!cg.online || !cgroup_tryget(cg)) throw new BpfError(ENOENT, `cgroup ${cg.path} is offline`);
  return cg;
}

/** cgroup_is_descendant. */
export function cgroup_is_descendant(cg: Cgroup, ancestor: Cgroup): boolean {
  return cg.ancestors[ancestor.level] === ancestor;
}

/**
 * The cgroup types schedulers and tracing programs read (a subset of each struct, in the kernel's
 * member order), and `task_struct.cgroups`.
 */
export function declareCgroupTypes(b: BtfBuilder, base: KernelBaseTypes): { cgroup: number } {
  const cgroup = b.addStruct("cgroup", 0, []);
  const pCgroup = b.addPtr(cgroup);
  const kernfs = b.addStructAuto("kernfs_node", [
    { name: "name", type: b.addPtr(b.addConst(base.char)) },
    { name: "mode", type: base.u16 },
    { name: "id", type: base.u64 },
    { name: "flags", type: base.u16 },
    { name: "priv", type: b.addPtr(0) },
  ]);
  const cssFwd = b.addStruct("cgroup_subsys_state", 0, []);
  const pCss = b.addPtr(cssFwd);
  const cssMembers = [
    { name: "cgroup", type: pCgroup },
    { name: "ss", type: b.addPtr(0) },
    { name: "id", type: base.int },
    { name: "flags", type: base.u32 },
    { name: "serial_nr", type: base.u64 },
    { name: "parent", type: pCss },
  ];
  layOut(b, cssFwd, cssMembers);
  layOut(b, cgroup, [
    { name: "self", type: cssFwd },
    { name: "flags", type: base.ulong },
    { name: "level", type: base.int },
    { name: "max_depth", type: base.int },
    { name: "nr_descendants", type: base.int },
    { name: "nr_dying_descendants", type: base.int },
    { name: "max_descendants", type: base.int },
    { name: "kn", type: b.addPtr(kernfs) },
    { name: "ancestors", type: b.addArray(pCgroup, base.int, 0) },
  ]);
  const cset = b.addStructAuto("css_set", [
    { name: "refcount", type: base.refcount_t },
    { name: "dfl_cgrp", type: pCgroup },
  ]);
  taskStructAddMember(b, "cgroups", b.addPtr(cset));
  const fn = (name: string, ret: number, params: { name: string; type: number }[]) =>
    b.addFunc(name, b.addFuncProto(ret, params), BTF_FUNC_GLOBAL);
  const pTask = b.addPtr(base.task_struct);
  fn("bpf_cgroup_acquire", pCgroup, [{ name: "cgrp", type: pCgroup }]);
  fn("bpf_cgroup_release", 0, [{ name: "cgrp", type: pCgroup }]);
  fn("bpf_cgroup_ancestor", pCgroup, [
    { name: "cgrp", type: pCgroup },
    { name: "level", type: base.int },
  ]);
  fn("bpf_cgroup_from_id", pCgroup, [{ name: "cgid", type: base.u64 }]);
  fn("bpf_task_under_cgroup", base.s64, [
    { name: "task", type: pTask },
    { name: "ancestor", type: pCgroup },
  ]);
  return { cgroup };
}

/** Fill in a struct declared earlier, each member at its natural alignment. */
function layOut(b: BtfBuilder, id: number, members: { name: string; type: number }[]): void {
  let off = 0;
  let align = 1;
  const laid = members.map((m) => {
    const a = btfAlignOf(b, m.type);
    off = Math.ceil(off / a) * a;
    const at = { name: m.name, type: m.type, bitOffset: off * 8 };
    off += btfResolveSize(b, m.type);
    align = Math.max(align, a);
    return at;
  });
  b.setMembers(id, laid);
  (b.typeById(id) as { size: number }).size = Math.ceil(off / align) * align;
}

/** The cgroup kfuncs of generic_kfunc_set (CONFIG_CGROUPS), with 6.18's flags. */
export function registerCgroupKfuncs(k: Kernel): void {
  const G = GENERIC_KFUNC_PROG_TYPES;
  const at = (addr: number): Cgroup | undefined => cgroupRoot(k)?.byAddr.get(addr);
  const must = (name: string, addr: number): Cgroup => {
    const cg = at(addr);
    if (!cg) throw new Error(`${name}: no cgroup at 0x${addr.toString(16)}`);
    return cg;
  };
  k.registerKfunc(
    "bpf_cgroup_acquire",
    undefined,
    (c) => {
      const cg = at(c.argNum(1));
      return cg && cgroup_tryget(cg) ? cg.addr : 0;
    },
    KF_ACQUIRE | KF_RCU | KF_RET_NULL,
    G,
  );
  k.registerKfunc(
    "bpf_cgroup_release",
    undefined,
    (c) => {
      cgroup_put(must("bpf_cgroup_release", c.argNum(1)));
      return 0;
    },
    KF_RELEASE,
    G,
  );
  k.registerKfunc(
    "bpf_cgroup_ancestor",
    undefined,
    (c) => {
      const cg = must("bpf_cgroup_ancestor", c.argNum(1));
      const level = Number(BigInt.asIntN(32, c.arg(2)));
      if (level > cg.level || level < 0) return 0;
      const a = cg.ancestors[level];
      return cgroup_tryget(a) ? a.addr : 0;
    },
    KF_ACQUIRE | KF_RCU | KF_RET_NULL,
    G,
  );
  k.registerKfunc(
    "bpf_cgroup_from_id",
    undefined,
    (c) => {
      const id = c.arg(1);
      const cg = id <= BigInt(Number.MAX_SAFE_INTEGER) ? cgroupRoot(k)?.byId.get(Number(id)) : undefined;
      return cg && cgroup_tryget(cg) ? cg.addr : 0;
    },
    KF_ACQUIRE | KF_RET_NULL,
    G,
  );
  k.registerKfunc(
    "bpf_task_under_cgroup",
    undefined,
    (c) => {
      const t = k.taskByAddr.get(c.argNum(1));
      const anc = at(c.argNum(2));
      if (!t || !anc) return BigInt(-EINVAL);
      const cg = task_dfl_cgroup(t);
      return cg && cgroup_is_descendant(cg, anc) ? 1 : 0;
    },
    KF_RCU,
    G,
  );
  registerBtfIdDtorKfuncs(k, [
    {
      type: "cgroup",
      kfunc: "bpf_cgroup_release_dtor",
      dtor: (kk, addr) => {
        const cg = cgroupRoot(kk)?.byAddr.get(addr);
        if (cg) cgroup_put(cg);
      },
    },
  ]);
}
