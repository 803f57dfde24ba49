/**
 * ELF64 reader for BPF relocatable objects: header, section headers, section names, the
 * symbol table and SHT_REL relocations, in either byte order. It does what libbpf asks of
 * libelf in bpf_object__elf_init/elf_collect, and nothing more. Every offset and count read
 * from the file is checked against the file before use, so a corrupt or truncated object
 * gives a BpfError (LIBBPF_ERRNO__FORMAT, as libbpf reports libelf failures) rather than a
 * crash, a huge allocation or a hang.
 */
import { BpfError, LIBBPF_ERRNO__FORMAT } from "../uapi/errno.js";
import {
  EI_CLASS,
  EI_DATA,
  EI_NIDENT,
  ELF64_EHDR_SIZE,
  ELF64_REL_SIZE,
  ELF64_SHDR_SIZE,
  ELF64_SYM_SIZE,
  ELFCLASS64,
  ELFDATA2LSB,
  ELFDATA2MSB,
  ELFMAG,
  SHN_LORESERVE,
  SHN_XINDEX,
  SHT_NOBITS,
  SHT_NULL,
  SHT_REL,
  SHT_STRTAB,
  SHT_SYMTAB,
} from "./elf_consts.js";

export interface ElfHeader {
  littleEndian: boolean;
  type: number;
  machine: number;
  version: number;
  flags: number;
  shoff: number;
  shentsize: number;
  shnum: number;
  shstrndx: number;
}

export interface ElfSection {
  index: number;
  name: string;
  nameOff: number;
  type: number;
  flags: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  addralign: number;
  entsize: number;
  /** The section's bytes (a view into the file); empty for SHT_NOBITS and SHT_NULL. */
  data: Uint8Array;
}

export interface ElfSymbol {
  index: number;
  name: string;
  nameOff: number;
  value: number;
  size: number;
  /** STB_* (st_info >> 4). */
  bind: number;
  /** STT_* (st_info & 0xf). */
  type: number;
  /** STV_* (st_other & 3). */
  visibility: number;
  shndx: number;
}

export interface ElfRel {
  offset: number;
  sym: number;
  type: number;
}

function formatError(message: string, section?: string): BpfError {
  return new BpfError(LIBBPF_ERRNO__FORMAT, `elf: ${message}`, section === undefined ? {} : { section });
}

/** A u64 field as a JS number; anything beyond 2^53 cannot be a valid offset or size here. */
function u64(dv: DataView, off: number, le: boolean, what: string): number {
  const v = dv.getBigUint64(off, le);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError(`${what} 0x${v.toString(16)} is out of range`);
  return Number(v);
}

export class ElfFile {
  readonly bytes: Uint8Array;
  readonly header: ElfHeader;
  readonly sections: ElfSection[];
  /** The `.symtab` symbols (index 0 is the null symbol), empty when there is no symtab. */
  readonly symbols: ElfSymbol[];
  /** Index of the SHT_SYMTAB section, 0 when absent. */
  readonly symtabIndex: number;
  private readonly dv: DataView;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.header = this.readHeader();
    this.sections = this.readSections();
    const symtabs = this.sections.filter((s) => s.type === SHT_SYMTAB);
    if (symtabs.length > 1) throw formatError("multiple symbol tables");
    this.symtabIndex = symtabs[0]?.index ?? 0;
    this.symbols = symtabs[0] ? this.readSymbols(symtabs[0]) : [];
  }

  static parse(bytes: Uint8Array): ElfFile {
    return new ElfFile(bytes);
  }

  get littleEndian(): boolean {
    return this.header.littleEndian;
  }

  sectionByName(name: string): ElfSection | undefined {
    return this.sections.find((s) => s.name === name);
  }

  section(index: number): ElfSection {
    const s = this.sections[index];
    if (!s) throw formatError(`invalid section index ${index}`);
    return s;
  }

  /** The SHT_REL sections that relocate section `target` (found by sh_info, never by name). */
  relSectionsFor(target: number): ElfSection[] {
    return this.sections.filter((s) => s.type === SHT_REL && s.info === target);
  }

  /** Decode the entries of a SHT_REL section, checking each symbol index against the symtab. */
  relocations(rel: ElfSection): ElfRel[] {
    if (rel.type !== SHT_REL) throw formatError(`section(${rel.index}) ${rel.name} is not a SHT_REL section`);
    if (rel.entsize !== ELF64_REL_SIZE) {
      throw formatError(`relo section(${rel.index}) ${rel.name} has invalid sh_entsize ${rel.entsize}`, rel.name);
    }
    if (rel.size % ELF64_REL_SIZE !== 0) {
      throw formatError(`relo section(${rel.index}) ${rel.name} size ${rel.size} is not a multiple of entries`);
    }
    if (rel.link !== this.symtabIndex) {
      throw formatError(`relo section(${rel.index}) ${rel.name} does not link to the symbol table`, rel.name);
    }
    const n = rel.size / ELF64_REL_SIZE;
    const le = this.littleEndian;
    const dv = new DataView(rel.data.buffer, rel.data.byteOffset, rel.data.byteLength);
    const out: ElfRel[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const o = i * ELF64_REL_SIZE;
      const offset = u64(dv, o, le, "r_offset");
      const info = dv.getBigUint64(o + 8, le);
      const sym = Number(info >> 32n);
      const type = Number(info & 0xffffffffn);
      if (sym >= this.symbols.length) {
        throw formatError(`relo #${i} in section(${rel.index}) ${rel.name}: invalid symbol index ${sym}`, rel.name);
      }
      out[i] = { offset, sym, type };
    }
    return out;
  }

  private readHeader(): ElfHeader {
    const b = this.bytes;
    if (b.length < EI_NIDENT || !ELFMAG.every((m, i) => b[i] === m)) throw formatError("not a proper ELF object");
    if (b[EI_CLASS] !== ELFCLASS64) throw formatError("not a 64-bit ELF object");
    if (b[EI_DATA] !== ELFDATA2LSB && b[EI_DATA] !== ELFDATA2MSB) {
      throw formatError(`unknown ELF data encoding ${b[EI_DATA]}`);
    }
    if (b.length < ELF64_EHDR_SIZE) throw formatError(`failed to get ELF header: file is ${b.length} bytes`);
    const le = b[EI_DATA] === ELFDATA2LSB;
    const dv = this.dv;
    const h: ElfHeader = {
      littleEndian: le,
      type: dv.getUint16(16, le),
      machine: dv.getUint16(18, le),
      version: dv.getUint32(20, le),
      shoff: u64(dv, 40, le, "e_shoff"),
      flags: dv.getUint32(48, le),
      shentsize: dv.getUint16(58, le),
      shnum: dv.getUint16(60, le),
      shstrndx: dv.getUint16(62, le),
    };
    if (h.shoff === 0) throw formatError("no section header table");
    if (h.shentsize !== ELF64_SHDR_SIZE) throw formatError(`invalid e_shentsize ${h.shentsize}`);
    // Extended numbering: the real counts live in section header 0.
    if (h.shoff + ELF64_SHDR_SIZE > b.length) throw formatError(`section headers at ${h.shoff} are past the end`);
    if (h.shnum === 0) h.shnum = u64(dv, h.shoff + 32, le, "section count");
    if (h.shstrndx === SHN_XINDEX) h.shstrndx = dv.getUint32(h.shoff + 40, le);
    if (h.shoff + h.shnum * ELF64_SHDR_SIZE > b.length) {
      throw formatError(`${h.shnum} section headers at ${h.shoff} run past the end of the ${b.length}-byte file`);
    }
    if (h.shstrndx === 0 || h.shstrndx >= h.shnum) {
      throw formatError(`failed to get section names section index: e_shstrndx ${h.shstrndx} of ${h.shnum}`);
    }
    return h;
  }

  private readSections(): ElfSection[] {
    const { shoff, shnum, shstrndx, littleEndian: le } = this.header;
    const dv = this.dv;
    const secs: ElfSection[] = new Array(shnum);
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * ELF64_SHDR_SIZE;
      const type = dv.getUint32(o + 4, le);
      const offset = u64(dv, o + 24, le, `section(${i}) sh_offset`);
      const size = u64(dv, o + 32, le, `section(${i}) sh_size`);
      const hasData = type !== SHT_NOBITS && type !== SHT_NULL;
      if (hasData && offset + size > this.bytes.length) {
        throw formatError(`failed to get section(${i}) data: [${offset}, ${offset + size}) is past the end`);
      }
      secs[i] = {
        index: i,
        name: "",
        nameOff: dv.getUint32(o, le),
        type,
        flags: u64(dv, o + 8, le, `section(${i}) sh_flags`),
        offset,
        size,
        link: dv.getUint32(o + 40, le),
        info: dv.getUint32(o + 44, le),
        addralign: u64(dv, o + 48, le, `section(${i}) sh_addralign`),
        entsize: u64(dv, o + 56, le, `section(${i}) sh_entsize`),
        data: hasData ? this.bytes.subarray(offset, offset + size) : new Uint8Array(0),
      };
    }
    const shstr = secs[shstrndx] as ElfSection;
    if (shstr.type !== SHT_STRTAB) throw formatError(`section names section(${shstrndx}) is not a string table`);
    for (const s of secs) {
      if (s.index === 0) continue;
      s.name = readString(shstr, s.nameOff, `section(${s.index}) name`);
    }
    return secs;
  }

  private readSymbols(symtab: ElfSection): ElfSymbol[] {
    if (symtab.entsize !== ELF64_SYM_SIZE) {
      throw formatError(`symbol table section(${symtab.index}) has invalid sh_entsize ${symtab.entsize}`);
    }
    if (symtab.size % ELF64_SYM_SIZE !== 0) {
      throw formatError(`symbol table size ${symtab.size} is not a multiple of ${ELF64_SYM_SIZE}`);
    }
    const strtab = this.sections[symtab.link];
    if (!strtab || strtab.type !== SHT_STRTAB) {
      throw formatError(`symbol table's string table section(${symtab.link}) is invalid`);
    }
    const le = this.littleEndian;
    const dv = new DataView(symtab.data.buffer, symtab.data.byteOffset, symtab.data.byteLength);
    const n = symtab.size / ELF64_SYM_SIZE;
    const syms: ElfSymbol[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const o = i * ELF64_SYM_SIZE;
      const nameOff = dv.getUint32(o, le);
      const info = dv.getUint8(o + 4);
      const shndx = dv.getUint16(o + 6, le);
      if (shndx !== 0 && shndx < SHN_LORESERVE && shndx >= this.sections.length) {
        throw formatError(`symbol #${i} has invalid section index ${shndx}`);
      }
      syms[i] = {
        index: i,
        name: readString(strtab, nameOff, `symbol #${i} name`),
        nameOff,
        value: u64(dv, o + 8, le, `symbol #${i} st_value`),
        size: u64(dv, o + 16, le, `symbol #${i} st_size`),
        bind: info >> 4,
        type: info & 0xf,
        visibility: dv.getUint8(o + 5) & 3,
        shndx,
      };
    }
    return syms;
  }
}

const utf8 = new TextDecoder("utf-8");

/** A NUL-terminated string at `off` of a string table section; unterminated is an error. */
export function readString(strtab: ElfSection, off: number, what: string): string {
  const d = strtab.data;
  if (off >= d.length) {
    if (off === 0) return "";
    throw formatError(`${what}: string offset ${off} is past the end of ${strtab.name || "string table"}`);
  }
  const end = d.indexOf(0, off);
  if (end < 0) throw formatError(`${what}: string at offset ${off} is not NUL-terminated`);
  return utf8.decode(d.subarray(off, end));
}
