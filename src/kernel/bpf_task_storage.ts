import { BpfError, EINVAL, ENOENT, ENOTSUPP } from "../uapi/errno.js";
import { BpfMap, type BpfMapOps } from "./bpf.js";
import {
  type LocalStorageOwner,
  localStorageDelete,
  localStorageMapAllocCheck,
  localStorageMapCheckBtf,
  localStorageMapFree,
  localStorageUpdate,
} from "./bpf_local_storage.js";
import { bpf_map_meta_equal } from "./map_in_map.js";
import type { Process } from "./process.js";
import { pidfd_get_task, type Task } from "./task.js";

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

const TASK: LocalStorageOwner<Task> = {
  what: "task_storage",
  storage: (task) => task.bpf_storage,
  who: (task) => `task ${task.pid}`,
};

/** bpf_local_storage_update() for a task: NOEXIST/EXIST as for hash maps; value == null zero-fills. */
export function task_storage_update(task: Task, map: BpfMap, value: Uint8Array | null, flags: number): number {
  return localStorageUpdate(TASK, (map as BpfTaskStorageMap).owners, task, map, value, flags);
}

/** task_storage_delete(): ENOENT when the task has no value here; the value is freed after RCU. */
export function task_storage_delete(task: Task, map: BpfMap): void {
  localStorageDelete(TASK, (map as BpfTaskStorageMap).owners, task, map);
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
    localStorageMapAllocCheck(attr, TASK.what);
  },
  map_alloc(attr, k) {
    return new BpfTaskStorageMap(k, task_storage_map_ops, attr);
  },
  map_free(map) {
    localStorageMapFree(TASK, (map as BpfTaskStorageMap).owners, map);
  },
  map_check_btf(_map, btf, keyTypeId) {
    localStorageMapCheckBtf(btf, keyTypeId, TASK.what);
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
