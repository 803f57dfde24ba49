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
      const p = prog as BpfProg;
      const vmP = p.vmProg as VmProgram | null;
      const rcu = k.rcu;
      // A program with fentry/fexit attached runs through its patched entry (bpf_func).
      if (vmP === null || p.freed || p.poked || k.vm === null) {
        const tasks = p.aux.sleepable ? rcu.rcuTasksEnter() : null;
        try {
          const r0 = bpf_prog_run(p, ctx);
          out[0] = Number(r0 & MASK32) | 0;
          out[1] = Number((r0 >> 32n) & MASK32) | 0;
        } finally {
          if (tasks) rcu.rcuReadUnlock(tasks);
        }
        return;
      }
      if (!p.aux.sleepable) {
        // __bpf_prog_enter: rcu_read_lock, the start time when statistics are on; the program
        // (prog->bpf_func: its tier's entry, r1 = ctx); __bpf_prog_exit: the statistics,
        // rcu_read_unlock. A struct_ops program takes no recursion check (bpf_prog_check_recur:
        // only one on a private stack does).
        const tok = rcu.rcuReadLockId("rcu");
        p.active++;
        const stats = k.sysctl.bpfStatsEnabled !== 0;
        const t0 = stats ? k.ktimeGetNs() : 0n;
        try {
          out[0] = vmP.enter(ctx);
          out[1] = k.vm.lastR0Hi;
          if (stats) {
            p.run_cnt++;
            p.run_time_ns += k.ktimeGetNs() - t0;
          }
        } finally {
          p.active--;
          rcu.rcuReadUnlockId(tok, "rcu");
        }
        return;
      }
      // A sleepable program is not an RCU reader, and map_free waits for RCU + RCU-tasks only:
      // the RCU-tasks reader (the task inside the image) keeps the map until it has returned.
      const tasks = rcu.rcuTasksEnter();
      const tok = rcu.rcuReadLockId("tasks_trace");
      p.active++;
      const stats = k.sysctl.bpfStatsEnabled !== 0;
      const t0 = stats ? k.ktimeGetNs() : 0n;
      try {
        out[0] = vmP.enter(ctx);
        out[1] = k.vm.lastR0Hi;
        if (stats) {
          p.run_cnt++;
          p.run_time_ns += k.ktimeGetNs() - t0;
        }
      } finally {
        p.active--;
        rcu.rcuReadUnlockId(tok, "tasks_trace");
        rcu.rcuReadUnlock(tasks);
      }
    },
  };
  vms.set(k, vm);
  return vm;
}
