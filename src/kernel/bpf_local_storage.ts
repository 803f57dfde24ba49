/**
 * Local storage elements (kernel/bpf/bpf_local_storage.c: bpf_selem_alloc, bpf_selem_free), what
 * task and socket storage share: a value is allocated zeroed and filled around its special fields
 * (copy_map_value), and when it goes (deleted, replaced by an update, its map freed, its owner
 * gone) bpf_obj_free_fields releases what those fields hold: kptrs, allocated objects, per-CPU
 * objects.
 */
import { bpf_map_type } from "../uapi/bpf.js";
import type { BpfMap, MemRegion } from "./bpf.js";
import { copyMapValue, mapFreeFields } from "./bpf_graph.js";

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
