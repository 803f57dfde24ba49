/**
 * Tasks (include/linux/sched.h, kernel/fork.c, kernel/pid.c): a `struct task_struct` in VM memory,
 * laid out by the simulated vmlinux BTF, that programs receive as a trusted BTF pointer; its pid,
 * tgid, comm and parent links; its local storage (task->bpf_storage); and pidfds, which is how
 * userspace names a task to BPF_MAP_TYPE_TASK_STORAGE. Every process has one task, and idle
 * (pid 0, "swapper/0") runs when no process does.
 */
import type { Btf } from "../btf/btf.js";
import type { BtfBuilder } from "../btf/builder.js";
import { btfAlignOf, btfResolveSize } from "../btf/resolve.js";
import { BTF_KIND_STRUCT } from "../uapi/btf.js";
import { BpfError, EBADF, EINVAL, ESRCH } from "../uapi/errno.js";
import type { BpfMap, MemRegion } from "./bpf.js";
import { bpfSelemFree } from "./bpf_local_storage.js";
import { type Cgroup, cgroup_exit, cgroup_fork } from "./cgroup.js";
import { File, type FileOps, O_CLOEXEC, O_RDWR } from "./file.js";
import type { Kernel } from "./kernel.js";
import type { Process } from "./process.js";

export const TASK_COMM_LEN = 16;
/** PF_KTHREAD: a kernel thread (idle). */
export const PF_KTHREAD = 0x00200000;

/**
 * The members of the simulated `struct task_struct`, in the kernel's order (a subset), with the
 * types BPF walks from it: mm_struct and cpumask. The parent links point to task_struct itself,
 * so walking them gives a task pointer.
 */
export function declareTaskTypes(
  b: BtfBuilder,
  t: { int: number; u32: number; ulong: number; char: number; refcount_t: number },
): { task_struct: number; cpumask: number; cpumask_t: number } {
  const pid_t = b.addTypedef("pid_t", t.int);
  const mm = b.addStructAuto("mm_struct", [
    { name: "task_size", type: t.ulong },
    { name: "total_vm", type: t.ulong },
  ]);
  const cpumask = b.addStructAuto("cpumask", [{ name: "bits", type: b.addArray(t.ulong, t.int, 1) }]);
  const cpumask_t = b.addTypedef("cpumask_t", cpumask);
  const mmPtr = b.addPtr(mm);
  // Laid out first (any pointer stands in for the links), then declared with members pointing back.
  const PARENT = -1;
  const members = [
    { name: "__state", type: t.u32 },
    { name: "usage", type: t.refcount_t },
    { name: "flags", type: t.u32 },
    { name: "on_cpu", type: t.int },
    { name: "prio", type: t.int },
    { name: "static_prio", type: t.int },
    { name: "normal_prio", type: t.int },
    { name: "policy", type: t.u32 },
    { name: "nr_cpus_allowed", type: t.int },
    { name: "cpus_ptr", type: b.addPtr(b.addConst(cpumask_t)) },
    { name: "cpus_mask", type: cpumask_t },
    { name: "mm", type: mmPtr },
    { name: "pid", type: pid_t },
    { name: "tgid", type: pid_t },
    { name: "real_parent", type: PARENT },
    { name: "parent", type: PARENT },
    { name: "group_leader", type: PARENT },
    { name: "comm", type: b.addArray(t.char, t.int, TASK_COMM_LEN) },
  ];
  let off = 0;
  let align = 1;
  const laid = members.map((m) => {
    const ty = m.type === PARENT ? mmPtr : m.type;
    const a = btfAlignOf(b, ty);
    off = Math.ceil(off / a) * a;
    const at = { name: m.name, type: m.type, bitOffset: off * 8 };
    off += btfResolveSize(b, ty);
    align = Math.max(align, a);
    return at;
  });
  const task = b.addStruct("task_struct", Math.ceil(off / align) * align, []);
  const ptr = b.addPtr(task);
  b.setMembers(
    task,
    laid.map((m) => (m.type === PARENT ? { ...m, type: ptr } : m)),
  );
  return { task_struct: task, cpumask, cpumask_t };
}

/**
 * Append a member to the task_struct being built (a subsystem's per-task state, e.g. sched_ext's
 * `scx`), at its natural alignment; the struct grows to hold it.
 */
export function taskStructAddMember(b: BtfBuilder, name: string, type: number): void {
  const id = builderTaskId(b);
  const t = b.typeById(id) as { size: number; members: { name: string }[] };
  if (t.members.some((m) => m.name === name)) return;
  const a = btfAlignOf(b, type);
  const off = Math.ceil(t.size / a) * a;
  b.addField(id, name, type, off * 8);
  const align = Math.max(8, a);
  // The task_struct is a composite the builder owns; its size is the one field addField leaves.
  t.size = Math.ceil((off + btfResolveSize(b, type)) / align) * align;
}

function builderTaskId(b: BtfBuilder): number {
  for (let id = b.nrTypes; id >= 1; id--) {
    const t = b.typeById(id);
    if (t.kind === BTF_KIND_STRUCT && t.name === "task_struct") return id;
  }
  throw new Error("task_struct is not declared yet");
}

/** Byte offsets of task_struct members in a BTF (what the kernel's C code has compiled in). */
function layout(btf: Btf | null): { size: number; off: Map<string, number>; mmSize: number } | null {
  if (!btf) return null;
  const id = btf.findByNameKind("task_struct", BTF_KIND_STRUCT);
  if (id <= 0) return null;
  const st = btf.typeById(id) as { size: number; members: { name: string; bitOffset: number }[] };
  const mmId = btf.findByNameKind("mm_struct", BTF_KIND_STRUCT);
  const mmSize = mmId > 0 ? (btf.typeById(mmId) as { size: number }).size : 0;
  return { size: st.size, off: new Map(st.members.map((m) => [m.name, m.bitOffset / 8])), mmSize };
}

/** Byte offset of member `name` of struct `struct` in `btf`. */
export function memberOff(btf: Btf, struct: string, name: string): number {
  const t = btf.typeById(btf.findByNameKind(struct, BTF_KIND_STRUCT));
  if (t.kind !== BTF_KIND_STRUCT) throw new Error(`no struct ${struct}`);
  const m = t.members.find((x) => x.name === name);
  if (!m) throw new Error(`no member ${struct}.${name}`);
  return m.bitOffset / 8;
}

/** A DataView of kernel memory (the kernel writes objects programs may only read). */
export function view(k: Kernel, addr: number, len: number): DataView {
  const b = k.mem.bytes(addr, len);
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

export class Task {
  /**
   * refcount_t usage: the task's own reference while it lives plus every one a program acquired;
   * local storage is only created while the task is referenced.
   */
  usage = 1;
  /** task->bpf_storage: one value region per TASK_STORAGE map. */
  readonly bpf_storage = new Map<BpfMap, MemRegion>();
  /** do_exit has run: no longer findable by pid. */
  dead = false;
  /** The last reference went and a grace period passed: the memory is gone. */
  freed = false;
  /** task->mm. */
  mmRegion: MemRegion | null = null;

  constructor(
    readonly kernel: Kernel,
    readonly pid: number,
    readonly tgid: number,
    readonly comm: string,
    /** The task_struct in VM memory. */
    readonly region: MemRegion,
  ) {}

  get addr(): number {
    return this.region.addr;
  }
}

/** copy_process(), as far as BPF sees it: a task_struct filled in and findable by pid and address. */
export function task_alloc(
  k: Kernel,
  pid: number,
  comm: string,
  opts: { flags?: number; parent?: Task; cgroup?: Cgroup } = {},
): Task {
  const l = layout(k.btfVmlinux);
  // Writable where a subsystem lets programs store to it (sched_ext: p->scx.slice, dsq_vtime);
  // the verifier decides which stores reach it.
  const perm = l?.off.has("scx") ? "rw" : "r";
  const region = k.mem.alloc(l?.size ?? 64, { perm, kind: "kobj", name: `task_struct ${comm}` });
  const task = new Task(k, pid, pid, comm.slice(0, TASK_COMM_LEN - 1), region);
  if (l) {
    const mmSize = l.mmSize;
    const mm =
      mmSize && !((opts.flags ?? 0) & PF_KTHREAD)
        ? k.mem.alloc(mmSize, { perm: "r", kind: "kobj", name: `mm_struct ${comm}` })
        : null;
    // Views taken after the last allocation: growing the memory detaches earlier ones.
    const b = k.mem.bytes(region.addr, l.size);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const set32 = (m: string, v: number) => {
      const o = l.off.get(m);
      if (o !== undefined) dv.setInt32(o, v, true);
    };
    const set64 = (m: string, v: number) => {
      const o = l.off.get(m);
      if (o !== undefined) dv.setBigUint64(o, BigInt(v), true);
    };
    set32("usage", 1);
    set32("flags", opts.flags ?? 0);
    set32("prio", 120);
    set32("static_prio", 120);
    set32("normal_prio", 120);
    set32("nr_cpus_allowed", k.nrCpus);
    set32("pid", pid);
    set32("tgid", pid);
    set64("real_parent", opts.parent?.addr ?? region.addr);
    set64("parent", opts.parent?.addr ?? region.addr);
    set64("group_leader", region.addr);
    const cpusMask = l.off.get("cpus_mask");
    if (cpusMask !== undefined) {
      set64("cpus_ptr", region.addr + cpusMask);
      dv.setBigUint64(cpusMask, (1n << BigInt(k.nrCpus)) - 1n, true);
    }
    if (mm) {
      k.mem.bytes(mm.addr, 8).set(new Uint8Array(new BigUint64Array([0x7fff_ffff_f000n]).buffer));
      task.mmRegion = mm;
      set64("mm", mm.addr);
    }
    const co = l.off.get("comm");
    if (co !== undefined) b.set(new TextEncoder().encode(task.comm), co);
  }
  k.taskByAddr.set(region.addr, task);
  k.taskByPid.set(pid, task);
  cgroup_fork(k, task, opts.parent, opts.cgroup);
  return task;
}

/** The task leaves (do_exit): no longer findable by pid; it drops its own reference. */
export function task_exit(task: Task): void {
  if (task.dead) return;
  task.dead = true;
  task.kernel.taskByPid.delete(task.pid);
  cgroup_exit(task.kernel, task);
  put_task_struct(task);
}

function writeUsage(task: Task): void {
  const btf = task.kernel.btfVmlinux;
  if (!btf) return;
  view(task.kernel, task.addr + memberOff(btf, "task_struct", "usage"), 4).setInt32(0, task.usage, true);
}

/** refcount_inc_not_zero(&p->usage): false once the last reference has gone. */
export function tryget_task_struct(task: Task): boolean {
  if (task.usage === 0 || task.freed) return false;
  task.usage++;
  writeUsage(task);
  return true;
}

/**
 * put_task_struct: the last reference takes the local storage with it and frees the task after
 * a grace period, so a pointer read inside an RCU section stays readable until the section ends.
 */
export function put_task_struct(task: Task): void {
  // An underflow is a double free: a kernel bug the verifier must make unreachable.
  if (task.usage <= 0 || task.freed) throw new Error(`put_task_struct: task ${task.pid} refcount underflow`);
  task.usage--;
  writeUsage(task);
  if (task.usage > 0) return;
  const k = task.kernel;
  // bpf_task_storage_free: each value goes with what its fields hold.
  for (const [map, region] of task.bpf_storage) {
    (map as BpfMap & { owners?: Set<Task> }).owners?.delete(task);
    bpfSelemFree(map, region, true);
  }
  task.bpf_storage.clear();
  if (k.taskByPid.get(task.pid) === task) k.taskByPid.delete(task.pid);
  k.rcu.callRcu(() => {
    task.freed = true;
    k.taskByAddr.delete(task.addr);
    k.mem.free(task.region);
    if (task.mmRegion) k.mem.free(task.mmRegion);
  });
}

/** find_task_by_vpid: a live task (pid 0, idle, is not in the pid hash). */
export function find_task_by_vpid(k: Kernel, pid: number): Task | undefined {
  if (pid <= 0) return undefined;
  const t = k.taskByPid.get(pid);
  return t && !t.dead ? t : undefined;
}

export const pidfd_fops: FileOps<Task> = { kind: "other", release: () => {} };

/** pidfd_open(2): an fd naming the task with this pid (ESRCH when there is none). */
export function pidfd_open(k: Kernel, proc: Process, pid: number, flags = 0): number {
  if (flags) throw new BpfError(EINVAL, `pidfd_open flags 0x${flags.toString(16)}`);
  const task = k.taskByPid.get(pid);
  if (!task) throw new BpfError(ESRCH, `no task with pid ${pid}`);
  return proc.files.install(new File(pidfd_fops, task, O_RDWR | O_CLOEXEC));
}

/** pidfd_get_pid + pid_task: EBADF for an fd that is not a pidfd; null once the task is gone. */
export function pidfd_get_task(proc: Process, fd: number): Task | null {
  const f = proc.files.get(fd);
  if (f.f_op !== pidfd_fops) throw new BpfError(EBADF, `fd ${fd} is not a pidfd`, { fd });
  const t = f.private_data as Task;
  return t.dead ? null : t;
}
