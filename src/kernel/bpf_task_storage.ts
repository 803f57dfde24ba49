import { BpfError, EINVAL, ENOENT } from "../uapi/errno.js";
import type { BpfMap, BpfMapOps } from "./bpf.js";
import {
  type BpfLocalStorageMap,
  type LocalStorageOwner,
  localStorageDelete,
  localStorageMapOps,
  localStorageUpdate,
} from "./bpf_local_storage.js";
import type { Process } from "./process.js";
import { pidfd_get_task, type Task } from "./task.js";

type BpfTaskStorageMap = BpfLocalStorageMap<Task>;

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

export const task_storage_map_ops: BpfMapOps = localStorageMapOps(TASK, {
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
});
