/**
 * Extern symbols (libbpf bpf_object__collect_externs): undefined GLOBAL/WEAK NOTYPE symbols
 * of the ELF, each described by a BTF VAR or FUNC with extern linkage inside the `.kconfig`
 * or `.ksyms` DATASEC. Kconfig externs get an offset in the `.kconfig` map (sorted by
 * alignment, then size, then name, as libbpf lays them out); ksyms (kernel variables and
 * kfuncs) are resolved against kernel BTF at load.
 */
import type { Btf } from "../btf/btf.js";
import type { ElfFile } from "../elf/elf.js";
import {
  BTF_FUNC_EXTERN,
  BTF_INT_BOOL,
  BTF_INT_CHAR,
  BTF_INT_SIGNED,
  BTF_KIND_ARRAY,
  BTF_KIND_DATASEC,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FUNC,
  BTF_KIND_INT,
  BTF_KIND_VAR,
  BTF_VAR_GLOBAL_ALLOCATED,
  BTF_VAR_GLOBAL_EXTERN,
} from "../uapi/btf.js";
import { BpfError, EINVAL, ENOENT, ENOTSUP, ESRCH } from "../uapi/errno.js";
import { alignOf, resolveSize, skipModsAndTypedefs } from "./btf_helpers.js";
import { symIsExtern } from "./relo.js";

export const KCONFIG_SEC = ".kconfig";
export const KSYMS_SEC = ".ksyms";

export type KcfgType = "unknown" | "bool" | "tristate" | "char" | "int" | "char_arr";

export interface BpfExtern {
  name: string;
  type: "kcfg" | "ksym";
  /** Local BTF id of the VAR or FUNC. */
  btfId: number;
  secBtfId: number;
  symIdx: number;
  isWeak: boolean;
  kcfg?: { type: KcfgType; size: number; align: number; isSigned: boolean; dataOff: number };
  /** ksym: the local type (VAR's type, or the FUNC's FUNC_PROTO) and, after load, the kernel's. */
  ksym?: {
    typeId: number;
    isFunc: boolean;
    kernelBtfId: number;
    kernelBtfObjFd: number;
    addr: bigint;
    /** The module BTF's index in the object's fd_array (0: vmlinux). */
    btfFdIdx?: number;
  };
  /** Resolved at load. */
  isSet: boolean;
}

/** find_kcfg_type. */
function findKcfgType(btf: Btf, id: number): { type: KcfgType; isSigned: boolean } {
  const t = skipModsAndTypedefs(btf, id).t;
  switch (t.kind) {
    case BTF_KIND_INT: {
      const signed = (t.encoding & BTF_INT_SIGNED) !== 0;
      if (t.size === 1 && t.encoding & BTF_INT_CHAR) return { type: "char", isSigned: signed };
      if (t.encoding & BTF_INT_BOOL) return { type: t.size === 1 ? "bool" : "unknown", isSigned: false };
      if (t.offset !== 0 || t.bits !== t.size * 8) return { type: "unknown", isSigned: false };
      return { type: "int", isSigned: signed };
    }
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
      return { type: t.name === "libbpf_tristate" && t.size === 4 ? "tristate" : "unknown", isSigned: false };
    case BTF_KIND_ARRAY: {
      if (t.nelems === 0) return { type: "unknown", isSigned: false };
      return { type: findKcfgType(btf, t.type).type === "char" ? "char_arr" : "unknown", isSigned: false };
    }
    default:
      return { type: "unknown", isSigned: false };
  }
}

/** find_extern_btf_id: the VAR or FUNC with extern linkage named `name`. */
function findExternBtfId(btf: Btf, name: string): number {
  for (const id of btf.findAllByName(name)) {
    const t = btf.typeById(id);
    if (t.kind === BTF_KIND_VAR && t.linkage === BTF_VAR_GLOBAL_EXTERN) return id;
    if (t.kind === BTF_KIND_FUNC && t.linkage === BTF_FUNC_EXTERN) return id;
  }
  return -ENOENT;
}

/** find_extern_sec_btf_id: the DATASEC that lists `btfId`. */
function findExternSecBtfId(btf: Btf, btfId: number): number {
  for (let id = 1; id <= btf.nrTypes; id++) {
    // The kind from the index: only DATASECs are decoded (names and all).
    if (btf.kindOf(id) !== BTF_KIND_DATASEC) continue;
    const t = btf.typeById(id);
    if (t.kind === BTF_KIND_DATASEC && t.vars.some((v) => v.type === btfId)) return id;
  }
  return -ENOENT;
}

/** bpf_object__collect_externs. Also fixes up the `.kconfig` DATASEC (size and offsets). */
export function collectExterns(elf: ElfFile, btf: Btf | undefined): BpfExtern[] {
  const externs: BpfExtern[] = [];
  const candidates = elf.symbols.filter(symIsExtern);
  if (candidates.length === 0) return externs;
  if (!btf) throw new BpfError(ESRCH, "extern symbols need BTF, and the object has none");
  for (const sym of candidates) {
    const name = sym.name;
    const btfId = findExternBtfId(btf, name);
    if (btfId <= 0) throw new BpfError(ESRCH, `failed to find BTF for extern '${name}': ${btfId}`);
    const secBtfId = findExternSecBtfId(btf, btfId);
    if (secBtfId <= 0) {
      throw new BpfError(ENOENT, `failed to find BTF for extern '${name}' [${btfId}] section: ${secBtfId}`);
    }
    const secName = btf.nameOf(secBtfId);
    const t = btf.typeById(btfId) as { kind: number; type: number };
    const ext: BpfExtern = {
      name,
      type: "ksym",
      btfId,
      secBtfId,
      symIdx: sym.index,
      isWeak: sym.bind === 2,
      isSet: false,
    };
    if (secName === KCONFIG_SEC) {
      if (t.kind === BTF_KIND_FUNC) {
        throw new BpfError(ENOTSUP, `extern function ${name} is unsupported under ${KCONFIG_SEC} section`);
      }
      let size: number;
      try {
        size = resolveSize(btf, t.type);
      } catch {
        throw new BpfError(EINVAL, `failed to resolve size of extern (kcfg) '${name}': -${EINVAL}`);
      }
      const kt = findKcfgType(btf, t.type);
      if (kt.type === "unknown") throw new BpfError(ENOTSUP, `extern (kcfg) '${name}': type is unsupported`);
      ext.type = "kcfg";
      ext.kcfg = { type: kt.type, size, align: alignOf(btf, t.type), isSigned: kt.isSigned, dataOff: 0 };
    } else if (secName === KSYMS_SEC) {
      const isFunc = t.kind === BTF_KIND_FUNC;
      ext.ksym = {
        typeId: isFunc ? t.type : skipModsAndTypedefs(btf, t.type).id,
        isFunc,
        kernelBtfId: 0,
        kernelBtfObjFd: 0,
        addr: 0n,
      };
    } else {
      throw new BpfError(ENOTSUP, `unrecognized extern section '${secName}'`);
    }
    externs.push(ext);
  }
  // cmp_externs: kconfig first; within, descending alignment, ascending size; then by name.
  externs.sort((a, b) => {
    if (a.type !== b.type) return a.type === "kcfg" ? -1 : 1;
    if (a.kcfg && b.kcfg) {
      if (a.kcfg.align !== b.kcfg.align) return b.kcfg.align - a.kcfg.align;
      if (a.kcfg.size !== b.kcfg.size) return a.kcfg.size - b.kcfg.size;
    }
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
  let off = 0;
  for (const ext of externs) {
    if (!ext.kcfg) continue;
    ext.kcfg.dataOff = Math.ceil(off / ext.kcfg.align) * ext.kcfg.align;
    off = ext.kcfg.dataOff + ext.kcfg.size;
  }
  const kcfgSec = btf.findByNameKind(KCONFIG_SEC, BTF_KIND_DATASEC);
  if (kcfgSec > 0) {
    const sec = btf.typeById(kcfgSec);
    if (sec.kind === BTF_KIND_DATASEC) {
      sec.size = off;
      for (const v of sec.vars) {
        const vname = btf.nameOf(v.type);
        const ext = externs.find((e) => e.name === vname);
        if (!ext?.kcfg) throw new BpfError(ESRCH, `failed to find extern definition for BTF var '${vname}'`);
        // the kernel takes static and allocated VARs only: a kconfig extern is data of the .kconfig map
        const vt = btf.typeById(v.type);
        if (vt.kind === BTF_KIND_VAR) vt.linkage = BTF_VAR_GLOBAL_ALLOCATED;
        v.offset = ext.kcfg.dataOff;
      }
    }
  }
  return externs;
}

/** Size of the `.kconfig` map: end of the last kconfig extern, 0 when there are none. */
export function kconfigMapSize(externs: readonly BpfExtern[]): number {
  let end = 0;
  for (const e of externs) if (e.kcfg) end = Math.max(end, e.kcfg.dataOff + e.kcfg.size);
  return end;
}
