/**
 * BPF_MAP_TYPE_CGRP_STORAGE (kernel/bpf/bpf_cgrp_storage.c on kernel/bpf/bpf_local_storage.c): a
 * value per (cgroup, map), created on demand. Userspace keys it by the fd of an open cgroup v2
 * directory, programs by `struct cgroup *` through bpf_cgrp_storage_get / bpf_cgrp_storage_delete.
 * A cgroup's values go when the cgroup itself is freed (css_free_rwork_fn), not at rmdir: a cgroup
 * still referenced keeps them, but no new value is created once it is offline.
 */
import { btfTypeIdSize } from "../btf/resolve.js";
import {
  BPF_EXIST,
  BPF_F_CLONE,
  BPF_F_LOCK,
  BPF_F_NO_PREALLOC,
  BPF_LOCAL_STORAGE_GET_F_CREATE,
  BPF_NOEXIST,
  bpf_map_type,
  bpf_func_id as F,
} from "../uapi/bpf.js";
import { BTF_KIND_INT } from "../uapi/btf.js";
import { BpfError, E2BIG, EEXIST, EINVAL, ENOENT, ENOTSUPP } from "../uapi/errno.js";
import { BpfMap, type BpfMapOps } from "./bpf.js";
import { num } from "./bpf_attr.js";
import { bpfSelemAlloc, bpfSelemFree } from "./bpf_local_storage.js";
import { BPF_LOCAL_STORAGE_MAX_VALUE_SIZE } from "./bpf_sk_storage.js";
import { type Cgroup, cgroup_get_from_fd, cgroup_put, cgroupRoot } from "./cgroup.js";
import type { Kernel } from "./kernel.js";
import { bpf_map_meta_equal } from "./map_in_map.js";
import type { Process } from "./process.js";

const BPF_LOCAL_STORAGE_CREATE_FLAG_MASK = BPF_F_NO_PREALLOC | BPF_F_CLONE;
/** sizeof(struct bpf_local_storage_map) on x86-64 (6.18), as for task storage. */
const SIZEOF_SMAP = 480;
/** sizeof(struct bpf_local_storage_map_bucket). */
const SIZEOF_SMAP_BUCKET = 16;

export class BpfCgrpStorageMap extends BpfMap {
  /** Cgroups that have a value in this map (the map's element list). */
  readonly owners = new Set<Cgroup>();
}

/** cgroup_storage_lookup(): the value's address, 0 when the cgroup has none here. */
export function cgrp_storage_lookup(cg: Cgroup, map: BpfMap): number {
  return cg.bpf_cgrp_storage.get(map)?.addr ?? 0;
}

/** bpf_local_storage_update() for a cgroup: NOEXIST/EXIST as for hash maps; value == null zero-fills. */
export function cgrp_storage_update(cg: Cgroup, map: BpfMap, value: Uint8Array | null, flags: number): number {
  if ((flags & ~BPF_F_LOCK) > BPF_EXIST || flags & BPF_F_LOCK) {
    throw new BpfError(EINVAL, `invalid cgrp_storage update flags ${flags}`);
  }
  const old = cg.bpf_cgrp_storage.get(map);
  if (old && flags & BPF_NOEXIST) throw new BpfError(EEXIST, `cgroup ${cg.path} already has storage in this map`);
  if (!old && flags & BPF_EXIST) throw new BpfError(ENOENT, `cgroup ${cg.path} has no storage in this map`);
  const region = bpfSelemAlloc(map, value, "cgrp_storage");
  cg.bpf_cgrp_storage.set(map, region);
  (map as BpfCgrpStorageMap).owners.add(cg);
  if (old) bpfSelemFree(map, old, false);
  return region.addr;
}

/** cgroup_storage_delete(): ENOENT when the cgroup has no value here. */
export function cgrp_storage_delete(cg: Cgroup, map: BpfMap): void {
  const region = cg.bpf_cgrp_storage.get(map);
  if (!region) throw new BpfError(ENOENT, `cgroup ${cg.path} has no storage in this map`);
  cg.bpf_cgrp_storage.delete(map);
  (map as BpfCgrpStorageMap).owners.delete(cg);
  bpfSelemFree(map, region, false);
}

/** bpf_cgrp_storage_free(): the cgroup is being freed; every map loses its value for it. */
export function bpf_cgrp_storage_free(cg: Cgroup): void {
  for (const [map, region] of cg.bpf_cgrp_storage) {
    (map as BpfCgrpStorageMap).owners.delete(cg);
    bpfSelemFree(map, region, true);
  }
  cg.bpf_cgrp_storage.clear();
}

/** The cgroup a key (a cgroup directory fd) names, with a reference the caller puts. */
function withCgroupOfKey<R>(proc: Process, key: Uint8Array, fn: (cg: Cgroup) => R): R {
  const fd = new DataView(key.buffer, key.byteOffset, 4).getInt32(0, true);
  const cg = cgroup_get_from_fd(proc, fd);
  try {
    return fn(cg);
  } finally {
    cgroup_put(cg);
  }
}

export const cgrp_storage_map_ops: BpfMapOps = {
  map_meta_equal: bpf_map_meta_equal,
  map_btf_name: "bpf_local_storage_map",
  map_alloc_check(attr) {
    // bpf_local_storage_map_alloc_check.
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
        "cgrp_storage map: BPF_F_NO_PREALLOC, max_entries 0, key_size 4, value_size > 0 and BTF key/value ids are required",
      );
    }
    if (num(attr.value_size) > BPF_LOCAL_STORAGE_MAX_VALUE_SIZE) {
      throw new BpfError(E2BIG, `cgrp_storage value_size over ${BPF_LOCAL_STORAGE_MAX_VALUE_SIZE}`);
    }
  },
  map_alloc(attr, k) {
    return new BpfCgrpStorageMap(k, cgrp_storage_map_ops, attr);
  },
  map_free(map) {
    // bpf_local_storage_map_free: every cgroup loses its value in this map.
    for (const cg of (map as BpfCgrpStorageMap).owners) {
      const region = cg.bpf_cgrp_storage.get(map);
      cg.bpf_cgrp_storage.delete(map);
      if (region) bpfSelemFree(map, region, true);
    }
    (map as BpfCgrpStorageMap).owners.clear();
  },
  map_check_btf(_map, btf, keyTypeId) {
    // bpf_local_storage_map_check_btf: btf_type_is_i32() of the key type.
    const t = btfTypeIdSize(btf, keyTypeId)?.type;
    if (!t || t.kind !== BTF_KIND_INT || (t as { size?: number }).size !== 4) {
      throw new BpfError(EINVAL, "cgrp_storage key type must be a 4-byte int");
    }
  },
  map_lookup_elem() {
    // Programs use bpf_cgrp_storage_get(); the verifier refuses a direct lookup.
    return 0;
  },
  map_lookup_elem_sys_only(map, key, proc) {
    return withCgroupOfKey(proc, key, (cg) => cgrp_storage_lookup(cg, map));
  },
  map_update_elem() {
    throw new BpfError(EINVAL, "cgrp_storage maps are updated with bpf_cgrp_storage_get");
  },
  map_update_elem_sys(map, key, value, flags, proc) {
    withCgroupOfKey(proc, key, (cg) => cgrp_storage_update(cg, map, value, flags));
    return 0;
  },
  map_delete_elem() {
    throw new BpfError(EINVAL, "cgrp_storage maps are deleted with bpf_cgrp_storage_delete");
  },
  map_delete_elem_sys(map, key, proc) {
    withCgroupOfKey(proc, key, (cg) => cgrp_storage_delete(cg, map));
  },
  map_get_next_key() {
    throw new BpfError(ENOTSUPP, "cgrp_storage maps cannot be iterated by key");
  },
  map_mem_usage(map) {
    // bpf_local_storage_map_mem_usage: the map and its buckets; the values are not counted.
    let n = 1;
    while (n < map.kernel.nrCpus) n *= 2;
    return SIZEOF_SMAP + SIZEOF_SMAP_BUCKET * Math.max(2, n);
  },
};

/**
 * The map type and its two helpers. A NULL cgroup gives NULL / -EINVAL; a value is created only
 * for a cgroup whose reference count is not dying (online, or freed later than now).
 */
export function registerCgrpStorage(k: Kernel): void {
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_CGRP_STORAGE, cgrp_storage_map_ops);
  const cgroupOf = (addr: number): Cgroup | undefined => cgroupByAddr(k, addr);
  k.registerHelper(F.BPF_FUNC_cgrp_storage_get, (c) => {
    const map = k.mapByAddr.get(c.argNum(1));
    const cg = cgroupOf(c.argNum(2));
    const flags = c.arg(4);
    if (!map || !cg || flags & ~BigInt(BPF_LOCAL_STORAGE_GET_F_CREATE)) return 0;
    const addr = cgrp_storage_lookup(cg, map);
    if (addr) return addr;
    if (!cg.online || !flags) return 0;
    const v = c.argNum(3);
    try {
      return cgrp_storage_update(cg, map, v ? k.mem.bytes(v, map.value_size).slice() : null, BPF_NOEXIST);
    } catch {
      return 0;
    }
  });
  k.registerHelper(F.BPF_FUNC_cgrp_storage_delete, (c) => {
    const map = k.mapByAddr.get(c.argNum(1));
    const cg = cgroupOf(c.argNum(2));
    if (!map || !cg) return -EINVAL;
    try {
      cgrp_storage_delete(cg, map);
      return 0;
    } catch (e) {
      if (e instanceof BpfError) return -e.errno;
      throw e;
    }
  });
}

/** The live `struct cgroup` at an address (freed ones are gone from the map). */
function cgroupByAddr(k: Kernel, addr: number): Cgroup | undefined {
  return cgroupRoot(k)?.byAddr.get(addr);
}
