/**
 * BPF_MAP_TYPE_ARRAY and PERCPU_ARRAY (kernel/bpf/arraymap.c): one value region, elements at
 * index * round_up(value_size, 8); a per-CPU array holds num_possible_cpus() copies of each.
 */

import { btfTypeIdSize } from "../btf/resolve.js";
import {
  BPF_EXIST,
  BPF_F_INNER_MAP,
  BPF_F_LOCK,
  BPF_F_MMAPABLE,
  BPF_F_NUMA_NODE,
  BPF_F_PRESERVE_ELEMS,
  BPF_NOEXIST,
  bpf_map_type,
} from "../uapi/bpf.js";
import { BTF_KIND_DATASEC, BTF_KIND_INT } from "../uapi/btf.js";
import { BpfError, E2BIG, EEXIST, EINVAL, ENOENT, ENOTSUPP } from "../uapi/errno.js";
import { BPF_F_ACCESS_MASK, BpfMap, type BpfMapOps, bpf_map_flags_access_ok, type MemRegion } from "./bpf.js";
import type { MapCreateAttr } from "./bpf_attr.js";
import { num } from "./bpf_attr.js";
import { copyMapValue, mapFreeFields } from "./bpf_graph.js";
import { bpf_map_free_timers_wq } from "./bpf_wq.js";
import type { Kernel } from "./kernel.js";
import { PAGE_SIZE } from "./kernel.js";
import { array_map_meta_equal } from "./map_in_map.js";

const ARRAY_CREATE_FLAG_MASK =
  BPF_F_NUMA_NODE | BPF_F_MMAPABLE | BPF_F_ACCESS_MASK | BPF_F_PRESERVE_ELEMS | BPF_F_INNER_MAP;
/** sizeof(struct bpf_array) on x86-64 (6.x). */
const SIZEOF_BPF_ARRAY = 312;
const INT_MAX = 0x7fffffff;
/** PCPU_MIN_UNIT_SIZE: the largest per-CPU allocation, bounding a per-CPU value. */
export const PCPU_MIN_UNIT_SIZE = 32 << 10;

export class BpfArray extends BpfMap {
  readonly elem_size: number;
  readonly value: MemRegion;
  /** Copies of each element: num_possible_cpus() for PERCPU_ARRAY, else 1. */
  readonly ncopies: number;

  constructor(k: Kernel, ops: BpfMapOps, attr: MapCreateAttr) {
    super(k, ops, attr);
    this.elem_size = Math.ceil(this.value_size / 8) * 8;
    this.ncopies = ops.map_percpu ? k.nrCpus : 1;
    // Programs see .rodata-style maps (BPF_F_RDONLY_PROG) read-only; the kernel still writes them.
    this.value = k.mem.alloc(this.elem_size * this.max_entries * this.ncopies, {
      perm: this.rdonlyProg ? "r" : "rw",
      kind: "map_value",
      name: this.ncopies > 1 ? "percpu array values" : "array values",
    });
  }

  /** The element's address (per_cpu_ptr(array->pptrs[index], cpu) for a per-CPU array). */
  elemAddr(index: number, cpu = 0): number {
    return this.value.addr + this.elem_size * (index * this.ncopies + cpu);
  }
}

function index(key: Uint8Array): number {
  return new DataView(key.buffer, key.byteOffset, 4).getUint32(0, true);
}

export const array_map_ops: BpfMapOps & { map_direct_value_addr(map: BpfMap, off: number): number } = {
  map_btf_name: "bpf_array",
  map_meta_equal: array_map_meta_equal,
  map_batch: { lookup: true, update: true },
  map_alloc_check(attr) {
    const type = num(attr.map_type);
    const flags = num(attr.map_flags);
    if (
      num(attr.max_entries) === 0 ||
      num(attr.key_size) !== 4 ||
      num(attr.value_size) === 0 ||
      flags & ~ARRAY_CREATE_FLAG_MASK ||
      !bpf_map_flags_access_ok(flags)
    ) {
      throw new BpfError(EINVAL, "array map: max_entries > 0, key_size 4, value_size > 0 and known flags are required");
    }
    if (type === bpf_map_type.BPF_MAP_TYPE_PERCPU_ARRAY && flags & BPF_F_NUMA_NODE) {
      throw new BpfError(EINVAL, "a per-CPU array cannot be placed on a NUMA node");
    }
    if (type !== bpf_map_type.BPF_MAP_TYPE_ARRAY && flags & (BPF_F_MMAPABLE | BPF_F_INNER_MAP)) {
      throw new BpfError(EINVAL, "BPF_F_MMAPABLE/BPF_F_INNER_MAP are for plain arrays");
    }
    if (type !== bpf_map_type.BPF_MAP_TYPE_PERF_EVENT_ARRAY && flags & BPF_F_PRESERVE_ELEMS) {
      throw new BpfError(EINVAL, "BPF_F_PRESERVE_ELEMS is for perf event arrays");
    }
    if (num(attr.value_size) > INT_MAX) throw new BpfError(E2BIG, "value_size too large");
    if (
      type === bpf_map_type.BPF_MAP_TYPE_PERCPU_ARRAY &&
      Math.ceil(num(attr.value_size) / 8) * 8 > PCPU_MIN_UNIT_SIZE
    ) {
      throw new BpfError(E2BIG, `per-CPU value_size over PCPU_MIN_UNIT_SIZE (${PCPU_MIN_UNIT_SIZE})`);
    }
  },
  map_alloc_cost(attr, k) {
    const elemSize = Math.ceil(num(attr.value_size) / 8) * 8;
    const n = num(attr.max_entries);
    if (num(attr.map_type) === bpf_map_type.BPF_MAP_TYPE_PERCPU_ARRAY)
      return SIZEOF_BPF_ARRAY + n * 8 + n * elemSize * k.nrCpus;
    return SIZEOF_BPF_ARRAY + n * elemSize;
  },
  map_alloc(attr, k) {
    const percpu = num(attr.map_type) === bpf_map_type.BPF_MAP_TYPE_PERCPU_ARRAY;
    return new BpfArray(k, percpu ? percpu_array_map_ops : array_map_ops, attr);
  },
  // array_map_free_timers_wq: timers go with the last user reference, other fields stay.
  map_release_uref: bpf_map_free_timers_wq,
  map_free(map) {
    // array_map_free: every element's fields, every CPU's copy of a per-CPU one; only when the
    // values hold special fields (a map of 2^28 plain elements frees at once).
    const a = map as BpfArray;
    if (map.record && !(map.record instanceof BpfError))
      for (let i = 0; i < map.max_entries; i++)
        for (let cpu = 0; cpu < a.ncopies; cpu++) mapFreeFields(map, a.elemAddr(i, cpu));
    map.kernel.mem.free(a.value);
  },
  map_lookup_elem(map, key) {
    const i = index(key);
    if (i >= map.max_entries) return 0;
    return (map as BpfArray).elemAddr(i);
  },
  map_update_elem(map, key, value, flags) {
    if ((flags & ~BPF_F_LOCK) > BPF_EXIST) throw new BpfError(EINVAL, `invalid update flags ${flags}`);
    const i = index(key);
    if (i >= map.max_entries) throw new BpfError(E2BIG, `index ${i} is past max_entries ${map.max_entries}`);
    // Every array element always exists.
    if (flags & BPF_NOEXIST) throw new BpfError(EEXIST, `array element ${i} always exists`);
    const addr = (map as BpfArray).elemAddr(i);
    copyMapValue(map, map.kernel.mem.bytes(addr, map.value_size), value);
    // The element's lists and kptrs from before go (bpf_obj_free_fields after copy_map_value).
    mapFreeFields(map, addr);
  },
  map_delete_elem() {
    throw new BpfError(EINVAL, "array elements cannot be deleted");
  },
  map_get_next_key(map, key) {
    const out = new Uint8Array(4);
    const dv = new DataView(out.buffer);
    const i = key ? index(key) : 0xffffffff;
    if (i >= map.max_entries) {
      dv.setUint32(0, 0, true);
      return out;
    }
    if (i === map.max_entries - 1) throw new BpfError(ENOENT, "last element");
    dv.setUint32(0, i + 1, true);
    return out;
  },
  map_mem_usage(map) {
    const a = map as BpfArray;
    if (map.map_flags & BPF_F_MMAPABLE) {
      const pa = (n: number) => Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
      return pa(SIZEOF_BPF_ARRAY) + pa(map.max_entries * a.elem_size);
    }
    return SIZEOF_BPF_ARRAY + map.max_entries * a.elem_size;
  },
  map_check_btf(map, btf, keyTypeId, valueTypeId) {
    // Keyless BTF is allowed for global data only: a one-element array whose value is a DATASEC.
    if (!keyTypeId) {
      if (map.map_type !== bpf_map_type.BPF_MAP_TYPE_ARRAY || map.max_entries !== 1) {
        throw new BpfError(EINVAL, "only a one-element array may have no BTF key type");
      }
      if (btf.typeById(valueTypeId).kind !== BTF_KIND_DATASEC) {
        throw new BpfError(EINVAL, "a keyless array's BTF value type must be a DATASEC");
      }
      return;
    }
    // An array takes a u32 key: the BTF key type must be a 32-bit int.
    const key = btfTypeIdSize(btf, keyTypeId)?.type as { kind: number; size?: number; bits?: number } | undefined;
    if (!key) throw new BpfError(EINVAL, "array BTF key type has no size");
    if (key.kind !== BTF_KIND_INT || key.size !== 4 || (key.bits !== undefined && key.bits !== 32)) {
      throw new BpfError(EINVAL, "array BTF key type must be a 32-bit int");
    }
  },
  /** ld_imm64 BPF_PSEUDO_MAP_VALUE: only single-element arrays (global data). */
  map_direct_value_addr(map, off) {
    if (map.max_entries !== 1) throw new BpfError(ENOTSUPP, "direct value access needs max_entries 1");
    if (off >= map.value_size) throw new BpfError(EINVAL, `offset ${off} is past value_size ${map.value_size}`);
    return (map as BpfArray).value.addr;
  },
};

/**
 * copy_map_value_long: a per-CPU copy moves round_up(value_size, 8) bytes around its special
 * fields; bpf_percpu_array_update then frees what those held.
 */
function copyLong(map: BpfArray, dst: number, src: Uint8Array): void {
  copyMapValue(map, map.kernel.mem.bytes(dst, map.elem_size), src.subarray(0, map.elem_size));
  mapFreeFields(map, dst);
}

/**
 * BPF_MAP_TYPE_PERCPU_ARRAY: a program's lookup and update touch this CPU's copy; the syscall
 * reads and writes every possible CPU's, round_up(value_size, 8) bytes each, CPU 0 first.
 */
const { map_direct_value_addr: _direct, ...array_base_ops } = array_map_ops;

export const percpu_array_map_ops: BpfMapOps = {
  ...array_base_ops,
  map_percpu: true,
  map_lookup_elem(map, key) {
    const i = index(key);
    if (i >= map.max_entries) return 0;
    return (map as BpfArray).elemAddr(i, map.kernel.cpu);
  },
  map_lookup_percpu_elem(map, key, cpu) {
    const i = index(key);
    if (cpu >= map.kernel.nrCpus || i >= map.max_entries) return 0;
    return (map as BpfArray).elemAddr(i, cpu);
  },
  map_update_elem(map, key, value, flags) {
    if ((flags & ~BPF_F_LOCK) > BPF_EXIST) throw new BpfError(EINVAL, `invalid update flags ${flags}`);
    const i = index(key);
    if (i >= map.max_entries) throw new BpfError(E2BIG, `index ${i} is past max_entries ${map.max_entries}`);
    if (flags & BPF_NOEXIST) throw new BpfError(EEXIST, `array element ${i} always exists`);
    // This CPU's copy, around its special fields, which then let go of what they held.
    const addr = (map as BpfArray).elemAddr(i, map.kernel.cpu);
    copyMapValue(map, map.kernel.mem.bytes(addr, map.value_size), value);
    mapFreeFields(map, addr);
  },
  /** bpf_percpu_array_copy(). */
  map_sys_lookup_elem(map, key, value) {
    const a = map as BpfArray;
    const i = index(key);
    if (i >= map.max_entries) throw new BpfError(ENOENT, `index ${i} is past max_entries ${map.max_entries}`);
    for (let cpu = 0; cpu < a.ncopies; cpu++) {
      value.set(map.kernel.mem.bytes(a.elemAddr(i, cpu), a.elem_size), cpu * a.elem_size);
    }
  },
  /** bpf_percpu_array_update(): flags above BPF_EXIST (BPF_F_LOCK too) are EINVAL. */
  map_update_elem_sys(map, key, value, flags) {
    const a = map as BpfArray;
    if (flags > BPF_EXIST) throw new BpfError(EINVAL, `invalid update flags ${flags}`);
    const i = index(key);
    if (i >= map.max_entries) throw new BpfError(E2BIG, `index ${i} is past max_entries ${map.max_entries}`);
    if (flags === BPF_NOEXIST) throw new BpfError(EEXIST, `array element ${i} always exists`);
    for (let cpu = 0; cpu < a.ncopies; cpu++) copyLong(a, a.elemAddr(i, cpu), value.subarray(cpu * a.elem_size));
    return 0;
  },
  map_mem_usage(map) {
    const a = map as BpfArray;
    return SIZEOF_BPF_ARRAY + map.max_entries * 8 + map.max_entries * a.elem_size * a.ncopies;
  },
};
