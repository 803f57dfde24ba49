import { BpfError, EINVAL } from "../uapi/errno.js";
import type { BpfMap, BpfMapOps } from "./bpf.js";
import {
  type BpfLocalStorageMap,
  type LocalStorageOwner,
  localStorageDelete,
  localStorageMapOps,
  localStorageUpdate,
  SIZEOF_LOCAL_STORAGE_ELEM,
} from "./bpf_local_storage.js";
import type { Process } from "./process.js";
import { type Sock, sockfd_lookup } from "./sock.js";

/** sizeof(struct bpf_local_storage_map) plus its 16 buckets (one per CPU, rounded). */
const SIZEOF_SMAP = 64 + 16 * 16;

type BpfSkStorageMap = BpfLocalStorageMap<Sock>;

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
  return localStorageUpdate(SK, (map as BpfSkStorageMap).owners, sk, map, value, flags);
}

export function bpf_sk_storage_del(sk: Sock, map: BpfMap): void {
  localStorageDelete(SK, (map as BpfSkStorageMap).owners, sk, map);
}

function sockOfKey(proc: Process, key: Uint8Array): Sock {
  const fd = new DataView(key.buffer, key.byteOffset, 4).getInt32(0, true);
  return sockfd_lookup(proc, fd);
}

export const sk_storage_map_ops: BpfMapOps = localStorageMapOps(SK, {
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
  map_mem_usage(map) {
    return SIZEOF_SMAP + (map as BpfSkStorageMap).owners.size * (SIZEOF_LOCAL_STORAGE_ELEM + map.value_size);
  },
});
