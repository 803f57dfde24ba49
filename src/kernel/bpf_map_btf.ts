/**
 * struct bpf_map and the map types' own structs (include/linux/bpf.h, kernel/bpf/arraymap.c,
 * hashtab.c, queue_stack_maps.c, ringbuf.c, bpf_local_storage.c, bpf_struct_ops.c) as vmlinux BTF
 * has them in 6.18 on x86-64: the members a program may read through a map pointer at their
 * offsets, in structs of the kernel's sizes. The object behind each map's pointer (the address
 * ld_imm64 of the map gives) holds those members' values, so a read the verifier allows
 * (check_ptr_to_map_access) finds what the kernel's would.
 */
import type { BtfBuilder, BtfBuilderMember } from "../btf/builder.js";
import type { BpfMap } from "./bpf.js";
import type { KernelBaseTypes } from "./init.js";

/** sizeof(struct bpf_map). */
export const SIZEOF_BPF_MAP = 296;

/** sizeof each map type's struct (its map_btf_id), which embeds `struct bpf_map map` first. */
const MAP_STRUCT_SIZES: Readonly<Record<string, number>> = {
  bpf_array: 312,
  bpf_htab: 832,
  bpf_queue_stack: 312,
  bpf_ringbuf_map: 304,
  bpf_local_storage_map: 480,
  bpf_struct_ops_map: 512,
};

type Kind = "u32" | "int" | "u64" | "bool" | "name";
/** struct bpf_map's members: name, byte offset, kind, value. */
const FIELDS: readonly [string, number, Kind, (m: BpfMap) => number | bigint | string | boolean][] = [
  // An enum bpf_map_type in vmlinux; a u32 here (the simulated kernel's BTF has no such enum).
  ["map_type", 64, "u32", (m) => m.map_type],
  ["key_size", 68, "u32", (m) => m.key_size],
  ["value_size", 72, "u32", (m) => m.value_size],
  ["max_entries", 76, "u32", (m) => m.max_entries],
  ["map_extra", 80, "u64", (m) => m.map_extra],
  ["map_flags", 88, "u32", (m) => m.map_flags],
  ["id", 92, "u32", (m) => m.id],
  ["numa_node", 104, "int", (m) => m.numa_node],
  ["btf_key_type_id", 108, "u32", (m) => m.btf_key_type_id],
  ["btf_value_type_id", 112, "u32", (m) => m.btf_value_type_id],
  ["btf_vmlinux_value_type_id", 116, "u32", (m) => m.btf_vmlinux_value_type_id],
  ["name", 136, "name", (m) => m.name],
  ["frozen", 257, "bool", (m) => m.frozen],
];
/** bpf_array's members after the map (elem_size, index_mask). */
const ARRAY_ELEM_SIZE = 296;
const ARRAY_INDEX_MASK = 300;

/** The structs, declared after every other type so the ids before them stay where they were. */
export function declareMapTypes(b: BtfBuilder, base: KernelBaseTypes): void {
  const types: Record<Kind, number> = {
    u32: base.u32,
    int: base.int,
    u64: base.u64,
    bool: base.bool,
    name: b.addArray(base.char, base.int, 16),
  };
  const members: BtfBuilderMember[] = FIELDS.map(([name, off, kind]) => ({
    name,
    type: types[kind],
    bitOffset: off * 8,
  }));
  const map = b.addStruct("bpf_map", SIZEOF_BPF_MAP, members);
  for (const [name, size] of Object.entries(MAP_STRUCT_SIZES)) {
    const m: BtfBuilderMember[] = [{ name: "map", type: map, bitOffset: 0 }];
    if (name === "bpf_array")
      m.push(
        { name: "elem_size", type: base.u32, bitOffset: ARRAY_ELEM_SIZE * 8 },
        { name: "index_mask", type: base.u32, bitOffset: ARRAY_INDEX_MASK * 8 },
      );
    b.addStruct(name, size, m);
  }
}

/** Bytes of the object behind a map's pointer: its type's struct, or a bare struct bpf_map. */
export function mapKobjSize(map: BpfMap): number {
  return MAP_STRUCT_SIZES[map.ops.map_btf_name ?? ""] ?? SIZEOF_BPF_MAP;
}

/** The members' values as the map has them now (at its first use by a program). */
export function fillMapKobj(map: BpfMap, out: Uint8Array): void {
  const dv = new DataView(out.buffer, out.byteOffset, out.length);
  for (const [, off, kind, get] of FIELDS) {
    const v = get(map);
    if (kind === "u32" || kind === "int") dv.setUint32(off, Number(v) >>> 0, true);
    else if (kind === "u64") dv.setBigUint64(off, BigInt.asUintN(64, BigInt(v)), true);
    else if (kind === "bool") out[off] = v ? 1 : 0;
    else out.set(new TextEncoder().encode(String(v)).subarray(0, 15), off);
  }
  if (map.ops.map_btf_name === "bpf_array") {
    const elemSize = (map as { elem_size?: number }).elem_size ?? Math.ceil(map.value_size / 8) * 8;
    dv.setUint32(ARRAY_ELEM_SIZE, elemSize, true);
    // array_map_alloc: max_entries rounded up to a power of 2, minus one.
    const n = map.max_entries;
    dv.setUint32(ARRAY_INDEX_MASK, n <= 1 ? 0 : 2 ** Math.ceil(Math.log2(n)) - 1, true);
  }
}
