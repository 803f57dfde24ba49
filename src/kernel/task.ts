/**
 * Tasks (include/linux/sched.h, kernel/fork.c, kernel/pid.c): a `struct task_struct` in VM memory,
 * laid out by the simulated vmlinux BTF, that programs receive as a trusted BTF pointer; its pid,
 * tgid, comm and parent links; its local storage (task->bpf_storage); and pidfds, which is how
 * userspace names a task to BPF_MAP_TYPE_TASK_STORAGE. Every process has one task, and idle
 * (pid 0, "swapper/0") runs when no process does.
 */
import type { Btf } from "../btf/btf.js";
import type { BtfBuilder } from "../btf/builder.js";
import { BTF_KIND_STRUCT } from "../uapi/btf.js";
import { BpfError, EBADF, EINVAL, ESRCH } from "../uapi/errno.js";
import type { BpfMap, MemRegion } from "./bpf.js";
import { File, type FileOps, O_CLOEXEC, O_RDWR } from "./file.js";
import type { Kernel } from "./kernel.js";
import type { Process } from "./process.js";

export const TASK_COMM_LEN = 16;
/** PF_KTHREAD: a kernel thread (idle). */
export const PF_KTHREAD = 0x00200000;

/** The members of the simulated `struct task_struct`, in the kernel's order (a subset). */
export function declareTaskTypes(
  b: BtfBuilder,
  t: { int: number; u32: number; char: number; refcount_t: number },
): number {
  const pid_t = b.addTypedef("pid_t", t.int);
  const fwd = b.addFwd("task_struct");
  const ptr = b.addPtr(fwd);
  return b.addStructAuto("task_struct", [
    { name: "__state", type: t.u32 },
    { name: "usage", type: t.refcount_t },
    { name: "flags", type: t.u32 },
    { name: "on_cpu", type: t.int },
    { name: "prio", type: t.int },
    { name: "static_prio", type: t.int },
    { name: "normal_prio", type: t.int },
    { name: "policy", type: t.u32 },
    { name: "nr_cpus_allowed", type: t.int },
    { name: "pid", type: pid_t },
    { name: "tgid", type: pid_t },
    { name: "real_parent", type: ptr },
    { name: "parent", type: ptr },
    { name: "group_leader", type: ptr },
    { name: "comm", type: b.addArray(t.char, t.int, TASK_COMM_LEN) },
  ]);
}

/** Byte offsets of task_struct members in a BTF (what the kernel's C code has compiled in). */
function layout(btf: Btf | null): { size: number; off: Map<string, number> } | null {
  if (!btf) return null;
  const id = btf.findByNameKind("task_struct", BTF_KIND_STRUCT);
  if (id <= 0) return null;
  const st = btf.typeById(id) as { size: number; members: { name: string; bitOffset: number }[] };
  return { size: st.size, off: new Map(st.members.map((m) => [m.name, m.bitOffset / 8])) };
}

export class Task {
  /** refcount_t usage: local storage is only created while the task is referenced. */
  usage = 1;
  /** task->bpf_storage: one value region per TASK_STORAGE map. */
  readonly bpf_storage = new Map<BpfMap, MemRegion>();
  dead = false;

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
export function task_alloc(k: Kernel, pid: number, comm: string, opts: { flags?: number; parent?: Task } = {}): Task {
  const l = layout(k.btfVmlinux);
  const region = k.mem.alloc(l?.size ?? 64, { perm: "r", kind: "kobj", name: `task_struct ${comm}` });
  const task = new Task(k, pid, pid, comm.slice(0, TASK_COMM_LEN - 1), region);
  if (l) {
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
    const co = l.off.get("comm");
    if (co !== undefined) b.set(new TextEncoder().encode(task.comm), co);
  }
  k.taskByAddr.set(region.addr, task);
  k.taskByPid.set(pid, task);
  return task;
}

/** The task leaves (do_exit + the last put_task_struct): its local storage goes with it. */
export function task_exit(task: Task): void {
  if (task.dead) return;
  task.dead = true;
  task.usage = 0;
  const k = task.kernel;
  for (const [map, region] of task.bpf_storage) {
    (map as BpfMap & { owners?: Set<Task> }).owners?.delete(task);
    k.rcu.callRcu(() => k.mem.free(region));
  }
  task.bpf_storage.clear();
  k.taskByPid.delete(task.pid);
  k.taskByAddr.delete(task.addr);
  k.rcu.callRcu(() => k.mem.free(task.region));
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
