/**
 * CO-RE relocations (libbpf relo_core.c), as a pure function over instructions and two BTFs:
 * parse the local access spec ("0:3:1" = root[0].member3.member1), find target candidates by
 * essential name (`tcp_sock___v1` matches `tcp_sock`), match the spec against each candidate
 * by member name, compute the local and target values for the relocation kind, then patch
 * the instruction as bpf_core_patch_insn does. A relocation no candidate satisfies poisons
 * its instruction (`call 0xbad2310`): harmless in dead code, a verifier error otherwise.
 */
import type { Btf } from "../btf/btf.js";
import { type Insn, isLdImm64 } from "../isa/insn.js";
import {
  BPF_ALU,
  BPF_ALU64,
  BPF_B,
  BPF_CALL,
  BPF_CLASS,
  BPF_DW,
  BPF_H,
  BPF_JMP,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_MODE,
  BPF_SIZE,
  BPF_SRC,
  BPF_ST,
  BPF_STX,
  BPF_W,
} from "../isa/opcodes.js";
import { BTF_INT_SIGNED, BTF_KIND_INT, BTF_KIND_PTR } from "../uapi/btf.js";
import { BpfError, E2BIG, EINVAL, EOPNOTSUPP, ERANGE } from "../uapi/errno.js";
import {
  BPF_CORE_ENUMVAL_EXISTS,
  BPF_CORE_ENUMVAL_VALUE,
  BPF_CORE_FIELD_BYTE_OFFSET,
  BPF_CORE_FIELD_BYTE_SIZE,
  BPF_CORE_FIELD_EXISTS,
  BPF_CORE_FIELD_LSHIFT_U64,
  BPF_CORE_FIELD_RSHIFT_U64,
  BPF_CORE_FIELD_SIGNED,
  BPF_CORE_TYPE_EXISTS,
  BPF_CORE_TYPE_ID_LOCAL,
  BPF_CORE_TYPE_ID_TARGET,
  BPF_CORE_TYPE_MATCHES,
  BPF_CORE_TYPE_SIZE,
  type BpfCoreRelo,
} from "./btf_ext.js";
import { isComposite, skipModsAndTypedefs } from "./btf_helpers.js";

import {
  type Accessor,
  CORE_RELO_KIND_NAMES,
  CoreFail,
  type CoreSpec,
  EUCLEAN,
  fail,
  findCands,
  isAnyEnum,
  isEnumvalBased,
  isFieldBased,
  isTypeBased,
  parseSpec,
  sizeOr,
  specMatch,
  specToString,
} from "./relo_core_spec.js";

export { CORE_RELO_KIND_NAMES, typesAreCompat, typesMatch } from "./relo_core_spec.js";
/** The imm of a poisoned instruction: the verifier reports `invalid func unknown#195896080`. */
export const BPF_CORE_POISON_IMM = 0xbad2310;
const SHRT_MAX = 0x7fff;

/** struct bpf_core_relo_res. */
export interface CoreReloRes {
  origVal: bigint;
  newVal: bigint;
  poison: boolean;
  validate: boolean;
  failMemszAdjust: boolean;
  origSz: number;
  newSz: number;
  origTypeId: number;
  newTypeId: number;
}

/** A result that keeps `val` (validated, not poisoned, no sizes or type ids yet). */
function unchangedRes(val: bigint): CoreReloRes {
  return {
    origVal: val,
    newVal: val,
    poison: false,
    validate: true,
    failMemszAdjust: false,
    origSz: 0,
    newSz: 0,
    origTypeId: 0,
    newTypeId: 0,
  };
}

export interface CoreReloOutcome {
  insnIdx: number;
  kind: number;
  res: CoreReloRes;
  /** Human-readable spec, as libbpf's debug output shows it. */
  spec: string;
}

export interface CoreApplyOpts {
  progName?: string;
  print?: (level: "warn" | "debug", message: string) => void;
  /**
   * Module BTFs (split over the target), loaded on first need: where vmlinux has no candidate,
   * libbpf's bpf_core_find_cands looks among each module's own types.
   */
  moduleBtfs?: () => readonly { btf: Btf; name: string }[];
}

/** A candidate target type and the BTF (vmlinux or a module's) it is in. */
interface CoreCand {
  btf: Btf;
  id: number;
}

interface FieldVal {
  val: bigint;
  sz: number;
  typeId: number;
  validate: boolean;
}

/** bpf_core_calc_field_relo. `spec` undefined: no target matched. */
function calcFieldRelo(relo: BpfCoreRelo, spec: CoreSpec | undefined): FieldVal {
  const out: FieldVal = { val: 0n, sz: 0, typeId: 0, validate: true };
  if (relo.kind === BPF_CORE_FIELD_EXISTS) {
    out.val = spec ? 1n : 0n;
    return out;
  }
  if (!spec) fail(EUCLEAN);
  const acc = spec.spec[spec.spec.length - 1] as Accessor;
  const t = spec.btf.typeById(acc.typeId);
  if (!acc.name) {
    if (relo.kind === BPF_CORE_FIELD_BYTE_OFFSET) {
      // C's integer division: a spec through an unaligned member truncates (and then fails validation)
      out.val = BigInt(Math.floor(spec.bitOffset / 8));
      out.sz = sizeOr(spec.btf, acc.typeId);
      out.typeId = acc.typeId;
    } else if (relo.kind === BPF_CORE_FIELD_BYTE_SIZE) {
      out.val = BigInt(sizeOr(spec.btf, acc.typeId));
    } else {
      fail(EINVAL);
    }
    return out;
  }
  const m = isComposite(t) ? t.members[acc.idx] : undefined;
  if (!m) fail(EINVAL);
  const { id: fieldTypeId, t: mt } = skipModsAndTypedefs(spec.btf, m.type);
  const bitfield = m.bitfieldSize !== 0;
  const bitOff = spec.bitOffset;
  let bitSz = m.bitfieldSize;
  let byteSz: number;
  let byteOff: number;
  if (bitfield) {
    byteSz = (mt as { size?: number }).size ?? 0;
    // a bitfield of a sizeless type: libbpf would divide by zero
    if (!(byteSz > 0)) fail(EINVAL);
    byteOff = Math.floor(bitOff / 8 / byteSz) * byteSz;
    // The smallest load that covers the whole bitfield.
    while (bitOff + bitSz - byteOff * 8 > byteSz * 8) {
      if (byteSz >= 8) fail(E2BIG);
      byteSz *= 2;
      byteOff = Math.floor(bitOff / 8 / byteSz) * byteSz;
    }
  } else {
    byteSz = sizeOr(spec.btf, fieldTypeId);
    byteOff = Math.floor(spec.bitOffset / 8);
    bitSz = byteSz * 8;
  }
  // Bitfield offsets and sizes may legitimately differ from the compiler's choice; signedness cannot.
  out.validate = !bitfield;
  switch (relo.kind) {
    case BPF_CORE_FIELD_BYTE_OFFSET:
      out.val = BigInt(byteOff);
      if (!bitfield) {
        out.sz = byteSz;
        out.typeId = fieldTypeId;
      }
      break;
    case BPF_CORE_FIELD_BYTE_SIZE:
      out.val = BigInt(byteSz);
      break;
    case BPF_CORE_FIELD_SIGNED:
      out.val =
        (isAnyEnum(mt) && mt.kindFlag) || (mt.kind === BTF_KIND_INT && (mt.encoding & BTF_INT_SIGNED) !== 0) ? 1n : 0n;
      out.validate = true;
      break;
    case BPF_CORE_FIELD_LSHIFT_U64:
      // Little-endian target, as the simulated machine is.
      out.val = BigInt(64 - (bitOff + bitSz - byteOff * 8));
      break;
    case BPF_CORE_FIELD_RSHIFT_U64:
      out.val = BigInt(64 - bitSz);
      out.validate = true;
      break;
    default:
      fail(EOPNOTSUPP);
  }
  return out;
}

/** bpf_core_calc_type_relo. */
function calcTypeRelo(relo: BpfCoreRelo, spec: CoreSpec | undefined): bigint {
  if (!spec) {
    if (relo.kind === BPF_CORE_TYPE_EXISTS || relo.kind === BPF_CORE_TYPE_MATCHES) return 0n;
    fail(EUCLEAN);
  }
  switch (relo.kind) {
    case BPF_CORE_TYPE_ID_TARGET:
      return BigInt(spec.rootTypeId);
    case BPF_CORE_TYPE_EXISTS:
    case BPF_CORE_TYPE_MATCHES:
      return 1n;
    case BPF_CORE_TYPE_SIZE:
      return BigInt(sizeOr(spec.btf, spec.rootTypeId));
    default:
      fail(EOPNOTSUPP);
  }
}

/** bpf_core_calc_enumval_relo. */
function calcEnumvalRelo(relo: BpfCoreRelo, spec: CoreSpec | undefined): bigint {
  if (!spec) {
    if (relo.kind === BPF_CORE_ENUMVAL_EXISTS) return 0n;
    fail(EUCLEAN);
  }
  if (relo.kind === BPF_CORE_ENUMVAL_EXISTS) return 1n;
  if (relo.kind !== BPF_CORE_ENUMVAL_VALUE) fail(EOPNOTSUPP);
  const acc = spec.spec[0] as Accessor;
  const t = spec.btf.typeById(acc.typeId);
  if (!isAnyEnum(t)) fail(EINVAL);
  const v = t.values[acc.idx]?.val ?? 0;
  return BigInt.asUintN(64, BigInt(v));
}

/** bpf_core_calc_relo: local and target values; a missing target poisons unless the kind says 0. */
function calcRelo(relo: BpfCoreRelo, ls: CoreSpec, ts: CoreSpec | undefined): CoreReloRes {
  const res = unchangedRes(0n);
  try {
    if (isFieldBased(relo.kind)) {
      const o = calcFieldRelo(relo, ls);
      res.origVal = o.val;
      res.origSz = o.sz;
      res.origTypeId = o.typeId;
      res.validate = o.validate;
      const n = calcFieldRelo(relo, ts);
      res.newVal = n.val;
      res.newSz = n.sz;
      res.newTypeId = n.typeId;
      if (res.origSz !== res.newSz) {
        // Resizing a load is safe for pointers and unsigned integers only (zero extension).
        const ot = ls.btf.typeById(res.origTypeId);
        const nt = (ts as CoreSpec).btf.typeById(res.newTypeId);
        const safe =
          (ot.kind === BTF_KIND_PTR && nt.kind === BTF_KIND_PTR) ||
          (ot.kind === BTF_KIND_INT &&
            nt.kind === BTF_KIND_INT &&
            ot.encoding !== BTF_INT_SIGNED &&
            nt.encoding !== BTF_INT_SIGNED);
        res.failMemszAdjust = !safe;
      }
    } else if (isTypeBased(relo.kind)) {
      res.origVal = calcTypeRelo(relo, ls);
      res.newVal = calcTypeRelo(relo, ts);
    } else if (isEnumvalBased(relo.kind)) {
      res.origVal = calcEnumvalRelo(relo, ls);
      res.newVal = calcEnumvalRelo(relo, ts);
    }
  } catch (e) {
    if (e instanceof CoreFail && e.errno === EUCLEAN) res.poison = true;
    else throw e;
  }
  return res;
}

function bytesToBpfSize(sz: number): number {
  return sz === 1 ? BPF_B : sz === 2 ? BPF_H : sz === 4 ? BPF_W : sz === 8 ? BPF_DW : -1;
}

function bpfSizeToBytes(code: number): number {
  const s = BPF_SIZE(code);
  return s === BPF_B ? 1 : s === BPF_H ? 2 : s === BPF_W ? 4 : 8;
}

function poisonInsn(insn: Insn): void {
  insn.code = BPF_JMP | BPF_CALL;
  insn.dst = 0;
  insn.src = 0;
  insn.off = 0;
  insn.imm = BPF_CORE_POISON_IMM;
}

/** bpf_core_patch_insn. */
function patchInsn(
  insns: Insn[],
  idx: number,
  reloIdx: number,
  res: CoreReloRes,
  pfx: string,
  warn: (m: string) => void,
  debug: (m: string) => void = () => {},
): void {
  const insn = insns[idx] as Insn;
  const err = (errno: number, msg: string): never => {
    warn(`${pfx}relo #${reloIdx}: ${msg}`);
    throw new BpfError(errno, `${pfx}relo #${reloIdx}: ${msg}`, { insn: idx });
  };
  const poison = () => {
    if (isLdImm64(insn) && insns[idx + 1]) {
      debug(`${pfx}relo #${reloIdx}: substituting insn #${idx + 1} w/ invalid insn`);
      poisonInsn(insns[idx + 1] as Insn);
    }
    debug(`${pfx}relo #${reloIdx}: substituting insn #${idx} w/ invalid insn`);
    poisonInsn(insn);
  };
  if (res.poison) {
    poison();
    return;
  }
  const orig = res.origVal;
  const nv = res.newVal;
  const cls = BPF_CLASS(insn.code);
  switch (cls) {
    case BPF_ALU:
    case BPF_ALU64:
      if (BPF_SRC(insn.code) !== BPF_K) err(EINVAL, `insn #${idx} (ALU/ALU64) does not use an immediate`);
      if (res.validate && BigInt(insn.imm >>> 0) !== orig && BigInt(insn.imm) !== orig) {
        err(EINVAL, `unexpected insn #${idx} (ALU/ALU64) value: got ${insn.imm >>> 0}, exp ${orig} -> ${nv}`);
      }
      debug(
        `${pfx}relo #${reloIdx}: patched insn #${idx} (ALU/ALU64) imm ${BigInt.asUintN(64, BigInt(insn.imm))} -> ${nv}`,
      );
      insn.imm = Number(BigInt.asIntN(32, nv));
      return;
    case BPF_LDX:
    case BPF_ST:
    case BPF_STX: {
      if (res.validate && BigInt(insn.off) !== orig) {
        err(EINVAL, `unexpected insn #${idx} (LDX/ST/STX) value: got ${insn.off}, exp ${orig} -> ${nv}`);
      }
      if (nv > BigInt(SHRT_MAX)) err(ERANGE, `insn #${idx} (LDX/ST/STX) value too big: ${nv}`);
      if (res.failMemszAdjust) {
        warn(
          `${pfx}relo #${reloIdx}: insn #${idx} (LDX/ST/STX) accesses field incorrectly. Make sure you are accessing pointers, unsigned integers, or fields of matching type and size.`,
        );
        poison();
        return;
      }
      debug(`${pfx}relo #${reloIdx}: patched insn #${idx} (LDX/ST/STX) off ${insn.off} -> ${nv}`);
      insn.off = Number(nv);
      if (res.newSz !== res.origSz) {
        const have = bpfSizeToBytes(insn.code);
        if (have !== res.origSz) {
          err(EINVAL, `insn #${idx} (LDX/ST/STX) unexpected mem size: got ${have}, exp ${res.origSz}`);
        }
        const sz = bytesToBpfSize(res.newSz);
        if (sz < 0) err(EINVAL, `insn #${idx} (LDX/ST/STX) invalid new mem size: ${res.newSz}`);
        insn.code = BPF_MODE(insn.code) | sz | BPF_CLASS(insn.code);
        debug(`${pfx}relo #${reloIdx}: patched insn #${idx} (LDX/ST/STX) mem_sz ${res.origSz} -> ${res.newSz}`);
      }
      return;
    }
    case BPF_LD: {
      const next = insns[idx + 1];
      if (
        !isLdImm64(insn) ||
        insn.src !== 0 ||
        insn.off !== 0 ||
        !next ||
        next.code !== 0 ||
        next.dst !== 0 ||
        next.src !== 0 ||
        next.off !== 0
      ) {
        err(EINVAL, `insn #${idx} (LDIMM64) has unexpected form`);
      }
      const n = next as Insn;
      const imm = BigInt(insn.imm >>> 0) | (BigInt(n.imm >>> 0) << 32n);
      if (res.validate && imm !== orig)
        err(EINVAL, `unexpected insn #${idx} (LDIMM64) value: got ${imm}, exp ${orig} -> ${nv}`);
      debug(`${pfx}relo #${reloIdx}: patched insn #${idx} (LDIMM64) imm64 ${imm} -> ${nv}`);
      insn.imm = Number(BigInt.asIntN(32, nv));
      n.imm = Number(BigInt.asIntN(32, nv >> 32n));
      return;
    }
    default:
      err(
        EINVAL,
        `trying to relocate unrecognized insn #${idx}, code:0x${insn.code.toString(16)}, src:0x${insn.src.toString(16)}, dst:0x${insn.dst.toString(16)}, off:0x${(insn.off & 0xffff).toString(16)}, imm:0x${(insn.imm >>> 0).toString(16)}`,
      );
  }
}

/**
 * Apply CO-RE relocations to a copy of a program's instructions. `relos` carry insnOff in
 * bytes from the program's first instruction (libbpf's relo->insn_off after subtracting the
 * program's section offset). Throws a BpfError where libbpf fails the load; returns the
 * patched instructions and, per relocation, the values libbpf computed.
 */
export function bpfCoreApplyRelos(
  progInsns: readonly Insn[],
  localBtf: Btf,
  targetBtf: Btf,
  relos: readonly BpfCoreRelo[],
  opts: CoreApplyOpts = {},
): { insns: Insn[]; outcomes: CoreReloOutcome[] } {
  const insns = progInsns.map((i) => ({ ...i }));
  const pfx = opts.progName ? `prog '${opts.progName}': ` : "";
  const warn = (m: string) => opts.print?.("warn", m);
  const debug = (m: string) => opts.print?.("debug", m);
  const candCache = new Map<number, CoreCand[]>();
  const outcomes: CoreReloOutcome[] = [];
  relos.forEach((relo, i) => {
    if (relo.insnOff % 8 !== 0) throw new BpfError(EINVAL, `${pfx}relo #${i}: insn_off ${relo.insnOff} is not aligned`);
    const idx = relo.insnOff / 8;
    if (idx >= insns.length) throw new BpfError(EINVAL, `${pfx}relo #${i}: insn #${idx} is beyond the program`);
    let ls: CoreSpec;
    try {
      localBtf.typeById(relo.typeId);
      ls = parseSpec(localBtf, relo);
    } catch (e) {
      const errno = e instanceof CoreFail ? e.errno : e instanceof BpfError ? e.errno : EINVAL;
      if (!(e instanceof CoreFail || e instanceof BpfError)) throw e;
      const name = localBtf.validStrOff(relo.accessStrOff) ? localBtf.str(relo.accessStrOff) : "?";
      const msg = `${pfx}relo #${i}: parsing [${relo.typeId}] + ${name} failed: -${errno}`;
      warn(msg);
      throw new BpfError(EINVAL, msg, { insn: idx, typeId: relo.typeId });
    }
    const kindName = CORE_RELO_KIND_NAMES[relo.kind] ?? `kind ${relo.kind}`;
    debug(`${pfx}relo #${i}: <${kindName}> ${specToString(ls)}`);
    let res: CoreReloRes;
    try {
      res = resolveRelo(relo, i, ls, localBtf, targetBtf, candCache, pfx, warn, debug, opts.moduleBtfs);
      patchInsn(insns, idx, i, res, pfx, warn, debug);
    } catch (e) {
      if (e instanceof CoreFail) {
        const msg = `${pfx}relo #${i}: failed to relocate: -${e.errno}`;
        warn(msg);
        throw new BpfError(e.errno === EOPNOTSUPP ? EOPNOTSUPP : e.errno, msg, { insn: idx });
      }
      throw e;
    }
    outcomes.push({ insnIdx: idx, kind: relo.kind, res, spec: specToString(ls) });
  });
  return { insns, outcomes };
}

/** bpf_core_resolve_relo: match every candidate; all matches must agree. */
function resolveRelo(
  relo: BpfCoreRelo,
  i: number,
  ls: CoreSpec,
  lb: Btf,
  tb: Btf,
  cache: Map<number, CoreCand[]>,
  pfx: string,
  warn: (m: string) => void,
  debug: (m: string) => void,
  moduleBtfs?: () => readonly { btf: Btf; name: string }[],
): CoreReloRes {
  if (relo.kind === BPF_CORE_TYPE_ID_LOCAL) {
    return unchangedRes(BigInt(ls.rootTypeId));
  }
  const localName = lb.typeById(relo.typeId).name;
  if (localName === "") {
    const msg = `${pfx}relo #${i}: <${CORE_RELO_KIND_NAMES[relo.kind]}> (${relo.typeId}) relocation doesn't support anonymous types`;
    warn(msg);
    throw new BpfError(EOPNOTSUPP, msg);
  }
  let cands = cache.get(relo.typeId);
  if (!cands) {
    cands = findCands(lb, relo.typeId, tb).map((id) => ({ btf: tb, id }));
    // bpf_core_find_cands: modules only when vmlinux has no candidate, each among its own types.
    if (!cands.length && moduleBtfs) {
      for (const mod of moduleBtfs()) {
        for (const id of findCands(lb, relo.typeId, mod.btf)) {
          if (id >= mod.btf.startId) cands.push({ btf: mod.btf, id });
        }
      }
    }
    cache.set(relo.typeId, cands);
  }
  let chosen: { res: CoreReloRes; spec: CoreSpec } | undefined;
  for (const cand of cands) {
    const ts = specMatch(ls, cand.btf, cand.id);
    if (!ts) continue;
    const res = calcRelo(relo, ls, ts);
    if (!chosen) {
      chosen = { res, spec: ts };
    } else if (ts.bitOffset !== chosen.spec.bitOffset) {
      const msg = `${pfx}relo #${i}: field offset ambiguity: ${chosen.spec.bitOffset} != ${ts.bitOffset}`;
      warn(msg);
      throw new BpfError(EINVAL, msg);
    } else if (res.poison !== chosen.res.poison || res.newVal !== chosen.res.newVal) {
      const msg = `${pfx}relo #${i}: relocation decision ambiguity: ${chosen.res.newVal} != ${res.newVal}`;
      warn(msg);
      throw new BpfError(EINVAL, msg);
    }
  }
  if (!chosen) {
    debug(`${pfx}relo #${i}: no matching targets found`);
    return calcRelo(relo, ls, undefined);
  }
  return chosen.res;
}
