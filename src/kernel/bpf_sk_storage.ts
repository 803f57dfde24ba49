/**
 * BPF_MAP_TYPE_SK_STORAGE (net/core/bpf_sk_storage.c on kernel/bpf/bpf_local_storage.c): a value
 * per (socket, map), created on demand. Userspace keys it by socket fd, programs by `struct sock *`.
 */

import { btfTypeIdSize } from "../btf/resolve.js";
import { BPF_EXIST, BPF_F_CLONE, BPF_F_LOCK, BPF_F_NO_PREALLOC, BPF_NOEXIST } from "../uapi/bpf.js";
import { BTF_KIND_INT } from "../uapi/btf.js";
import { BpfError, E2BIG, EEXIST, EINVAL, ENOENT, ENOTSUPP } from "../uapi/errno.js";
import { BpfMap, type BpfMapOps } from "./bpf.js";
import { num } from "./bpf_attr.js";
import { bpfSelemAlloc, bpfSelemFree } from "./bpf_local_storage.js";
import { bpf_map_meta_equal } from "./map_in_map.js";
import type { Process } from "./process.js";
import { type Sock, sockfd_lookup } from "./sock.js";

const BPF_LOCAL_STORAGE_CREATE_FLAG_MASK = BPF_F_NO_PREALLOC | BPF_F_CLONE;
/** sizeof(struct bpf_local_storage_elem) on x86-64 (6.x). */
const SIZEOF_LOCAL_STORAGE_ELEM = 96;
/** BPF_LOCAL_STORAGE_MAX_VALUE_SIZE: bounded by the u16 size field of the element. */
export const BPF_LOCAL_STORAGE_MAX_VALUE_SIZE = 0xffff - SIZEOF_LOCAL_STORAGE_ELEM;
/** sizeof(struct bpf_local_storage_map) plus its 16 buckets (one per CPU, rounded). */
const SIZEOF_SMAP = 64 + 16 * 16;

export class BpfLocalStorageMap extends BpfMap {
  /** Sockets that have a value in this map (the map's element list). */
  readonly owners = new Set<Sock>();
}

export function bpf_local_storage_lookup(sk: Sock, map: BpfMap): number {
  return sk.sk_bpf_storage.get(map)?.addr ?? 0;
}

/** bpf_local_storage_update(): NOEXIST/EXIST as for hash maps; value == null zero-fills. */
export function bpf_local_storage_update(sk: Sock, map: BpfMap, value: Uint8Array | null, flags: number): number {
  if ((flags & ~BPF_F_LOCK) > BPF_EXIST || flags & BPF_F_LOCK) {
    throw new BpfError(EINVAL, `invalid sk_storage update flags ${flags}`);
  }
  const old = sk.sk_bpf_storage.get(map);
  if (old && flags & BPF_NOEXIST) throw new BpfError(EEXIST, "socket already has storage in this map");
  if (!old && flags & BPF_EXIST) throw new BpfError(ENOENT, "socket has no storage in this map");
  // An update is a new element; the one it replaces goes with what its fields hold.
  const region = bpfSelemAlloc(map, value, "sk_storage");
  sk.sk_bpf_storage.set(map, region);
  (map as BpfLocalStorageMap).owners.add(sk);
  if (old) bpfSelemFree(map, old, false);
  return region.addr;
}

export function bpf_sk_storage_del(sk: Sock, map: BpfMap): void {
  const region = sk.sk_bpf_storage.get(map);
  if (!region) throw new BpfError(ENOENT, "socket has no storage in this map");
  sk.sk_bpf_storage.delete(map);
  (map as BpfLocalStorageMap).owners.delete(sk);
  bpfSelemFree(map, region, false);
}

function sockOfKey(proc: Process, key: Uint8Array): Sock {
  const fd = new DataView(key.buffer, key.byteOffset, 4).getInt32(0, true);
  return sockfd_lookup(proc, fd);
}

export const sk_storage_map_ops: BpfMapOps = {
  map_meta_equal: bpf_map_meta_equal,
  map_btf_name: "bpf_local_storage_map",
  map_alloc_check(attr) {
    const flags = num(attr.map_flags);
    if (
      flags & ~BPF_LOCAL_STORAGE_CREATE_FLAG_MASK ||
      !(flags & BPF_F_NO_PREALLOC) ||
      num(attr.max_entries) ||
      num(attr.key_size) !== 4 ||
      !num(attr.value_size) ||
      // BTF is required so that userspace can dump socket storage.
      !num(attr.btf_key_type_id) ||
      !num(attr.btf_value_type_id)
    ) {
      throw new BpfError(
        EINVAL,
        "sk_storage map: BPF_F_NO_PREALLOC, max_entries 0, key_size 4, value_size > 0 and BTF key/value ids are required",
      );
    }
    if (num(attr.value_size) > BPF_LOCAL_STORAGE_MAX_VALUE_SIZE) {
      throw new BpfError(E2BIG, `sk_storage value_size over ${BPF_LOCAL_STORAGE_MAX_VALUE_SIZE}`);
    }
  },
  map_alloc(attr, k) {
    return new BpfLocalStorageMap(k, sk_storage_map_ops, attr);
  },
  map_free(map) {
    // bpf_local_storage_map_free: every socket loses its value in this map.
    for (const sk of (map as BpfLocalStorageMap).owners) {
      const region = sk.sk_bpf_storage.get(map);
      sk.sk_bpf_storage.delete(map);
      if (region) bpfSelemFree(map, region, true);
    }
    (map as BpfLocalStorageMap).owners.clear();
  },
  map_check_btf(_map, btf, keyTypeId) {
    // btf_type_is_i32() of the key type as btf_type_id_size() resolved it (typedefs, modifiers).
    const t = btfTypeIdSize(btf, keyTypeId)?.type;
    if (!t || t.kind !== BTF_KIND_INT || (t as { size?: number }).size !== 4) {
      throw new BpfError(EINVAL, "sk_storage key type must be a 4-byte int");
    }
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
