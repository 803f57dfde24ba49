/**
 * BpfObject: the open phase of libbpf's bpf_object (bpf_object_open): read the ELF, sort
 * its sections, collect externs, fix up DATASECs, create the map and program descriptions
 * and record relocations, all without a kernel. `load(kernel)` (object_load.ts) is the
 * later step that talks to the kernel through the bpf() API.
 *
 * The order follows libbpf: elf_collect -> collect_externs -> fixup_btf -> init_maps
 * (user .maps, global data, .kconfig, struct_ops) -> init_progs -> collect_relos.
 */
import { Btf } from "../btf/btf.js";
import { ElfFile, type ElfSection } from "../elf/elf.js";
import {
  EM_BPF,
  ET_REL,
  SHF_EXECINSTR,
  SHN_LORESERVE,
  SHT_LLVM_ADDRSIG,
  SHT_NOBITS,
  SHT_PROGBITS,
  SHT_REL,
  SHT_STRTAB,
  SHT_SYMTAB,
  STB_GLOBAL,
  STB_LOCAL,
  STB_WEAK,
  STT_FUNC,
  STT_OBJECT,
  STT_SECTION,
  STV_HIDDEN,
  STV_INTERNAL,
} from "../elf/elf_consts.js";
import { decodeInsns } from "../isa/insn.js";
import { basename, platform } from "../platform.js";
import { BPF_F_SLEEPABLE, BPF_OBJ_NAME_LEN } from "../uapi/bpf.js";
import { BTF_KIND_DATASEC, BTF_KIND_VAR, BTF_VAR_GLOBAL_EXTERN, BTF_VAR_STATIC } from "../uapi/btf.js";
import { BpfError, EINVAL, ENOENT, ENOTSUP, LIBBPF_ERRNO__FORMAT } from "../uapi/errno.js";
import { type BpfHandle, close as bpfClose } from "./bpf.js";
import { type BpfCoreRelo, BtfExt } from "./btf_ext.js";
import { type BpfExtern, collectExterns, KCONFIG_SEC, KSYMS_SEC, kconfigMapSize } from "./externs.js";
import { collectMapRelos } from "./map_init_slots.js";
import {
  type BpfMap,
  initInternalMap,
  LIBBPF_MAP_BSS,
  LIBBPF_MAP_DATA,
  LIBBPF_MAP_KCONFIG,
  LIBBPF_MAP_RODATA,
  LIBBPF_MAP_UNSPEC,
  parseBtfMapDef,
} from "./maps.js";
import { type BpfObjectLoadOpts, bpfObjectLoad } from "./object_load.js";
import { BpfProgram } from "./program.js";
import { recordReloc } from "./relo.js";
import { findSecDef, SEC_SLEEPABLE } from "./section_defs.js";
import { collectStructOpsRelos, initStructOpsMaps, isStructOpsSection } from "./struct_ops.js";

export type LibbpfPrintLevel = "warn" | "info" | "debug";
export type LibbpfPrintFn = (level: LibbpfPrintLevel, message: string) => void;

export interface BpfObjectOpenOpts {
  /** Object name (default: the file name up to its first dot). */
  name?: string;
  /** Opening bytes: the file they were read from (names the object and its messages as a path would). */
  path?: string;
  /** Kconfig text (`CONFIG_HZ=1000` lines) used for `.kconfig` externs at load, like open_opts.kconfig. */
  kconfig?: string;
  /** Receives libbpf's messages, each without the `libbpf: ` prefix. */
  print?: LibbpfPrintFn;
}

type SecKind = "none" | "text" | "progs" | "data" | "rodata" | "bss" | "st_ops" | "relo";

const MAPS_SEC = ".maps";
const BTF_ELF_SEC = ".BTF";
const BTF_EXT_ELF_SEC = ".BTF.ext";

function isDwarf(name: string): boolean {
  return name.startsWith(".debug_");
}

/** ignore_elf_section: string tables, addrsig, empty .text, DWARF and their relocations. */
function ignoreElfSection(s: ElfSection): boolean {
  if (s.type === SHT_STRTAB || s.type === SHT_LLVM_ADDRSIG) return true;
  if (s.type === SHT_PROGBITS && s.size === 0 && s.name === ".text") return true;
  if (isDwarf(s.name)) return true;
  if (s.name.startsWith(".rel")) {
    const target = s.name.slice(4);
    if (isDwarf(target) || target === BTF_ELF_SEC || target === BTF_EXT_ELF_SEC) return true;
  }
  return false;
}

export class BpfObject {
  readonly name: string;
  readonly path: string;
  readonly elf: ElfFile;
  readonly btf?: Btf;
  readonly btfExt?: BtfExt;
  license = "";
  kernVersion = 0;
  /** Entry programs and .text subprograms, in ELF order (libbpf keeps both in obj->programs). */
  readonly allPrograms: BpfProgram[] = [];
  readonly maps: BpfMap[] = [];
  readonly externs: BpfExtern[] = [];
  readonly kconfig?: string;
  readonly print: LibbpfPrintFn;
  textShndx = 0;
  mapsShndx = -1;
  loaded = false;
  /** Set by load: the object's BTF fd in the kernel (0 when not loaded) and the caller. */
  btfFd = 0;
  handle?: BpfHandle;
  private readonly secKinds: SecKind[];

  private constructor(bytes: Uint8Array, path: string, opts: BpfObjectOpenOpts) {
    this.path = path;
    this.print = opts.print ?? (() => {});
    this.kconfig = opts.kconfig;
    this.name = opts.name ?? objNameFromPath(path);
    this.elf = ElfFile.parse(bytes);
    const h = this.elf.header;
    if (h.type !== ET_REL || (h.machine !== 0 && h.machine !== EM_BPF)) {
      throw new BpfError(LIBBPF_ERRNO__FORMAT, `elf: ${path} is not a valid eBPF object file`);
    }
    this.secKinds = this.elf.sections.map(() => "none");
    const { btfData, btfExtData } = this.elfCollect();
    if (!this.elf.sectionByName("license") && this.allPrograms.length > 0) {
      // Open accepts it; the kernel refuses GPL-only helpers, kfuncs and struct_ops without one.
      this.print("warn", `elf: ${path} has no license section: programs will load as proprietary`);
    }
    this.btf = this.initBtf(btfData);
    if (this.btf && btfExtData) {
      try {
        this.btfExt = BtfExt.parse(btfExtData, this.btf);
      } catch (e) {
        if (!(e instanceof BpfError)) throw e;
        this.print("warn", `Error loading ELF section ${BTF_EXT_ELF_SEC}: -${e.errno}. Ignored and continue.`);
      }
    }
    this.externs = collectExterns(this.elf, this.btf);
    if (this.btf) this.fixupDatasecs(this.btf);
    this.initMaps();
    this.initProgs();
    this.collectRelos();
  }

  /** bpf_object__open_file / bpf_object__open_mem. */
  static open(pathOrBytes: string | Uint8Array, opts: BpfObjectOpenOpts = {}): BpfObject {
    if (typeof pathOrBytes === "string") {
      let bytes: Uint8Array;
      try {
        bytes = platform().readFile(pathOrBytes);
      } catch (e) {
        throw new BpfError(ENOENT, `elf: failed to open ${pathOrBytes}: ${(e as Error).message}`);
      }
      return new BpfObject(bytes, pathOrBytes, opts);
    }
    return new BpfObject(pathOrBytes, opts.path ?? opts.name ?? "mem", opts);
  }

  /** bpf_object__load: create maps, load programs (object_load.ts). Throws a BpfError on failure. */
  load(k: BpfHandle, opts: BpfObjectLoadOpts = {}): void {
    bpfObjectLoad(this, k, opts);
  }

  /** bpf_object__close: close every fd the load created. */
  close(): void {
    const k = this.handle;
    if (!k) return;
    for (const p of this.allPrograms) if (p.fd >= 0) bpfClose(k, p.fd);
    for (const m of this.maps) if (m.fd >= 0) bpfClose(k, m.fd);
    if (this.btfFd > 0) bpfClose(k, this.btfFd);
    for (const p of this.allPrograms) p.fd = -1;
    for (const m of this.maps) m.fd = -1;
    this.btfFd = 0;
  }

  /** Entry programs (not .text subprograms), as bpf_object__for_each_program lists them. */
  get programs(): BpfProgram[] {
    return this.allPrograms.filter((p) => !p.isSubprog);
  }

  get subprograms(): BpfProgram[] {
    return this.allPrograms.filter((p) => p.isSubprog);
  }

  findProgram(name: string): BpfProgram | undefined {
    return this.programs.find((p) => p.name === name);
  }

  findMap(name: string): BpfMap | undefined {
    return this.maps.find((m) => m.name === name || m.realName === name);
  }

  /** The internal map for a data section (`.bss`, `.rodata`, `.data`, `.kconfig`). */
  internalMap(realName: string): BpfMap | undefined {
    return this.maps.find((m) => m.realName === realName);
  }

  /** find_prog_by_sec_insn. */
  findProgBySecInsn(shndx: number, insnIdx: number): BpfProgram | undefined {
    return this.allPrograms.find((p) => p.secIdx === shndx && p.containsSecInsn(insnIdx));
  }

  /** libbpf map type of the data section `shndx` (bpf_object__section_to_libbpf_map_type). */
  sectionMapType(shndx: number): number {
    if (shndx === this.elf.symtabIndex) return LIBBPF_MAP_KCONFIG;
    switch (this.secKinds[shndx]) {
      case "data":
        return LIBBPF_MAP_DATA;
      case "rodata":
        return LIBBPF_MAP_RODATA;
      case "bss":
        return LIBBPF_MAP_BSS;
      default:
        return LIBBPF_MAP_UNSPEC;
    }
  }

  /** bpf_object__elf_collect: classify sections, read license/version, add programs. */
  private elfCollect(): { btfData?: Uint8Array; btfExtData?: Uint8Array } {
    const elf = this.elf;
    if (!elf.symtabIndex) {
      throw new BpfError(ENOENT, `elf: couldn't find symbol table in ${this.path}, stripped object file?`);
    }
    let btfData: Uint8Array | undefined;
    let btfExtData: Uint8Array | undefined;
    for (const s of elf.sections) {
      if (s.index === 0 || s.type === SHT_SYMTAB) continue;
      if (ignoreElfSection(s)) continue;
      const name = s.name;
      if (name === "license") {
        if (s.type === SHT_NOBITS) throw new BpfError(LIBBPF_ERRNO__FORMAT, `invalid license section in ${this.path}`);
        const end = s.data.indexOf(0);
        this.license = new TextDecoder().decode(s.data.subarray(0, Math.min(end < 0 ? s.size : end, 127)));
      } else if (name === "version") {
        if (s.size !== 4) throw new BpfError(LIBBPF_ERRNO__FORMAT, `invalid kver section in ${this.path}`);
        this.kernVersion = new DataView(s.data.buffer, s.data.byteOffset, 4).getUint32(0, elf.littleEndian);
      } else if (name === "maps") {
        throw new BpfError(ENOTSUP, `elf: legacy map definitions in 'maps' section are not supported by libbpf v1.0+`, {
          section: name,
        });
      } else if (name === MAPS_SEC) {
        this.mapsShndx = s.index;
      } else if (name === BTF_ELF_SEC) {
        btfData = s.data;
      } else if (name === BTF_EXT_ELF_SEC) {
        btfExtData = s.data;
      } else if (s.type === SHT_PROGBITS && s.size > 0) {
        if (s.flags & SHF_EXECINSTR) {
          if (name === ".text") this.textShndx = s.index;
          this.secKinds[s.index] = name === ".text" ? "text" : "progs";
          this.addPrograms(s);
        } else if (name === ".data" || name.startsWith(".data.")) {
          this.secKinds[s.index] = "data";
        } else if (name === ".rodata" || name.startsWith(".rodata.")) {
          this.secKinds[s.index] = "rodata";
        } else if (isStructOpsSection(name)) {
          this.secKinds[s.index] = "st_ops";
        } else {
          this.print("info", `elf: skipping unrecognized data section(${s.index}) ${name}`);
        }
      } else if (s.type === SHT_REL) {
        // Checked for every REL section, even those skipped below, as libbpf does.
        if (s.entsize !== 16 || s.info >= elf.sections.length) {
          throw new BpfError(
            LIBBPF_ERRNO__FORMAT,
            `elf: relo section(${s.index}) ${name}: invalid sh_entsize ${s.entsize} or target section ${s.info}`,
            { section: name },
          );
        }
        const target = elf.sections[s.info];
        const targetExec = target && target.flags & SHF_EXECINSTR;
        if (!target || (!targetExec && !isStructOpsSection(target.name) && target.name !== MAPS_SEC)) {
          this.print(
            "info",
            `elf: skipping relo section(${s.index}) ${name} for section(${s.info}) ${target?.name ?? "<?>"}`,
          );
          continue;
        }
        this.secKinds[s.index] = "relo";
      } else if (s.type === SHT_NOBITS && (name === ".bss" || name.startsWith(".bss."))) {
        this.secKinds[s.index] = "bss";
      } else {
        this.print("info", `elf: skipping section(${s.index}) ${name} (size ${s.size})`);
      }
    }
    return { btfData, btfExtData };
  }

  /** bpf_object__add_programs: one program per STT_FUNC symbol of an executable section. */
  private addPrograms(sec: ElfSection): void {
    const isText = sec.index === this.textShndx;
    const le = this.elf.littleEndian;
    const syms = this.elf.symbols.filter((s) => s.shndx === sec.index && s.type === STT_FUNC);
    for (const sym of syms) {
      const { value: off, size, name } = sym;
      if (off + size > sec.size) {
        throw new BpfError(
          LIBBPF_ERRNO__FORMAT,
          `sec '${sec.name}': program at offset ${off} crosses section boundary`,
          { section: sec.name },
        );
      }
      if (off % 8 !== 0 || size % 8 !== 0) {
        throw new BpfError(
          LIBBPF_ERRNO__FORMAT,
          `sec '${sec.name}': program '${name}' (off ${off}, size ${size}) is not aligned to instructions`,
          { section: sec.name, prog: name },
        );
      }
      if (!isText && sym.bind === STB_LOCAL) {
        throw new BpfError(ENOTSUP, `sec '${sec.name}': program '${name}' is static and not supported`, {
          section: sec.name,
          prog: name,
        });
      }
      // A `?` prefix turns autoload off; from then on the section is known without it.
      const optional = sec.name.startsWith("?");
      const prog = new BpfProgram({
        name,
        secName: optional ? sec.name.slice(1) : sec.name,
        secIdx: sec.index,
        secInsnOff: off / 8,
        insns: decodeInsns(sec.data.subarray(off, off + size), le),
        symGlobal: sym.bind !== STB_LOCAL,
        isSubprog: isText,
      });
      if (optional) prog.autoload = false;
      this.print(
        "debug",
        `sec '${sec.name}': found program '${name}' at insn offset ${off / 8} (${off} bytes), code size ${size / 8} insns (${size} bytes)`,
      );
      this.allPrograms.push(prog);
    }
  }

  /** bpf_object__init_btf: BTF is needed for .maps, externs and struct_ops; optional otherwise. */
  private initBtf(data: Uint8Array | undefined): Btf | undefined {
    const needsBtf =
      this.mapsShndx >= 0 ||
      this.secKinds.includes("st_ops") ||
      this.elf.symbols.some((s) => s.shndx === 0 && s.bind !== STB_LOCAL && s.type === 0 && s.name !== "");
    if (!data) {
      if (needsBtf) throw new BpfError(ENOENT, "BTF is required, but is missing or corrupted.");
      return undefined;
    }
    try {
      return Btf.parse(data);
    } catch (e) {
      if (!(e instanceof BpfError)) throw e;
      this.print("warn", `Error loading ELF section ${BTF_ELF_SEC}: -${e.errno}.`);
      if (needsBtf) throw e.wrap("BTF is required, but is missing or corrupted");
      return undefined;
    }
  }

  /**
   * btf_fixup_datasec: clang leaves DATASEC sizes and VAR offsets 0; take them from the ELF
   * section size and each variable's symbol (a static linker may have filled them already).
   * Hidden globals become static, and the variables are sorted by offset as the kernel
   * requires. `.kconfig` and `.ksyms` were laid out by collectExterns; static variables have
   * no global symbol and keep their offset.
   */
  private fixupDatasecs(btf: Btf): void {
    for (let id = 1; id <= btf.nrTypes; id++) {
      if (btf.kindOf(id) !== BTF_KIND_DATASEC) continue;
      const t = btf.typeById(id);
      if (t.kind !== BTF_KIND_DATASEC) continue;
      const secName = t.name;
      if (secName !== KCONFIG_SEC && secName !== KSYMS_SEC) {
        let fixupOffsets = false;
        if (t.size === 0) {
          const size = this.elf.sectionByName(secName)?.size ?? 0;
          if (!size) {
            throw new BpfError(
              ENOENT,
              `sec '${secName}': failed to determine size from ELF: size ${size}, err -${ENOENT}`,
              { section: secName },
            );
          }
          t.size = size;
          fixupOffsets = true;
        }
        for (const v of t.vars) {
          const vt = btf.typeById(v.type);
          if (vt.kind !== BTF_KIND_VAR) {
            throw new BpfError(EINVAL, `sec '${secName}': unexpected non-VAR type found`, { section: secName });
          }
          if (vt.linkage === BTF_VAR_STATIC || vt.linkage === BTF_VAR_GLOBAL_EXTERN) continue;
          const sym = this.elf.symbols.find(
            (s) => s.name === vt.name && s.type === STT_OBJECT && (s.bind === STB_GLOBAL || s.bind === STB_WEAK),
          );
          if (!sym) {
            throw new BpfError(ENOENT, `sec '${secName}': failed to find ELF symbol for VAR '${vt.name}'`, {
              section: secName,
            });
          }
          if (fixupOffsets) v.offset = sym.value;
          if (sym.visibility === STV_HIDDEN || sym.visibility === STV_INTERNAL) vt.linkage = BTF_VAR_STATIC;
        }
      }
      t.vars.sort((x, y) => x.offset - y.offset);
    }
  }

  /** bpf_object__init_maps: user .maps, then global data, .kconfig, struct_ops. */
  private initMaps(): void {
    const btf = this.btf;
    const dbg = (m: string) => this.print("debug", m);
    if (this.mapsShndx >= 0) {
      const sec = this.elf.section(this.mapsShndx);
      const dsId = btf ? btf.findByNameKind(MAPS_SEC, BTF_KIND_DATASEC) : -1;
      if (!btf || dsId < 0) throw new BpfError(EINVAL, `DATASEC '${MAPS_SEC}' not found.`, { section: MAPS_SEC });
      const ds = btf.typeById(dsId);
      if (ds.kind === BTF_KIND_DATASEC) {
        for (const v of ds.vars) {
          if (v.offset + v.size > sec.size) {
            throw new BpfError(EINVAL, `map '${btf.nameOf(v.type)}': BTF map definition is beyond ${MAPS_SEC}`);
          }
          this.maps.push(parseBtfMapDef(btf, v.type, this.mapsShndx, v.offset, v.size, dbg));
        }
      }
    }
    for (const s of this.elf.sections) {
      const kind = this.secKinds[s.index];
      if (s.size === 0) continue;
      if (kind === "data")
        this.maps.push(initInternalMap(btf, this.name, LIBBPF_MAP_DATA, s.name, s.index, s.data, s.size, dbg));
      else if (kind === "rodata")
        this.maps.push(initInternalMap(btf, this.name, LIBBPF_MAP_RODATA, s.name, s.index, s.data, s.size, dbg));
      else if (kind === "bss")
        this.maps.push(initInternalMap(btf, this.name, LIBBPF_MAP_BSS, s.name, s.index, undefined, s.size, dbg));
    }
    const kcfgSize = kconfigMapSize(this.externs);
    if (kcfgSize > 0) {
      this.maps.push(
        initInternalMap(
          btf,
          this.name,
          LIBBPF_MAP_KCONFIG,
          KCONFIG_SEC,
          this.elf.symtabIndex,
          undefined,
          kcfgSize,
          dbg,
        ),
      );
    }
    // Every struct_ops section in ELF order, as bpf_object_init_struct_ops walks them.
    for (const s of this.elf.sections) {
      if (this.secKinds[s.index] === "st_ops") this.maps.push(...initStructOpsMaps(btf, s));
    }
  }

  /** bpf_object_init_progs: program type, attach type and flags from the SEC_DEF table. */
  private initProgs(): void {
    for (const prog of this.allPrograms) {
      if (prog.isSubprog) continue;
      const def = findSecDef(prog.secName);
      if (!def) {
        // Not an error: the user may still set the type (bpf_program__set_type) before load.
        this.print("debug", `prog '${prog.name}': unrecognized ELF section name '${prog.secName}'`);
        continue;
      }
      prog.secDef = def;
      prog.type = def.progType;
      prog.expectedAttachType = def.expectedAttachType;
      if (def.flags & SEC_SLEEPABLE) prog.progFlags |= BPF_F_SLEEPABLE;
    }
  }

  /** bpf_object__collect_relos: program relocations, struct_ops bindings, .BTF.ext records. */
  private collectRelos(): void {
    const elf = this.elf;
    for (const rs of elf.sections) {
      if (this.secKinds[rs.index] !== "relo") continue;
      const target = elf.section(rs.info);
      const rels = elf.relocations(rs);
      if (isStructOpsSection(target.name)) {
        collectStructOpsRelos(this.btf as Btf, elf, target.index, rels, this.maps, (shndx, insn) =>
          this.findProgBySecInsn(shndx, insn),
        );
        continue;
      }
      if (target.name === MAPS_SEC) {
        collectMapRelos(this.btf, elf, target.index, rels, this.maps, (m) => this.print("debug", m), this.allPrograms);
        continue;
      }
      rels.forEach((rel, i) => {
        const sym = elf.symbols[rel.sym];
        if (!sym)
          throw new BpfError(LIBBPF_ERRNO__FORMAT, `sec '${rs.name}': symbol #${rel.sym} not found for relo #${i}`);
        if (rel.offset % 8 !== 0) {
          throw new BpfError(
            LIBBPF_ERRNO__FORMAT,
            `sec '${target.name}': invalid offset 0x${rel.offset.toString(16)} for relo #${i}`,
          );
        }
        const symName =
          sym.type === STT_SECTION && sym.nameOff === 0 ? (elf.sections[sym.shndx]?.name ?? "") : sym.name;
        const insnIdx = rel.offset / 8;
        const prog = this.findProgBySecInsn(target.index, insnIdx);
        if (!prog) {
          this.print(
            "debug",
            `sec '${rs.name}': relo #${i}: program not found in section '${target.name}' for insn #${insnIdx}`,
          );
          return;
        }
        prog.relos.push(
          recordReloc(
            {
              elf,
              textShndx: this.textShndx,
              mapsShndx: this.mapsShndx,
              maps: this.maps,
              externs: this.externs,
              sectionMapType: (shndx) => (shndx >= SHN_LORESERVE ? LIBBPF_MAP_UNSPEC : this.sectionMapType(shndx)),
            },
            prog,
            insnIdx - prog.secInsnOff,
            symName,
            sym,
          ),
        );
      });
    }
    this.attachBtfExt();
  }

  /** Give each program its func_info/line_info, insn offsets turned into program-relative indices. */
  private attachBtfExt(): void {
    const ext = this.btfExt;
    if (!ext) return;
    for (const prog of this.allPrograms) {
      const secName = this.elf.section(prog.secIdx).name;
      const within = (byteOff: number) => prog.containsSecInsn(byteOff / 8);
      prog.funcInfo = ext
        .funcInfoFor(secName)
        .filter((r) => within(r.insnOff))
        .map((r) => ({ ...r, insnOff: r.insnOff / 8 - prog.secInsnOff }));
      prog.lineInfo = ext
        .lineInfoFor(secName)
        .filter((r) => within(r.insnOff))
        .map((r) => ({ ...r, insnOff: r.insnOff / 8 - prog.secInsnOff }));
    }
  }

  /** CO-RE relocation records of a program, insn_off in bytes from the program's first instruction. */
  coreRelosFor(prog: BpfProgram): BpfCoreRelo[] {
    if (!this.btfExt) return [];
    const secName = this.elf.section(prog.secIdx).name;
    return this.btfExt
      .coreRelosFor(secName)
      .filter((r) => prog.containsSecInsn(r.insnOff / 8))
      .map((r) => ({ ...r, insnOff: r.insnOff - prog.secInsnOff * 8 }));
  }
}

/** libbpf: the file's basename, at most BPF_OBJ_NAME_LEN - 1 characters, cut at its first dot. */
function objNameFromPath(path: string): string {
  const base = basename(path).slice(0, BPF_OBJ_NAME_LEN - 1);
  const dot = base.indexOf(".");
  return dot >= 0 ? base.slice(0, dot) : base;
}
