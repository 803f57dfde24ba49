/**
 * The load phase of a BpfObject (libbpf bpf_object_load): resolve externs against the
 * kernel, translate struct_ops maps to the kernel's value types, settle autoload, apply
 * CO-RE and data relocations, load the object's BTF, create maps, load programs and write
 * their fds into the struct_ops values. Everything reaches the kernel through the bpf() API
 * of bpf.ts; the kernel's BTF and config are read the way libbpf reads /sys/kernel/btf/vmlinux
 * and /proc/config.gz. On failure every fd created so far is closed.
 */

import type { Btf } from "../btf/btf.js";
import { BPF_F_VTYPE_BTF_OBJ_FD, bpf_map_type, bpf_prog_type } from "../uapi/bpf.js";
import {
  BTF_FUNC_GLOBAL,
  BTF_KIND_DATASEC,
  BTF_KIND_FUNC,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_INT,
  BTF_KIND_VAR,
  BTF_VAR_GLOBAL_ALLOCATED,
} from "../uapi/btf.js";
import { BpfError, type BpfErrorContext, EINVAL, ESRCH, errnoName, LIBBPF_ERRNO__ENDIAN } from "../uapi/errno.js";
import { prepareAttachBtf } from "./attach_target.js";
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
import { resolveExterns } from "./externs_resolve.js";
import { initMapInMapSlots, initProgArraySlots } from "./map_init_slots.js";
import { LIBBPF_MAP_KCONFIG, LIBBPF_MAP_RODATA } from "./maps.js";
import { ModuleBtfs } from "./module_btf.js";
import type { BpfObject } from "./object.js";
import { relocateProgram } from "./relo.js";
import { bpfCoreApplyRelos } from "./relo_core.js";
import { adjustStructOpsAutoload, initKernStructOps } from "./struct_ops_kern.js";

export interface BpfObjectLoadOpts {
  /** Kernel BTF to resolve against; default: the kernel's vmlinux BTF (its /sys/kernel/btf/vmlinux). */
  btfVmlinux?: Btf;
  /** Verifier log level for program loads (the log goes to `print` on failure either way). */
  logLevel?: number;
}

/** bpf_object__create_map: map types libbpf creates with btf_fd and the key/value type ids zeroed. */
const MAP_TYPES_WITHOUT_BTF = new Set<number>([
  bpf_map_type.BPF_MAP_TYPE_PERF_EVENT_ARRAY,
  bpf_map_type.BPF_MAP_TYPE_CGROUP_ARRAY,
  bpf_map_type.BPF_MAP_TYPE_STACK_TRACE,
  bpf_map_type.BPF_MAP_TYPE_ARRAY_OF_MAPS,
  bpf_map_type.BPF_MAP_TYPE_HASH_OF_MAPS,
  bpf_map_type.BPF_MAP_TYPE_DEVMAP,
  bpf_map_type.BPF_MAP_TYPE_DEVMAP_HASH,
  bpf_map_type.BPF_MAP_TYPE_CPUMAP,
  bpf_map_type.BPF_MAP_TYPE_XSKMAP,
  bpf_map_type.BPF_MAP_TYPE_SOCKMAP,
  bpf_map_type.BPF_MAP_TYPE_SOCKHASH,
  bpf_map_type.BPF_MAP_TYPE_QUEUE,
  bpf_map_type.BPF_MAP_TYPE_STACK,
  bpf_map_type.BPF_MAP_TYPE_ARENA,
]);
/** libbpf's errno -> error (throw). Negative returns of bpf.ts become BpfErrors with the message. */
function check(ret: number, msg: () => string, ctx: BpfErrorContext = {}): number {
  if (ret < 0) throw new BpfError(-ret, `${msg()}: -${-ret} (${errnoName(-ret)})`, ctx);
  return ret;
}

/**
 * The object's BTF as the kernel accepts it (libbpf does this in collect_externs): the
 * `.ksyms` DATASEC lists extern FUNCs, which a DATASEC may not hold, and has no size. Each
 * FUNC entry is pointed at a `dummy_ksym` int VAR appended to the BTF, FUNC linkage becomes
 * global, the FUNC's unnamed arguments take the VAR's name, and every entry gets 4 bytes.
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
  // "dummy_ksym" goes right after the existing strings
  const dummyNameOff = btf.stringsLen;
  ds.vars.forEach((v, i) => {
    const t = btf.typeById(v.type);
    if (t.kind === BTF_KIND_FUNC) {
      // a global FUNC's arguments must be named (btf_func_check): unnamed ones take dummy_ksym's
      const proto = btf.typeById(t.type);
      if (proto.kind === BTF_KIND_FUNC_PROTO)
        for (const p of proto.params) if (p.type !== 0 && p.nameOff === 0) p.nameOff = dummyNameOff;
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
  // Opening either byte order is fine (libbpf >= 1.5); loading needs the host's (little-endian) one.
  if (!obj.elf.littleEndian) {
    const msg = `object '${obj.name}': loading non-native endianness is unsupported`;
    obj.print("warn", msg);
    throw new BpfError(LIBBPF_ERRNO__ENDIAN, msg);
  }
  const kbtf = opts.btfVmlinux ?? k.kernel.btfVmlinux;
  const fds: number[] = [];
  const modBtfs = kbtf ? new ModuleBtfs(k, kbtf, obj.print) : null;
  try {
    const btf = obj.btf;
    if (!kbtf && (obj.maps.some((m) => m.structOps) || obj.externs.some((e) => e.ksym))) {
      throw new BpfError(ESRCH, "failed to find valid kernel BTF");
    }
    resolveExterns(obj, k, kbtf ?? undefined, modBtfs);
    for (const map of obj.maps) {
      if (map.structOps && map.autocreate && btf && modBtfs) {
        initKernStructOps(map, btf, modBtfs, obj.print, obj.programs);
      }
    }
    adjustStructOpsAutoload(obj.programs, obj.maps);

    // CO-RE first, on every program and subprogram, against the kernel's BTF (and its modules').
    if (btf && kbtf && obj.btfExt) {
      for (const prog of obj.allPrograms) {
        if (!prog.isSubprog && !prog.autoload) continue;
        const relos = obj.coreRelosFor(prog);
        if (relos.length === 0) continue;
        const print = (level: "warn" | "debug", m: string) => obj.print(level, m);
        const moduleBtfs = modBtfs ? () => modBtfs.load() : undefined;
        prog.insns = bpfCoreApplyRelos(prog.insns, btf, kbtf, relos, { progName: prog.name, print, moduleBtfs }).insns;
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
      // libbpf creates these map types without BTF: the kernel has no BTF check for them.
      const noBtf = MAP_TYPES_WITHOUT_BTF.has(map.type);
      // A map of maps is created around a template of its inner maps, made from its inner def
      // (with BTF: its special fields are the meta's) and closed once the outer map exists.
      let innerFd: number | undefined;
      const im = map.innerMap;
      if (im) {
        const ifd = bpf_map_create(k, im.type, im.name, im.keySize, im.valueSize, im.maxEntries, {
          map_flags: im.flags,
          btf_fd: btfFd && im.btfValueTypeId ? btfFd : undefined,
          btf_key_type_id: btfFd && im.btfValueTypeId ? im.btfKeyTypeId : undefined,
          btf_value_type_id: btfFd && im.btfValueTypeId ? im.btfValueTypeId : undefined,
        });
        check(ifd, () => `map '${map.name}': failed to create inner map`, { map: map.name });
        innerFd = ifd;
      }
      const create = (withBtf0: boolean) => {
        const withBtf = withBtf0 && !noBtf;
        // A struct_ops type found in a module's BTF names that BTF (bpf_object__create_map).
        const modFd = isSt && map.modBtfFd >= 0 ? map.modBtfFd : undefined;
        return bpf_map_create(k, map.type, map.name, map.keySize, map.valueSize, map.maxEntries, {
          map_flags: modFd !== undefined ? map.flags | BPF_F_VTYPE_BTF_OBJ_FD : map.flags,
          value_type_btf_obj_fd: modFd,
          numa_node: map.def.numaNode,
          map_extra: map.def.mapExtra,
          btf_fd: withBtf && btfFd ? btfFd : undefined,
          btf_key_type_id: withBtf && btfFd ? map.btfKeyTypeId : undefined,
          btf_value_type_id: withBtf && btfFd ? map.btfValueTypeId : undefined,
          btf_vmlinux_value_type_id: isSt ? map.btfVmlinuxValueTypeId : undefined,
          inner_map_fd: innerFd,
        });
      };
      let fd = create(true);
      if (fd < 0 && !isSt && !noBtf && btfFd && map.btfValueTypeId) {
        obj.print("warn", `Error in bpf_create_map_xattr(${map.name}):-${-fd}. Retrying without BTF.`);
        fd = create(false);
      }
      if (innerFd !== undefined) close(k, innerFd);
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
      if (map.initSlots.length) initMapInMapSlots(k, map, (m) => obj.print("debug", m));
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
      prepareAttachBtf(k, prog, (level, m) => obj.print(level, m));
      const { insns, appended } = relocateProgram(obj, prog);
      const funcInfo = [...appended].flatMap(([p, off]) => p.funcInfo.map((r) => ({ ...r, insnOff: r.insnOff + off })));
      const lineInfo = [...appended].flatMap(([p, off]) => p.lineInfo.map((r) => ({ ...r, insnOff: r.insnOff + off })));
      const withInfo = btfFd > 0 && funcInfo.length > 0;
      const log = new Uint8Array(256 * 1024);
      const fd = bpf_prog_load(k, prog.type, prog.name, obj.license, insns, {
        expected_attach_type: prog.expectedAttachType,
        attach_btf_id: prog.attachBtfId || undefined,
        attach_prog_fd: prog.attachProgFd || undefined,
        attach_btf_obj_fd: prog.attachBtfObjFd || undefined,
        fd_array: modBtfs?.fdArray.length ? modBtfs.fdArray : undefined,
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

    // bpf_object_init_prog_arrays.
    for (const map of obj.maps) if (map.initProgSlots.length) initProgArraySlots(k, map, (m) => obj.print("debug", m));

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
    modBtfs?.closeAll();
    for (const fd of fds.reverse()) close(k, fd);
    for (const m of obj.maps) m.fd = -1;
    for (const p of obj.allPrograms) p.fd = -1;
    // As libbpf: loaded "whether successfully or not"; instructions were already relocated.
    obj.loaded = true;
    obj.print("warn", `failed to load object '${obj.path}'`);
    throw e;
  }
  // libbpf closes the module BTF fds once the object is loaded: maps and programs hold what they need.
  modBtfs?.closeAll();
  obj.loaded = true;
  obj.handle = k;
  for (const m of obj.maps) {
    m.loaded = true;
    m.handle = k;
    if (m.structOps) m.structOps.value.loaded = true;
  }
  for (const p of obj.allPrograms) p.loaded = true;
}
