/**
 * BPF cpumasks (kernel/bpf/cpumask.c): `struct bpf_cpumask` objects a program creates, shares
 * by reference and releases, with the kfuncs that read and change them. Each lives in VM memory
 * (read-only to programs: they change it through the kfuncs) and is freed after an RCU grace
 * period when its last reference goes.
 */
import type { Btf } from "../btf/btf.js";
import type { BtfBuilder } from "../btf/builder.js";
import { bpf_prog_type as T } from "../uapi/bpf.js";
import { BTF_FUNC_GLOBAL, BTF_KIND_STRUCT } from "../uapi/btf.js";
import { KF_ACQUIRE, KF_RCU, KF_RELEASE, KF_RET_NULL, KF_TRUSTED_ARGS } from "../verifier/env.js";
import type { MemRegion } from "./bpf.js";
import { registerBtfIdDtorKfuncs } from "./bpf_kptr.js";
import type { KernelBaseTypes } from "./init.js";
import type { HelperArgs, Kernel } from "./kernel.js";
import { memberOff, view } from "./task.js";

/** Program types the cpumask kfuncs are registered for (bpf_cpumask_init). */
export const CPUMASK_PROG_TYPES: readonly number[] = [
  T.BPF_PROG_TYPE_TRACING,
  T.BPF_PROG_TYPE_LSM,
  T.BPF_PROG_TYPE_STRUCT_OPS,
  T.BPF_PROG_TYPE_SYSCALL,
];

type Param = { name: string; type: "u32" | "struct bpf_cpumask *" | "const struct cpumask *" };
const CPUMASK_KFUNCS: {
  name: string;
  ret: "u32" | "bool" | "void" | "struct bpf_cpumask *";
  params: Param[];
  flags: number;
}[] = [
  { name: "bpf_cpumask_create", ret: "struct bpf_cpumask *", params: [], flags: KF_ACQUIRE | KF_RET_NULL },
  {
    name: "bpf_cpumask_release",
    ret: "void",
    params: [{ name: "cpumask", type: "struct bpf_cpumask *" }],
    flags: KF_RELEASE,
  },
  {
    name: "bpf_cpumask_acquire",
    ret: "struct bpf_cpumask *",
    params: [{ name: "cpumask", type: "struct bpf_cpumask *" }],
    flags: KF_ACQUIRE | KF_TRUSTED_ARGS,
  },
  {
    name: "bpf_cpumask_first",
    ret: "u32",
    params: [{ name: "cpumask", type: "const struct cpumask *" }],
    flags: KF_RCU,
  },
  {
    name: "bpf_cpumask_set_cpu",
    ret: "void",
    params: [
      { name: "cpu", type: "u32" },
      { name: "cpumask", type: "struct bpf_cpumask *" },
    ],
    flags: KF_RCU,
  },
  {
    name: "bpf_cpumask_clear_cpu",
    ret: "void",
    params: [
      { name: "cpu", type: "u32" },
      { name: "cpumask", type: "struct bpf_cpumask *" },
    ],
    flags: KF_RCU,
  },
  {
    name: "bpf_cpumask_test_cpu",
    ret: "bool",
    params: [
      { name: "cpu", type: "u32" },
      { name: "cpumask", type: "const struct cpumask *" },
    ],
    flags: KF_RCU,
  },
  {
    name: "bpf_cpumask_empty",
    ret: "bool",
    params: [{ name: "cpumask", type: "const struct cpumask *" }],
    flags: KF_RCU,
  },
  {
    name: "bpf_cpumask_weight",
    ret: "u32",
    params: [{ name: "cpumask", type: "const struct cpumask *" }],
    flags: KF_RCU,
  },
];

/**
 * The rest of 6.18's cpumask kfuncs, all KF_RCU. Their FUNCs are declared after every other
 * vmlinux type (declareCpumaskMoreTypes), so the ids of the types before them stay where they were.
 */
const CPUMASK_KFUNCS_MORE: typeof CPUMASK_KFUNCS = [
  ...(
    [
      ["bpf_cpumask_first_zero", "u32", ["cpumask:c"]],
      ["bpf_cpumask_first_and", "u32", ["src1:c", "src2:c"]],
      ["bpf_cpumask_test_and_set_cpu", "bool", ["cpu:u32", "cpumask:b"]],
      ["bpf_cpumask_test_and_clear_cpu", "bool", ["cpu:u32", "cpumask:b"]],
      ["bpf_cpumask_setall", "void", ["cpumask:b"]],
      ["bpf_cpumask_clear", "void", ["cpumask:b"]],
      ["bpf_cpumask_and", "bool", ["dst:b", "src1:c", "src2:c"]],
      ["bpf_cpumask_or", "void", ["dst:b", "src1:c", "src2:c"]],
      ["bpf_cpumask_xor", "void", ["dst:b", "src1:c", "src2:c"]],
      ["bpf_cpumask_equal", "bool", ["src1:c", "src2:c"]],
      ["bpf_cpumask_intersects", "bool", ["src1:c", "src2:c"]],
      ["bpf_cpumask_subset", "bool", ["src1:c", "src2:c"]],
      ["bpf_cpumask_full", "bool", ["cpumask:c"]],
      ["bpf_cpumask_copy", "void", ["dst:b", "src:c"]],
      ["bpf_cpumask_any_distribute", "u32", ["cpumask:c"]],
      ["bpf_cpumask_any_and_distribute", "u32", ["src1:c", "src2:c"]],
    ] as const
  ).map(([name, ret, params]) => ({
    name,
    ret,
    params: params.map((p) => {
      const [pname, t] = p.split(":");
      return {
        name: pname,
        type: (t === "u32" ? "u32" : t === "b" ? "struct bpf_cpumask *" : "const struct cpumask *") as Param["type"],
      };
    }),
    flags: KF_RCU,
  })),
];

/** struct bpf_cpumask and the kfuncs' FUNCs (after declareTaskTypes: struct cpumask exists). */
export function declareCpumaskTypes(b: BtfBuilder, base: KernelBaseTypes, cpumaskT: number, cpumask: number): void {
  const bpfCpumask = b.addStructAuto("bpf_cpumask", [
    { name: "cpumask", type: cpumaskT },
    { name: "usage", type: base.refcount_t },
  ]);
  declareKfuncs(b, base, bpfCpumask, cpumask, CPUMASK_KFUNCS);
}

/** The FUNCs of CPUMASK_KFUNCS_MORE (struct bpf_cpumask is declared by then). */
export function declareCpumaskMoreTypes(b: BtfBuilder, base: KernelBaseTypes): void {
  let bpfCpumask = 0;
  for (let id = b.nrTypes; id >= 1 && !bpfCpumask; id--) {
    const t = b.typeById(id);
    if (t.kind === BTF_KIND_STRUCT && t.name === "bpf_cpumask") bpfCpumask = id;
  }
  if (bpfCpumask) declareKfuncs(b, base, bpfCpumask, base.cpumask, CPUMASK_KFUNCS_MORE);
}

function declareKfuncs(
  b: BtfBuilder,
  base: KernelBaseTypes,
  bpfCpumask: number,
  cpumask: number,
  kfuncs: typeof CPUMASK_KFUNCS,
): void {
  const types: Record<string, number> = {
    u32: base.u32,
    bool: base.bool,
    void: 0,
    "struct bpf_cpumask *": b.addPtr(bpfCpumask),
    "const struct cpumask *": b.addPtr(b.addConst(cpumask)),
  };
  for (const k of kfuncs) {
    const proto = b.addFuncProto(
      types[k.ret],
      k.params.map((p) => ({ name: p.name, type: types[p.type] })),
    );
    b.addFunc(k.name, proto, BTF_FUNC_GLOBAL);
  }
}

/** The cpumasks of one kernel. */
export class CpumaskTable {
  private readonly live = new Map<number, { region: MemRegion; usage: number }>();

  constructor(private readonly k: Kernel) {}

  private get btf(): Btf {
    return this.k.btfVmlinux as Btf;
  }

  /** bpf_cpumask_create: an empty mask holding one reference, or 0 when memory runs out. */
  create(): number {
    const t = this.btf.typeById(this.btf.findByNameKind("bpf_cpumask", BTF_KIND_STRUCT)) as { size: number };
    const region = this.k.mem.alloc(t.size, { perm: "r", kind: "kobj", name: "bpf_cpumask" });
    this.live.set(region.addr, { region, usage: 1 });
    this.writeUsage(region.addr, 1);
    return region.addr;
  }

  private writeUsage(addr: number, n: number): void {
    view(this.k, addr + memberOff(this.btf, "bpf_cpumask", "usage"), 4).setInt32(0, n, true);
  }

  private entry(addr: number) {
    const e = this.live.get(addr);
    // The verifier hands these kfuncs only masks the program holds; anything else is a kernel bug.
    if (!e) throw new Error(`bpf_cpumask at 0x${addr.toString(16)} is not a live cpumask (use after free)`);
    return e;
  }

  acquire(addr: number): number {
    const e = this.entry(addr);
    e.usage++;
    this.writeUsage(addr, e.usage);
    return addr;
  }

  /** bpf_cpumask_release: the last reference frees the mask after a grace period. */
  release(addr: number): void {
    const e = this.entry(addr);
    if (e.usage <= 0) throw new Error("bpf_cpumask_release: refcount underflow (double free)");
    e.usage--;
    this.writeUsage(addr, e.usage);
    if (e.usage > 0) return;
    this.live.delete(addr);
    this.k.rcu.callRcu(() => this.k.mem.free(e.region));
  }

  /** Masks not yet released. */
  count(): number {
    return this.live.size;
  }
}

const tables = new WeakMap<Kernel, CpumaskTable>();

export function kernelCpumasks(k: Kernel): CpumaskTable {
  let t = tables.get(k);
  if (!t) {
    t = new CpumaskTable(k);
    tables.set(k, t);
  }
  return t;
}

/** The mask's bits (a `struct cpumask *`, which a bpf_cpumask starts with). */
function bits(k: Kernel, c: HelperArgs, i: number): DataView {
  return view(k, c.argNum(i), 8);
}

/** Register the cpumask kfuncs (bpf_cpumask_init). */
export function registerCpumaskKfuncs(k: Kernel): void {
  const masks = kernelCpumasks(k);
  // A bpf_cpumask may be held by a map as a referenced kptr (cpumask_dtors).
  registerBtfIdDtorKfuncs(k, [
    { type: "bpf_cpumask", kfunc: "bpf_cpumask_release_dtor", dtor: (_k, addr) => masks.release(addr) },
  ]);
  const nr = () => BigInt(k.nrCpus);
  const impls: Record<string, (c: HelperArgs) => number | bigint> = {
    bpf_cpumask_create: () => masks.create(),
    bpf_cpumask_release: (c) => {
      masks.release(c.argNum(1));
      return 0;
    },
    bpf_cpumask_acquire: (c) => masks.acquire(c.argNum(1)),
    bpf_cpumask_first: (c) => {
      const v = bits(k, c, 1).getBigUint64(0, true);
      for (let i = 0n; i < nr(); i++) if (v & (1n << i)) return i;
      return nr();
    },
    bpf_cpumask_set_cpu: (c) => {
      const cpu = c.arg(1) & 0xffff_ffffn;
      if (cpu < nr()) {
        const d = bits(k, c, 2);
        d.setBigUint64(0, d.getBigUint64(0, true) | (1n << cpu), true);
      }
      return 0;
    },
    bpf_cpumask_clear_cpu: (c) => {
      const cpu = c.arg(1) & 0xffff_ffffn;
      if (cpu < nr()) {
        const d = bits(k, c, 2);
        d.setBigUint64(0, d.getBigUint64(0, true) & ~(1n << cpu), true);
      }
      return 0;
    },
    bpf_cpumask_test_cpu: (c) => {
      const cpu = c.arg(1) & 0xffff_ffffn;
      return cpu < nr() && bits(k, c, 2).getBigUint64(0, true) & (1n << cpu) ? 1 : 0;
    },
    bpf_cpumask_empty: (c) => (bits(k, c, 1).getBigUint64(0, true) & ((1n << nr()) - 1n) ? 0 : 1),
    bpf_cpumask_weight: (c) => {
      let v = bits(k, c, 1).getBigUint64(0, true) & ((1n << nr()) - 1n);
      let n = 0;
      for (; v; v &= v - 1n) n++;
      return n;
    },
    ...cpumaskOps(k, nr),
  };
  for (const kf of [...CPUMASK_KFUNCS, ...CPUMASK_KFUNCS_MORE]) {
    k.registerKfunc(kf.name, undefined, (c) => impls[kf.name](c), kf.flags, CPUMASK_PROG_TYPES);
  }
}

/** The two-mask and whole-mask kfuncs (cpumask_and, cpumask_subset, ...) over the first word. */
function cpumaskOps(k: Kernel, nr: () => bigint): Record<string, (c: HelperArgs) => number | bigint> {
  const all = () => (1n << nr()) - 1n;
  const get = (c: HelperArgs, i: number) => bits(k, c, i).getBigUint64(0, true) & all();
  /** Write the mask's bits; 0, what the void kfuncs return. */
  const put = (c: HelperArgs, i: number, v: bigint) => {
    const d = bits(k, c, i);
    d.setBigUint64(0, (d.getBigUint64(0, true) & ~all()) | (v & all()), true);
    return 0;
  };
  const first = (v: bigint) => {
    for (let i = 0n; i < nr(); i++) if (v & (1n << i)) return i;
    return nr();
  };
  // cpumask_any_distribute: the next set CPU after the one this CPU handed out last, wrapping.
  let prev = -1n;
  const distribute = (v: bigint) => {
    if (!v) return nr();
    for (let i = 1n; i <= nr(); i++) {
      const cpu = (prev + i + nr()) % nr();
      if (v & (1n << cpu)) {
        prev = cpu;
        return cpu;
      }
    }
    return nr();
  };
  const testAnd = (c: HelperArgs, set: boolean) => {
    const cpu = c.arg(1) & 0xffff_ffffn;
    if (cpu >= nr()) return 0;
    const v = get(c, 2);
    put(c, 2, set ? v | (1n << cpu) : v & ~(1n << cpu));
    return v & (1n << cpu) ? 1 : 0;
  };
  return {
    bpf_cpumask_first_zero: (c) => first(~get(c, 1) & all()),
    bpf_cpumask_first_and: (c) => first(get(c, 1) & get(c, 2)),
    bpf_cpumask_test_and_set_cpu: (c) => testAnd(c, true),
    bpf_cpumask_test_and_clear_cpu: (c) => testAnd(c, false),
    bpf_cpumask_setall: (c) => put(c, 1, all()),
    bpf_cpumask_clear: (c) => put(c, 1, 0n),
    bpf_cpumask_and: (c) => {
      const v = get(c, 2) & get(c, 3);
      put(c, 1, v);
      return v ? 1 : 0;
    },
    bpf_cpumask_or: (c) => put(c, 1, get(c, 2) | get(c, 3)),
    bpf_cpumask_xor: (c) => put(c, 1, get(c, 2) ^ get(c, 3)),
    bpf_cpumask_equal: (c) => (get(c, 1) === get(c, 2) ? 1 : 0),
    bpf_cpumask_intersects: (c) => (get(c, 1) & get(c, 2) ? 1 : 0),
    bpf_cpumask_subset: (c) => ((get(c, 1) & ~get(c, 2)) === 0n ? 1 : 0),
    bpf_cpumask_full: (c) => (get(c, 1) === all() ? 1 : 0),
    bpf_cpumask_copy: (c) => put(c, 1, get(c, 2)),
    bpf_cpumask_any_distribute: (c) => distribute(get(c, 1)),
    bpf_cpumask_any_and_distribute: (c) => distribute(get(c, 1) & get(c, 2)),
  };
}
