/**
 * Loadable modules (kernel/module/main.c) as far as BPF sees them: a module's life cycle
 * (COMING, LIVE, GOING), its reference count (try_module_get/module_put, with the load's own
 * reference, MODULE_REF_BASE), delete_module refusing a module in use, and the module's split BTF
 * on top of vmlinux (kernel/bpf/btf.c btf_module_notify): an id, `btf_info.kernel_btf`, the
 * module's name, gone from the id space with the module unless someone holds it by fd.
 */
import { Btf } from "../btf/btf.js";
import { BtfBuilder } from "../btf/builder.js";
import { BTF_KIND_FUNC } from "../uapi/btf.js";
import { BpfError, EAGAIN, EBUSY, EEXIST, ENOENT, ENOEXEC } from "../uapi/errno.js";
import { BtfObject } from "./bpf.js";
import { btf_alloc_id, btf_put } from "./btf_obj.js";
import type { Kernel, KernelFn, Kfunc } from "./kernel.js";
import { freeModulePerCpu, setupModulePerCpu } from "./percpu.js";

export const MODULE_STATE_LIVE = 0;
export const MODULE_STATE_COMING = 1;
export const MODULE_STATE_GOING = 2;
export const MODULE_STATE_UNFORMED = 3;
/** The reference the loaded module holds on itself, dropped by delete_module. */
const MODULE_REF_BASE = 1;
/** MODULE_NAME_LEN - 1. */
const MODULE_NAME_MAX = 55;
/** delete_module's "in use": -EWOULDBLOCK, which is EAGAIN on Linux. */
export const EWOULDBLOCK = EAGAIN;

/** What a module is made of: its types (split BTF over vmlinux), module_init and module_exit. */
export interface ModuleDef {
  readonly name: string;
  /** The module's BTF: types added to a builder whose base is vmlinux. */
  declareTypes?(b: BtfBuilder, vmlinux: Btf): void;
  /** module_init, with the module's BTF in place (struct_ops types, kfuncs); throw to fail the load. */
  init?(mod: Module, k: Kernel): void;
  /** module_exit. */
  exit?(mod: Module, k: Kernel): void;
}

/** struct module. */
export class Module {
  state = MODULE_STATE_UNFORMED;
  refcnt = MODULE_REF_BASE;
  /** The module's BTF object (btf_modules list entry), null once the module is going. */
  btfObj: BtfObject | null = null;
  /** Module-private state kept by module_init for its callbacks. */
  priv: unknown = undefined;
  /** The module's per-CPU variables (its `.data..percpu`), each a ksym while it is loaded. */
  percpuVars: string[] = [];
  /** The module's kfuncs (register_btf_kfunc_id_set with THIS_MODULE), by BTF id in its BTF. */
  readonly kfuncs = new Map<number, Kfunc>();

  constructor(
    readonly def: ModuleDef,
    readonly kernel: Kernel,
  ) {}

  get name(): string {
    return this.def.name;
  }

  /** BTF_MODULE_F_LIVE: module BTF users may take the module. */
  get live(): boolean {
    return this.state === MODULE_STATE_LIVE;
  }
}

const moduleLists = new WeakMap<Kernel, Map<string, Module>>();

function modules(k: Kernel): Map<string, Module> {
  let m = moduleLists.get(k);
  if (!m) moduleLists.set(k, (m = new Map()));
  return m;
}

/** find_module(). */
export function find_module(k: Kernel, name: string): Module | undefined {
  return modules(k).get(name);
}

/** The loaded modules in load order (/proc/modules). */
export function module_list(k: Kernel): Module[] {
  return [...modules(k).values()];
}

/** module_refcount(): the references beyond the module's own. */
export function module_refcount(mod: Module): number {
  return mod.refcnt - MODULE_REF_BASE;
}

/** try_module_get(): fails once the module is going. A null module is built-in: always succeeds. */
export function try_module_get(mod: Module | null | undefined): boolean {
  if (!mod) return true;
  if (mod.state === MODULE_STATE_GOING || mod.refcnt <= 0) return false;
  mod.refcnt++;
  return true;
}

/** module_put(). */
export function module_put(mod: Module | null | undefined): void {
  if (!mod) return;
  if (mod.refcnt <= MODULE_REF_BASE && mod.state !== MODULE_STATE_GOING) {
    throw new Error(`module_put: module ${mod.name} refcount underflow`);
  }
  mod.refcnt--;
}

/** The module owning a BTF object, or null for vmlinux and user BTF. */
export function btf_module(btf: BtfObject | null | undefined): Module | null {
  return btf?.module instanceof Module ? btf.module : null;
}

/** btf_is_module(). */
export function btf_is_module(btf: BtfObject | null | undefined): boolean {
  return !!btf?.kernelBtf && btf.name !== "vmlinux";
}

/**
 * btf_try_get_module(): a reference on the module behind a module BTF while that module is live
 * (the module's reference keeps its BTF). Null for a module going or gone.
 */
export function btf_try_get_module(btf: BtfObject): Module | null {
  const mod = btf_module(btf);
  if (!mod?.live || mod.btfObj !== btf) return null;
  return try_module_get(mod) ? mod : null;
}

/**
 * load_module() + do_init_module(): the module's BTF is parsed and given an id (COMING), then
 * module_init runs and the module goes LIVE. A failed init unwinds everything: the BTF goes, the
 * name is free again. EEXIST when a module of that name is loaded.
 */
export function load_module(k: Kernel, def: ModuleDef): Module {
  if (!def.name || def.name.length > MODULE_NAME_MAX) throw new BpfError(ENOEXEC, `bad module name '${def.name}'`);
  const list = modules(k);
  if (list.has(def.name)) throw new BpfError(EEXIST, `Module ${def.name} is already loaded`);
  const vmlinux = k.btfVmlinux;
  const mod = new Module(def, k);
  list.set(def.name, mod);
  mod.state = MODULE_STATE_COMING;
  if (vmlinux && def.declareTypes) {
    const b = new BtfBuilder({ base: vmlinux });
    def.declareTypes(b, vmlinux);
    const data = b.build();
    const obj = new BtfObject(Btf.parse(data, { base: vmlinux }), data, true, def.name, mod);
    btf_alloc_id(k, obj);
    mod.btfObj = obj;
    mod.percpuVars = setupModulePerCpu(k, obj.btf);
  }
  try {
    def.init?.(mod, k);
  } catch (e) {
    mod.state = MODULE_STATE_GOING;
    freeModulePerCpu(k, mod.percpuVars);
    dropBtf(mod);
    list.delete(def.name);
    throw e;
  }
  mod.state = MODULE_STATE_LIVE;
  return mod;
}

function dropBtf(mod: Module): void {
  const btf = mod.btfObj;
  mod.btfObj = null;
  if (btf) btf_put(btf);
}

/**
 * register_btf_kfunc_id_set() of a module: `name` is a FUNC of the module's own BTF; programs
 * call it with insn->off naming the module BTF's fd in fd_array.
 */
export function register_module_kfunc(
  mod: Module,
  name: string,
  impl: KernelFn,
  flags = 0,
  progTypes?: readonly number[],
): Kfunc {
  const btf = mod.btfObj?.btf;
  let btfId = -1;
  if (btf) {
    for (let id = btf.startId; id <= btf.nrTypes && btfId < 0; id++) {
      const t = btf.typeById(id);
      if (t.kind === BTF_KIND_FUNC && t.name === name) btfId = id;
    }
  }
  if (btfId < 0) throw new BpfError(ENOENT, `kfunc ${name} is not a function of module ${mod.name}'s BTF`);
  const kf: Kfunc = { name, btfId, impl, flags, progTypes };
  mod.kfuncs.set(btfId, kf);
  return kf;
}

/**
 * delete_module(2): ENOENT for no such module, EBUSY for one not live, EWOULDBLOCK (EAGAIN) while
 * anything holds a reference (a struct_ops map of its type, a program calling its kfuncs); the
 * kernel does not wait for the holders. Then module_exit, and the module's BTF leaves the id space
 * (its last fd holder keeps the object).
 */
export function delete_module(k: Kernel, name: string): void {
  const list = modules(k);
  const mod = list.get(name);
  if (!mod) throw new BpfError(ENOENT, `Module ${name} is not currently loaded`);
  if (mod.state !== MODULE_STATE_LIVE) throw new BpfError(EBUSY, `Module ${name} is not live`);
  if (module_refcount(mod) !== 0) {
    throw new BpfError(EWOULDBLOCK, `Module ${name} is in use (refcount ${module_refcount(mod)})`);
  }
  mod.state = MODULE_STATE_GOING;
  mod.def.exit?.(mod, k);
  freeModulePerCpu(k, mod.percpuVars);
  mod.percpuVars = [];
  dropBtf(mod);
  list.delete(name);
  mod.refcnt = 0;
  k.flushWork();
}
