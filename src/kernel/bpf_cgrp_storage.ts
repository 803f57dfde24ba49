import { BPF_LOCAL_STORAGE_GET_F_CREATE, BPF_NOEXIST, bpf_map_type, bpf_func_id as F } from "../uapi/bpf.js";
import { BpfError, EINVAL } from "../uapi/errno.js";
import type { BpfMap, BpfMapOps } from "./bpf.js";
import {
  type BpfLocalStorageMap,
  bpfSelemFree,
  type LocalStorageOwner,
  localStorageDelete,
  localStorageMapOps,
  localStorageUpdate,
} from "./bpf_local_storage.js";
import { type Cgroup, cgroup_get_from_fd, cgroup_put, cgroupRoot } from "./cgroup.js";
import type { Kernel } from "./kernel.js";
import type { Process } from "./process.js";

type BpfCgrpStorageMap = BpfLocalStorageMap<Cgroup>;

/** cgroup_storage_lookup(): the value's address, 0 when the cgroup has none here. */
export function cgrp_storage_lookup(cg: Cgroup, map: BpfMap): number {
  return cg.bpf_cgrp_storage.get(map)?.addr ?? 0;
}

const CGRP: LocalStorageOwner<Cgroup> = {
  what: "cgrp_storage",
  storage: (cg) => cg.bpf_cgrp_storage,
  who: (cg) => `cgroup ${cg.path}`,
};

/** bpf_local_storage_update() for a cgroup: NOEXIST/EXIST as for hash maps; value == null zero-fills. */
export function cgrp_storage_update(cg: Cgroup, map: BpfMap, value: Uint8Array | null, flags: number): number {
  return localStorageUpdate(CGRP, (map as BpfCgrpStorageMap).owners, cg, map, value, flags);
}

/** cgroup_storage_delete(): ENOENT when the cgroup has no value here. */
export function cgrp_storage_delete(cg: Cgroup, map: BpfMap): void {
  localStorageDelete(CGRP, (map as BpfCgrpStorageMap).owners, cg, map);
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

export const cgrp_storage_map_ops: BpfMapOps = localStorageMapOps(CGRP, {
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
});

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
