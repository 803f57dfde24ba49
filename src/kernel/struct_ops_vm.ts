/**
 * How a struct_ops trampoline reaches the VM: context areas in the kernel's VM memory and the
 * program's bound run function (prog->bpf_func).
 */
import type { VmProgram } from "../vm/program.js";
import type { BpfProg, KernelMemory, MemRegion } from "./bpf.js";
import { bpf_prog_run } from "./core.js";
import type { Kernel } from "./kernel.js";
import type { TrampolineCtx, TrampolineVm } from "./struct_ops_trampoline.js";

/** VmMemory exposes its current DataView; other KernelMemory shapes go through bytes(). */
interface DvMemory {
  readonly dv: DataView;
}

function hasDv(mem: KernelMemory): mem is KernelMemory & DvMemory {
  return (mem as Partial<DvMemory>).dv instanceof DataView;
}

const vms = new WeakMap<Kernel, TrampolineVm>();
const MASK32 = 0xffffffffn;

export function structOpsTrampolineVm(k: Kernel): TrampolineVm {
  let vm = vms.get(k);
  if (vm) return vm;
  const mem = k.mem;
  const rcu = k.rcu;
  /** r0's high half of the last run that did not go through the VM's entry (else the VM has it). */
  let slowHi: number | null = null;
  const r0Hi = (): number => slowHi ?? k.vm?.lastR0Hi ?? 0;
  /** Through bpf_prog_run (no VM image, or fentry/fexit patched the entry). */
  const slow = (p: BpfProg, ctx: number): number => {
    const tasks = p.aux.sleepable ? rcu.rcuTasksEnter() : null;
    try {
      const r0 = bpf_prog_run(p, ctx);
      slowHi = Number((r0 >> 32n) & MASK32) | 0;
      return Number(r0 & MASK32) | 0;
    } finally {
      if (tasks) rcu.rcuReadUnlock(tasks);
    }
  };
  /** __bpf_prog_exit's statistics (update_prog_stats), the run timed on the kernel clock. */
  const timed = (p: BpfProg, vmP: VmProgram, ctx: number): number => {
    const t0 = k.ktimeGetNs();
    const lo = vmP.enter(ctx);
    p.run_cnt++;
    p.run_time_ns += k.ktimeGetNs() - t0;
    return lo;
  };
  const entries = new WeakMap<BpfProg, (ctx: number) => number>();
  /**
   * The trampoline's call of one program: __bpf_prog_enter (the read-side section; the start
   * time when statistics are on), prog->bpf_func (the program's tier entry, r1 = ctx),
   * __bpf_prog_exit (statistics, leaving the section). A struct_ops program takes no recursion
   * check unless it runs on private stacks (bpf_prog_check_recur). Returns r0's low half.
   */
  const enter = (prog: unknown): ((ctx: number) => number) => {
    const p = prog as BpfProg;
    let e = entries.get(p);
    if (e) return e;
    e = p.aux.sleepable
      ? (ctx: number): number => {
          const vmP = p.vmProg as VmProgram | null;
          if (vmP === null || p.freed || p.poked || k.vm === null) return slow(p, ctx);
          // A sleepable program is not an RCU reader, and map_free waits for RCU + RCU-tasks
          // only: the RCU-tasks reader (the task inside the image) keeps the map until it returned.
          const tasks = rcu.rcuTasksEnter();
          const tok = rcu.rcuReadLockId("tasks_trace");
          p.active++;
          try {
            const lo = k.sysctl.bpfStatsEnabled === 0 ? vmP.enter(ctx) : timed(p, vmP, ctx);
            // After the run: a nested run through bpf_prog_run may have set it meanwhile.
            slowHi = null;
            return lo;
          } finally {
            p.active--;
            rcu.rcuReadUnlockId(tok, "tasks_trace");
            rcu.rcuReadUnlock(tasks);
          }
        }
      : (ctx: number): number => {
          const vmP = p.vmProg as VmProgram | null;
          if (vmP === null || p.freed || p.poked || k.vm === null) return slow(p, ctx);
          const tok = rcu.rcuReadLockId("rcu");
          p.active++;
          try {
            const lo = k.sysctl.bpfStatsEnabled === 0 ? vmP.enter(ctx) : timed(p, vmP, ctx);
            // After the run: a nested run through bpf_prog_run may have set it meanwhile.
            slowHi = null;
            return lo;
          } finally {
            p.active--;
            rcu.rcuReadUnlockId(tok, "rcu");
          }
        };
    if (p.aux.jits_use_priv_stack) {
      // __bpf_prog_enter_recur (bpf_prog_check_recur: a program on private stacks): a nested run
      // would reuse its stack, so it is skipped and counted, and the call returns 0.
      const run = e;
      e = (ctx: number): number => {
        if (p.active > 0) {
          p.recursion_misses++;
          slowHi = 0;
          return 0;
        }
        return run(ctx);
      };
    }
    entries.set(p, e);
    return e;
  };
  vm = {
    rcu: k.rcu,
    write64: hasDv(mem)
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
        },
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
      out[0] = enter(prog)(ctx);
      out[1] = r0Hi();
    },
    enter,
    r0Hi,
  };
  vms.set(k, vm);
  return vm;
}
