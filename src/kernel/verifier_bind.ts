/**
 * The part of kernel/bpf/verifier.c that binds a program to kernel objects before do_check:
 * resolve_pseudo_ldimm64 (map fds, map values, BTF ids become addresses the VM can use),
 * check_pseudo_btf_id, and add_kfunc_call's lookup of kfuncs by BTF id. Errors carry the
 * kernel's log messages.
 */

import {
  BPF_LIST_HEAD,
  BPF_RB_ROOT,
  BPF_SPIN_LOCK,
  BPF_TIMER,
  BPF_WORKQUEUE,
  btfRecordHasField,
} from "../btf/record.js";
import { decodeInsn } from "../isa/decode.js";
import { type Insn, LD_IMM64_CODE } from "../isa/insn.js";
import { BPF_CLASS, BPF_LDX, BPF_MEM, BPF_MEMSX, BPF_MODE } from "../isa/opcodes.js";
import { bpfOpcodeInInsntable } from "../isa/validate.js";
import {
  __BPF_FUNC_MAX_ID,
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
  bpf_prog_type,
} from "../uapi/bpf.js";
import { BTF_KIND_FUNC, BTF_KIND_VAR } from "../uapi/btf.js";
import { BpfError, E2BIG, EACCES, EBADF, EFAULT, EINVAL, ENOENT, ENXIO, EPROTO } from "../uapi/errno.js";
import { funcIdName } from "../verifier/helper_protos.js";
import type { BpfMap, BpfProg, BtfObject } from "./bpf.js";
import type { ProgLoadAttr } from "./bpf_attr.js";
import { btf_get_by_fd, btf_put } from "./btf_obj.js";
import type { Kernel } from "./kernel.js";
import { btf_is_module, btf_try_get_module, type Module } from "./module.js";
import type { Process } from "./process.js";
import type { BpfLog } from "./syscall_common.js";
import { bpf_map_inc, bpf_map_kaddr, mapFromFd } from "./syscall_map.js";

export const MAX_USED_MAPS = 64;
const BPF_MAX_VAR_OFF = 1 << 29;

/** What a ld_imm64 was bound to (insn_aux_data), for the verifier. */
export type LdImm64Aux =
  | { kind: "map_ptr"; map: BpfMap }
  | { kind: "map_value"; map: BpfMap; off: number }
  | { kind: "btf_id"; btf: BtfObject; btfId: number; addr: number }
  | { kind: "func" };

/** What the verifier hook receives. */
export interface VerifierEnv {
  readonly kernel: Kernel;
  readonly prog: BpfProg;
  /** Instructions as loaded, with ld_imm64 pseudo sources still in place. */
  readonly insns: readonly Insn[];
  /** Per-instruction ld_imm64 binding (index of the first slot). */
  readonly ldImm64Aux: ReadonlyMap<number, LdImm64Aux>;
  readonly log: BpfLog;
  readonly logLines: string[];
  readonly privileged: boolean;
  readonly attr: ProgLoadAttr;
}

export function logErr(log: BpfLog, errno: number, msg: string): BpfError {
  log.log(msg);
  return new BpfError(errno, msg);
}

/** resolve_pseudo_ldimm64(): map fds and BTF ids in ld_imm64 become addresses the VM can use. */
export function resolve_pseudo_ldimm64(
  env: VerifierEnv,
  proc: Process,
  attr: ProgLoadAttr,
  aux: Map<number, LdImm64Aux>,
): Insn[] {
  const { prog, log } = env;
  const insns = prog.orig_insns.map((i) => ({ ...i }));
  const n = insns.length;
  for (let i = 0; i < n; i++) {
    const insn = insns[i];
    if (
      BPF_CLASS(insn.code) === BPF_LDX &&
      ((BPF_MODE(insn.code) !== BPF_MEM && BPF_MODE(insn.code) !== BPF_MEMSX) || insn.imm !== 0)
    ) {
      throw logErr(log, EINVAL, "BPF_LDX uses reserved fields");
    }
    if (insn.code !== LD_IMM64_CODE) {
      // The opcode byte alone: reserved fields are do_check's to refuse ("BPF_MOV uses reserved
      // fields"). Without the verifier nothing else checks them before the VM, so decode here.
      const unknown = () => logErr(log, EINVAL, `unknown opcode ${insn.code.toString(16).padStart(2, "0")}`);
      if (!bpfOpcodeInInsntable(insn.code)) throw unknown();
      if (!env.kernel.verifier) {
        try {
          decodeInsn(insns, i);
        } catch (e) {
          if (e instanceof BpfError) throw unknown();
          throw e;
        }
      }
      continue;
    }
    const hi = insns[i + 1];
    if (i === n - 1 || hi.code !== 0 || hi.dst !== 0 || hi.src !== 0 || hi.off !== 0) {
      throw logErr(log, EINVAL, "invalid bpf_ld_imm64 insn");
    }
    const src = insn.src;
    if (src === 0) {
      i++;
      continue;
    }
    if (src === BPF_PSEUDO_BTF_ID) {
      const a = check_pseudo_btf_id(env, proc, insn, hi);
      aux.set(i, a);
      insn.imm = a.addr | 0;
      hi.imm = Math.floor(a.addr / 2 ** 32) | 0;
      insn.src = 0;
      i++;
      continue;
    }
    if (src === BPF_PSEUDO_FUNC) {
      aux.set(i, { kind: "func" });
      i++;
      continue;
    }
    const isValue = src === BPF_PSEUDO_MAP_VALUE || src === BPF_PSEUDO_MAP_IDX_VALUE;
    const isPtr = src === BPF_PSEUDO_MAP_FD || src === BPF_PSEUDO_MAP_IDX;
    if (!isValue && !(isPtr && hi.imm === 0)) throw logErr(log, EINVAL, "unrecognized bpf_ld_imm64 insn");
    let fd = insn.imm;
    if (src === BPF_PSEUDO_MAP_IDX || src === BPF_PSEUDO_MAP_IDX_VALUE) {
      if (!attr.fd_array) throw logErr(log, EPROTO, "fd_idx without fd_array is invalid");
      const v = attr.fd_array[insn.imm];
      if (v === undefined) throw logErr(log, EINVAL, `fd_array index ${insn.imm} is out of range`);
      fd = v;
    }
    let map: BpfMap;
    try {
      map = mapFromFd(proc, fd).map;
    } catch (e) {
      if (e instanceof BpfError) throw logErr(log, e.errno, `fd ${fd} is not pointing to valid bpf_map`);
      throw e;
    }
    let addr: number;
    if (isPtr) {
      addr = bpf_map_kaddr(map);
      aux.set(i, { kind: "map_ptr", map });
    } else {
      const off = hi.imm >>> 0;
      if (off >= BPF_MAX_VAR_OFF) throw logErr(log, EINVAL, `direct value offset of ${off} is not allowed`);
      const dva = (map.ops as { map_direct_value_addr?: (m: BpfMap, off: number) => number }).map_direct_value_addr;
      if (!dva) throw logErr(log, EINVAL, "no direct value access support for this map type");
      try {
        addr = dva(map, off) + off;
      } catch (e) {
        if (e instanceof BpfError) {
          log.log(`invalid access to map value pointer, value_size=${map.value_size} off=${off}`);
        }
        throw e;
      }
      aux.set(i, { kind: "map_value", map, off });
    }
    insn.imm = addr | 0;
    hi.imm = Math.floor(addr / 2 ** 32) | 0;
    insn.src = 0;
    if (!prog.aux.used_maps.includes(map)) {
      if (prog.aux.used_maps.length >= MAX_USED_MAPS) {
        throw logErr(log, E2BIG, `The total number of maps per program has reached the limit of ${MAX_USED_MAPS}`);
      }
      check_map_prog_compatibility(env, map);
      bpf_map_inc(map);
      prog.aux.used_maps.push(map);
    }
    i++;
  }
  return insns;
}

/** is_tracing_prog_type. */
const TRACING_PROG_TYPES: readonly number[] = [
  bpf_prog_type.BPF_PROG_TYPE_KPROBE,
  bpf_prog_type.BPF_PROG_TYPE_TRACEPOINT,
  bpf_prog_type.BPF_PROG_TYPE_PERF_EVENT,
  bpf_prog_type.BPF_PROG_TYPE_RAW_TRACEPOINT,
  bpf_prog_type.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE,
];

/** check_map_prog_compatibility's special-field rules: which program types may use which fields. */
function check_map_prog_compatibility(env: VerifierEnv, map: BpfMap): void {
  const type = env.prog.type;
  const tracing = TRACING_PROG_TYPES.includes(type);
  if (tracing && (btfRecordHasField(map.record, BPF_LIST_HEAD) || btfRecordHasField(map.record, BPF_RB_ROOT)))
    throw logErr(env.log, EINVAL, "tracing progs cannot use bpf_{list_head,rb_root} yet");
  if (btfRecordHasField(map.record, BPF_SPIN_LOCK)) {
    if (type === bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER)
      throw logErr(env.log, EINVAL, "socket filter progs cannot use bpf_spin_lock yet");
    if (tracing) throw logErr(env.log, EINVAL, "tracing progs cannot use bpf_spin_lock yet");
  }
  if (tracing && btfRecordHasField(map.record, BPF_TIMER))
    throw logErr(env.log, EINVAL, "tracing progs cannot use bpf_timer yet");
  if (tracing && btfRecordHasField(map.record, BPF_WORKQUEUE))
    throw logErr(env.log, EINVAL, "tracing progs cannot use bpf_wq yet");
}

function check_pseudo_btf_id(
  env: VerifierEnv,
  proc: Process,
  insn: Insn,
  hi: Insn,
): Extract<LdImm64Aux, { kind: "btf_id" }> {
  const { kernel: k, log } = env;
  let btf: BtfObject;
  if (hi.imm) {
    try {
      btf = btf_get_by_fd(proc, hi.imm);
    } catch {
      throw logErr(log, EINVAL, "invalid module BTF object FD specified.");
    }
    env.prog.aux.used_btfs.push(btf);
  } else {
    const v = k.btfVmlinuxObj;
    if (!v) {
      throw logErr(log, EINVAL, "kernel is missing BTF, make sure CONFIG_DEBUG_INFO_BTF=y is specified in Kconfig.");
    }
    btf = v;
  }
  const id = insn.imm;
  let kind = -1;
  let name = "";
  if (id > 0 && id < btf.btf.nrTypes + 1) {
    const t = btf.btf.typeById(id);
    kind = t.kind;
    name = t.name;
  }
  if (kind < 0) throw logErr(log, EINVAL, `ldimm64 insn specifies invalid btf_id ${id}.`);
  if (kind !== BTF_KIND_VAR && kind !== BTF_KIND_FUNC) {
    throw logErr(log, EINVAL, `pseudo btf_id ${id} in ldimm64 isn't KIND_VAR or KIND_FUNC`);
  }
  const addr = k.ksyms.get(name);
  if (!addr) throw logErr(log, ENOENT, `ldimm64 failed to find the address for kernel symbol '${name}'.`);
  return { kind: "btf_id", btf, btfId: id, addr };
}

/**
 * Kfunc calls (src=2) bind by BTF id and must exist (add_kfunc_call). Without a verifier, helper
 * ids must exist too (with the verifier's refusals otherwise).
 */
/** MAX_KFUNC_BTFS. */
const MAX_KFUNC_BTFS = 256;

/**
 * __find_kfunc_desc_btf(): the module BTF named by fd_array[off], once per offset, each entry
 * holding a reference on the module for the program's life.
 */
function find_kfunc_desc_btf(
  env: VerifierEnv,
  proc: Process,
  attr: ProgLoadAttr,
  off: number,
): BpfProg["aux"]["kfunc_btf_tab"][number] {
  const { prog, log } = env;
  if (off < 0) throw logErr(log, EINVAL, "negative offset disallowed for kernel module function call");
  const tab = prog.aux.kfunc_btf_tab;
  const have = tab.find((b) => b.offset === off);
  if (have) return have;
  if (tab.length === MAX_KFUNC_BTFS) throw logErr(log, E2BIG, "too many different module BTFs");
  if (!attr.fd_array) throw logErr(log, EPROTO, "kfunc offset > 0 without fd_array is invalid");
  const fd = attr.fd_array[off];
  if (fd === undefined) throw new BpfError(EFAULT, `fd_array[${off}] is past the array`);
  let btf: BtfObject;
  try {
    btf = btf_get_by_fd(proc, fd);
  } catch (e) {
    throw logErr(log, e instanceof BpfError ? e.errno : EBADF, "invalid module BTF fd specified");
  }
  if (!btf_is_module(btf)) {
    btf_put(btf);
    throw logErr(log, EINVAL, "BTF fd for kfunc is not a module BTF");
  }
  const module = btf_try_get_module(btf);
  if (!module) {
    btf_put(btf);
    throw new BpfError(ENXIO, `module of BTF ${btf.name} is not live`);
  }
  const entry = { offset: off, btf, module };
  tab.push(entry);
  return entry;
}

export function bindCalls(
  env: VerifierEnv,
  insns: readonly Insn[],
  checkHelpers: boolean,
  proc: Process,
  attr: ProgLoadAttr,
): void {
  const { kernel: k, prog, log } = env;
  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i];
    if (insn.code === LD_IMM64_CODE) {
      i++;
      continue;
    }
    if (insn.code !== 0x85) continue; // BPF_JMP | BPF_CALL
    if (insn.src === BPF_PSEUDO_KFUNC_CALL) {
      if (!prog.gpl_compatible)
        throw logErr(log, EINVAL, "cannot call kernel function from non-GPL compatible program");
      // find_kfunc_desc_btf(): insn->off 0 is vmlinux, else the module BTF fd at fd_array[off].
      const modBtf = insn.off ? find_kfunc_desc_btf(env, proc, attr, insn.off) : null;
      const descBtf = modBtf ? modBtf.btf.btf : k.btfVmlinux;
      let isFunc = false;
      let name = "";
      if (descBtf && insn.imm > 0 && insn.imm <= descBtf.nrTypes) {
        const t = descBtf.typeById(insn.imm);
        isFunc = t.kind === BTF_KIND_FUNC;
        name = t.name;
      }
      const kf = modBtf ? (modBtf.module as Module).kfuncs.get(insn.imm) : k.kfuncs.get(insn.imm);
      if (!isFunc && !kf) throw logErr(log, EINVAL, `kernel btf_id ${insn.imm} is not a function`);
      if (!kf) throw logErr(log, EINVAL, `cannot find address for kernel function ${name}`);
      if (!prog.aux.kfunc_btf_ids.includes(insn.imm)) prog.aux.kfunc_btf_ids.push(insn.imm);
    } else if (insn.src === 0 && checkHelpers) {
      if (k.helpers.has(insn.imm)) continue;
      // check_helper_call's two refusals (get_helper_proto: -ERANGE, then -EINVAL)
      const name = `${funcIdName(insn.imm)}#${insn.imm}`;
      if (insn.imm < 0 || insn.imm >= __BPF_FUNC_MAX_ID) throw logErr(log, EINVAL, `invalid func ${name}`);
      throw logErr(log, EINVAL, `program of this type cannot use helper ${name}`);
    }
  }
}

const MIN_BPF_FUNCINFO_SIZE = 8;
const MIN_BPF_LINEINFO_SIZE = 16;
const MAX_INFO_REC_SIZE = 252;

/**
 * check_btf_info(): with func_info or line_info, prog_btf_fd names the program's BTF (not a
 * kernel BTF: EACCES), records have a sane size, func_info starts at insn 0 and names FUNCs,
 * line_info is ordered and inside the program. Without either, prog_btf_fd is ignored.
 */
export function check_btf_info(env: VerifierEnv, proc: Process, attr: ProgLoadAttr): void {
  const { prog, log } = env;
  const fcnt = attr.func_info_cnt ?? 0;
  const lcnt = attr.line_info_cnt ?? 0;
  if (!fcnt && !lcnt) return;
  const fd = attr.prog_btf_fd ?? 0;
  // fd 0 is a real process's stdin: not a BTF object.
  if (!fd) throw logErr(log, EINVAL, "prog_btf_fd 0 is not a BTF object");
  const btf = btf_get_by_fd(proc, fd);
  prog.aux.btf = btf;
  if (btf.kernelBtf) throw logErr(log, EACCES, `prog_btf_fd ${fd} is a kernel BTF`);
  if (fcnt) {
    const rec = attr.func_info_rec_size ?? 0;
    if (rec < MIN_BPF_FUNCINFO_SIZE || rec > MAX_INFO_REC_SIZE || rec % 4) {
      throw logErr(log, EINVAL, `invalid func info rec size ${rec}`);
    }
    const data = attr.func_info;
    if (!data || data.length < fcnt * rec)
      throw new BpfError(EFAULT, "func_info is shorter than func_info_cnt records");
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let prev = 0;
    for (let i = 0; i < fcnt; i++) {
      const off = dv.getUint32(i * rec, true);
      const typeId = dv.getUint32(i * rec + 4, true);
      if (i === 0 && off) throw logErr(log, EINVAL, `nonzero insn_off ${off} for the first func info record`);
      if (i > 0 && off <= prev) {
        throw logErr(log, EINVAL, `same or smaller insn offset (${off}) than previous func info record (${prev})`);
      }
      const t = typeId > 0 && typeId <= btf.btf.nrTypes ? btf.btf.typeById(typeId) : undefined;
      if (!t || t.kind !== BTF_KIND_FUNC) throw logErr(log, EINVAL, `invalid type id ${typeId} in func info`);
      prev = off;
    }
    prog.aux.func_info = data.slice(0, fcnt * rec);
    prog.aux.func_info_cnt = fcnt;
  }
  if (lcnt) {
    const rec = attr.line_info_rec_size ?? 0;
    if (rec < MIN_BPF_LINEINFO_SIZE || rec > MAX_INFO_REC_SIZE || rec % 4) {
      throw logErr(log, EINVAL, `invalid line_info rec size ${rec}`);
    }
    const data = attr.line_info;
    if (!data || data.length < lcnt * rec)
      throw new BpfError(EFAULT, "line_info is shorter than line_info_cnt records");
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const len = prog.orig_insns.length;
    let prev = 0;
    for (let i = 0; i < lcnt; i++) {
      const off = dv.getUint32(i * rec, true);
      if ((i && off <= prev) || off >= len) {
        throw logErr(log, EINVAL, `Invalid line_info[${i}].insn_off:${off} (prev_offset:${prev} prog->len:${len})`);
      }
      if (!prog.orig_insns[off].code && off > 0 && prog.orig_insns[off - 1].code === 0x18) {
        throw logErr(log, EINVAL, `Invalid insn code at line_info[${i}].insn_off`);
      }
      const lineOff = dv.getUint32(i * rec + 8, true);
      const fileOff = dv.getUint32(i * rec + 4, true);
      if (!btf.btf.validStrOff(lineOff) || !btf.btf.validStrOff(fileOff)) {
        throw logErr(log, EINVAL, `Invalid line_info[${i}].line_off or .file_name_off`);
      }
      prev = off;
    }
    prog.aux.line_info = data.slice(0, lcnt * rec);
    prog.aux.line_info_cnt = lcnt;
  }
}
