/**
 * Maps of maps (kernel/bpf/map_in_map.c: bpf_map_meta_alloc, bpf_map_meta_equal,
 * bpf_map_fd_get_ptr, bpf_map_fd_put_ptr, bpf_map_fd_sys_lookup_elem; the fd-array and fd-htab
 * parts of arraymap.c and hashtab.c). An ARRAY_OF_MAPS or HASH_OF_MAPS is created with a template
 * map (inner_map_fd) whose type, sizes, flags and special fields every inner map must share (the
 * "meta", which the verifier checks programs against). Userspace stores maps by fd and reads back
 * their ids; a program's lookup gives the inner map itself, which it then uses like any map.
 */
import type { BtfField, BtfRecord } from "../btf/record.js";
import { BPF_ANY, BPF_EXIST, BPF_F_INNER_MAP, BPF_F_RDONLY_PROG, BPF_F_WRONLY_PROG, BPF_NOEXIST } from "../uapi/bpf.js";
import { BpfError, E2BIG, EEXIST, EINVAL, ENOENT, ENOTSUPP } from "../uapi/errno.js";
import { BpfMap, type BpfMapOps } from "./bpf.js";
import type { MapCreateAttr } from "./bpf_attr.js";
import { num } from "./bpf_attr.js";
import { btf_get, btf_put } from "./btf_obj.js";
import type { Kernel } from "./kernel.js";
import type { Process } from "./process.js";
import { bpf_map_inc, bpf_map_kaddr, bpf_map_put, mapFromFd } from "./syscall_map.js";

/** A map holding maps: the template every inner map must match. */
export interface MapOfMaps extends BpfMap {
  inner_map_meta: BpfMap;
}

export const innerMapMeta = (m: BpfMap): BpfMap | undefined => (m as Partial<MapOfMaps>).inner_map_meta;

/** btf_record_equal: the same special fields at the same offsets. */
function btfRecordEqual(a: BtfRecord | null, b: BtfRecord | null): boolean {
  const fa = a?.fields ?? [];
  const fb = b?.fields ?? [];
  if (fa.length !== fb.length) return false;
  const same = (x: BtfField, y: BtfField) =>
    x.type === y.type &&
    x.offset === y.offset &&
    x.size === y.size &&
    x.kptr?.name === y.kptr?.name &&
    !!x.kptr?.btf === !!y.kptr?.btf;
  return fa.every((f, i) => same(f, fb[i]));
}

const recordOf = (m: BpfMap): BtfRecord | null => (m.record instanceof BpfError ? null : m.record);

/** bpf_map_meta_equal: what an inner map must share with the template. */
export function bpf_map_meta_equal(meta: BpfMap, map: BpfMap): boolean {
  return (
    meta.map_type === map.map_type &&
    meta.key_size === map.key_size &&
    meta.value_size === map.value_size &&
    meta.map_flags === map.map_flags &&
    btfRecordEqual(recordOf(meta), recordOf(map))
  );
}

/** array_map_meta_equal: an array also fixes max_entries, unless made with BPF_F_INNER_MAP. */
export function array_map_meta_equal(meta: BpfMap, map: BpfMap): boolean {
  if (!bpf_map_meta_equal(meta, map)) return false;
  return meta.map_flags & BPF_F_INNER_MAP ? true : meta.max_entries === map.max_entries;
}

/** bpf_map_meta_alloc: the template's copy, from the map behind inner_map_fd. */
export function bpf_map_meta_alloc(k: Kernel, ufd: number): BpfMap {
  const proc = k.current;
  if (!proc) throw new BpfError(EINVAL, "inner_map_fd without a process");
  const { map: inner } = mapFromFd(proc, ufd);
  // Does not support more than one level of map-in-map.
  if (innerMapMeta(inner)) throw new BpfError(EINVAL, "an inner map cannot hold maps itself");
  if (!inner.ops.map_meta_equal) throw new BpfError(ENOTSUPP, `map type ${inner.map_type} cannot be an inner map`);
  const meta = new BpfMap(k, inner.ops, {
    map_type: inner.map_type,
    key_size: inner.key_size,
    value_size: inner.value_size,
    max_entries: inner.max_entries,
    map_flags: inner.map_flags,
  });
  meta.record = inner.record;
  // The record points into the inner map's BTF: the meta keeps it.
  meta.btf = inner.btf;
  if (meta.btf) btf_get(meta.btf);
  return meta;
}

function bpf_map_meta_free(meta: BpfMap): void {
  // btf_put: the template may hold the BTF's last reference once the inner map and its fd are gone.
  if (meta.btf) btf_put(meta.btf);
  meta.btf = null;
}

/** bpf_map_fd_get_ptr: a reference on the map behind `ufd`, if it matches the template. */
function bpf_map_fd_get_ptr(outer: MapOfMaps, proc: Process, ufd: number): BpfMap {
  const { map: inner } = mapFromFd(proc, ufd);
  if (!outer.inner_map_meta.ops.map_meta_equal?.(outer.inner_map_meta, inner))
    throw new BpfError(EINVAL, `map ${inner.id} does not match the inner map template of ${outer.name}`);
  bpf_map_inc(inner);
  return inner;
}

/**
 * bpf_map_fd_put_ptr: a slot lets go of its map; one replaced or deleted while programs may still
 * use it (need_defer) is freed only after an RCU grace period.
 */
function bpf_map_fd_put_ptr(inner: BpfMap, needDefer: boolean): void {
  if (needDefer) inner.free_after_rcu_gp = true;
  bpf_map_put(inner);
}

/** bpf_map_fd_sys_lookup_elem: userspace reads an inner map back as its id. */
function sysLookup(inner: BpfMap | undefined, value: Uint8Array): void {
  if (!inner) throw new BpfError(ENOENT, "no map in this slot");
  new DataView(value.buffer, value.byteOffset, 4).setUint32(0, inner.id, true);
}

const u32 = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);

/** fd_array_map_alloc_check / fd_htab_map_alloc_check: the value is a u32 fd, not readable by programs. */
function fdMapAllocCheck(attr: MapCreateAttr): void {
  if (num(attr.value_size) !== 4) throw new BpfError(EINVAL, "a map of maps holds 4-byte fds (value_size 4)");
  if (num(attr.map_flags) & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG))
    throw new BpfError(EINVAL, "a map of maps cannot be read-only or write-only to programs");
}

// ---- BPF_MAP_TYPE_ARRAY_OF_MAPS ----

class BpfArrayOfMaps extends BpfMap implements MapOfMaps {
  /** The filled slots by index: a large max_entries costs nothing until slots are filled. */
  readonly slots = new Map<number, BpfMap>();
  constructor(
    k: Kernel,
    ops: BpfMapOps,
    attr: MapCreateAttr,
    readonly inner_map_meta: BpfMap,
  ) {
    super(k, ops, attr);
  }
}

/** The array's ops this builds on (array_map_alloc_check, array_map_get_next_key). */
export interface ArrayBase {
  map_alloc_check?(attr: MapCreateAttr, k: Kernel): void;
  map_get_next_key(map: BpfMap, key: Uint8Array | null): Uint8Array;
}

const SIZEOF_BPF_ARRAY = 312;

export function arrayOfMapsOps(array: ArrayBase): BpfMapOps {
  const ops: BpfMapOps = {
    map_btf_name: "bpf_array",
    map_alloc_check(attr, k) {
      fdMapAllocCheck(attr);
      array.map_alloc_check?.(attr, k);
    },
    map_alloc(attr, k) {
      const meta = bpf_map_meta_alloc(k, num(attr.inner_map_fd));
      return new BpfArrayOfMaps(k, ops, attr, meta);
    },
    map_free(map) {
      const a = map as BpfArrayOfMaps;
      bpf_map_meta_free(a.inner_map_meta);
      // bpf_fd_array_map_clear: no program can run any more, nothing to defer.
      for (const m of a.slots.values()) bpf_map_fd_put_ptr(m, false);
      a.slots.clear();
    },
    // array_of_map_lookup_elem: the inner map itself.
    map_lookup_elem(map, key) {
      const m = (map as BpfArrayOfMaps).slots.get(u32(key));
      return m ? bpf_map_kaddr(m) : 0;
    },
    map_sys_lookup_elem(map, key, value) {
      sysLookup((map as BpfArrayOfMaps).slots.get(u32(key)), value);
    },
    map_update_elem() {
      throw new BpfError(EINVAL, "maps of maps are updated from userspace only");
    },
    /** bpf_fd_array_map_update_elem. */
    map_update_elem_sys(map, key, value, flags, proc) {
      const a = map as BpfArrayOfMaps;
      if (flags !== BPF_ANY) throw new BpfError(EINVAL, `invalid update flags ${flags} for a map of maps`);
      const i = u32(key);
      if (i >= map.max_entries) throw new BpfError(E2BIG, `index ${i} is past max_entries ${map.max_entries}`);
      const inner = bpf_map_fd_get_ptr(a, proc, u32(value));
      const old = a.slots.get(i);
      a.slots.set(i, inner);
      if (old) bpf_map_fd_put_ptr(old, true);
      return 0;
    },
    /** fd_array_map_delete_elem. */
    map_delete_elem(map, key) {
      const a = map as BpfArrayOfMaps;
      const i = u32(key);
      if (i >= map.max_entries) throw new BpfError(E2BIG, `index ${i} is past max_entries ${map.max_entries}`);
      const old = a.slots.get(i);
      if (!old) throw new BpfError(ENOENT, `slot ${i} is empty`);
      a.slots.delete(i);
      bpf_map_fd_put_ptr(old, true);
    },
    map_get_next_key: (map, key) => array.map_get_next_key(map, key),
    map_mem_usage: (map) => SIZEOF_BPF_ARRAY + map.max_entries * 8,
    // array_map_alloc charges its pointer array before allocating it (v5.8).
    map_alloc_cost: (attr) => SIZEOF_BPF_ARRAY + num(attr.max_entries) * 8,
  };
  return ops;
}

// ---- BPF_MAP_TYPE_HASH_OF_MAPS ----

class BpfHtabOfMaps extends BpfMap implements MapOfMaps {
  /** Elements by key (hex), in insertion order. */
  readonly elems = new Map<string, { key: Uint8Array; inner: BpfMap }>();
  constructor(
    k: Kernel,
    ops: BpfMapOps,
    attr: MapCreateAttr,
    readonly inner_map_meta: BpfMap,
  ) {
    super(k, ops, attr);
  }
}

const keyStr = (key: Uint8Array): string => Array.from(key, (b) => b.toString(16).padStart(2, "0")).join("");

/** The hash table's ops this builds on (htab_map_alloc_check). */
export interface HtabBase {
  map_alloc_check?(attr: MapCreateAttr, k: Kernel): void;
}

/** sizeof(struct bpf_htab) and of one element with its u32 key and pointer value, x86-64. */
const SIZEOF_BPF_HTAB = 704;
const SIZEOF_HTAB_ELEM = 48;

export function htabOfMapsOps(htab: HtabBase): BpfMapOps {
  const ops: BpfMapOps = {
    map_btf_name: "bpf_htab",
    map_alloc_check(attr, k) {
      fdMapAllocCheck(attr);
      htab.map_alloc_check?.(attr, k);
    },
    map_alloc(attr, k) {
      const meta = bpf_map_meta_alloc(k, num(attr.inner_map_fd));
      return new BpfHtabOfMaps(k, ops, attr, meta);
    },
    map_free(map) {
      const h = map as BpfHtabOfMaps;
      bpf_map_meta_free(h.inner_map_meta);
      for (const e of h.elems.values()) bpf_map_fd_put_ptr(e.inner, false);
      h.elems.clear();
    },
    // htab_of_map_lookup_elem: the inner map itself.
    map_lookup_elem(map, key) {
      const e = (map as BpfHtabOfMaps).elems.get(keyStr(key));
      return e ? bpf_map_kaddr(e.inner) : 0;
    },
    map_sys_lookup_elem(map, key, value) {
      sysLookup((map as BpfHtabOfMaps).elems.get(keyStr(key))?.inner, value);
    },
    map_update_elem() {
      throw new BpfError(EINVAL, "maps of maps are updated from userspace only");
    },
    /** bpf_fd_htab_map_update_elem: the fd first, then htab_map_update_elem_in_place's rules. */
    map_update_elem_sys(map, key, value, flags, proc) {
      const h = map as BpfHtabOfMaps;
      const inner = bpf_map_fd_get_ptr(h, proc, u32(value));
      try {
        if (flags > BPF_EXIST) throw new BpfError(EINVAL, `invalid update flags ${flags}`);
        const ks = keyStr(key);
        const old = h.elems.get(ks);
        if (old && flags === BPF_NOEXIST) throw new BpfError(EEXIST, "element exists (BPF_NOEXIST)");
        if (!old && flags === BPF_EXIST) throw new BpfError(ENOENT, "no such element (BPF_EXIST)");
        if (!old && h.elems.size >= map.max_entries) throw new BpfError(E2BIG, `map ${map.name} is full`);
        h.elems.set(ks, { key: key.slice(), inner });
        if (old) bpf_map_fd_put_ptr(old.inner, true);
      } catch (e) {
        bpf_map_fd_put_ptr(inner, false);
        throw e;
      }
      return 0;
    },
    map_delete_elem(map, key) {
      const h = map as BpfHtabOfMaps;
      const ks = keyStr(key);
      const e = h.elems.get(ks);
      if (!e) throw new BpfError(ENOENT, "no such element");
      h.elems.delete(ks);
      bpf_map_fd_put_ptr(e.inner, true);
    },
    map_get_next_key(map, key) {
      const keys = [...(map as BpfHtabOfMaps).elems.values()].map((e) => e.key);
      const i = key ? keys.findIndex((k) => keyStr(k) === keyStr(key)) : -1;
      // A key that is not there restarts the walk, as htab_map_get_next_key does.
      const next = keys[i + 1];
      if (!next) throw new BpfError(ENOENT, "last element");
      return next.slice();
    },
    map_mem_usage: (map) => SIZEOF_BPF_HTAB + (map as BpfHtabOfMaps).elems.size * SIZEOF_HTAB_ELEM,
  };
  return ops;
}
