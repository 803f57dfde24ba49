/**
 * Program relocations, recorded symbolically at open (libbpf bpf_program__record_reloc)
 * and resolved at load: map and global-data references, externs (kconfig/ksym variables and
 * kfunc calls) and BPF-to-BPF calls.
 */

import type { ElfFile, ElfSymbol } from "../elf/elf.js";
import { SHN_LORESERVE, SHN_UNDEF, STB_GLOBAL, STB_LOCAL, STT_FUNC, STT_SECTION } from "../elf/elf_consts.js";
import { type Insn, isLdImm64 } from "../isa/insn.js";
import { BPF_CALL, BPF_JMP } from "../isa/opcodes.js";
import {
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_VALUE,
} from "../uapi/bpf.js";
import { BpfError, LIBBPF_ERRNO__RELOC } from "../uapi/errno.js";
import type { BpfExtern } from "./externs.js";
import type { BpfMap } from "./maps.js";
import { LIBBPF_MAP_KCONFIG, LIBBPF_MAP_UNSPEC } from "./maps.js";
import type { BpfObject } from "./object.js";
import type { BpfProgram } from "./program.js";

export type RelocType =
  /** ld_imm64 of a `.maps` map: becomes BPF_PSEUDO_MAP_FD. */
  | "ld64"
  /** ld_imm64 of global data: BPF_PSEUDO_MAP_VALUE with the offset in the second imm. */
  | "data"
  /** ld_imm64 of a kconfig or ksym variable extern. */
  | "extern_ld64"
  /** call of a kfunc extern: BPF_PSEUDO_KFUNC_CALL with the kernel BTF id. */
  | "extern_call"
  /** BPF-to-BPF call into .text. */
  | "call"
  /** ld_imm64 of a subprogram's address (BPF_PSEUDO_FUNC). */
  | "subprog_addr";

export interface RelocDesc {
  type: RelocType;
  /** Instruction index relative to the program's first instruction. */
  insnIdx: number;
  /** Index into obj.maps for ld64/data. */
  mapIdx?: number;
  /** Symbol value: offset into the map value (data) or into .text (call). */
  symOff?: number;
  /** Index into obj.externs. */
  extIdx?: number;
  /** The symbol's name, for messages. */
  symName: string;
}

function relocErr(message: string, prog: BpfProgram, insn?: number): BpfError {
  return new BpfError(LIBBPF_ERRNO__RELOC, message, { prog: prog.name, ...(insn === undefined ? {} : { insn }) });
}

/** Context bpf_program__record_reloc needs from the object. */
export interface RecordRelocCtx {
  elf: ElfFile;
  textShndx: number;
  mapsShndx: number;
  maps: readonly BpfMap[];
  externs: readonly BpfExtern[];
  /** libbpf map type of a data section index (LIBBPF_MAP_UNSPEC when not a data section). */
  sectionMapType(shndx: number): number;
}

function symIsSubprog(sym: ElfSymbol, textShndx: number): boolean {
  if (!textShndx || sym.shndx !== textShndx) return false;
  if (sym.bind === STB_LOCAL && sym.type === STT_SECTION) return true;
  return sym.bind === STB_GLOBAL && sym.type === STT_FUNC;
}

export function symIsExtern(sym: ElfSymbol): boolean {
  return sym.shndx === SHN_UNDEF && (sym.bind === 1 || sym.bind === 2) && sym.type === 0;
}

/** bpf_program__record_reloc: classify one relocation against instruction `insnIdx` of `prog`. */
export function recordReloc(
  ctx: RecordRelocCtx,
  prog: BpfProgram,
  insnIdx: number,
  symName: string,
  sym: ElfSymbol,
): RelocDesc {
  const insn = prog.insns[insnIdx];
  if (!insn) throw relocErr(`prog '${prog.name}': invalid relo against '${symName}' for insns[${insnIdx}]`, prog);
  const isCall = insn.code === (BPF_JMP | BPF_CALL);
  if (!isCall && !isLdImm64(insn)) {
    throw relocErr(
      `prog '${prog.name}': invalid relo against '${symName}' for insns[${insnIdx}].code 0x${insn.code.toString(16)}`,
      prog,
      insnIdx,
    );
  }
  if (symIsExtern(sym)) {
    const extIdx = ctx.externs.findIndex((e) => e.symIdx === sym.index);
    if (extIdx < 0) {
      throw relocErr(
        `prog '${prog.name}': extern relo failed to find extern for '${symName}' (${sym.index})`,
        prog,
        insnIdx,
      );
    }
    return { type: isCall ? "extern_call" : "extern_ld64", insnIdx, extIdx, symName };
  }
  if (isCall) {
    if (insn.src !== BPF_PSEUDO_CALL) throw relocErr(`prog '${prog.name}': incorrect bpf_call opcode`, prog, insnIdx);
    if (!sym.shndx || sym.shndx !== ctx.textShndx) {
      const secName = ctx.elf.sections[sym.shndx]?.name ?? "";
      throw relocErr(`prog '${prog.name}': bad call relo against '${symName}' in section '${secName}'`, prog, insnIdx);
    }
    if (sym.value % 8 !== 0) {
      throw relocErr(`prog '${prog.name}': bad call relo against '${symName}' at offset ${sym.value}`, prog, insnIdx);
    }
    return { type: "call", insnIdx, symOff: sym.value, symName };
  }
  // sym_is_subprog: a function's address taken with ld_imm64 (a callback): a static one through
  // the .text section symbol (the offset in insn.imm), a global one through its own symbol.
  if (symIsSubprog(sym, ctx.textShndx)) {
    if (sym.value % 8 !== 0 || insn.imm % 8 !== 0) {
      throw relocErr(
        `prog '${prog.name}': bad subprog addr relo against '${symName}' at offset ${sym.value}+${insn.imm}`,
        prog,
        insnIdx,
      );
    }
    return { type: "subprog_addr", insnIdx, symOff: sym.value, symName };
  }
  if (!sym.shndx || sym.shndx >= SHN_LORESERVE) {
    throw relocErr(
      `prog '${prog.name}': invalid relo against '${symName}' in special section 0x${sym.shndx.toString(16)}; forgot to initialize global var?..`,
      prog,
      insnIdx,
    );
  }
  const type = ctx.sectionMapType(sym.shndx);
  const secName = ctx.elf.sections[sym.shndx]?.name ?? "";
  if (type === LIBBPF_MAP_UNSPEC) {
    if (sym.shndx !== ctx.mapsShndx) {
      throw relocErr(`prog '${prog.name}': bad map relo against '${symName}' in section '${secName}'`, prog, insnIdx);
    }
    const mapIdx = ctx.maps.findIndex(
      (m) => m.libbpfType === LIBBPF_MAP_UNSPEC && m.secIdx === sym.shndx && m.secOffset === sym.value,
    );
    if (mapIdx < 0) {
      throw relocErr(
        `prog '${prog.name}': map relo failed to find map for section '${secName}', off ${sym.value}`,
        prog,
        insnIdx,
      );
    }
    return { type: "ld64", insnIdx, mapIdx, symOff: 0, symName };
  }
  const mapIdx = ctx.maps.findIndex((m) => m.libbpfType === type && m.secIdx === sym.shndx);
  if (mapIdx < 0) {
    throw relocErr(`prog '${prog.name}': data relo failed to find map for section '${secName}'`, prog, insnIdx);
  }
  return { type: "data", insnIdx, mapIdx, symOff: sym.value, symName };
}

const callInsn = (i: Insn) => i.code === (BPF_JMP | BPF_CALL);

/** libbpf's poison values: `call <base + index>` says which map or kfunc was missing. */
export const POISON_LDIMM64_MAP_BASE = 2001000000;
export const POISON_CALL_KFUNC_BASE = 2002000000;

/** poison_map_ldimm64: a reference to a map that was not created becomes two invalid calls. */
function poisonMapLdimm64(insn: Insn, next: Insn | undefined, mapIdx: number): void {
  for (const i of next ? [insn, next] : [insn]) {
    i.code = BPF_JMP | BPF_CALL;
    i.dst = 0;
    i.src = 0;
    i.off = 0;
    i.imm = POISON_LDIMM64_MAP_BASE + mapIdx;
  }
}

/** bpf_object__reloc_code: append used .text subprograms and resolve every relocation. */
export function relocateProgram(
  obj: BpfObject,
  main: BpfProgram,
): { insns: Insn[]; appended: Map<BpfProgram, number> } {
  const insns = main.insns.map((i) => ({ ...i }));
  const appended = new Map<BpfProgram, number>([[main, 0]]);
  const work: BpfProgram[] = [main];
  while (work.length) {
    const prog = work.shift() as BpfProgram;
    const base = appended.get(prog) as number;
    for (const r of prog.relos) {
      const at = base + r.insnIdx;
      const insn = insns[at] as Insn;
      const next = insns[at + 1];
      switch (r.type) {
        case "ld64": {
          const map = obj.maps[r.mapIdx as number];
          if (!map || map.fd < 0) {
            poisonMapLdimm64(insn, next, r.mapIdx as number);
            break;
          }
          insn.src = BPF_PSEUDO_MAP_FD;
          insn.imm = map.fd;
          break;
        }
        case "data": {
          const map = obj.maps[r.mapIdx as number];
          if (!map || map.fd < 0) {
            poisonMapLdimm64(insn, next, r.mapIdx as number);
            break;
          }
          if (next) next.imm = (insn.imm + (r.symOff ?? 0)) | 0;
          insn.src = BPF_PSEUDO_MAP_VALUE;
          insn.imm = map?.fd ?? -1;
          break;
        }
        case "extern_ld64": {
          const ext = obj.externs[r.extIdx as number];
          if (ext?.kcfg) {
            const map = obj.maps.find((m) => m.libbpfType === LIBBPF_MAP_KCONFIG);
            insn.src = BPF_PSEUDO_MAP_VALUE;
            insn.imm = map?.fd ?? -1;
            if (next) next.imm = ext.kcfg.dataOff;
          } else if (ext?.ksym?.kernelBtfId) {
            insn.src = BPF_PSEUDO_BTF_ID;
            insn.imm = ext.ksym.kernelBtfId;
            // {kernel_btf_id, kernel_btf_obj_fd}: a module's symbol names the module's BTF by fd.
            if (next) next.imm = ext.ksym.kernelBtfObjFd;
          } else if (ext?.ksym) {
            // An unresolved __weak ksym is address 0 (a plain constant): `if (bpf_ksym_exists(f))`
            // is then known false and the verifier skips the poisoned call behind it.
            insn.src = 0;
            insn.imm = 0;
            if (next) next.imm = 0;
          }
          break;
        }
        case "extern_call": {
          const ext = obj.externs[r.extIdx as number];
          if (!ext?.ksym?.kernelBtfId) {
            // An unresolved __weak kfunc: a call the verifier rejects unless it is dead code.
            insn.src = 0;
            insn.off = 0;
            insn.imm = POISON_CALL_KFUNC_BASE + (r.extIdx as number);
            break;
          }
          insn.src = BPF_PSEUDO_KFUNC_CALL;
          insn.imm = ext.ksym.kernelBtfId;
          // {kernel_btf_id, btf_fd_idx}: a module kfunc's BTF is fd_array[off].
          insn.off = ext.ksym.btfFdIdx ?? 0;
          break;
        }
        case "call":
        case "subprog_addr": {
          const subIdx = (r.symOff ?? 0) / 8 + (callInsn(insn) ? insn.imm + 1 : insn.imm / 8);
          const sub = obj.allPrograms.find((p) => p.isSubprog && p.containsSecInsn(subIdx));
          if (!sub || sub.secInsnOff !== subIdx) {
            throw new BpfError(
              LIBBPF_ERRNO__RELOC,
              `prog '${main.name}': no .text pos ${subIdx} found for relo against '${r.symName}'`,
              { prog: main.name, insn: at },
            );
          }
          let subOff = appended.get(sub);
          if (subOff === undefined) {
            subOff = insns.length;
            appended.set(sub, subOff);
            for (const i of sub.insns) insns.push({ ...i });
            work.push(sub);
          }
          // Both count instructions from the next one: the kernel finds the callee the same way.
          insn.imm = subOff - (at + 1);
          if (r.type === "subprog_addr") insn.src = BPF_PSEUDO_FUNC;
          break;
        }
      }
    }
  }
  return { insns, appended };
}
