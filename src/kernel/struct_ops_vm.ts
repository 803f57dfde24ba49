/**
 * How a struct_ops trampoline reaches the VM: context areas in the kernel's VM memory and the
 * program's bound run function (prog->bpf_func).
 */
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
      const rcu = k.rcu;
      // A sleepable program is not an RCU reader, and map_free waits for RCU + RCU-tasks only:
      // the RCU-tasks reader (the task inside the image) keeps the map until it has returned.
      const tasks = p.aux.sleepable ? rcu.rcuTasksEnter() : null;
      try {
        const vm = k.vm;
        // A program with fentry/fexit attached runs through its patched entry (bpf_func).
        if (vm && p.vmProg && !p.freed && !p.poked) {
          // bpf_prog_run() without BigInt: the same reader and in-flight accounting, r0 as halves.
          const flavour = p.aux.sleepable ? "tasks_trace" : "rcu";
          const tok = rcu.rcuReadLockId(flavour);
          p.active++;
          try {
            vm.runCtx(p.vmProg as Parameters<typeof vm.runCtx>[0], ctx);
            p.run_cnt++;
            out[0] = vm.lastR0Lo;
            out[1] = vm.lastR0Hi;
          } finally {
            p.active--;
            rcu.rcuReadUnlockId(tok, flavour);
          }
          return;
        }
        const r0 = bpf_prog_run(p, ctx);
        out[0] = Number(r0 & MASK32) | 0;
        out[1] = Number((r0 >> 32n) & MASK32) | 0;
      } finally {
        if (tasks) rcu.rcuReadUnlock(tasks);
      }
    },
  };
  vms.set(k, vm);
  return vm;
}
