/**
 * BPF_MAP_TYPE_TASK_STORAGE (kernel/bpf/bpf_task_storage.c on kernel/bpf/bpf_local_storage.c): a
 * value per (task, map), created on demand. Userspace keys it by pidfd, programs by
 * `struct task_struct *` through bpf_task_storage_get / bpf_task_storage_delete.
 */
import { btfTypeIdSize } from "../btf/resolve.js";
import { BPF_EXIST, BPF_F_CLONE, BPF_F_LOCK, BPF_F_NO_PREALLOC, BPF_NOEXIST } from "../uapi/bpf.js";
import { BTF_KIND_INT } from "../uapi/btf.js";
import { BpfError, E2BIG, EEXIST, EINVAL, ENOENT, ENOTSUPP } from "../uapi/errno.js";
import { BpfMap, type BpfMapOps } from "./bpf.js";
import { num } from "./bpf_attr.js";
import { bpfSelemAlloc, bpfSelemFree } from "./bpf_local_storage.js";
import { BPF_LOCAL_STORAGE_MAX_VALUE_SIZE } from "./bpf_sk_storage.js";
import { bpf_map_meta_equal } from "./map_in_map.js";
import type { Process } from "./process.js";
import { pidfd_get_task, type Task } from "./task.js";

const BPF_LOCAL_STORAGE_CREATE_FLAG_MASK = BPF_F_NO_PREALLOC | BPF_F_CLONE;
/** sizeof(struct bpf_local_storage_map) on x86-64 (6.18), from the host's fdinfo memlock. */
const SIZEOF_SMAP = 480;
/** sizeof(struct bpf_local_storage_map_bucket). */
const SIZEOF_SMAP_BUCKET = 16;

export class BpfTaskStorageMap extends BpfMap {
  /** Tasks that have a value in this map (the map's element list). */
  readonly owners = new Set<Task>();
}

export function task_storage_lookup(task: Task, map: BpfMap): number {
  return task.bpf_storage.get(map)?.addr ?? 0;
}

/** bpf_local_storage_update() for a task: NOEXIST/EXIST as for hash maps; value == null zero-fills. */
export function task_storage_update(task: Task, map: BpfMap, value: Uint8Array | null, flags: number): number {
  if ((flags & ~BPF_F_LOCK) > BPF_EXIST || flags & BPF_F_LOCK) {
    throw new BpfError(EINVAL, `invalid task_storage update flags ${flags}`);
  }
  const old = task.bpf_storage.get(map);
  if (old && flags & BPF_NOEXIST) throw new BpfError(EEXIST, `task ${task.pid} already has storage in this map`);
  if (!old && flags & BPF_EXIST) throw new BpfError(ENOENT, `task ${task.pid} has no storage in this map`);
  // An update is a new element; the one it replaces goes with what its fields hold.
  const region = bpfSelemAlloc(map, value, "task_storage");
  task.bpf_storage.set(map, region);
  (map as BpfTaskStorageMap).owners.add(task);
  if (old) bpfSelemFree(map, old, false);
  return region.addr;
}

/** task_storage_delete(): ENOENT when the task has no value here; the value is freed after RCU. */
export function task_storage_delete(task: Task, map: BpfMap): void {
  const region = task.bpf_storage.get(map);
  if (!region) throw new BpfError(ENOENT, `task ${task.pid} has no storage in this map`);
  task.bpf_storage.delete(map);
  (map as BpfTaskStorageMap).owners.delete(task);
  bpfSelemFree(map, region, false);
}

/** The task a pidfd key names: EBADF for a non-pidfd, ENOENT once the task has exited. */
function taskOfKey(proc: Process, key: Uint8Array): Task {
  const fd = new DataView(key.buffer, key.byteOffset, 4).getInt32(0, true);
  const task = pidfd_get_task(proc, fd);
  if (!task) throw new BpfError(ENOENT, `the task of pidfd ${fd} has exited`);
  return task;
}

export const task_storage_map_ops: BpfMapOps = {
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
      // BTF is required so that userspace can dump the storage.
      !num(attr.btf_key_type_id) ||
      !num(attr.btf_value_type_id)
    ) {
      throw new BpfError(
        EINVAL,
        "task_storage map: BPF_F_NO_PREALLOC, max_entries 0, key_size 4, value_size > 0 and BTF key/value ids are required",
      );
    }
    if (num(attr.value_size) > BPF_LOCAL_STORAGE_MAX_VALUE_SIZE) {
      throw new BpfError(E2BIG, `task_storage value_size over ${BPF_LOCAL_STORAGE_MAX_VALUE_SIZE}`);
    }
  },
  map_alloc(attr, k) {
    return new BpfTaskStorageMap(k, task_storage_map_ops, attr);
  },
  map_free(map) {
    // bpf_local_storage_map_free: every task loses its value in this map.
    for (const task of (map as BpfTaskStorageMap).owners) {
      const region = task.bpf_storage.get(map);
      task.bpf_storage.delete(map);
      if (region) bpfSelemFree(map, region, true);
    }
    (map as BpfTaskStorageMap).owners.clear();
  },
  map_check_btf(_map, btf, keyTypeId) {
    // btf_type_is_i32() of the key type.
    const t = btfTypeIdSize(btf, keyTypeId)?.type;
    if (!t || t.kind !== BTF_KIND_INT || (t as { size?: number }).size !== 4) {
      throw new BpfError(EINVAL, "task_storage key type must be a 4-byte int");
    }
  },
  map_lookup_elem() {
    // Programs use bpf_task_storage_get(); the verifier refuses a direct lookup.
    return 0;
  },
  map_lookup_elem_sys_only(map, key, proc) {
    return task_storage_lookup(taskOfKey(proc, key), map);
  },
  map_update_elem() {
    throw new BpfError(EINVAL, "task_storage maps are updated with bpf_task_storage_get");
  },
  map_update_elem_sys(map, key, value, flags, proc) {
    task_storage_update(taskOfKey(proc, key), map, value, flags);
    return 0;
  },
  map_delete_elem() {
    throw new BpfError(EINVAL, "task_storage maps are deleted with bpf_task_storage_delete");
  },
  map_delete_elem_sys(map, key, proc) {
    task_storage_delete(taskOfKey(proc, key), map);
  },
  map_get_next_key() {
    throw new BpfError(ENOTSUPP, "task_storage maps cannot be iterated by key");
  },
  map_mem_usage(map) {
    // bpf_local_storage_map_mem_usage: the map and its buckets (max(2, roundup_pow_of_two(ncpu)));
    // the values are not counted.
    let n = 1;
    while (n < map.kernel.nrCpus) n *= 2;
    return SIZEOF_SMAP + SIZEOF_SMAP_BUCKET * Math.max(2, n);
  },
};
