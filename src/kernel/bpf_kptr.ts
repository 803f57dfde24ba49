/**
 * kptrs in map values and allocated objects, the kernel side (kernel/bpf/helpers.c:
 * bpf_kptr_xchg; kernel/bpf/btf.c: register_btf_id_dtor_kfuncs, btf_find_dtor_kfunc; the kptr
 * cases of bpf_obj_free_fields). A kptr field holds the object's address. A referenced kptr of a
 * kernel type is allowed only for types with a registered destructor, which is what the kernel
 * calls for a pointer still held when the map element or the object holding it goes.
 */
import { bpf_func_id } from "../uapi/bpf.js";
import type { Kernel } from "./kernel.js";

/** A destructor kfunc (struct btf_id_dtor_kfunc): releases one reference to an object of `type`. */
export interface BtfIdDtor {
  /** The struct in vmlinux BTF (`task_struct`, `bpf_cpumask`, `sk_buff`). */
  readonly type: string;
  /** The destructor's name (`bpf_task_release_dtor`), for messages. */
  readonly kfunc: string;
  readonly dtor: (k: Kernel, addr: number) => void;
}

const dtorTabs = new WeakMap<Kernel, Map<string, BtfIdDtor>>();

function dtorTab(k: Kernel): Map<string, BtfIdDtor> {
  let t = dtorTabs.get(k);
  if (!t) dtorTabs.set(k, (t = new Map()));
  return t;
}

/**
 * register_btf_id_dtor_kfuncs: the kernel types a referenced kptr may hold, each with its
 * destructor. Subsystems register theirs at boot (a qdisc's `sk_buff`, the core's tasks and
 * cpumasks); a second destructor for one type is a bug.
 */
export function registerBtfIdDtorKfuncs(k: Kernel, dtors: readonly BtfIdDtor[]): void {
  const tab = dtorTab(k);
  for (const d of dtors) {
    if (tab.has(d.type)) throw new Error(`register_btf_id_dtor_kfuncs: struct ${d.type} already has a destructor`);
    tab.set(d.type, d);
  }
}

/** btf_find_dtor_kfunc: the destructor of kernel struct `type`, if one is registered. */
export function btfFindDtorKfunc(k: Kernel, type: string): BtfIdDtor | undefined {
  return dtorTab(k).get(type);
}

function rd64(k: Kernel, addr: number): bigint {
  const b = k.mem.bytes(addr, 8);
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}

function wr64(k: Kernel, addr: number, v: bigint): void {
  const b = k.mem.bytes(addr, 8);
  new DataView(b.buffer, b.byteOffset, 8).setBigUint64(0, v, true);
}

/** xchg(kptr, ptr): the field takes the new pointer, the old one comes back. */
export function kptrXchg(k: Kernel, field: number, ptr: bigint): bigint {
  const old = rd64(k, field);
  wr64(k, field, BigInt.asUintN(64, ptr));
  return old;
}

/** bpf_kptr_xchg (helper 194): the verifier proved `dst` is a referenced kptr field. */
export function registerKptrHelpers(k: Kernel): void {
  k.registerHelper(bpf_func_id.BPF_FUNC_kptr_xchg, (c, kk) => kptrXchg(kk, c.argNum(1), c.arg(2)));
}
