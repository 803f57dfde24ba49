/**
 * How a struct_ops trampoline reaches the VM: context areas in the kernel's VM memory and the
 * program's bound run function (prog->bpf_func).
 */
import type { EnterArgs, VmProgram } from "../vm/program.js";
import { monomorphic } from "../vm/runtime.js";
import type { BpfProg, KernelMemory, MemRegion } from "./bpf.js";
import { bpf_prog_run } from "./core.js";
import type { Kernel } from "./kernel.js";
import type { Rcu } from "./rcu.js";
import type { TrampolineCtx, TrampolineVm } from "./struct_ops_trampoline.js";

/** timed()'s shape: prog->bpf_func's (EnterArgs) for a given program and its VM image. */
type TrampEntryOf = (p: BpfProg, vmP: VmProgram, ...args: Parameters<EnterArgs>) => number;

/** VmMemory exposes its current DataView; other KernelMemory shapes go through bytes(). */
interface DvMemory {
  readonly dv: DataView;
}

function hasDv(mem: KernelMemory): mem is KernelMemory & DvMemory {
  return (mem as Partial<DvMemory>).dv instanceof DataView;
}

/** r0's high half when the last run did not leave it in the VM (bpf_prog_run, a skipped run). */
interface SlowHi {
  slow: boolean;
  v: number;
}

/**
 * The trampoline's call of a non-sleepable program (see enter below), its code copied per
 * program (monomorphic) so that the call into the program's tier stays monomorphic.
 */
const makeEnter =
  (p: BpfProg, k: Kernel, rcu: Rcu, hi: SlowHi, recur: boolean, slowRun: EnterArgs, timed: TrampEntryOf): EnterArgs =>
  (ctx, n, a0l, a0h, a1l, a1h, a2l, a2h) => {
    const vmP = p.vmProg as VmProgram | null;
    if (vmP === null || p.freed || p.poked || k.vm === null) return slowRun(ctx, n, a0l, a0h, a1l, a1h, a2l, a2h);
    rcu.rcuReadLockFast();
    if (recur) p.active++;
    try {
      const lo =
        k.sysctl.bpfStatsEnabled === 0
          ? vmP.enterArgs(ctx, n, a0l, a0h, a1l, a1h, a2l, a2h)
          : timed(p, vmP, ctx, n, a0l, a0h, a1l, a1h, a2l, a2h);
      // After the run: a nested run through bpf_prog_run may have set it meanwhile.
      hi.slow = false;
      return lo;
    } finally {
      if (recur) p.active--;
      rcu.rcuReadUnlockFast();
    }
  };

const vms = new WeakMap<Kernel, TrampolineVm>();
const MASK32 = 0xffffffffn;

export function structOpsTrampolineVm(k: Kernel): TrampolineVm {
  let vm = vms.get(k);
  if (vm) return vm;
  const mem = k.mem;
  const rcu = k.rcu;
  const write64 = hasDv(mem)
    ? (addr: number, lo: number, hi: number): void => {
        const dv = mem.dv;
        dv.setInt32(addr, lo, true);
        dv.setInt32(addr + 4, hi, true);
      }
    : (addr: number, lo: number, hi: number): void => {
        const b = mem.bytes(addr, 8);
        const dv = new DataView(b.buffer, b.byteOffset, 8);
        dv.setInt32(0, lo, true);
        dv.setInt32(4, hi, true);
      };
  /** r0's high half of the last run that did not go through the VM's entry (else the VM has it). */
  const hi: SlowHi = { slow: false, v: 0 };
  const r0Hi = (): number => (hi.slow ? hi.v : (k.vm?.lastR0Hi ?? 0));
  /** Through bpf_prog_run (no VM image, or fentry/fexit patched the entry). */
  const slow = (p: BpfProg, ctx: number): number => {
    const tasks = p.aux.sleepable ? rcu.rcuTasksEnter() : null;
    try {
      const r0 = bpf_prog_run(p, ctx);
      hi.slow = true;
      hi.v = Number((r0 >> 32n) & MASK32) | 0;
      return Number(r0 & MASK32) | 0;
    } finally {
      if (tasks) rcu.rcuReadUnlock(tasks);
    }
  };
  /** Store the first n argument slots at ctx (the paths that do not hand them to the VM's entry). */
  const store = (
    ctx: number,
    n: number,
    a0l: number,
    a0h: number,
    a1l: number,
    a1h: number,
    a2l: number,
    a2h: number,
  ) => {
    if (n > 0) write64(ctx, a0l, a0h);
    if (n > 1) write64(ctx + 8, a1l, a1h);
    if (n > 2) write64(ctx + 16, a2l, a2h);
  };
  /** __bpf_prog_exit's statistics (update_prog_stats), the run timed on the kernel clock. */
  const timed: TrampEntryOf = (p, vmP, ctx, n, a0l, a0h, a1l, a1h, a2l, a2h) => {
    const t0 = k.ktimeGetNs();
    const lo = vmP.enterArgs(ctx, n, a0l, a0h, a1l, a1h, a2l, a2h);
    p.run_cnt++;
    p.run_time_ns += k.ktimeGetNs() - t0;
    return lo;
  };
  const entries = new WeakMap<BpfProg, EnterArgs>();
  /**
   * The trampoline's call of one program: __bpf_prog_enter (the read-side section; the start
   * time when statistics are on), prog->bpf_func (the program's tier entry, r1 = ctx, with the
   * trampoline's argument stores), __bpf_prog_exit (statistics, leaving the section). A
   * struct_ops program takes no recursion check (nor prog->active) unless it runs on private
   * stacks (bpf_prog_check_recur). Returns r0's low half.
   */
  const enter = (prog: unknown): EnterArgs => {
    const p = prog as BpfProg;
    let e = entries.get(p);
    if (e) return e;
    const sysctl = k.sysctl;
    const recur = p.aux.jits_use_priv_stack === true;
    e = p.aux.sleepable
      ? (ctx, n, a0l, a0h, a1l, a1h, a2l, a2h) => {
          const vmP = p.vmProg as VmProgram | null;
          if (vmP === null || p.freed || p.poked || k.vm === null) {
            store(ctx, n, a0l, a0h, a1l, a1h, a2l, a2h);
            return slow(p, ctx);
          }
          // A sleepable program is not an RCU reader, and map_free waits for RCU + RCU-tasks
          // only: the RCU-tasks reader (the task inside the image) keeps the map until it returned.
          const tasks = rcu.rcuTasksEnter();
          const tok = rcu.rcuReadLockId("tasks_trace");
          if (recur) p.active++;
          try {
            const lo =
              sysctl.bpfStatsEnabled === 0
                ? vmP.enterArgs(ctx, n, a0l, a0h, a1l, a1h, a2l, a2h)
                : timed(p, vmP, ctx, n, a0l, a0h, a1l, a1h, a2l, a2h);
            // After the run: a nested run through bpf_prog_run may have set it meanwhile.
            hi.slow = false;
            return lo;
          } finally {
            if (recur) p.active--;
            rcu.rcuReadUnlockId(tok, "tasks_trace");
            rcu.rcuReadUnlock(tasks);
          }
        }
      : monomorphic(makeEnter)(
          p,
          k,
          rcu,
          hi,
          recur,
          (ctx, n, a0l, a0h, a1l, a1h, a2l, a2h) => {
            store(ctx, n, a0l, a0h, a1l, a1h, a2l, a2h);
            return slow(p, ctx);
          },
          timed,
        );
    if (recur) {
      // __bpf_prog_enter_recur (bpf_prog_check_recur: a program on private stacks): a nested run
      // would reuse its stack, so it is skipped and counted, and the call returns 0.
      const run = e;
      e = (ctx, n, a0l, a0h, a1l, a1h, a2l, a2h) => {
        if (p.active > 0) {
          p.recursion_misses++;
          hi.slow = true;
          hi.v = 0;
          return 0;
        }
        return run(ctx, n, a0l, a0h, a1l, a1h, a2l, a2h);
      };
    }
    entries.set(p, e);
    return e;
  };
  vm = {
    rcu: k.rcu,
    write64,
    allocCtx(size: number, name: string): TrampolineCtx {
      // The program reads its context; only the trampoline writes it.
      const region: MemRegion = mem.alloc(size, { perm: "r", kind: "ctx", name });
      const addr = region.addr;
      return {
        addr,
        write: hasDv(mem)
          ? (off: number, lo: number, hi: number): void => {
              // Read mem.dv each time: growing the memory replaces the view.
              const dv = mem.dv;
              dv.setInt32(addr + off, lo | 0, true);
              dv.setInt32(addr + off + 4, hi | 0, true);
            }
          : (off: number, lo: number, hi: number): void => {
              const b = mem.bytes(addr + off, 8);
              new DataView(b.buffer, b.byteOffset, 8).setInt32(0, lo | 0, true);
              new DataView(b.buffer, b.byteOffset, 8).setInt32(4, hi | 0, true);
            },
        writeBytes(off: number, bytes: Uint8Array): void {
          mem.bytes(addr + off, bytes.length).set(bytes);
        },
        free(): void {
          mem.free(region);
        },
      };
    },
    run(prog: unknown, ctx: number, out: Int32Array): void {
      out[0] = enter(prog)(ctx, 0, 0, 0, 0, 0, 0, 0);
      out[1] = r0Hi();
    },
    enter,
    r0Hi,
  };
  vms.set(k, vm);
  return vm;
}
