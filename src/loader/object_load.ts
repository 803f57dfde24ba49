/**
 * The load phase of a BpfObject (libbpf bpf_object_load): resolve externs against the
 * kernel, translate struct_ops maps to the kernel's value types, settle autoload, apply
 * CO-RE and data relocations, load the object's BTF, create maps, load programs and write
 * their fds into the struct_ops values. Everything reaches the kernel through the bpf() API
 * of bpf.ts; the kernel's BTF and config are read the way libbpf reads /sys/kernel/btf/vmlinux
 * and /proc/config.gz. On failure every fd created so far is closed.
 */
import type { Btf } from "../btf/btf.js";
import type { Insn } from "../isa/insn.js";
import { BPF_CALL, BPF_JMP } from "../isa/opcodes.js";
import {
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_VALUE,
  bpf_map_type,
  bpf_prog_type,
} from "../uapi/bpf.js";
import {
  BTF_FUNC_GLOBAL,
  BTF_KIND_DATASEC,
  BTF_KIND_FUNC,
  BTF_KIND_INT,
  BTF_KIND_VAR,
  BTF_VAR_GLOBAL_ALLOCATED,
} from "../uapi/btf.js";
import {
  BpfError,
  type BpfErrorContext,
  EINVAL,
  ERANGE,
  ESRCH,
  errnoName,
  LIBBPF_ERRNO__ENDIAN,
  LIBBPF_ERRNO__RELOC,
} from "../uapi/errno.js";
import {
  type BpfHandle,
  bpf_btf_load,
  bpf_map_create,
  bpf_map_freeze,
  bpf_map_update_elem,
  bpf_prog_load,
  close,
} from "./bpf.js";
import { KSYMS_SEC } from "./externs.js";
import { LIBBPF_MAP_KCONFIG, LIBBPF_MAP_RODATA } from "./maps.js";
import type { BpfObject } from "./object.js";
import type { BpfProgram } from "./program.js";
import { bpfCoreApplyRelos, typesAreCompat } from "./relo_core.js";
import { adjustStructOpsAutoload, initKernStructOps } from "./struct_ops_kern.js";

export interface BpfObjectLoadOpts {
  /** Kernel BTF to resolve against; default: the kernel's vmlinux BTF (its /sys/kernel/btf/vmlinux). */
  btfVmlinux?: Btf;
  /** Verifier log level for program loads (the log goes to `print` on failure either way). */
  logLevel?: number;
}

/** libbpf's errno -> error (throw). Negative returns of bpf.ts become BpfErrors with the message. */
function check(ret: number, msg: () => string, ctx: BpfErrorContext = {}): number {
  if (ret < 0) throw new BpfError(-ret, `${msg()}: -${-ret} (${errnoName(-ret)})`, ctx);
  return ret;
}

/** Parse `CONFIG_X=value` lines into the .kconfig map buffer (bpf_object__process_kconfig_line). */
export function fillKconfig(obj: BpfObject, data: Uint8Array, config: Record<string, number | string | boolean>): void {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (const ext of obj.externs) {
    if (!ext.kcfg) continue;
    const raw = config[ext.name];
    if (raw === undefined) continue;
    const { type, size, dataOff } = ext.kcfg;
    let v: bigint;
    if (typeof raw === "boolean" || raw === "y" || raw === "n" || raw === "m") {
      const c = raw === true ? "y" : raw === false ? "n" : raw;
      if (type === "char") v = BigInt(c.charCodeAt(0));
      else if (type === "bool" && c !== "m") v = c === "y" ? 1n : 0n;
      else if (type === "tristate") v = c === "y" ? 1n : c === "m" ? 2n : 0n;
      else throw new BpfError(EINVAL, `extern (kcfg) '${ext.name}': value '${c}' implies bool, tristate, or char type`);
    } else if (typeof raw === "string" && raw.startsWith('"')) {
      if (type !== "char_arr") {
        throw new BpfError(EINVAL, `extern (kcfg) '${ext.name}': value '${raw}' implies char array type`);
      }
      const s = new TextEncoder().encode(raw.slice(1, -1)).subarray(0, size - 1);
      data.set(s, dataOff);
      ext.isSet = true;
      continue;
    } else {
      try {
        v = BigInt(raw);
      } catch {
        throw new BpfError(EINVAL, `extern (kcfg) '${ext.name}': value '${raw}' isn't a valid integer`);
      }
      if (type !== "int" && type !== "char") {
        throw new BpfError(EINVAL, `extern (kcfg) '${ext.name}': value '${raw}' implies integer type`);
      }
      const bits = BigInt(size * 8);
      const fits = ext.kcfg.isSigned
        ? BigInt.asIntN(Number(bits), v) === v
        : size === 8 || BigInt.asUintN(Number(bits), v) === v;
      if (!fits) throw new BpfError(ERANGE, `extern (kcfg) '${ext.name}': value '${v}' doesn't fit in ${size} bytes`);
    }
    const u = BigInt.asUintN(size * 8, v);
    for (let i = 0; i < size; i++) dv.setUint8(dataOff + i, Number((u >> BigInt(8 * i)) & 0xffn));
    ext.isSet = true;
  }
}

/** Kconfig text (`CONFIG_HZ=250` lines, # comments) as a record. */
export function parseKconfig(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const l = line.trim();
    if (!l.startsWith("CONFIG_")) continue;
    const eq = l.indexOf("=");
    if (eq < 0) throw new BpfError(EINVAL, `failed to parse '${l}': no separator`);
    if (eq === l.length - 1) throw new BpfError(EINVAL, `failed to parse '${l}': no value`);
    out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

/** bpf_object__resolve_externs. */
function resolveExterns(obj: BpfObject, k: BpfHandle, kbtf: Btf | undefined): void {
  const kcfgMap = obj.maps.find((m) => m.libbpfType === LIBBPF_MAP_KCONFIG);
  if (kcfgMap?.mmaped) {
    fillKconfig(obj, kcfgMap.mmaped, obj.kconfig !== undefined ? parseKconfig(obj.kconfig) : {});
    if (obj.externs.some((e) => e.kcfg && !e.isSet)) fillKconfig(obj, kcfgMap.mmaped, k.kernel.config);
  }
  for (const ext of obj.externs) {
    if (ext.kcfg) {
      if (!ext.isSet && !ext.isWeak) {
        throw new BpfError(ESRCH, `extern (kcfg) '${ext.name}': value not found`);
      }
      continue;
    }
    const ksym = ext.ksym;
    if (!ksym || !kbtf) continue;
    const kid = kbtf.findByNameKind(ext.name, ksym.isFunc ? BTF_KIND_FUNC : BTF_KIND_VAR);
    if (kid < 0) {
      if (ext.isWeak) continue;
      throw new BpfError(
        ESRCH,
        `extern (${ksym.isFunc ? "func " : "var "}ksym) '${ext.name}': not found in kernel or module BTFs`,
      );
    }
    if (ksym.isFunc) {
      const kproto = (kbtf.typeById(kid) as { type: number }).type;
      if (!typesAreCompat(obj.btf as Btf, ksym.typeId, kbtf, kproto)) {
        throw new BpfError(
          EINVAL,
          `extern (func ksym) '${ext.name}': func_proto [${ksym.typeId}] incompatible with vmlinux [${kproto}]`,
        );
      }
    }
    ksym.kernelBtfId = kid;
    ext.isSet = true;
  }
}

/**
 * The object's BTF as the kernel accepts it (libbpf does this in collect_externs): the
 * `.ksyms` DATASEC lists extern FUNCs, which a DATASEC may not hold, and has no size. Each
 * FUNC entry is pointed at a `dummy_ksym` int VAR appended to the BTF, FUNC linkage becomes
 * global, and every entry gets 4 bytes.
 */
export function sanitizedBtf(btf: Btf): Uint8Array {
  const id = btf.findByNameKind(KSYMS_SEC, BTF_KIND_DATASEC);
  const ds = id > 0 ? btf.typeById(id) : undefined;
  if (!ds || ds.kind !== BTF_KIND_DATASEC || ds.vars.length === 0) return btf.encode();
  let intId = 0;
  for (let i = 1; i <= btf.nrTypes && !intId; i++) {
    const t = btf.typeById(i);
    if (t.kind === BTF_KIND_INT && t.bits === 32 && t.size === 4) intId = i;
  }
  if (!intId) throw new BpfError(ESRCH, "failed to find an int type for .ksyms externs");
  const dummyId = btf.nrTypes + 1;
  ds.vars.forEach((v, i) => {
    const t = btf.typeById(v.type);
    if (t.kind === BTF_KIND_FUNC) {
      t.linkage = BTF_FUNC_GLOBAL;
      t.vlen = BTF_FUNC_GLOBAL;
      v.type = dummyId;
    } else if (t.kind === BTF_KIND_VAR) {
      t.linkage = BTF_VAR_GLOBAL_ALLOCATED;
      t.type = intId;
    }
    v.offset = 4 * i;
    v.size = 4;
  });
  ds.size = 4 * ds.vars.length;
  // Append `VAR dummy_ksym: int` (btf_type + linkage) and its name to the encoded blob.
  const raw = btf.encode({ byteOrder: "little" });
  const hv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const hdrLen = hv.getUint32(4, true);
  const typeOff = hv.getUint32(8, true);
  const typeLen = hv.getUint32(12, true);
  const strOff = hv.getUint32(16, true);
  const strLen = hv.getUint32(20, true);
  const name = new TextEncoder().encode("dummy_ksym\0");
  const types = raw.subarray(hdrLen + typeOff, hdrLen + typeOff + typeLen);
  const strs = raw.subarray(hdrLen + strOff, hdrLen + strOff + strLen);
  const out = new Uint8Array(hdrLen + typeLen + 16 + strLen + name.length);
  const ov = new DataView(out.buffer);
  out.set(raw.subarray(0, hdrLen));
  ov.setUint32(8, 0, true);
  ov.setUint32(12, typeLen + 16, true);
  ov.setUint32(16, typeLen + 16, true);
  ov.setUint32(20, strLen + name.length, true);
  out.set(types, hdrLen);
  const rec = hdrLen + typeLen;
  ov.setUint32(rec, strLen, true);
  ov.setUint32(rec + 4, BTF_KIND_VAR << 24, true);
  ov.setUint32(rec + 8, intId, true);
  ov.setUint32(rec + 12, BTF_VAR_GLOBAL_ALLOCATED, true);
  out.set(strs, rec + 16);
  out.set(name, rec + 16 + strLen);
  return out;
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
function relocateProgram(obj: BpfObject, main: BpfProgram): { insns: Insn[]; appended: Map<BpfProgram, number> } {
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
          } else if (ext?.ksym) {
            insn.src = BPF_PSEUDO_BTF_ID;
            insn.imm = ext.ksym.kernelBtfId;
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
          insn.off = 0;
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
          if (r.type === "call") {
            insn.imm = subOff - (at + 1);
          } else {
            insn.src = BPF_PSEUDO_FUNC;
            insn.imm = (subOff - (at + 1)) * 8;
          }
          break;
        }
      }
    }
  }
  return { insns, appended };
}

function encodeFuncInfo(records: { insnOff: number; typeId: number }[]): Uint8Array {
  const out = new Uint8Array(records.length * 8);
  const dv = new DataView(out.buffer);
  records.forEach((r, i) => {
    dv.setUint32(i * 8, r.insnOff, true);
    dv.setUint32(i * 8 + 4, r.typeId, true);
  });
  return out;
}

function encodeLineInfo(
  records: { insnOff: number; fileNameOff: number; lineOff: number; lineCol: number }[],
): Uint8Array {
  const out = new Uint8Array(records.length * 16);
  const dv = new DataView(out.buffer);
  records.forEach((r, i) => {
    dv.setUint32(i * 16, r.insnOff, true);
    dv.setUint32(i * 16 + 4, r.fileNameOff, true);
    dv.setUint32(i * 16 + 8, r.lineOff, true);
    dv.setUint32(i * 16 + 12, r.lineCol, true);
  });
  return out;
}

/** bpf_object_load: see the file comment for the order. */
export function bpfObjectLoad(obj: BpfObject, k: BpfHandle, opts: BpfObjectLoadOpts = {}): void {
  if (obj.loaded) throw new BpfError(EINVAL, "object should not be loaded twice");
  if (!obj.elf.littleEndian) throw new BpfError(LIBBPF_ERRNO__ENDIAN, `elf: endianness mismatch in ${obj.path}.`);
  const kbtf = opts.btfVmlinux ?? k.kernel.btfVmlinux;
  const fds: number[] = [];
  try {
    const btf = obj.btf;
    if (!kbtf && (obj.maps.some((m) => m.structOps) || obj.externs.some((e) => e.ksym))) {
      throw new BpfError(ESRCH, "failed to find valid kernel BTF");
    }
    resolveExterns(obj, k, kbtf ?? undefined);
    for (const map of obj.maps) {
      if (map.structOps && map.autocreate && btf && kbtf) initKernStructOps(map, btf, kbtf, obj.print);
    }
    adjustStructOpsAutoload(obj.programs, obj.maps);

    // CO-RE first, on every program and subprogram, against the kernel's BTF.
    if (btf && kbtf && obj.btfExt) {
      for (const prog of obj.allPrograms) {
        if (!prog.isSubprog && !prog.autoload) continue;
        const relos = obj.coreRelosFor(prog);
        if (relos.length === 0) continue;
        const print = (level: "warn" | "debug", m: string) => obj.print(level, m);
        prog.insns = bpfCoreApplyRelos(prog.insns, btf, kbtf, relos, { progName: prog.name, print }).insns;
      }
    }

    let btfFd = 0;
    if (btf) {
      const log = new Uint8Array(64 * 1024);
      const fd = bpf_btf_load(k, sanitizedBtf(btf), { log_buf: log });
      if (fd < 0) {
        // libbpf carries on without BTF when the kernel refuses it, unless something needs it.
        const end = log.indexOf(0);
        const text = new TextDecoder().decode(log.subarray(0, end < 0 ? log.length : end));
        obj.print(
          "warn",
          `Error loading .BTF into kernel: -${-fd}. BTF is optional, ignoring.${text ? `\n${text}` : ""}`,
        );
      } else {
        btfFd = fd;
        fds.push(fd);
        obj.btfFd = fd;
      }
    }

    for (const map of obj.maps) {
      if (!map.autocreate) {
        obj.print("debug", `map '${map.name}': skipped auto-creating...`);
        continue;
      }
      const isSt = map.type === bpf_map_type.BPF_MAP_TYPE_STRUCT_OPS;
      const create = (withBtf: boolean) =>
        bpf_map_create(k, map.type, map.name, map.keySize, map.valueSize, map.maxEntries, {
          map_flags: map.flags,
          numa_node: map.def.numaNode,
          map_extra: map.def.mapExtra,
          btf_fd: withBtf && btfFd ? btfFd : undefined,
          btf_key_type_id: withBtf && btfFd ? map.btfKeyTypeId : undefined,
          btf_value_type_id: withBtf && btfFd ? map.btfValueTypeId : undefined,
          btf_vmlinux_value_type_id: isSt ? map.btfVmlinuxValueTypeId : undefined,
        });
      let fd = create(true);
      if (fd < 0 && !isSt && btfFd && map.btfValueTypeId) {
        obj.print("warn", `Error in bpf_create_map_xattr(${map.name}):-${-fd}. Retrying without BTF.`);
        fd = create(false);
      }
      check(fd, () => `map '${map.name}': failed to create`, { map: map.name });
      map.fd = fd;
      fds.push(fd);
      // bpf_object__populate_internal_map: contents, then freeze what programs must only read.
      if (map.isInternal && map.mmaped) {
        check(
          bpf_map_update_elem(k, fd, new Uint8Array(4), map.mmaped, 0),
          () => `map '${map.name}': failed to set initial contents`,
        );
        if (map.libbpfType === LIBBPF_MAP_RODATA || map.libbpfType === LIBBPF_MAP_KCONFIG) {
          check(bpf_map_freeze(k, fd), () => `map '${map.name}': failed to freeze as read-only`);
        }
      }
    }

    for (const prog of obj.programs) {
      if (!prog.autoload) {
        obj.print("debug", `prog '${prog.name}': skipped loading`);
        continue;
      }
      if (prog.type === bpf_prog_type.BPF_PROG_TYPE_UNSPEC) {
        throw new BpfError(
          EINVAL,
          `prog '${prog.name}': missing BPF prog type, check ELF section name '${prog.secName}'`,
          {
            prog: prog.name,
          },
        );
      }
      if (prog.type === bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS && prog.attachBtfId === 0) {
        const msg = `prog '${prog.name}': SEC("struct_ops") program isn't referenced anywhere, did you forget to use it?`;
        obj.print("warn", msg);
        obj.print("warn", `prog '${prog.name}': failed to load: -${EINVAL}`);
        throw new BpfError(EINVAL, msg, { prog: prog.name });
      }
      const { insns, appended } = relocateProgram(obj, prog);
      const funcInfo = [...appended].flatMap(([p, off]) => p.funcInfo.map((r) => ({ ...r, insnOff: r.insnOff + off })));
      const lineInfo = [...appended].flatMap(([p, off]) => p.lineInfo.map((r) => ({ ...r, insnOff: r.insnOff + off })));
      const withInfo = btfFd > 0 && funcInfo.length > 0;
      const log = new Uint8Array(256 * 1024);
      const fd = bpf_prog_load(k, prog.type, prog.name, obj.license, insns, {
        expected_attach_type: prog.expectedAttachType,
        attach_btf_id: prog.attachBtfId || undefined,
        prog_flags: prog.progFlags,
        kern_version: obj.kernVersion,
        prog_btf_fd: withInfo ? btfFd : undefined,
        func_info: withInfo ? encodeFuncInfo(funcInfo) : undefined,
        func_info_cnt: withInfo ? funcInfo.length : undefined,
        func_info_rec_size: withInfo ? 8 : undefined,
        line_info: withInfo && lineInfo.length ? encodeLineInfo(lineInfo) : undefined,
        line_info_cnt: withInfo && lineInfo.length ? lineInfo.length : undefined,
        line_info_rec_size: withInfo && lineInfo.length ? 16 : undefined,
        log_level: opts.logLevel,
        log_buf: log,
      });
      if (fd < 0) {
        const end = log.indexOf(0);
        const text = new TextDecoder().decode(log.subarray(0, end < 0 ? log.length : end));
        if (text) obj.print("warn", `prog '${prog.name}': -- BEGIN PROG LOAD LOG --\n${text}-- END PROG LOAD LOG --`);
        obj.print("warn", `prog '${prog.name}': failed to load: ${fd}`);
        throw new BpfError(-fd, `prog '${prog.name}': failed to load: ${fd}${text ? `\n${text}` : ""}`, {
          prog: prog.name,
        });
      }
      prog.fd = fd;
      prog.loadedInsns = insns;
      fds.push(fd);
    }

    // bpf_object_prepare_struct_ops: program fds into the kernel values, pushed at attach.
    for (const map of obj.maps) {
      const st = map.structOps;
      if (!st?.kernVdata || !map.autocreate) continue;
      const dv = new DataView(st.kernVdata.buffer);
      st.progs.forEach((p, i) => {
        if (p && p.fd >= 0 && st.kernFuncOff[i]) dv.setBigUint64(st.kernFuncOff[i] as number, BigInt(p.fd), true);
      });
    }
  } catch (e) {
    for (const fd of fds.reverse()) close(k, fd);
    for (const m of obj.maps) m.fd = -1;
    for (const p of obj.allPrograms) p.fd = -1;
    throw e;
  }
  obj.loaded = true;
  obj.handle = k;
  for (const m of obj.maps) {
    m.loaded = true;
    m.handle = k;
    if (m.structOps) m.structOps.value.loaded = true;
  }
  for (const p of obj.allPrograms) p.loaded = true;
}
