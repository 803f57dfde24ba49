/**
 * BPF_MAP_TYPE_PROG_ARRAY (kernel/bpf/arraymap.c: the fd-array ops with prog_fd_array_get_ptr,
 * prog_array_map_clear) and bpf_tail_call (kernel/bpf/core.c's JMP_TAIL_CALL, which the x86 JIT
 * emits the same way). Userspace stores programs by fd and reads back their ids; each program
 * must suit the array's owner (core.ts: bpf_prog_map_compatible). A program's tail call through
 * a slot replaces the running function with the slot's program.
 */
import {
  BPF_ANY,
  BPF_F_RDONLY_PROG,
  BPF_F_WRONLY_PROG,
  bpf_func_id,
  bpf_prog_type,
  MAX_TAIL_CALL_CNT,
} from "../uapi/bpf.js";
import { BpfError, E2BIG, EINVAL, ENOENT, ENOTSUPP } from "../uapi/errno.js";
import { BpfMap, type BpfMapOps, type BpfProg } from "./bpf.js";
import type { MapCreateAttr } from "./bpf_attr.js";
import { num } from "./bpf_attr.js";
import { bpf_prog_map_compatible } from "./core.js";
import type { HelperArgs, Kernel } from "./kernel.js";
import type { ArrayBase } from "./map_in_map.js";
import { bpf_prog_get, bpf_prog_put } from "./syscall_prog.js";

/** struct bpf_array of a PROG_ARRAY: the filled slots by index (a large max_entries costs nothing). */
export class BpfProgArray extends BpfMap {
  readonly ptrs = new Map<number, BpfProg>();
}

const u32 = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);

/** sizeof(struct bpf_array) on x86-64, and a pointer per slot. */
const SIZEOF_BPF_ARRAY = 312;

/** prog_fd_array_get_ptr: a reference on the program behind `fd`, if the array's owner takes it. */
function prog_fd_array_get_ptr(
  map: BpfMap,
  proc: Parameters<NonNullable<BpfMapOps["map_update_elem_sys"]>>[4],
  fd: number,
): BpfProg {
  const prog = bpf_prog_get(proc, fd);
  if (prog.type === bpf_prog_type.BPF_PROG_TYPE_EXT || !bpf_prog_map_compatible(map, prog)) {
    bpf_prog_put(prog);
    throw new BpfError(EINVAL, `program ${prog.id} does not match the owner of prog array ${map.name || map.id}`);
  }
  return prog;
}

/** The array ops of arraymap.c that a PROG_ARRAY shares (array_map_alloc_check, array_map_get_next_key). */
export function progArrayOps(array: ArrayBase): BpfMapOps {
  const ops: BpfMapOps = {
    map_btf_name: "bpf_array",
    /** fd_array_map_alloc_check: a u32 fd per slot, not readable or writable by programs. */
    map_alloc_check(attr: MapCreateAttr, k: Kernel) {
      if (num(attr.value_size) !== 4) throw new BpfError(EINVAL, "a prog array holds 4-byte fds (value_size 4)");
      if (num(attr.map_flags) & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG))
        throw new BpfError(EINVAL, "a prog array cannot be read-only or write-only to programs");
      array.map_alloc_check?.(attr, k);
    },
    map_alloc: (attr, k) => new BpfProgArray(k, ops, attr),
    /** map_check_no_btf. */
    map_check_btf() {
      throw new BpfError(ENOTSUPP, "a prog array takes no BTF key/value types");
    },
    map_free(map) {
      // prog_array_map_free: no program can run any more; the slots were cleared with the last uref.
      clear(map as BpfProgArray);
    },
    /**
     * prog_array_map_clear: the last user reference (fd or pin) empties the array, so that
     * programs holding the map and stored in it do not keep each other alive.
     */
    map_release_uref: (map) => clear(map as BpfProgArray),
    // Programs reach the slots only through bpf_tail_call (check_map_func_compatibility).
    map_lookup_elem: () => 0,
    map_sys_lookup_elem(map, key, value) {
      const prog = (map as BpfProgArray).ptrs.get(u32(key));
      if (!prog) throw new BpfError(ENOENT, "no program in this slot");
      // prog_fd_array_sys_lookup_elem: the program's id.
      new DataView(value.buffer, value.byteOffset, 4).setUint32(0, prog.id, true);
    },
    map_update_elem() {
      throw new BpfError(EINVAL, "prog arrays are updated from userspace only");
    },
    /** bpf_fd_array_map_update_elem (map_poke_run then re-points direct tail calls: nothing to patch here). */
    map_update_elem_sys(map, key, value, flags, proc) {
      const a = map as BpfProgArray;
      if (flags !== BPF_ANY) throw new BpfError(EINVAL, `invalid update flags ${flags} for a prog array`);
      const i = u32(key);
      if (i >= map.max_entries) throw new BpfError(E2BIG, `index ${i} is past max_entries ${map.max_entries}`);
      const prog = prog_fd_array_get_ptr(map, proc, u32(value));
      const old = a.ptrs.get(i);
      a.ptrs.set(i, prog);
      if (old) bpf_prog_put(old);
      return 0;
    },
    /** fd_array_map_delete_elem. */
    map_delete_elem(map, key) {
      const a = map as BpfProgArray;
      const i = u32(key);
      if (i >= map.max_entries) throw new BpfError(E2BIG, `index ${i} is past max_entries ${map.max_entries}`);
      const old = a.ptrs.get(i);
      if (!old) throw new BpfError(ENOENT, `slot ${i} is empty`);
      a.ptrs.delete(i);
      bpf_prog_put(old);
    },
    map_get_next_key: (map, key) => array.map_get_next_key(map, key),
    map_mem_usage: (map) => SIZEOF_BPF_ARRAY + map.max_entries * 8,
    map_alloc_cost: (attr) => SIZEOF_BPF_ARRAY + num(attr.max_entries) * 8,
  };
  return ops;
}

function clear(a: BpfProgArray): void {
  const progs = [...a.ptrs.values()];
  a.ptrs.clear();
  for (const p of progs) bpf_prog_put(p);
}

/** What bpf_tail_call needs of the VM beyond a helper's arguments (src/vm HelperCall). */
interface TailCallHost {
  tailCallCount(limit: number): boolean;
  tailCall(target: never, ctx: bigint | number): bigint;
}

/**
 * bpf_tail_call(ctx, map, index): an index past max_entries falls through uncounted; past
 * MAX_TAIL_CALL_CNT tail calls in this run it falls through; the count then goes up even when
 * the slot is empty (which falls through too). Otherwise the slot's program runs with the same
 * ctx and the caller never resumes: the helper's return is the callee's r0, which the VM makes
 * the calling function's.
 */
export function registerTailCall(k: Kernel): void {
  k.registerHelper(bpf_func_id.BPF_FUNC_tail_call, (c: HelperArgs) => {
    const map = k.mapByAddr.get(c.argNum(2));
    if (!(map instanceof BpfProgArray)) throw new BpfError(EINVAL, "bpf_tail_call: r2 is not a prog array");
    const index = Number(c.arg(3) & 0xffffffffn);
    if (index >= map.max_entries) return 0;
    const host = c as unknown as TailCallHost;
    if (!host.tailCallCount(MAX_TAIL_CALL_CNT)) return 0;
    const prog = map.ptrs.get(index);
    if (!prog?.vmProg) return 0;
    return host.tailCall(prog.vmProg as never, c.arg(1));
  });
}
