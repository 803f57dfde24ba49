/**
 * BPF_MAP_TYPE_HASH (kernel/bpf/hashtab.c). Each element's value is its own VM region; a deleted
 * or replaced element is freed after an RCU grace period, since programs may still hold its
 * address. Iteration order is insertion order (the kernel's is bucket order: also stable).
 */
import {
  BPF_EXIST,
  BPF_F_LOCK,
  BPF_F_NO_COMMON_LRU,
  BPF_F_NO_PREALLOC,
  BPF_F_NUMA_NODE,
  BPF_F_ZERO_SEED,
  BPF_NOEXIST,
} from "../uapi/bpf.js";
import { BpfError, E2BIG, EEXIST, EINVAL, ENOENT, EPERM } from "../uapi/errno.js";
import { BPF_F_ACCESS_MASK, BpfMap, type BpfMapOps, bpf_map_flags_access_ok, type MemRegion } from "./bpf.js";
import type { MapCreateAttr } from "./bpf_attr.js";
import { num } from "./bpf_attr.js";
import { CAP_SYS_ADMIN } from "./capability.js";
import type { Kernel } from "./kernel.js";

const HTAB_CREATE_FLAG_MASK =
  BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK | BPF_F_ZERO_SEED;
/** KMALLOC_MAX_SIZE on x86-64 (SLUB): 4 MiB. */
const KMALLOC_MAX_SIZE = 1 << 22;
/** Sizes on x86-64 (6.x): struct bpf_htab, struct bucket, struct htab_elem, struct llist_node. */
const SIZEOF_BPF_HTAB = 832;
const SIZEOF_BUCKET = 16;
const SIZEOF_HTAB_ELEM = 48;
const LLIST_NODE_SZ = 8;
const HASHTAB_MAP_LOCK_COUNT = 8;

interface HtabElem {
  key: Uint8Array;
  value: MemRegion;
}

function roundupPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export class BpfHtab extends BpfMap {
  readonly elems = new Map<string, HtabElem>();
  readonly prealloc: boolean;
  readonly n_buckets: number;
  readonly elem_size: number;

  constructor(k: Kernel, ops: BpfMapOps, attr: MapCreateAttr) {
    super(k, ops, attr);
    this.prealloc = !(this.map_flags & BPF_F_NO_PREALLOC);
    this.n_buckets = roundupPow2(this.max_entries);
    this.elem_size = SIZEOF_HTAB_ELEM + Math.ceil(this.key_size / 8) * 8 + Math.ceil(this.value_size / 8) * 8;
    this.free_after_rcu_gp = false;
  }
}

function keyStr(key: Uint8Array): string {
  return Buffer.from(key).toString("hex");
}

function freeElem(map: BpfMap, e: HtabElem): void {
  // A program may still be using the old value: free it once pre-existing readers are done.
  map.kernel.rcu.callRcu(() => map.kernel.mem.free(e.value));
}

export const htab_map_ops: BpfMapOps = {
  map_btf_name: "bpf_htab",
  map_batch: { lookup: true, lookup_and_delete: true, update: true, delete: true },
  map_alloc_check(attr, k) {
    const flags = num(attr.map_flags);
    if (flags & BPF_F_ZERO_SEED && !k.current?.capable(CAP_SYS_ADMIN)) {
      throw new BpfError(EPERM, "BPF_F_ZERO_SEED needs CAP_SYS_ADMIN");
    }
    if (flags & ~HTAB_CREATE_FLAG_MASK || !bpf_map_flags_access_ok(flags)) {
      throw new BpfError(EINVAL, `hash map: unknown map_flags 0x${flags.toString(16)}`);
    }
    if (flags & BPF_F_NO_COMMON_LRU) throw new BpfError(EINVAL, "BPF_F_NO_COMMON_LRU is for LRU maps");
    if (num(attr.max_entries) === 0 || num(attr.key_size) === 0 || num(attr.value_size) === 0) {
      throw new BpfError(EINVAL, "hash map: max_entries, key_size and value_size must be non-zero");
    }
    if (num(attr.key_size) + num(attr.value_size) >= KMALLOC_MAX_SIZE - SIZEOF_HTAB_ELEM) {
      throw new BpfError(E2BIG, "hash map: key_size + value_size too large");
    }
  },
  map_alloc(attr, k) {
    return new BpfHtab(k, htab_map_ops, attr);
  },
  map_free(map) {
    for (const e of (map as BpfHtab).elems.values()) map.kernel.mem.free(e.value);
    (map as BpfHtab).elems.clear();
  },
  map_lookup_elem(map, key) {
    return (map as BpfHtab).elems.get(keyStr(key))?.value.addr ?? 0;
  },
  map_update_elem(map, key, value, flags) {
    const h = map as BpfHtab;
    if ((flags & ~BPF_F_LOCK) > BPF_EXIST) throw new BpfError(EINVAL, `invalid update flags ${flags}`);
    const ks = keyStr(key);
    const old = h.elems.get(ks);
    if (old && flags & BPF_NOEXIST) throw new BpfError(EEXIST, "element exists (BPF_NOEXIST)");
    if (!old && flags & BPF_EXIST) throw new BpfError(ENOENT, "no such element (BPF_EXIST)");
    if (!old && h.elems.size >= h.max_entries) throw new BpfError(E2BIG, `map ${h.name} is full (${h.max_entries})`);
    const region = h.kernel.mem.alloc(h.value_size, {
      perm: h.rdonlyProg ? "r" : "rw",
      kind: "map_value",
      name: "htab value",
    });
    h.kernel.mem.bytes(region.addr, h.value_size).set(value.subarray(0, h.value_size));
    // Replacement is a new element (readers of the old one keep a valid pointer until the grace period).
    h.elems.delete(ks);
    h.elems.set(ks, { key: key.slice(), value: region });
    if (old) freeElem(h, old);
  },
  map_delete_elem(map, key) {
    const h = map as BpfHtab;
    const ks = keyStr(key);
    const e = h.elems.get(ks);
    if (!e) throw new BpfError(ENOENT, "no such element");
    h.elems.delete(ks);
    freeElem(h, e);
  },
  map_lookup_and_delete_elem(map, key, value) {
    const h = map as BpfHtab;
    const ks = keyStr(key);
    const e = h.elems.get(ks);
    if (!e) throw new BpfError(ENOENT, "no such element");
    value.set(h.kernel.mem.bytes(e.value.addr, h.value_size));
    h.elems.delete(ks);
    freeElem(h, e);
  },
  map_get_next_key(map, key) {
    const h = map as BpfHtab;
    const keys = [...h.elems.values()];
    if (keys.length === 0) throw new BpfError(ENOENT, "map is empty");
    if (!key) return keys[0].key.slice();
    const ks = keyStr(key);
    const i = keys.findIndex((e) => keyStr(e.key) === ks);
    // A key that is not there restarts from the first element, as the kernel does.
    if (i < 0) return keys[0].key.slice();
    if (i === keys.length - 1) throw new BpfError(ENOENT, "last element");
    return keys[i + 1].key.slice();
  },
  map_memory_cost(map) {
    // v5.8 htab_map_alloc: buckets plus every element, preallocated or not.
    const h = map as BpfHtab;
    return h.n_buckets * SIZEOF_BUCKET + h.elem_size * h.max_entries;
  },
  map_mem_usage(map) {
    const h = map as BpfHtab;
    const ncpu = h.kernel.nrCpus;
    let usage = SIZEOF_BPF_HTAB + SIZEOF_BUCKET * h.n_buckets + 4 * ncpu * HASHTAB_MAP_LOCK_COUNT;
    if (h.prealloc) usage += h.elem_size * (h.max_entries + ncpu) + 8 * ncpu;
    else usage += (h.elem_size + LLIST_NODE_SZ) * h.elems.size;
    return usage;
  },
};
