/**
 * The bpf() system call (kernel/bpf/syscall.c __sys_bpf): CHECK_ATTR, then the command. Also the
 * id commands (GET_NEXT_ID, GET_FD_BY_ID), OBJ_GET_INFO_BY_FD, and fdinfo text.
 */
import {
  BPF_F_RDONLY,
  BPF_F_WRONLY,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_VALUE,
  bpf_attach_type,
  bpf_cmd,
  bpf_prog_type,
} from "../uapi/bpf.js";
import { BpfError, EINVAL, ENOENT, EPERM } from "../uapi/errno.js";
import type { BpfLink, BpfMap, BpfMapInfo, BpfProg, BpfProgInfo, BtfObject } from "./bpf.js";
import type {
  BpfAttr,
  BtfLoadAttr,
  EnableStatsAttr,
  GetIdAttr,
  LinkCreateAttr,
  LinkDetachAttr,
  LinkUpdateAttr,
  MapBatchAttr,
  MapCreateAttr,
  MapElemAttr,
  MapFreezeAttr,
  ObjGetInfoAttr,
  ProgLoadAttr,
  ProgTestRunAttr,
  RawTracepointOpenAttr,
} from "./bpf_attr.js";
import { checkAttr, num } from "./bpf_attr.js";
import { __NR_bpf, bpf_raw_tp_link_attach, trace_sys_enter } from "./bpf_trace.js";
import { bpf_btf_load, btf_fops, btf_get_fd_by_id, btf_get_info } from "./btf_obj.js";
import { CAP_SYS_ADMIN } from "./capability.js";
import { File, type FileOps, O_CLOEXEC, O_RDONLY } from "./file.js";
import type { Idr } from "./idr.js";
import { bpf_obj_get, bpf_obj_pin, type ObjPinAttr } from "./inode.js";
import type { Kernel } from "./kernel.js";
import { bpf_map_do_batch } from "./map_batch.js";
import type { Process } from "./process.js";
import {
  bpf_link_fops,
  bpf_link_get_fd_by_id,
  bpf_link_get_info,
  link_create,
  link_detach,
  link_update,
} from "./syscall_link.js";
import {
  bpf_get_file_flag,
  bpf_map_fops,
  bpf_map_inc_not_zero,
  bpf_map_kaddr,
  bpf_map_new_fd,
  bpf_map_put,
  map_create,
  map_delete_elem,
  map_freeze,
  map_get_next_key,
  map_lookup_and_delete_elem,
  map_lookup_elem,
  map_update_elem,
} from "./syscall_map.js";
import {
  bpf_prog_fops,
  bpf_prog_get,
  bpf_prog_inc_not_zero,
  bpf_prog_load,
  bpf_prog_new_fd,
  bpf_prog_put,
  bpf_prog_test_run,
} from "./syscall_prog.js";
import { bpf_tracing_prog_attach } from "./trampoline.js";

const C = bpf_cmd;

/**
 * bpf_raw_tracepoint_open(): fentry/fexit programs attach to the target they were loaded for
 * (a name is EINVAL: the attach point comes from attach_btf_id); tracepoints are not modelled.
 */
function bpf_raw_tracepoint_open(proc: Process, attr: RawTracepointOpenAttr): number {
  const prog = bpf_prog_get(proc, num(attr.prog_fd));
  try {
    if (prog.expected_attach_type === bpf_attach_type.BPF_TRACE_RAW_TP) {
      return bpf_raw_tp_link_attach(proc, prog, attr.name ? String(attr.name) : null, BigInt(attr.cookie ?? 0));
    }
    if (prog.type !== bpf_prog_type.BPF_PROG_TYPE_TRACING || attr.name) {
      throw new BpfError(EINVAL, `program ${prog.name} cannot be opened as a raw tracepoint here`);
    }
    return bpf_tracing_prog_attach(proc, prog, 0, 0, BigInt(attr.cookie ?? 0));
  } finally {
    bpf_prog_put(prog);
  }
}

export function sysBpf(k: Kernel, proc: Process, cmd: number, attr: BpfAttr): number {
  checkAttr(cmd, attr);
  const prev = k.current;
  k.current = proc;
  try {
    trace_sys_enter(k, __NR_bpf, [cmd]);
    switch (cmd) {
      case C.BPF_MAP_CREATE:
        return map_create(k, proc, attr as MapCreateAttr);
      case C.BPF_MAP_LOOKUP_ELEM:
        return map_lookup_elem(proc, attr as MapElemAttr);
      case C.BPF_MAP_UPDATE_ELEM:
        return map_update_elem(proc, attr as MapElemAttr);
      case C.BPF_MAP_DELETE_ELEM:
        return map_delete_elem(proc, attr as MapElemAttr);
      case C.BPF_MAP_GET_NEXT_KEY:
        return map_get_next_key(proc, attr as MapElemAttr);
      case C.BPF_MAP_LOOKUP_AND_DELETE_ELEM:
        return map_lookup_and_delete_elem(proc, attr as MapElemAttr);
      case C.BPF_ENABLE_STATS:
        return bpf_enable_stats(k, proc, attr as EnableStatsAttr);
      case C.BPF_MAP_LOOKUP_BATCH:
      case C.BPF_MAP_LOOKUP_AND_DELETE_BATCH:
      case C.BPF_MAP_UPDATE_BATCH:
      case C.BPF_MAP_DELETE_BATCH:
        return bpf_map_do_batch(proc, cmd, attr as MapBatchAttr);
      case C.BPF_OBJ_PIN:
        return bpf_obj_pin(k, proc, attr as ObjPinAttr);
      case C.BPF_OBJ_GET:
        return bpf_obj_get(k, proc, attr as ObjPinAttr);
      case C.BPF_MAP_FREEZE:
        return map_freeze(proc, attr as MapFreezeAttr);
      case C.BPF_PROG_LOAD:
        return bpf_prog_load(k, proc, attr as ProgLoadAttr);
      case C.BPF_BTF_LOAD:
        return bpf_btf_load(k, proc, attr as BtfLoadAttr);
      case C.BPF_OBJ_GET_INFO_BY_FD:
        return obj_get_info_by_fd(proc, attr as ObjGetInfoAttr);
      case C.BPF_MAP_GET_NEXT_ID:
        return get_next_id(proc, attr as GetIdAttr, k.map_idr);
      case C.BPF_PROG_GET_NEXT_ID:
        return get_next_id(proc, attr as GetIdAttr, k.prog_idr);
      case C.BPF_BTF_GET_NEXT_ID:
        return get_next_id(proc, attr as GetIdAttr, k.btf_idr);
      case C.BPF_LINK_GET_NEXT_ID:
        return get_next_id(proc, attr as GetIdAttr, k.link_idr);
      case C.BPF_MAP_GET_FD_BY_ID:
        return map_get_fd_by_id(k, proc, attr as GetIdAttr);
      case C.BPF_PROG_GET_FD_BY_ID:
        return prog_get_fd_by_id(k, proc, attr as GetIdAttr);
      case C.BPF_BTF_GET_FD_BY_ID:
        requireSysAdmin(proc);
        return btf_get_fd_by_id(k, proc, idOf(attr as GetIdAttr));
      case C.BPF_LINK_GET_FD_BY_ID:
        requireSysAdmin(proc);
        return bpf_link_get_fd_by_id(k, proc, idOf(attr as GetIdAttr));
      case C.BPF_LINK_CREATE:
        return link_create(k, proc, attr as LinkCreateAttr);
      case C.BPF_RAW_TRACEPOINT_OPEN:
        return bpf_raw_tracepoint_open(proc, attr as RawTracepointOpenAttr);
      case C.BPF_LINK_UPDATE:
        return link_update(k, proc, attr as LinkUpdateAttr);
      case C.BPF_LINK_DETACH:
        return link_detach(k, proc, attr as LinkDetachAttr);
      case C.BPF_PROG_TEST_RUN:
        return bpf_prog_test_run(k, proc, attr as ProgTestRunAttr);
      default:
        throw new BpfError(EINVAL, `bpf command ${cmd} is not supported`);
    }
  } finally {
    k.current = prev;
    // Deferred frees (the kernel's workqueue) run once the syscall is done, outside RCU readers.
    if (!k.rcu.readLockHeld()) k.flushWork();
  }
}

/** BPF_STATS_RUN_TIME: while an fd from BPF_ENABLE_STATS is open, programs' run time is counted. */
export const BPF_STATS_RUN_TIME = 0;

const bpf_stats_fops: FileOps<Kernel> = {
  kind: "other",
  release: (f) => {
    f.private_data.sysctl.bpfStatsEnabled--;
  },
};

function bpf_enable_stats(k: Kernel, proc: Process, attr: EnableStatsAttr): number {
  requireSysAdmin(proc);
  if (num(attr.type) !== BPF_STATS_RUN_TIME) throw new BpfError(EINVAL, `unknown stats type ${num(attr.type)}`);
  const fd = proc.files.install(new File(bpf_stats_fops, k, O_RDONLY | O_CLOEXEC));
  k.sysctl.bpfStatsEnabled++;
  return fd;
}

function requireSysAdmin(proc: Process): void {
  if (!proc.capable(CAP_SYS_ADMIN)) throw new BpfError(EPERM, "needs CAP_SYS_ADMIN");
}

function idOf(attr: GetIdAttr): number {
  return num(attr.start_id ?? attr.map_id ?? attr.prog_id ?? attr.btf_id ?? attr.link_id);
}

/** bpf_obj_get_next_id(): the smallest live id above start_id, in next_id. */
function get_next_id<T>(proc: Process, attr: GetIdAttr, idr: Idr<T>): number {
  requireSysAdmin(proc);
  const next = idr.getNext(idOf(attr) + 1);
  if (!next) throw new BpfError(ENOENT, `no object with an id above ${idOf(attr)}`);
  attr.next_id = next.id;
  return 0;
}

function map_get_fd_by_id(k: Kernel, proc: Process, attr: GetIdAttr): number {
  requireSysAdmin(proc);
  const open_flags = num(attr.open_flags);
  if (open_flags & ~(BPF_F_RDONLY | BPF_F_WRONLY)) throw new BpfError(EINVAL, "invalid open_flags");
  const f_flags = bpf_get_file_flag(open_flags);
  const id = idOf(attr);
  const map = k.map_idr.find(id);
  if (!map) throw new BpfError(ENOENT, `no map with id ${id}`);
  bpf_map_inc_not_zero(map, true);
  try {
    return bpf_map_new_fd(proc, map, f_flags);
  } catch (e) {
    map.usercnt--;
    bpf_map_put(map);
    throw e;
  }
}

function prog_get_fd_by_id(k: Kernel, proc: Process, attr: GetIdAttr): number {
  requireSysAdmin(proc);
  const id = idOf(attr);
  const prog = k.prog_idr.find(id);
  if (!prog) throw new BpfError(ENOENT, `no program with id ${id}`);
  bpf_prog_inc_not_zero(prog);
  try {
    return bpf_prog_new_fd(proc, prog);
  } catch (e) {
    bpf_prog_put(prog);
    throw e;
  }
}

// ---- BPF_OBJ_GET_INFO_BY_FD ----

export function bpf_map_get_info(map: BpfMap): BpfMapInfo {
  const info: BpfMapInfo = {
    type: map.map_type,
    id: map.id,
    key_size: map.key_size,
    value_size: map.value_size,
    max_entries: map.max_entries,
    map_flags: map.map_flags,
    name: map.name,
    ifindex: 0,
    btf_vmlinux_value_type_id: map.btf_vmlinux_value_type_id,
    netns_dev: 0,
    netns_ino: 0,
    btf_id: map.btf?.id ?? 0,
    btf_key_type_id: map.btf_key_type_id,
    btf_value_type_id: map.btf_value_type_id,
    btf_vmlinux_id: 0,
    map_extra: map.map_extra,
  };
  map.ops.map_fill_info?.(map, info);
  return info;
}

export function bpf_prog_get_info(prog: BpfProg, proc: Process): BpfProgInfo {
  const cap = proc.cred.bpfCapable();
  return {
    type: prog.type,
    id: prog.id,
    tag: prog.tag.slice(),
    // Unprivileged callers see no program text sizes (bpf_prog_get_info_by_fd).
    jited_prog_len: cap ? prog.len * 8 : 0,
    xlated_prog_len: cap ? prog.len * 8 : 0,
    load_time: prog.aux.load_time,
    created_by_uid: prog.aux.created_by_uid,
    nr_map_ids: prog.aux.used_maps.length,
    map_ids: prog.aux.used_maps.map((m) => m.id),
    name: prog.name,
    ifindex: 0,
    gpl_compatible: prog.gpl_compatible,
    btf_id: prog.aux.btf?.id ?? 0,
    func_info_rec_size: 8,
    nr_func_info: prog.aux.func_info_cnt,
    nr_line_info: prog.aux.line_info_cnt,
    line_info_rec_size: 16,
    attach_btf_obj_id: prog.aux.attach_btf?.id ?? 0,
    attach_btf_id: prog.aux.attach_btf_id,
    run_cnt: prog.run_cnt,
    run_time_ns: prog.run_time_ns,
    verified_insns: prog.verified_insns,
    xlated_prog_insns: cap ? bpf_insn_prepare_dump(prog) : undefined,
    // The records as the verifier kept them (insn_off in xlated instructions), for bpftool's names and source lines.
    func_info: cap && prog.aux.func_info ? prog.aux.func_info.slice() : undefined,
    line_info: cap && prog.aux.line_info ? prog.aux.line_info.slice() : undefined,
  };
}

/**
 * bpf_insn_prepare_dump(): the xlated instructions as userspace sees them, an ld_imm64 of a map
 * (or of an address in a map's value) turned back into BPF_PSEUDO_MAP_FD/VALUE with the map's id
 * and the offset (bpf_map_from_imm), which is what bpftool prints as map[id:N].
 */
function bpf_insn_prepare_dump(prog: BpfProg): BpfProgInfo["xlated_prog_insns"] {
  const insns = prog.insnsi.map((i) => ({ ...i }));
  for (let i = 0; i + 1 < insns.length; i++) {
    if (insns[i]!.code !== 0x18) continue;
    const imm = (insns[i]!.imm >>> 0) + (insns[i + 1]!.imm >>> 0) * 2 ** 32;
    for (const map of prog.aux.used_maps) {
      const dva = (map.ops as { map_direct_value_addr?: (m: BpfMap, off: number) => number }).map_direct_value_addr;
      let base: number | undefined;
      try {
        base = dva?.(map, 0);
      } catch {
        base = undefined;
      }
      if (imm === bpf_map_kaddr(map)) {
        Object.assign(insns[i]!, { src: BPF_PSEUDO_MAP_FD, imm: map.id });
        insns[i + 1]!.imm = 0;
      } else if (base !== undefined && imm >= base && imm < base + map.value_size) {
        Object.assign(insns[i]!, { src: BPF_PSEUDO_MAP_VALUE, imm: map.id });
        insns[i + 1]!.imm = imm - base;
      } else continue;
      break;
    }
    i++;
  }
  return insns;
}

/** The info struct of any BPF object fd. */
export function objGetInfo(proc: Process, fd: number): Record<string, unknown> {
  const f = proc.files.get(fd);
  if (f.f_op === bpf_map_fops) return { ...bpf_map_get_info(f.private_data as BpfMap) };
  if (f.f_op === bpf_prog_fops) return { ...bpf_prog_get_info(f.private_data as BpfProg, proc) };
  if (f.f_op === bpf_link_fops) return { ...bpf_link_get_info(f.private_data as BpfLink) };
  if (f.f_op === btf_fops) return { ...btf_get_info(f.private_data as BtfObject) };
  throw new BpfError(EINVAL, `fd ${fd} is not a BPF object`, { fd });
}

function obj_get_info_by_fd(proc: Process, attr: ObjGetInfoAttr): number {
  const info = objGetInfo(proc, num(attr.bpf_fd));
  if (attr.info) Object.assign(attr.info, info);
  else attr.info = info;
  attr.info_len = Object.keys(info).length;
  return 0;
}

/**
 * fdget() of a BPF object of a given kind: the object behind fd (no new reference; the fd keeps it
 * alive for the caller's syscall). EBADF for a closed fd, EINVAL for another kind of file.
 */
export function fdget<K extends "map" | "prog" | "link" | "btf">(
  proc: Process,
  fd: number,
  kind: K,
): { map: BpfMap; prog: BpfProg; link: BpfLink; btf: BtfObject }[K] {
  const f = proc.files.get(fd);
  if (f.kind !== kind) throw new BpfError(EINVAL, `fd ${fd} is not a BPF ${kind}`, { fd });
  return f.private_data as never;
}

/** /proc/<pid>/fdinfo/<fd> of a process. */
export function fdinfo(proc: Process, fd: number): string {
  const f = proc.files.get(fd);
  if (!f.f_op.show_fdinfo) return `pos:\t0\nflags:\t0${f.f_flags.toString(8)}\n`;
  return f.f_op.show_fdinfo(f as never);
}
