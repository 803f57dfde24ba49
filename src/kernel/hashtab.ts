/**
 * BPF_MAP_TYPE_HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH (kernel/bpf/hashtab.c). Each
 * element's value is its own VM region: a deleted or replaced element of a plain hash is freed
 * after an RCU grace period, since programs may still hold its address. LRU maps preallocate
 * their elements and evict through kernel/bpf/bpf_lru_list.c (src/kernel/bpf_lru.ts); per-CPU
 * values hold num_possible_cpus() copies, updated in place. Iteration order is insertion order
 * (the kernel's is bucket order: also stable).
 */
import {
  BPF_EXIST,
  BPF_F_LOCK,
  BPF_F_NO_COMMON_LRU,
  BPF_F_NO_PREALLOC,
  BPF_F_NUMA_NODE,
  BPF_F_ZERO_SEED,
  BPF_NOEXIST,
  bpf_map_type,
} from "../uapi/bpf.js";
import { BpfError, E2BIG, EEXIST, EINVAL, ENOENT, ENOMEM, ENOTSUPP, EPERM } from "../uapi/errno.js";
import { PCPU_MIN_UNIT_SIZE } from "./arraymap.js";
import { BPF_F_ACCESS_MASK, BpfMap, type BpfMapOps, bpf_map_flags_access_ok, type MemRegion } from "./bpf.js";
import type { MapCreateAttr } from "./bpf_attr.js";
import { num } from "./bpf_attr.js";
import { copyMapValue, mapFreeFields } from "./bpf_graph.js";
import { BpfLru, type BpfLruNode, BpfLruNode as LruNode } from "./bpf_lru.js";
import { bpf_map_free_timers_wq } from "./bpf_wq.js";
import { CAP_SYS_ADMIN } from "./capability.js";
import type { Kernel } from "./kernel.js";

import { bpf_map_meta_equal } from "./map_in_map.js";

const T = bpf_map_type;
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
  /** The value; num_possible_cpus() copies of round_up(value_size, 8) bytes for a per-CPU map. */
  value: MemRegion;
  /** The element's LRU node (LRU maps: elements are preallocated and reused). */
  node?: BpfLruNode<HtabElem>;
}

function roundupPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

const roundUp8 = (n: number): number => Math.ceil(n / 8) * 8;

export class BpfHtab extends BpfMap {
  readonly elems = new Map<string, HtabElem>();
  readonly prealloc: boolean;
  readonly percpu: boolean;
  readonly n_buckets: number;
  readonly elem_size: number;
  /** round_up(value_size, 8): the stride of per-CPU copies. */
  readonly pcpu_size: number;
  readonly lru: BpfLru<HtabElem> | null = null;
  /** LRU maps: every preallocated element, in the table or free. */
  readonly lruNodes: BpfLruNode<HtabElem>[];

  constructor(k: Kernel, ops: BpfMapOps, attr: MapCreateAttr) {
    super(k, ops, attr);
    const type = this.map_type;
    this.percpu = type === T.BPF_MAP_TYPE_PERCPU_HASH || type === T.BPF_MAP_TYPE_LRU_PERCPU_HASH;
    const isLru = type === T.BPF_MAP_TYPE_LRU_HASH || type === T.BPF_MAP_TYPE_LRU_PERCPU_HASH;
    this.prealloc = !(this.map_flags & BPF_F_NO_PREALLOC);
    if (this.map_flags & BPF_F_NO_COMMON_LRU) {
      // Each CPU's LRU gets the same number (at least one) of elements.
      const n = k.nrCpus;
      let m = Math.ceil(this.max_entries / n) * n;
      if (m < this.max_entries || m > 0xffffffff) m = Math.floor(this.max_entries / n) * n;
      this.max_entries = m;
    }
    if (this.max_entries > 2 ** 31) throw new BpfError(E2BIG, `max_entries ${this.max_entries} over 2^31`);
    this.n_buckets = roundupPow2(this.max_entries);
    this.pcpu_size = roundUp8(this.value_size);
    this.elem_size = SIZEOF_HTAB_ELEM + roundUp8(this.key_size) + (this.percpu ? 8 : this.pcpu_size);
    this.free_after_rcu_gp = false;
    this.lruNodes = [];
    if (isLru) {
      const lru = new BpfLru<HtabElem>((this.map_flags & BPF_F_NO_COMMON_LRU) !== 0, k.nrCpus, (n) =>
        this.lruDeleteNode(n),
      );
      const nodes: BpfLruNode<HtabElem>[] = [];
      for (let i = 0; i < this.max_entries; i++)
        nodes.push(new LruNode<HtabElem>({ key: new Uint8Array(0), value: NO_REGION }));
      for (const n of nodes) n.elem.node = n;
      lru.populate(nodes);
      this.lruNodes.push(...nodes);
      this.lru = lru;
    }
  }

  /** Bytes of one element's value region. */
  get valueBytes(): number {
    return this.percpu ? this.pcpu_size * this.kernel.nrCpus : this.value_size;
  }

  /** htab_lru_map_delete_node(): the LRU evicts this node's element from the table. */
  private lruDeleteNode(node: BpfLruNode<HtabElem>): boolean {
    const ks = keyStr(node.elem.key);
    if (this.elems.get(ks) !== node.elem) return false;
    this.elems.delete(ks);
    // The evicted element's timers and lists go before its node is reused (check_and_free_fields).
    checkAndFreeFields(this, node.elem);
    return true;
  }

  /** this CPU's copy (this_cpu_ptr) or the value. */
  valueAddr(e: HtabElem, cpu: number): number {
    return this.percpu ? e.value.addr + cpu * this.pcpu_size : e.value.addr;
  }
}

const NO_REGION: MemRegion = { addr: 0, size: 0 };

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** The key's bytes in hex: the element table's key. */
function keyStr(key: Uint8Array): string {
  let s = "";
  for (let i = 0; i < key.length; i++) s += HEX[key[i]!];
  return s;
}

function allocValue(h: BpfHtab): MemRegion {
  return h.kernel.mem.alloc(h.valueBytes, {
    perm: h.rdonlyProg ? "r" : "rw",
    kind: "map_value",
    name: h.percpu ? "percpu htab value" : "htab value",
  });
}

/** check_and_free_fields: what the value holds (every CPU's copy of a per-CPU one) goes now. */
function checkAndFreeFields(h: BpfHtab, e: HtabElem): void {
  if (e.value === NO_REGION) return;
  if (!h.percpu) mapFreeFields(h, e.value.addr);
  else for (let cpu = 0; cpu < h.kernel.nrCpus; cpu++) mapFreeFields(h, h.valueAddr(e, cpu));
}

function freeElem(h: BpfHtab, e: HtabElem): void {
  checkAndFreeFields(h, e);
  if (e.node) {
    // Preallocated: the node goes back to the LRU, its value region stays with it.
    h.lru!.pushFree(e.node);
    return;
  }
  // A program may still be using the old value: free it once pre-existing readers are done.
  h.kernel.rcu.callRcu(() => h.kernel.mem.free(e.value));
}

/**
 * pcpu_copy_value / pcpu_init_value: from a program (onallcpus false) this CPU's copy gets the
 * value and, for a new element, the other CPUs' are zeroed; from the syscall every CPU's copy
 * gets its round_up(value_size, 8) bytes.
 */
function pcpuCopyValue(h: BpfHtab, e: HtabElem, value: Uint8Array, onallcpus: boolean, init: boolean): void {
  const mem = h.kernel.mem;
  for (let cpu = 0; cpu < h.kernel.nrCpus; cpu++) {
    const at = h.valueAddr(e, cpu);
    const dst = mem.bytes(at, h.pcpu_size);
    // copy_map_value(_long) leaves the special fields alone; bpf_obj_free_fields then empties them.
    if (onallcpus) copyMapValue(h, dst, value.subarray(cpu * h.pcpu_size, (cpu + 1) * h.pcpu_size));
    else if (cpu === h.kernel.cpu) copyMapValue(h, dst.subarray(0, h.value_size), value);
    else {
      if (init) dst.fill(0);
      continue;
    }
    mapFreeFields(h, at);
  }
}

function checkFlags(old: HtabElem | undefined, flags: number): void {
  if (old && (flags & ~BPF_F_LOCK) === BPF_NOEXIST) throw new BpfError(EEXIST, "element exists (BPF_NOEXIST)");
  if (!old && (flags & ~BPF_F_LOCK) === BPF_EXIST) throw new BpfError(ENOENT, "no such element (BPF_EXIST)");
}

/** The LRU gives up a node for a new element (prealloc_lru_pop), evicting if it must. */
function lruPop(h: BpfHtab, key: Uint8Array): HtabElem {
  const node = h.lru!.popFree(h.kernel.cpu);
  if (!node) throw new BpfError(ENOMEM, `LRU map ${h.name} has no element to reuse`);
  const e = node.elem;
  e.key = key.slice();
  if (e.value === NO_REGION) e.value = allocValue(h);
  return e;
}

/** htab_map_update_elem / htab_lru_map_update_elem / __htab_(lru_)percpu_map_update_elem. */
function htabUpdate(h: BpfHtab, key: Uint8Array, value: Uint8Array, flags: number, onallcpus: boolean): void {
  const lock = h.percpu || h.lru ? 0 : BPF_F_LOCK;
  if ((flags & ~lock) > BPF_EXIST) throw new BpfError(EINVAL, `invalid update flags ${flags}`);
  const ks = keyStr(key);
  const old = h.elems.get(ks);
  if (h.lru) {
    // The LRU node is taken before the flags are checked: even a refused update may evict.
    let fresh: HtabElem | null = null;
    if (!h.percpu || flags !== BPF_EXIST) fresh = lruPop(h, key);
    try {
      checkFlags(h.elems.get(ks), flags);
    } catch (e) {
      if (fresh) h.lru.pushFree(fresh.node!);
      throw e;
    }
    const cur = h.elems.get(ks);
    if (h.percpu && cur) {
      BpfLru.setRef(cur.node!);
      pcpuCopyValue(h, cur, value, onallcpus, false);
      if (fresh) h.lru.pushFree(fresh.node!);
      return;
    }
    const e = fresh!;
    if (h.percpu) pcpuCopyValue(h, e, value, onallcpus, true);
    else copyMapValue(h, h.kernel.mem.bytes(e.value.addr, h.value_size), value);
    h.elems.delete(ks);
    h.elems.set(ks, e);
    if (cur) {
      BpfLru.setRef(e.node!);
      // htab_lru_push_free: the replaced element's fields go with it.
      checkAndFreeFields(h, cur);
      h.lru.pushFree(cur.node!);
    }
    return;
  }
  checkFlags(old, flags);
  if (h.percpu && old) {
    // A per-CPU element is updated in place.
    pcpuCopyValue(h, old, value, onallcpus, false);
    return;
  }
  if (!old && h.elems.size >= h.max_entries) throw new BpfError(E2BIG, `map ${h.name} is full (${h.max_entries})`);
  const e: HtabElem = { key: key.slice(), value: allocValue(h) };
  if (h.percpu) pcpuCopyValue(h, e, value, onallcpus, true);
  else copyMapValue(h, h.kernel.mem.bytes(e.value.addr, h.value_size), value);
  // Replacement is a new element (readers of the old one keep a valid pointer until the grace period).
  h.elems.delete(ks);
  h.elems.set(ks, e);
  if (old) freeElem(h, old);
}

function htabDelete(h: BpfHtab, key: Uint8Array): HtabElem {
  const ks = keyStr(key);
  const e = h.elems.get(ks);
  if (!e) throw new BpfError(ENOENT, "no such element");
  h.elems.delete(ks);
  return e;
}

/** Copy out a value as the syscall sees it: every CPU's copy for a per-CPU map. */
function copyOut(h: BpfHtab, e: HtabElem, out: Uint8Array): void {
  out.set(h.kernel.mem.bytes(e.value.addr, h.percpu ? h.valueBytes : h.value_size));
}

export const htab_map_ops: BpfMapOps = {
  map_meta_equal: bpf_map_meta_equal,
  // htab_map_free_timers_and_wq: timers go with the last user reference.
  map_release_uref: bpf_map_free_timers_wq,
  map_btf_name: "bpf_htab",
  map_batch: { lookup: true, lookup_and_delete: true, update: true, delete: true },
  map_alloc_check(attr, k) {
    const type = num(attr.map_type);
    const flags = num(attr.map_flags);
    const percpu = type === T.BPF_MAP_TYPE_PERCPU_HASH || type === T.BPF_MAP_TYPE_LRU_PERCPU_HASH;
    const lru = type === T.BPF_MAP_TYPE_LRU_HASH || type === T.BPF_MAP_TYPE_LRU_PERCPU_HASH;
    const percpuLru = (flags & BPF_F_NO_COMMON_LRU) !== 0;
    if (flags & BPF_F_ZERO_SEED && !k.current?.capable(CAP_SYS_ADMIN)) {
      throw new BpfError(EPERM, "BPF_F_ZERO_SEED needs CAP_SYS_ADMIN");
    }
    if (flags & ~HTAB_CREATE_FLAG_MASK || !bpf_map_flags_access_ok(flags)) {
      throw new BpfError(EINVAL, `hash map: unknown map_flags 0x${flags.toString(16)}`);
    }
    if (!lru && percpuLru) throw new BpfError(EINVAL, "BPF_F_NO_COMMON_LRU is for LRU maps");
    if (lru && flags & BPF_F_NO_PREALLOC) throw new BpfError(ENOTSUPP, "LRU maps are always preallocated");
    if (flags & BPF_F_NUMA_NODE && (percpu || percpuLru)) {
      throw new BpfError(EINVAL, "per-CPU hash maps and per-CPU LRUs cannot be placed on a NUMA node");
    }
    if (num(attr.max_entries) === 0 || num(attr.key_size) === 0 || num(attr.value_size) === 0) {
      throw new BpfError(EINVAL, "hash map: max_entries, key_size and value_size must be non-zero");
    }
    if (num(attr.key_size) + num(attr.value_size) >= KMALLOC_MAX_SIZE - SIZEOF_HTAB_ELEM) {
      throw new BpfError(E2BIG, "hash map: key_size + value_size too large");
    }
    if (percpu && roundUp8(num(attr.value_size)) > PCPU_MIN_UNIT_SIZE) {
      throw new BpfError(E2BIG, `per-CPU value_size over PCPU_MIN_UNIT_SIZE (${PCPU_MIN_UNIT_SIZE})`);
    }
  },
  map_alloc(attr, k) {
    const type = num(attr.map_type);
    const ops =
      type === T.BPF_MAP_TYPE_PERCPU_HASH || type === T.BPF_MAP_TYPE_LRU_PERCPU_HASH
        ? htab_percpu_map_ops
        : type === T.BPF_MAP_TYPE_LRU_HASH
          ? htab_lru_map_ops
          : htab_map_ops;
    return new BpfHtab(k, ops, attr);
  },
  map_free(map) {
    const h = map as BpfHtab;
    if (h.lru) {
      // Preallocated (htab_free_prealloc_fields, prealloc_destroy): every element's fields and
      // region, in the table or not.
      for (const n of h.lruNodes) {
        if (n.elem.value === NO_REGION) continue;
        checkAndFreeFields(h, n.elem);
        map.kernel.mem.free(n.elem.value);
      }
    } else
      for (const e of h.elems.values()) {
        checkAndFreeFields(h, e);
        map.kernel.mem.free(e.value);
      }
    h.elems.clear();
  },
  map_lookup_elem(map, key) {
    const h = map as BpfHtab;
    const e = h.elems.get(keyStr(key));
    if (!e) return 0;
    // A program's lookup marks an LRU element used (htab_lru_map_lookup_elem).
    if (e.node) BpfLru.setRef(e.node);
    return h.valueAddr(e, map.kernel.cpu);
  },
  map_update_elem(map, key, value, flags) {
    htabUpdate(map as BpfHtab, key, value, flags, false);
  },
  map_delete_elem(map, key) {
    const h = map as BpfHtab;
    freeElem(h, htabDelete(h, key));
  },
  map_lookup_and_delete_elem(map, key, value) {
    const h = map as BpfHtab;
    const e = h.elems.get(keyStr(key));
    if (!e) throw new BpfError(ENOENT, "no such element");
    copyOut(h, e, value);
    htabDelete(h, key);
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
    let cost = h.n_buckets * SIZEOF_BUCKET + h.elem_size * h.max_entries;
    if (h.percpu) cost += h.pcpu_size * h.kernel.nrCpus * h.max_entries;
    return cost;
  },
  map_mem_usage(map) {
    const h = map as BpfHtab;
    const ncpu = h.kernel.nrCpus;
    let usage = SIZEOF_BPF_HTAB + SIZEOF_BUCKET * h.n_buckets + 4 * ncpu * HASHTAB_MAP_LOCK_COUNT;
    if (h.prealloc) {
      let n = h.max_entries;
      // htab_has_extra_elems: a plain hash keeps one spare element per CPU for updates.
      if (!h.percpu && !h.lru) n += ncpu;
      usage += h.elem_size * n;
      if (h.percpu) usage += h.pcpu_size * ncpu * n;
      else if (!h.lru) usage += 8 * ncpu;
    } else {
      const n = h.elems.size;
      usage += (h.elem_size + LLIST_NODE_SZ) * n;
      if (h.percpu) usage += (LLIST_NODE_SZ + 8) * n + h.pcpu_size * ncpu * n;
    }
    return usage;
  },
};

/** LRU_HASH: the syscall's lookup does not mark the element used (htab_lru_map_lookup_elem_sys). */
export const htab_lru_map_ops: BpfMapOps = {
  ...htab_map_ops,
  map_lookup_elem_sys_only(map, key) {
    const h = map as BpfHtab;
    const e = h.elems.get(keyStr(key));
    return e ? h.valueAddr(e, 0) : 0;
  },
};

/** PERCPU_HASH and LRU_PERCPU_HASH: syscall values carry every CPU's copy. */
export const htab_percpu_map_ops: BpfMapOps = {
  ...htab_map_ops,
  map_percpu: true,
  map_lookup_percpu_elem(map, key, cpu) {
    const h = map as BpfHtab;
    if (cpu >= map.kernel.nrCpus) return 0;
    const e = h.elems.get(keyStr(key));
    if (!e) return 0;
    if (e.node) BpfLru.setRef(e.node);
    return h.valueAddr(e, cpu);
  },
  /** bpf_percpu_hash_copy(): no LRU mark, so a user-space walk does not disturb eviction. */
  map_sys_lookup_elem(map, key, value) {
    const h = map as BpfHtab;
    const e = h.elems.get(keyStr(key));
    if (!e) throw new BpfError(ENOENT, `no element with this key in map ${map.name}`);
    copyOut(h, e, value);
  },
  /** bpf_percpu_hash_update(): every CPU's copy from the user's buffer. */
  map_update_elem_sys(map, key, value, flags) {
    const h = map as BpfHtab;
    const tok = h.kernel.rcu.rcuReadLock();
    try {
      htabUpdate(h, key, value, flags, true);
    } finally {
      h.kernel.rcu.rcuReadUnlock(tok);
    }
    return 0;
  },
};
