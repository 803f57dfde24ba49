/**
 * struct_ops maps at open (libbpf init_struct_ops_maps, bpf_object__collect_st_ops_relos):
 * one BPF_MAP_TYPE_STRUCT_OPS map per variable of a `.struct_ops`/`.struct_ops.link`
 * section (a leading `?` turns autocreate off), whose value starts as the variable's bytes
 * in the object's local type. R_BPF_64_ABS64 relocations bind programs to function-pointer
 * members. The result is the writable shadow: scalar members read and written by name,
 * function-pointer members holding program references (BpfStructOpsValue).
 */
import type { Btf } from "../btf/btf.js";
import type { BtfComposite, BtfMember } from "../btf/types.js";
import type { ElfFile, ElfRel, ElfSection } from "../elf/elf.js";
import { SHN_LORESERVE, SHN_UNDEF } from "../elf/elf_consts.js";
import { BPF_F_LINK, bpf_map_type, bpf_prog_type } from "../uapi/bpf.js";
import { BTF_KIND_ARRAY, BTF_KIND_DATASEC, BTF_KIND_INT, BTF_KIND_STRUCT } from "../uapi/btf.js";
import { BpfError, EBUSY, EINVAL, ENOENT, ENOTSUP, LIBBPF_ERRNO__FORMAT, LIBBPF_ERRNO__RELOC } from "../uapi/errno.js";
import { resolveFuncPtr, resolveSize, resolveType, skipModsAndTypedefs } from "./btf_helpers.js";
import { BpfMap, LIBBPF_MAP_UNSPEC } from "./maps.js";
import type { BpfProgram } from "./program.js";

export const STRUCT_OPS_SEC = ".struct_ops";
export const STRUCT_OPS_LINK_SEC = ".struct_ops.link";

/** Is `name` one of the four struct_ops data section names? */
export function isStructOpsSection(name: string): boolean {
  const n = name.startsWith("?") ? name.slice(1) : name;
  return n === STRUCT_OPS_SEC || n === STRUCT_OPS_LINK_SEC;
}

/** struct bpf_struct_ops: the local type, the shadow and, after load, the kernel's value. */
export class BpfStructOps {
  readonly tname: string;
  readonly typeId: number;
  readonly type: BtfComposite;
  /** Local-layout bytes of the variable; function-pointer slots are kept in `progs`. */
  readonly data: Uint8Array;
  /** Program bound to each member (by member index), null where none. */
  readonly progs: (BpfProgram | null)[];
  /** The compile-time bindings, to know which programs a shadow edit displaced. */
  readonly origProgs: (BpfProgram | null)[];
  /** Filled by load: byte offset of each func member in kernVdata. */
  kernFuncOff: number[];
  kernVdata?: Uint8Array;
  readonly value: BpfStructOpsValue;

  constructor(btf: Btf, tname: string, typeId: number, type: BtfComposite, data: Uint8Array, mapName: string) {
    this.tname = tname;
    this.typeId = typeId;
    this.type = type;
    this.data = data;
    this.progs = type.members.map(() => null);
    this.origProgs = type.members.map(() => null);
    this.kernFuncOff = type.members.map(() => 0);
    this.value = new BpfStructOpsValue(btf, this, mapName);
  }
}

/** What a shadow member holds: a program for function pointers, else its C value. */
export type StructOpsMemberValue = BpfProgram | null | number | bigint | string | Uint8Array;

/**
 * A typed view over a struct_ops map's shadow, like bpftool's skeleton `skel->struct_ops.<map>`:
 * function pointers are programs, integers numbers (bigint for 8 bytes), char arrays
 * strings, anything else raw bytes.
 */
export class BpfStructOpsValue {
  private readonly btf: Btf;
  private readonly st: BpfStructOps;
  private readonly mapName: string;
  loaded = false;

  constructor(btf: Btf, st: BpfStructOps, mapName: string) {
    this.btf = btf;
    this.st = st;
    this.mapName = mapName;
  }

  get memberNames(): string[] {
    return this.st.type.members.map((m) => m.name);
  }

  private member(name: string): { m: BtfMember; idx: number } {
    const idx = this.st.type.members.findIndex((m) => m.name === name);
    const m = this.st.type.members[idx];
    if (!m)
      throw new BpfError(ENOENT, `struct_ops map '${this.mapName}': no member '${name}' in struct ${this.st.tname}`, {
        map: this.mapName,
        member: name,
      });
    return { m, idx };
  }

  isFuncPtr(name: string): boolean {
    return resolveFuncPtr(this.btf, this.member(name).m.type) !== 0;
  }

  get(name: string): StructOpsMemberValue {
    const { m, idx } = this.member(name);
    if (resolveFuncPtr(this.btf, m.type)) return this.st.progs[idx] ?? null;
    const { bytes, t } = this.slot(m);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (t.kind === BTF_KIND_INT || (t.kind !== BTF_KIND_ARRAY && t.kind !== BTF_KIND_STRUCT && bytes.length <= 8)) {
      const signed = t.kind === BTF_KIND_INT && (t.encoding & 1) !== 0;
      switch (bytes.length) {
        case 1:
          return signed ? dv.getInt8(0) : dv.getUint8(0);
        case 2:
          return signed ? dv.getInt16(0, true) : dv.getUint16(0, true);
        case 4:
          return signed ? dv.getInt32(0, true) : dv.getUint32(0, true);
        case 8:
          return signed ? dv.getBigInt64(0, true) : dv.getBigUint64(0, true);
      }
    }
    if (t.kind === BTF_KIND_ARRAY && bytes.length === t.nelems) {
      const end = bytes.indexOf(0);
      return new TextDecoder().decode(bytes.subarray(0, end < 0 ? bytes.length : end));
    }
    return bytes.slice();
  }

  set(name: string, value: StructOpsMemberValue): void {
    if (this.loaded)
      throw new BpfError(EBUSY, `struct_ops map '${this.mapName}': already loaded`, { map: this.mapName });
    const { m, idx } = this.member(name);
    if (resolveFuncPtr(this.btf, m.type)) {
      if (value !== null && !(typeof value === "object" && "insns" in value)) {
        throw new BpfError(EINVAL, `struct_ops map '${this.mapName}': member ${name} holds a program or null`, {
          map: this.mapName,
          member: name,
        });
      }
      this.st.progs[idx] = value as BpfProgram | null;
      return;
    }
    const { bytes } = this.slot(m);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (typeof value === "string") {
      const enc = new TextEncoder().encode(value);
      if (enc.length >= bytes.length) {
        throw new BpfError(EINVAL, `struct_ops map '${this.mapName}': '${value}' does not fit in ${name}`, {
          map: this.mapName,
          member: name,
        });
      }
      bytes.fill(0);
      bytes.set(enc);
    } else if (value instanceof Uint8Array) {
      if (value.length !== bytes.length) {
        throw new BpfError(EINVAL, `struct_ops map '${this.mapName}': ${name} is ${bytes.length} bytes`, {
          map: this.mapName,
          member: name,
        });
      }
      bytes.set(value);
    } else if (typeof value === "number" || typeof value === "bigint") {
      const v = BigInt.asUintN(bytes.length * 8, BigInt(value));
      for (let i = 0; i < bytes.length; i++) dv.setUint8(i, Number((v >> BigInt(8 * i)) & 0xffn));
    } else {
      throw new BpfError(EINVAL, `struct_ops map '${this.mapName}': ${name} is not a function pointer`, {
        map: this.mapName,
        member: name,
      });
    }
  }

  private slot(m: BtfMember): { bytes: Uint8Array; t: ReturnType<typeof skipModsAndTypedefs>["t"] } {
    if (m.bitfieldSize) {
      throw new BpfError(ENOTSUP, `struct_ops map '${this.mapName}': bitfield ${m.name} is not supported`);
    }
    const size = resolveSize(this.btf, m.type);
    const off = m.bitOffset / 8;
    return { bytes: this.st.data.subarray(off, off + size), t: skipModsAndTypedefs(this.btf, m.type).t };
  }
}

/** init_struct_ops_maps for one section. */
export function initStructOpsMaps(btf: Btf | undefined, sec: ElfSection): BpfMap[] {
  const secName = sec.name;
  const baseName = secName.startsWith("?") ? secName.slice(1) : secName;
  const datasecId = btf ? btf.findByNameKind(secName, BTF_KIND_DATASEC) : -1;
  if (!btf || datasecId < 0) {
    throw new BpfError(EINVAL, `struct_ops init: DATASEC ${secName} not found`, { section: secName });
  }
  const datasec = btf.typeById(datasecId);
  if (datasec.kind !== BTF_KIND_DATASEC) throw new BpfError(EINVAL, `struct_ops init: DATASEC ${secName} not found`);
  const maps: BpfMap[] = [];
  for (const vsi of datasec.vars) {
    const varName = btf.nameOf(vsi.type);
    let typeId: number;
    try {
      typeId = resolveType(btf, vsi.type);
    } catch {
      throw new BpfError(EINVAL, `struct_ops init: Cannot resolve var type_id ${vsi.type} in DATASEC ${secName}`);
    }
    const type = btf.typeById(typeId);
    const tname = type.name;
    if (!tname) throw new BpfError(ENOTSUP, "struct_ops init: anonymous type is not supported", { section: secName });
    if (type.kind !== BTF_KIND_STRUCT) {
      throw new BpfError(EINVAL, `struct_ops init: ${tname} is not a struct`, { section: secName });
    }
    if (vsi.offset + type.size > sec.size) {
      throw new BpfError(EINVAL, `struct_ops init: var ${varName} is beyond the end of DATASEC ${secName}`, {
        section: secName,
      });
    }
    const map = new BpfMap(varName, sec.index, vsi.offset, LIBBPF_MAP_UNSPEC, {
      type: bpf_map_type.BPF_MAP_TYPE_STRUCT_OPS,
      keySize: 4,
      valueSize: type.size,
      maxEntries: 1,
      mapFlags: baseName === STRUCT_OPS_LINK_SEC ? BPF_F_LINK : 0,
    });
    map.autoattach = true;
    map.autocreate = !secName.startsWith("?");
    // The local type is st_ops.typeId; the map itself carries only the kernel's value type.
    const data = sec.data.slice(vsi.offset, vsi.offset + type.size);
    map.structOps = new BpfStructOps(btf, tname, typeId, type, data, varName);
    maps.push(map);
  }
  return maps;
}

/** bpf_object__collect_st_ops_relos for one REL section of a struct_ops section. */
export function collectStructOpsRelos(
  btf: Btf,
  elf: ElfFile,
  targetShndx: number,
  rels: readonly ElfRel[],
  maps: readonly BpfMap[],
  findProg: (shndx: number, insnIdx: number) => BpfProgram | undefined,
): void {
  for (const rel of rels) {
    const sym = elf.symbols[rel.sym];
    if (!sym) throw new BpfError(LIBBPF_ERRNO__FORMAT, `struct_ops reloc: symbol ${rel.sym.toString(16)} not found`);
    const map = maps.find(
      (m) =>
        m.structOps && m.secIdx === targetShndx && rel.offset >= m.secOffset && rel.offset < m.secOffset + m.valueSize,
    );
    if (!map?.structOps) {
      throw new BpfError(EINVAL, `struct_ops reloc: cannot find map at rel->r_offset ${rel.offset}`);
    }
    const st = map.structOps;
    const moff = rel.offset - map.secOffset;
    const shdrIdx = sym.shndx;
    if (shdrIdx === SHN_UNDEF || shdrIdx >= SHN_LORESERVE) {
      throw new BpfError(
        LIBBPF_ERRNO__RELOC,
        `struct_ops reloc ${map.name}: rel->r_offset ${rel.offset} shdr_idx ${shdrIdx} unsupported non-static function`,
        { map: map.name },
      );
    }
    if (sym.value % 8 !== 0) {
      throw new BpfError(
        LIBBPF_ERRNO__FORMAT,
        `struct_ops reloc ${map.name}: invalid target program offset ${sym.value}`,
        {
          map: map.name,
        },
      );
    }
    const memberIdx = st.type.members.findIndex((m) => m.bitOffset === moff * 8);
    const member = st.type.members[memberIdx];
    if (!member) {
      throw new BpfError(EINVAL, `struct_ops reloc ${map.name}: cannot find member at moff ${moff}`, { map: map.name });
    }
    if (!resolveFuncPtr(btf, member.type)) {
      throw new BpfError(EINVAL, `struct_ops reloc ${map.name}: cannot relocate non func ptr ${member.name}`, {
        map: map.name,
        member: member.name,
      });
    }
    const prog = findProg(shdrIdx, sym.value / 8);
    if (!prog) {
      throw new BpfError(
        EINVAL,
        `struct_ops reloc ${map.name}: cannot find prog at shdr_idx ${shdrIdx} to relocate func ptr ${member.name}`,
        { map: map.name, member: member.name },
      );
    }
    if (prog.type !== bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS) {
      throw new BpfError(EINVAL, `struct_ops reloc ${map.name}: prog ${prog.name} is not struct_ops BPF program`, {
        map: map.name,
        prog: prog.name,
      });
    }
    st.progs[memberIdx] = prog;
    st.origProgs[memberIdx] = prog;
    // The pointer's bytes in the shadow hold nothing meaningful: the binding lives in progs[].
    st.data.fill(0, moff, moff + 8);
  }
}
