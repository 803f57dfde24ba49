/**
 * Maps of maps and prog arrays filled at load (libbpf's init_slots): `.values = { [i] = &inner }` in a BTF-defined
 * outer map makes clang emit a relocation in `.rel.maps` per initialised slot, against the inner
 * map's symbol, at `values[i]` of the outer map's definition. Open records which map goes in which
 * slot (bpf_object__collect_map_relos); load puts each inner map's fd there right after creating
 * the outer map (init_map_in_map_slots).
 */
import type { Btf } from "../btf/btf.js";
import type { ElfFile, ElfRel } from "../elf/elf.js";
import { bpf_map_type } from "../uapi/bpf.js";
import { BTF_KIND_STRUCT, BTF_KIND_UNION } from "../uapi/btf.js";
import { BpfError, EINVAL, ESRCH, errnoName, LIBBPF_ERRNO__FORMAT, LIBBPF_ERRNO__RELOC } from "../uapi/errno.js";
import { type BpfHandle, bpf_map_update_elem } from "./bpf.js";
import { skipModsAndTypedefs } from "./btf_helpers.js";
import type { BpfMap } from "./maps.js";
import type { BpfProgram } from "./program.js";

/** BPF pointers are 64-bit whatever the host: slots are 8 bytes apart. */
const BPF_PTR_SZ = 8;

const isMapInMap = (type: number): boolean =>
  type === bpf_map_type.BPF_MAP_TYPE_ARRAY_OF_MAPS || type === bpf_map_type.BPF_MAP_TYPE_HASH_OF_MAPS;

/** bpf_object__collect_map_relos: each `.rel.maps` entry names an inner map and the slot it fills. */
export function collectMapRelos(
  btf: Btf | undefined,
  elf: ElfFile,
  mapsShndx: number,
  rels: ElfRel[],
  maps: BpfMap[],
  debug: (msg: string) => void,
  programs: readonly BpfProgram[] = [],
): void {
  if (!btf) throw new BpfError(EINVAL, ".maps relocations need the object's BTF");
  rels.forEach((rel, i) => {
    const sym = elf.symbols[rel.sym];
    if (!sym) throw new BpfError(LIBBPF_ERRNO__FORMAT, `.maps relo #${i}: symbol ${rel.sym.toString(16)} not found`);
    const name = sym.name || "<?>";
    debug(
      `.maps relo #${i}: for ${rel.sym} value ${sym.value} rel->r_offset ${rel.offset} name ${sym.nameOff} ('${name}')`,
    );
    const map = maps.find(
      (m) => m.secIdx === mapsShndx && m.secOffset <= rel.offset && rel.offset + BPF_PTR_SZ <= m.secOffset + m.secSize,
    );
    if (!map) {
      throw new BpfError(EINVAL, `.maps relo #${i}: cannot find map '${name}' at rel->r_offset ${rel.offset}`);
    }
    // Maps of maps take map pointers, prog arrays entry-point programs.
    const progArray = map.type === bpf_map_type.BPF_MAP_TYPE_PROG_ARRAY;
    if (!isMapInMap(map.type) && !progArray) {
      throw new BpfError(LIBBPF_ERRNO__RELOC, `.maps relo #${i}: map '${map.name}' should be map-in-map or prog-array`);
    }
    if (map.type === bpf_map_type.BPF_MAP_TYPE_HASH_OF_MAPS && map.keySize !== 4) {
      throw new BpfError(EINVAL, `.maps relo #${i}: hash-of-maps '${map.name}' should have key size 4.`);
    }
    let targ: BpfMap | undefined;
    let targProg: BpfProgram | undefined;
    if (progArray) {
      // bpf_object__find_program_by_name: entry points only.
      targProg = programs.find((p) => !p.isSubprog && p.name === name);
      if (!targProg)
        throw new BpfError(ESRCH, `.maps relo #${i}: map '${map.name}' slot: can't find program '${name}'`);
      if (targProg.secIdx !== sym.shndx || targProg.secInsnOff * 8 !== sym.value) {
        throw new BpfError(LIBBPF_ERRNO__RELOC, `.maps relo #${i}: '${name}' isn't an entry-point program`);
      }
    } else {
      if (sym.shndx !== mapsShndx) {
        throw new BpfError(LIBBPF_ERRNO__RELOC, `.maps relo #${i}: '${name}' isn't a BTF-defined map`);
      }
      targ = maps.find((m) => m.name === name && m.secIdx === mapsShndx);
      if (!targ) throw new BpfError(ESRCH, `.maps relo #${i}: '${name}' isn't a valid map reference`);
    }

    const def = skipModsAndTypedefs(btf, map.btfVarType).t;
    if ((def.kind !== BTF_KIND_STRUCT && def.kind !== BTF_KIND_UNION) || def.members.length === 0)
      throw new BpfError(EINVAL, `.maps relo #${i}: map '${map.name}' has no 'values' member`);
    const values = def.members[def.members.length - 1];
    if (values.name !== "values")
      throw new BpfError(EINVAL, `.maps relo #${i}: map '${map.name}' has no 'values' member`);
    const valuesOff = values.bitOffset / 8;
    let moff = rel.offset - map.secOffset;
    if (moff < valuesOff)
      throw new BpfError(EINVAL, `.maps relo #${i}: offset ${moff} of map '${map.name}' is before its 'values'`);
    moff -= valuesOff;
    if (moff % BPF_PTR_SZ)
      throw new BpfError(EINVAL, `.maps relo #${i}: offset ${moff} of map '${map.name}' is not a slot's`);
    const slot = moff / BPF_PTR_SZ;
    if (targProg) map.initProgSlots[slot] = targProg;
    else map.initSlots[slot] = targ;
    debug(`.maps relo #${i}: map '${map.name}' slot [${slot}] points to ${targProg ? "prog" : "map"} '${name}'`);
  });
}

/** init_map_in_map_slots: each recorded inner map's fd goes into its slot of the new outer map. */
export function initMapInMapSlots(k: BpfHandle, map: BpfMap, debug: (msg: string) => void): void {
  map.initSlots.forEach((targ, i) => {
    if (!targ) return;
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, i, true);
    const value = new Uint8Array(4);
    new DataView(value.buffer).setInt32(0, targ.fd, true);
    const err = bpf_map_update_elem(k, map.fd, key, value, 0);
    if (err < 0) {
      throw new BpfError(
        -err,
        `map '${map.name}': failed to initialize slot [${i}] to map '${targ.name}' fd=${targ.fd}: -${-err} (${errnoName(-err)})`,
        { map: map.name },
      );
    }
    debug(`map '${map.name}': slot [${i}] set to map '${targ.name}' fd=${targ.fd}`);
  });
  // libbpf frees the slots once they are in: a second load has nothing to put.
  map.initSlots = [];
}

/**
 * init_prog_array_slots (bpf_object_init_prog_arrays, once every program is loaded): each recorded
 * program's fd goes into its slot of the prog array.
 */
export function initProgArraySlots(k: BpfHandle, map: BpfMap, debug: (msg: string) => void): void {
  map.initProgSlots.forEach((targ, i) => {
    if (!targ) return;
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, i, true);
    const value = new Uint8Array(4);
    new DataView(value.buffer).setInt32(0, targ.fd, true);
    const err = bpf_map_update_elem(k, map.fd, key, value, 0);
    if (err < 0) {
      throw new BpfError(
        -err,
        `map '${map.name}': failed to initialize slot [${i}] to prog '${targ.name}' fd=${targ.fd}: -${-err} (${errnoName(-err)})`,
        { map: map.name },
      );
    }
    debug(`map '${map.name}': slot [${i}] set to prog '${targ.name}' fd=${targ.fd}`);
  });
  map.initProgSlots = [];
}
