/**
 * BPF_MAP_TYPE_QUEUE and BPF_MAP_TYPE_STACK (kernel/bpf/queue_stack_maps.c): a ring of
 * max_entries + 1 slots without keys. Programs use bpf_map_push_elem / pop_elem / peek_elem; the
 * syscall's UPDATE pushes (BPF_EXIST overwrites the oldest element when full), LOOKUP peeks and
 * LOOKUP_AND_DELETE pops. A queue pops the oldest element, a stack the newest.
 */
import { BPF_EXIST, BPF_F_NUMA_NODE, BPF_NOEXIST, bpf_map_type } from "../uapi/bpf.js";
import { BpfError, E2BIG, EINVAL, ENOENT } from "../uapi/errno.js";
import { BPF_F_ACCESS_MASK, BpfMap, type BpfMapOps, bpf_map_flags_access_ok } from "./bpf.js";
import type { MapCreateAttr } from "./bpf_attr.js";
import { num } from "./bpf_attr.js";
import type { Kernel } from "./kernel.js";

import { bpf_map_meta_equal } from "./map_in_map.js";

const QUEUE_STACK_CREATE_FLAG_MASK = BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK;
/** KMALLOC_MAX_SIZE on x86-64 (SLUB): 4 MiB. */
const KMALLOC_MAX_SIZE = 1 << 22;
/** sizeof(struct bpf_queue_stack) on x86-64 (6.18), as the host's fdinfo memlock shows. */
const SIZEOF_BPF_QUEUE_STACK = 312;

export class BpfQueueStack extends BpfMap {
  head = 0;
  tail = 0;
  /** max_entries + 1: one slot stays empty so that full and empty differ. */
  readonly size: number;
  readonly elements: Uint8Array;
  readonly isStack: boolean;

  constructor(k: Kernel, ops: BpfMapOps, attr: MapCreateAttr) {
    super(k, ops, attr);
    this.size = this.max_entries + 1;
    this.elements = new Uint8Array(this.size * this.value_size);
    this.isStack = this.map_type === bpf_map_type.BPF_MAP_TYPE_STACK;
  }

  get empty(): boolean {
    return this.head === this.tail;
  }

  get full(): boolean {
    return (this.head + 1) % this.size === this.tail;
  }

  slot(i: number): Uint8Array {
    return this.elements.subarray(i * this.value_size, (i + 1) * this.value_size);
  }
}

/** __queue_map_get / __stack_map_get: an empty map zeroes the value and is ENOENT. */
function get(map: BpfMap, value: Uint8Array, del: boolean): void {
  const qs = map as BpfQueueStack;
  if (qs.empty) {
    value.fill(0, 0, qs.value_size);
    throw new BpfError(ENOENT, `${qs.isStack ? "stack" : "queue"} ${qs.name} is empty`);
  }
  if (qs.isStack) {
    const index = qs.head === 0 ? qs.size - 1 : qs.head - 1;
    value.set(qs.slot(index));
    if (del) qs.head = index;
    return;
  }
  value.set(qs.slot(qs.tail));
  if (del) qs.tail = (qs.tail + 1) % qs.size;
}

export const queue_stack_map_ops: BpfMapOps = {
  map_meta_equal: bpf_map_meta_equal,
  map_btf_name: "bpf_queue_stack",
  map_alloc_check(attr) {
    const flags = num(attr.map_flags);
    if (
      num(attr.max_entries) === 0 ||
      num(attr.key_size) !== 0 ||
      num(attr.value_size) === 0 ||
      flags & ~QUEUE_STACK_CREATE_FLAG_MASK ||
      !bpf_map_flags_access_ok(flags)
    ) {
      throw new BpfError(
        EINVAL,
        "queue/stack map: max_entries > 0, key_size 0, value_size > 0 and known flags are required",
      );
    }
    if (num(attr.value_size) > KMALLOC_MAX_SIZE)
      throw new BpfError(E2BIG, "queue/stack value_size over KMALLOC_MAX_SIZE");
  },
  map_alloc(attr, k) {
    return new BpfQueueStack(k, queue_stack_map_ops, attr);
  },
  map_free() {},
  map_lookup_elem() {
    return 0;
  },
  map_update_elem() {
    throw new BpfError(EINVAL, "queue/stack maps are updated with push");
  },
  map_delete_elem() {
    throw new BpfError(EINVAL, "queue/stack maps have no keys to delete");
  },
  map_get_next_key() {
    throw new BpfError(EINVAL, "queue/stack maps have no keys");
  },
  /** queue_stack_map_push_elem: BPF_EXIST makes room by dropping the oldest element. */
  map_push_elem(map, value, flags) {
    const qs = map as BpfQueueStack;
    if (flags & BPF_NOEXIST || flags > BPF_EXIST) throw new BpfError(EINVAL, `invalid push flags ${flags}`);
    if (qs.full) {
      if (!(flags & BPF_EXIST)) throw new BpfError(E2BIG, `${qs.isStack ? "stack" : "queue"} ${qs.name} is full`);
      qs.tail = (qs.tail + 1) % qs.size;
    }
    qs.slot(qs.head).set(value.subarray(0, qs.value_size));
    qs.head = (qs.head + 1) % qs.size;
  },
  map_pop_elem(map, value) {
    get(map, value, true);
  },
  map_peek_elem(map, value) {
    get(map, value, false);
  },
  map_mem_usage(map) {
    return SIZEOF_BPF_QUEUE_STACK + (map.max_entries + 1) * map.value_size;
  },
  map_alloc_cost(attr) {
    return SIZEOF_BPF_QUEUE_STACK + (num(attr.max_entries) + 1) * num(attr.value_size);
  },
};
