/**
 * Batch map commands (kernel/bpf/syscall.c bpf_map_do_batch and generic_map_*_batch). Keys and
 * values are packed arrays; `count` goes in as the most to process and comes back as how many were.
 * The batch token (in_batch/out_batch) is the last key processed. (The kernel's hash maps use a
 * bucket index as the token: an opaque value either way, so callers only pass it back.)
 */
import { BPF_F_LOCK, bpf_cmd } from "../uapi/bpf.js";
import { BpfError, EFAULT, EINTR, EINVAL, ENOENT, ENOTSUPP, EPERM } from "../uapi/errno.js";
import type { BpfMap } from "./bpf.js";
import { type MapBatchAttr, num } from "./bpf_attr.js";
import { FMODE_READ, FMODE_WRITE } from "./file.js";
import type { Process } from "./process.js";
import { bpf_map_copy_value, bpf_map_update_value, bpf_map_value_size, mapFromFd } from "./syscall_map.js";

/** Which batch commands a map type has (the ops table's map_*_batch being non-NULL). */
export interface BpfMapBatchOps {
  lookup?: boolean;
  lookup_and_delete?: boolean;
  update?: boolean;
  delete?: boolean;
}

const MAP_LOOKUP_RETRIES = 3;

function checkElemFlags(attr: MapBatchAttr): void {
  const ef = num(attr.elem_flags);
  if (ef & ~BPF_F_LOCK || ef & BPF_F_LOCK) throw new BpfError(EINVAL, `invalid elem_flags 0x${ef.toString(16)}`);
  if (num(attr.flags)) throw new BpfError(EINVAL, "batch flags must be 0");
}

function slice(buf: Uint8Array | null | undefined, i: number, size: number): Uint8Array {
  if (!buf || buf.length < (i + 1) * size) throw new BpfError(EFAULT, "batch buffer too short");
  return buf.subarray(i * size, (i + 1) * size);
}

/** generic_map_lookup_batch (and its lookup-and-delete variant). */
function lookupBatch(map: BpfMap, attr: MapBatchAttr, del: boolean, proc: Process): number {
  checkElemFlags(attr);
  const max = num(attr.count);
  if (!max) return 0;
  attr.count = 0;
  const vsize = bpf_map_value_size(map);
  let prev: Uint8Array | null = attr.in_batch ? slice(attr.in_batch, 0, map.key_size).slice() : null;
  let cp = 0;
  let retry = MAP_LOOKUP_RETRIES;
  let err: BpfError | null = null;
  const done: Uint8Array[] = [];
  while (cp < max) {
    let key: Uint8Array;
    try {
      key = map.ops.map_get_next_key(map, prev);
    } catch (e) {
      if (!(e instanceof BpfError)) throw e;
      err = e;
      break;
    }
    try {
      const out = new Uint8Array(vsize);
      bpf_map_copy_value(map, key, out, proc);
      slice(attr.values, cp, vsize).set(out);
    } catch (e) {
      if (!(e instanceof BpfError) || e.errno !== ENOENT) throw e;
      if (retry-- > 0) continue;
      err = new BpfError(EINTR, "elements kept disappearing during the batch");
      break;
    }
    slice(attr.keys, cp, map.key_size).set(key);
    done.push(key);
    prev = key;
    retry = MAP_LOOKUP_RETRIES;
    cp++;
  }
  if (del) for (const key of done) map.ops.map_delete_elem(map, key);
  attr.count = cp;
  if (cp && attr.out_batch) slice(attr.out_batch, 0, map.key_size).set(prev!);
  if (err) throw err;
  return 0;
}

function updateBatch(map: BpfMap, attr: MapBatchAttr, proc: Process): number {
  checkElemFlags(attr);
  const max = num(attr.count);
  if (!max) return 0;
  attr.count = 0;
  const vsize = bpf_map_value_size(map);
  let cp = 0;
  try {
    for (; cp < max; cp++) {
      const key = slice(attr.keys, cp, map.key_size).slice();
      const value = slice(attr.values, cp, vsize).slice();
      bpf_map_update_value(map, key, value, num(attr.elem_flags), proc);
    }
  } finally {
    attr.count = cp;
  }
  return 0;
}

function deleteBatch(map: BpfMap, attr: MapBatchAttr): number {
  checkElemFlags(attr);
  const max = num(attr.count);
  if (!max) return 0;
  attr.count = 0;
  let cp = 0;
  try {
    for (; cp < max; cp++) map.ops.map_delete_elem(map, slice(attr.keys, cp, map.key_size).slice());
  } finally {
    attr.count = cp;
  }
  return 0;
}

/** bpf_map_do_batch(): fd and access checks, then the map type's batch op or ENOTSUPP. */
export function bpf_map_do_batch(proc: Process, cmd: number, attr: MapBatchAttr): number {
  const { map, file } = mapFromFd(proc, num(attr.map_fd));
  const read = cmd === bpf_cmd.BPF_MAP_LOOKUP_BATCH || cmd === bpf_cmd.BPF_MAP_LOOKUP_AND_DELETE_BATCH;
  const write = cmd !== bpf_cmd.BPF_MAP_LOOKUP_BATCH;
  let mode = file.f_mode;
  if (map.frozen) mode &= ~FMODE_WRITE;
  if (read && !(mode & FMODE_READ)) throw new BpfError(EPERM, "map fd is not readable");
  if (write && !(mode & FMODE_WRITE)) throw new BpfError(EPERM, "map fd is not writable");
  const b = map.ops.map_batch ?? {};
  const notsupp = (): never => {
    throw new BpfError(ENOTSUPP, `map ${map.name} has no such batch operation`);
  };
  switch (cmd) {
    case bpf_cmd.BPF_MAP_LOOKUP_BATCH:
      return b.lookup ? lookupBatch(map, attr, false, proc) : notsupp();
    case bpf_cmd.BPF_MAP_LOOKUP_AND_DELETE_BATCH:
      return b.lookup_and_delete ? lookupBatch(map, attr, true, proc) : notsupp();
    case bpf_cmd.BPF_MAP_UPDATE_BATCH:
      return b.update ? updateBatch(map, attr, proc) : notsupp();
    default:
      return b.delete ? deleteBatch(map, attr) : notsupp();
  }
}
