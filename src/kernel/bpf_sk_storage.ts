import { BpfError, EINVAL, ENOTSUPP } from "../uapi/errno.js";
import { BpfMap, type BpfMapOps } from "./bpf.js";
import {
  type LocalStorageOwner,
  localStorageDelete,
  localStorageMapAllocCheck,
  localStorageMapCheckBtf,
  localStorageMapFree,
  localStorageUpdate,
  SIZEOF_LOCAL_STORAGE_ELEM,
} from "./bpf_local_storage.js";
import { bpf_map_meta_equal } from "./map_in_map.js";
import type { Process } from "./process.js";
import { type Sock, sockfd_lookup } from "./sock.js";

/** sizeof(struct bpf_local_storage_map) plus its 16 buckets (one per CPU, rounded). */
const SIZEOF_SMAP = 64 + 16 * 16;

export class BpfLocalStorageMap extends BpfMap {
  /** Sockets that have a value in this map (the map's element list). */
  readonly owners = new Set<Sock>();
}

export function bpf_local_storage_lookup(sk: Sock, map: BpfMap): number {
  return sk.sk_bpf_storage.get(map)?.addr ?? 0;
}

const SK: LocalStorageOwner<Sock> = {
  what: "sk_storage",
  storage: (sk) => sk.sk_bpf_storage,
  who: () => "socket",
};

/** bpf_local_storage_update(): NOEXIST/EXIST as for hash maps; value == null zero-fills. */
export function bpf_local_storage_update(sk: Sock, map: BpfMap, value: Uint8Array | null, flags: number): number {
  return localStorageUpdate(SK, (map as BpfLocalStorageMap).owners, sk, map, value, flags);
}

export function bpf_sk_storage_del(sk: Sock, map: BpfMap): void {
  localStorageDelete(SK, (map as BpfLocalStorageMap).owners, sk, map);
}

function sockOfKey(proc: Process, key: Uint8Array): Sock {
  const fd = new DataView(key.buffer, key.byteOffset, 4).getInt32(0, true);
  return sockfd_lookup(proc, fd);
}

export const sk_storage_map_ops: BpfMapOps = {
  map_meta_equal: bpf_map_meta_equal,
  map_btf_name: "bpf_local_storage_map",
  map_alloc_check(attr) {
    localStorageMapAllocCheck(attr, SK.what);
  },
  map_alloc(attr, k) {
    return new BpfLocalStorageMap(k, sk_storage_map_ops, attr);
  },
  map_free(map) {
    localStorageMapFree(SK, (map as BpfLocalStorageMap).owners, map);
  },
  map_check_btf(_map, btf, keyTypeId) {
    localStorageMapCheckBtf(btf, keyTypeId, SK.what);
  },
  map_lookup_elem() {
    // Programs use bpf_sk_storage_get(); the verifier refuses a direct lookup.
    throw new BpfError(EINVAL, "sk_storage maps are looked up with bpf_sk_storage_get");
  },
  map_lookup_elem_sys_only(map, key, proc) {
    return bpf_local_storage_lookup(sockOfKey(proc, key), map);
  },
  map_update_elem() {
    throw new BpfError(EINVAL, "sk_storage maps are updated with bpf_sk_storage_get");
  },
  map_update_elem_sys(map, key, value, flags, proc) {
    bpf_local_storage_update(sockOfKey(proc, key), map, value, flags);
    return 0;
  },
  map_delete_elem() {
    throw new BpfError(EINVAL, "sk_storage maps are deleted with bpf_sk_storage_delete");
  },
  map_delete_elem_sys(map, key, proc) {
    bpf_sk_storage_del(sockOfKey(proc, key), map);
  },
  map_get_next_key() {
    throw new BpfError(ENOTSUPP, "sk_storage maps cannot be iterated by key");
  },
  map_mem_usage(map) {
    return SIZEOF_SMAP + (map as BpfLocalStorageMap).owners.size * (SIZEOF_LOCAL_STORAGE_ELEM + map.value_size);
  },
};
