/**
 * What socket, task and cgroup storage share (kernel/bpf/bpf_local_storage.c): the map's create
 * and BTF checks, update/delete of an owner's value, and the elements themselves (bpf_selem_alloc,
 * bpf_selem_free): a value is allocated zeroed and filled around its special fields
 * (copy_map_value), and when it goes (deleted, replaced by an update, its map freed, its owner
 * gone) bpf_obj_free_fields releases what those fields hold: kptrs, allocated objects, per-CPU
 * objects.
 */
import type { Btf } from "../btf/btf.js";
import { btfTypeIdSize } from "../btf/resolve.js";
import { BPF_EXIST, BPF_F_CLONE, BPF_F_LOCK, BPF_F_NO_PREALLOC, BPF_NOEXIST, bpf_map_type } from "../uapi/bpf.js";
import { BTF_KIND_INT } from "../uapi/btf.js";
import { BpfError, E2BIG, EEXIST, EINVAL, ENOENT, ENOTSUPP } from "../uapi/errno.js";
import { BpfMap, type BpfMapOps, type MemRegion } from "./bpf.js";
import { type MapCreateAttr, num } from "./bpf_attr.js";
import { copyMapValue, mapFreeFields } from "./bpf_graph.js";
import { bpf_map_meta_equal } from "./map_in_map.js";

const BPF_LOCAL_STORAGE_CREATE_FLAG_MASK = BPF_F_NO_PREALLOC | BPF_F_CLONE;
/** sizeof(struct bpf_local_storage_elem) on x86-64 (6.x). */
export const SIZEOF_LOCAL_STORAGE_ELEM = 96;
/** BPF_LOCAL_STORAGE_MAX_VALUE_SIZE: bounded by the u16 size field of the element. */
export const BPF_LOCAL_STORAGE_MAX_VALUE_SIZE = 0xffff - SIZEOF_LOCAL_STORAGE_ELEM;

/** sizeof(struct bpf_local_storage_map) on x86-64 (6.18), from the host's fdinfo memlock. */
const SIZEOF_SMAP = 480;
/** sizeof(struct bpf_local_storage_map_bucket). */
const SIZEOF_SMAP_BUCKET = 16;

/** An owner's values, one per map: sk->sk_bpf_storage, task->bpf_storage, cgroup->bpf_cgrp_storage. */
export type LocalStorage = Map<BpfMap, MemRegion>;

/**
 * One kind of owner (socket, task, cgroup): `what` names the map kind in messages ("sk_storage"),
 * `who` the owner ("socket", "task 7").
 */
export interface LocalStorageOwner<O> {
  readonly what: string;
  storage(o: O): LocalStorage;
  who(o: O): string;
}

/** bpf_selem_alloc: a zeroed value, `value` (if any) copied in around the special fields. */
export function bpfSelemAlloc(map: BpfMap, value: Uint8Array | null, name: string): MemRegion {
  const k = map.kernel;
  const region = k.mem.alloc(map.value_size, { perm: "rw", kind: "map_value", name });
  if (value) copyMapValue(map, k.mem.bytes(region.addr, map.value_size), value.subarray(0, map.value_size));
  return region;
}

/**
 * bpf_selem_free: the value's memory goes after an RCU grace period. Task and cgroup storage live in
 * bpf_mem_alloc memory, whose fields are freed in that RCU callback unless the element may be
 * reused now (its map or owner going: `reuseNow`); other storage frees its fields at once.
 */
export function bpfSelemFree(map: BpfMap, region: MemRegion, reuseNow: boolean): void {
  const k = map.kernel;
  const deferFields =
    (map.map_type === bpf_map_type.BPF_MAP_TYPE_TASK_STORAGE ||
      map.map_type === bpf_map_type.BPF_MAP_TYPE_CGRP_STORAGE) &&
    !reuseNow;
  if (!deferFields) mapFreeFields(map, region.addr);
  k.rcu.callRcu(() => {
    if (deferFields) mapFreeFields(map, region.addr);
    k.mem.free(region);
  });
}

/** bpf_local_storage_update(): NOEXIST/EXIST as for hash maps; value == null zero-fills. */
export function localStorageUpdate<O>(
  kind: LocalStorageOwner<O>,
  owners: Set<O>,
  o: O,
  map: BpfMap,
  value: Uint8Array | null,
  flags: number,
): number {
  if ((flags & ~BPF_F_LOCK) > BPF_EXIST || flags & BPF_F_LOCK) {
    throw new BpfError(EINVAL, `invalid ${kind.what} update flags ${flags}`);
  }
  const storage = kind.storage(o);
  const old = storage.get(map);
  if (old && flags & BPF_NOEXIST) throw new BpfError(EEXIST, `${kind.who(o)} already has storage in this map`);
  if (!old && flags & BPF_EXIST) throw new BpfError(ENOENT, `${kind.who(o)} has no storage in this map`);
  // An update is a new element; the one it replaces goes with what its fields hold.
  const region = bpfSelemAlloc(map, value, kind.what);
  storage.set(map, region);
  owners.add(o);
  if (old) bpfSelemFree(map, old, false);
  return region.addr;
}

/** The owner's value in `map` goes (freed after RCU); ENOENT when it has none. */
export function localStorageDelete<O>(kind: LocalStorageOwner<O>, owners: Set<O>, o: O, map: BpfMap): void {
  const storage = kind.storage(o);
  const region = storage.get(map);
  if (!region) throw new BpfError(ENOENT, `${kind.who(o)} has no storage in this map`);
  storage.delete(map);
  owners.delete(o);
  bpfSelemFree(map, region, false);
}

/** bpf_local_storage_map_free: every owner loses its value in this map. */
export function localStorageMapFree<O>(kind: LocalStorageOwner<O>, owners: Set<O>, map: BpfMap): void {
  for (const o of owners) {
    const storage = kind.storage(o);
    const region = storage.get(map);
    storage.delete(map);
    if (region) bpfSelemFree(map, region, true);
  }
  owners.clear();
}

/** bpf_local_storage_map_alloc_check. */
export function localStorageMapAllocCheck(attr: MapCreateAttr, what: string): void {
  const flags = num(attr.map_flags);
  if (
    flags & ~BPF_LOCAL_STORAGE_CREATE_FLAG_MASK ||
    !(flags & BPF_F_NO_PREALLOC) ||
    num(attr.max_entries) ||
    num(attr.key_size) !== 4 ||
    !num(attr.value_size) ||
    // BTF is required so that userspace can dump the storage.
    !num(attr.btf_key_type_id) ||
    !num(attr.btf_value_type_id)
  ) {
    throw new BpfError(
      EINVAL,
      `${what} map: BPF_F_NO_PREALLOC, max_entries 0, key_size 4, value_size > 0 and BTF key/value ids are required`,
    );
  }
  if (num(attr.value_size) > BPF_LOCAL_STORAGE_MAX_VALUE_SIZE) {
    throw new BpfError(E2BIG, `${what} value_size over ${BPF_LOCAL_STORAGE_MAX_VALUE_SIZE}`);
  }
}

/** bpf_local_storage_map_check_btf: btf_type_is_i32() of the key type as btf_type_id_size() resolved it. */
export function localStorageMapCheckBtf(btf: Btf, keyTypeId: number, what: string): void {
  const t = btfTypeIdSize(btf, keyTypeId)?.type;
  if (!t || t.kind !== BTF_KIND_INT || (t as { size?: number }).size !== 4) {
    throw new BpfError(EINVAL, `${what} key type must be a 4-byte int`);
  }
}

/** A local storage map: the owners that have a value in it (the map's element list). */
export class BpfLocalStorageMap<O> extends BpfMap {
  readonly owners = new Set<O>();
}

/** The ops every local storage map answers the same way (each kind's file gives the rest). */
type CommonOps =
  | "map_meta_equal"
  | "map_btf_name"
  | "map_alloc_check"
  | "map_alloc"
  | "map_free"
  | "map_check_btf"
  | "map_get_next_key"
  | "map_mem_usage";

/**
 * A local storage map type's ops: create and BTF checks, the map freeing every owner's value, no
 * key iteration, bpf_local_storage_map_mem_usage (the map and max(2, roundup_pow_of_two(ncpu))
 * buckets; values not counted) unless the kind gives its own, and the kind's element ops.
 */
export function localStorageMapOps<O>(
  kind: LocalStorageOwner<O>,
  own: Omit<BpfMapOps, CommonOps> & Partial<Pick<BpfMapOps, "map_mem_usage">>,
): BpfMapOps {
  const ops: BpfMapOps = {
    map_meta_equal: bpf_map_meta_equal,
    map_btf_name: "bpf_local_storage_map",
    map_alloc_check(attr) {
      localStorageMapAllocCheck(attr, kind.what);
    },
    map_alloc(attr, k) {
      return new BpfLocalStorageMap<O>(k, ops, attr);
    },
    map_free(map) {
      localStorageMapFree(kind, (map as BpfLocalStorageMap<O>).owners, map);
    },
    map_check_btf(_map, btf, keyTypeId) {
      localStorageMapCheckBtf(btf, keyTypeId, kind.what);
    },
    map_get_next_key() {
      throw new BpfError(ENOTSUPP, `${kind.what} maps cannot be iterated by key`);
    },
    map_mem_usage(map) {
      let n = 1;
      while (n < map.kernel.nrCpus) n *= 2;
      return SIZEOF_SMAP + SIZEOF_SMAP_BUCKET * Math.max(2, n);
    },
    ...own,
  };
  return ops;
}
