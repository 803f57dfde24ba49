/**
 * Per-CPU kernel variables (include/linux/percpu-defs.h, mm/percpu.c): the `.data..percpu`
 * section of vmlinux, one copy per possible CPU, as BPF programs reach them through typed ksyms
 * (`extern const struct rq runqueues __ksym;`) and bpf_per_cpu_ptr / bpf_this_cpu_ptr
 * (kernel/bpf/helpers.c). The ksym's address is CPU 0's copy; CPU n's copy is n section sizes
 * further (the simulated __per_cpu_offset). The variables: `runqueues` (a `struct rq` with the
 * members BPF schedulers read), `cpu_number`, and `bpf_prog_active`.
 */
import type { Btf } from "../btf/btf.js";
import type { BtfBuilder } from "../btf/builder.js";
import { btfResolveSize } from "../btf/resolve.js";
import { bpf_func_id } from "../uapi/bpf.js";
import { BTF_KIND_DATASEC, BTF_KIND_STRUCT, BTF_KIND_VAR } from "../uapi/btf.js";
import type { MemRegion } from "./bpf.js";
import type { KernelBaseTypes } from "./init.js";
import type { Kernel } from "./kernel.js";
import { builderFind } from "./struct_ops_desc.js";
import { memberOff, view } from "./task.js";

/** The section per-CPU variables live in (what marks a ksym per-CPU to the verifier). */
export const PERCPU_SECTION = ".data..percpu";

/** vmlinux's per-CPU variables: `struct rq` (a subset, in the kernel's order) and two ints. */
export function declarePercpuVars(b: BtfBuilder, base: KernelBaseTypes): void {
  // A subsystem may have declared the runqueue already (sched_ext's kfuncs return it).
  const found = builderFind(b, "rq", BTF_KIND_STRUCT);
  const rq =
    found > 0
      ? found
      : b.addStructAuto("rq", [
          { name: "nr_running", type: base.u32 },
          { name: "cpu", type: base.int },
          { name: "clock", type: base.u64 },
        ]);
  const vars: { name: string; type: number; size: number }[] = [
    { name: "cpu_number", type: base.int, size: 4 },
    { name: "bpf_prog_active", type: base.int, size: 4 },
    { name: "runqueues", type: rq, size: btfResolveSize(b, rq) },
  ];
  let off = 0;
  const secinfo = vars.map((v) => {
    off = Math.ceil(off / 8) * 8;
    const at = { type: b.addVar(v.name, v.type, 1 /* global */), offset: off, size: v.size };
    off += v.size;
    return at;
  });
  b.addDatasec(PERCPU_SECTION, off, secinfo);
}

interface PercpuArea {
  region: MemRegion;
  /** Size of one CPU's copy. */
  unit: number;
}

const areas = new WeakMap<Kernel, PercpuArea>();

/** setup_per_cpu_areas: every CPU's copy of the section, filled in; ksyms for the variables. */
export function setupPerCpuAreas(k: Kernel): void {
  const btf = k.btfVmlinux;
  if (!btf) return;
  const secId = btf.findByNameKind(PERCPU_SECTION, BTF_KIND_DATASEC);
  if (secId <= 0) return;
  const sec = btf.typeById(secId) as unknown as { size: number; vars: { type: number; offset: number }[] };
  const unit = Math.ceil(sec.size / 8) * 8;
  const region = k.mem.alloc(unit * k.nrCpus, { perm: "r", kind: "kobj", name: PERCPU_SECTION });
  areas.set(k, { region, unit });
  const off = new Map<string, number>();
  for (const v of sec.vars) {
    const name = btf.typeById(v.type).name;
    off.set(name, v.offset);
    if (btf.kindOf(v.type) === BTF_KIND_VAR) k.ksyms.set(name, region.addr + v.offset);
  }
  for (let cpu = 0; cpu < k.nrCpus; cpu++) {
    const at = (name: string) => region.addr + cpu * unit + (off.get(name) ?? 0);
    view(k, at("cpu_number"), 4).setInt32(0, cpu, true);
    // struct rq: nothing runnable yet; its cpu.
    view(k, at("runqueues") + memberOff(btf, "rq", "cpu"), 4).setInt32(0, cpu, true);
  }
}

/** Dynamic per-CPU allocations (pcpu_alloc chunks) by the address of CPU 0's copy. */
const dynAreas = new WeakMap<Kernel, Map<number, PercpuArea>>();

function dynOf(k: Kernel): Map<number, PercpuArea> {
  let m = dynAreas.get(k);
  if (!m) dynAreas.set(k, (m = new Map()));
  return m;
}

/**
 * __alloc_percpu: `size` zeroed bytes for every possible CPU; the result is CPU 0's copy, the
 * per-CPU pointer bpf_per_cpu_ptr() and bpf_this_cpu_ptr() take.
 */
export function allocPercpu(k: Kernel, size: number, name: string): MemRegion {
  const unit = Math.max(8, Math.ceil(size / 8) * 8);
  const region = k.mem.alloc(unit * k.nrCpus, { perm: "rw", kind: "mem", name });
  dynOf(k).set(region.addr, { region, unit });
  return region;
}

/** free_percpu. */
export function freePercpu(k: Kernel, ptr: number): void {
  const m = dynOf(k);
  const a = m.get(ptr);
  if (!a) return;
  m.delete(ptr);
  k.mem.free(a.region);
}

/** Live dynamic per-CPU allocations (what the kernel's percpu accounting would show). */
export function percpuAllocated(k: Kernel): number {
  return dynOf(k).size;
}

/** per_cpu_ptr(ptr, cpu): CPU `cpu`'s copy of the per-CPU variable or allocation at `ptr` (CPU 0's), or 0. */
export function perCpuPtr(k: Kernel, ptr: number, cpu: number): number {
  if (cpu < 0 || cpu >= k.nrCpus) return 0;
  const dyn = dynAreas.get(k)?.get(ptr);
  if (dyn) return ptr + cpu * dyn.unit;
  const a = areas.get(k);
  if (!a) return 0;
  if (ptr < a.region.addr || ptr >= a.region.addr + a.unit) return 0;
  return ptr + cpu * a.unit;
}

/**
 * A module's `.data..percpu` (load_module's percpu_modalloc and the module's kallsyms): every CPU's
 * copy of each variable its BTF places there, zeroed, and a ksym naming CPU 0's copy. Returns
 * the variables' names for freeModulePerCpu.
 */
export function setupModulePerCpu(k: Kernel, btf: Btf): string[] {
  const secId = btf.findByNameKindOwn(PERCPU_SECTION, BTF_KIND_DATASEC);
  if (secId <= 0) return [];
  const sec = btf.typeById(secId) as unknown as { vars: { type: number; size: number }[] };
  const names: string[] = [];
  for (const v of sec.vars) {
    const name = btf.typeById(v.type).name;
    k.ksyms.set(name, allocPercpu(k, v.size, name).addr);
    names.push(name);
  }
  return names;
}

/** The module's per-CPU copies go with it, and its symbols. */
export function freeModulePerCpu(k: Kernel, names: readonly string[]): void {
  for (const name of names) {
    const addr = k.ksyms.get(name);
    if (addr !== undefined) freePercpu(k, addr);
    k.ksyms.delete(name);
  }
}

/** bpf_per_cpu_ptr (153) and bpf_this_cpu_ptr (154). */
export function registerPercpuHelpers(k: Kernel): void {
  setupPerCpuAreas(k);
  k.registerHelper(bpf_func_id.BPF_FUNC_per_cpu_ptr, (c, kk) => {
    const cpu = c.arg(2) & 0xffff_ffffn;
    return cpu >= BigInt(kk.nrCpus) ? 0 : perCpuPtr(kk, c.argNum(1), Number(cpu));
  });
  k.registerHelper(bpf_func_id.BPF_FUNC_this_cpu_ptr, (c, kk) => perCpuPtr(kk, c.argNum(1), kk.cpu));
}
