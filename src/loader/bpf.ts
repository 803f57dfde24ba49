/**
 * A low-level API shaped like libbpf's bpf.h: thin wrappers that fill a `union bpf_attr` and call
 * bpf(). libbpf 1.0 convention: an fd or 0 on success, a negative errno on failure; a user error
 * never throws (anything else thrown is a bug). `k` is the caller: a kernel and the process in it.
 */
import type { Insn } from "../isa/insn.js";
import type { BpfLinkInfo, BpfMapInfo, BpfProgInfo, UserMapping } from "../kernel/bpf.js";
import type {
  BtfLoadAttr,
  GetIdAttr,
  LinkCreateAttr,
  LinkUpdateAttr,
  MapBatchAttr,
  MapCreateAttr,
  MapElemAttr,
  ProgLoadAttr,
  ProgTestRunAttr,
} from "../kernel/bpf_attr.js";
import type { BpfBtfInfo } from "../kernel/btf_obj.js";
import type { Kernel } from "../kernel/kernel.js";
import type { Process } from "../kernel/process.js";
import { objGetInfo } from "../kernel/syscall.js";
import { BPF_OBJ_NAME_LEN, bpf_cmd } from "../uapi/bpf.js";
import { BpfError, EINVAL, toNegErrno } from "../uapi/errno.js";

export interface BpfHandle {
  readonly kernel: Kernel;
  readonly process: Process;
}

function sys(k: BpfHandle, cmd: number, attr: object): number {
  return toNegErrno(() => k.kernel.bpf(k.process, cmd, attr));
}

/** libbpf_strlcpy into a BPF_OBJ_NAME_LEN field: libbpf truncates long names instead of failing. */
function objName(name: string | null | undefined): string | undefined {
  return name ? name.slice(0, BPF_OBJ_NAME_LEN - 1) : undefined;
}

/**
 * libbpf's checks of a load command's log options (PROG_LOAD, BTF_LOAD): a buffer and a size go
 * together, a level needs a buffer. The log size to pass, or undefined for -EINVAL.
 */
function logSizeOf(opts: { log_buf?: Uint8Array; log_size?: number; log_level?: number }): number | undefined {
  const log_size = opts.log_size ?? opts.log_buf?.length ?? 0;
  if (!!opts.log_buf !== !!log_size) return undefined;
  if (opts.log_level && !opts.log_buf) return undefined;
  return log_size;
}

/**
 * Runs a load command; when it fails and `retry` is given (a log buffer with log_level 0), runs
 * it again with those log fields (level 1), as libbpf does, so that the buffer explains the failure.
 */
function loadRetryingWithLog(k: BpfHandle, cmd: number, attr: object, retry: object | null): number {
  const fd = sys(k, cmd, attr);
  if (fd >= 0 || !retry) return fd;
  Object.assign(attr, retry);
  return sys(k, cmd, attr);
}

export interface BpfMapCreateOpts {
  btf_fd?: number;
  btf_key_type_id?: number;
  btf_value_type_id?: number;
  btf_vmlinux_value_type_id?: number;
  value_type_btf_obj_fd?: number;
  inner_map_fd?: number;
  map_flags?: number;
  map_extra?: number | bigint;
  numa_node?: number;
  map_ifindex?: number;
  token_fd?: number;
}

export function bpf_map_create(
  k: BpfHandle,
  map_type: number,
  map_name: string | null,
  key_size: number,
  value_size: number,
  max_entries: number,
  opts: BpfMapCreateOpts = {},
): number {
  const attr: MapCreateAttr = {
    map_type,
    key_size,
    value_size,
    max_entries,
    map_name: objName(map_name),
    btf_fd: opts.btf_fd,
    btf_key_type_id: opts.btf_key_type_id,
    btf_value_type_id: opts.btf_value_type_id,
    btf_vmlinux_value_type_id: opts.btf_vmlinux_value_type_id,
    value_type_btf_obj_fd: opts.value_type_btf_obj_fd,
    inner_map_fd: opts.inner_map_fd,
    map_flags: opts.map_flags,
    map_extra: opts.map_extra,
    numa_node: opts.numa_node,
    map_ifindex: opts.map_ifindex,
    map_token_fd: opts.token_fd,
  };
  return sys(k, bpf_cmd.BPF_MAP_CREATE, attr);
}

export function bpf_map_update_elem(
  k: BpfHandle,
  fd: number,
  key: Uint8Array | null,
  value: Uint8Array,
  flags = 0,
): number {
  const attr: MapElemAttr = { map_fd: fd, key, value, flags };
  return sys(k, bpf_cmd.BPF_MAP_UPDATE_ELEM, attr);
}

/** Fills `value` (value_size bytes). */
export function bpf_map_lookup_elem(k: BpfHandle, fd: number, key: Uint8Array | null, value: Uint8Array): number {
  return bpf_map_lookup_elem_flags(k, fd, key, value, 0);
}

export function bpf_map_lookup_elem_flags(
  k: BpfHandle,
  fd: number,
  key: Uint8Array | null,
  value: Uint8Array,
  flags: number,
): number {
  const attr: MapElemAttr = { map_fd: fd, key, value, flags };
  return sys(k, bpf_cmd.BPF_MAP_LOOKUP_ELEM, attr);
}

export function bpf_map_delete_elem(k: BpfHandle, fd: number, key: Uint8Array | null): number {
  const attr: MapElemAttr = { map_fd: fd, key };
  return sys(k, bpf_cmd.BPF_MAP_DELETE_ELEM, attr);
}

/** Fills `next_key`; key null asks for the first key. */
export function bpf_map_get_next_key(k: BpfHandle, fd: number, key: Uint8Array | null, next_key: Uint8Array): number {
  const attr: MapElemAttr = { map_fd: fd, key, next_key };
  return sys(k, bpf_cmd.BPF_MAP_GET_NEXT_KEY, attr);
}

/** Fills `value` and removes the element (hash maps). */
export function bpf_map_lookup_and_delete_elem(
  k: BpfHandle,
  fd: number,
  key: Uint8Array | null,
  value: Uint8Array,
): number {
  const attr: MapElemAttr = { map_fd: fd, key, value };
  return sys(k, bpf_cmd.BPF_MAP_LOOKUP_AND_DELETE_ELEM, attr);
}

/** BPF_ENABLE_STATS: an fd that keeps run-time statistics on while open. */
export function bpf_enable_stats(k: BpfHandle, type: number): number {
  return sys(k, bpf_cmd.BPF_ENABLE_STATS, { type });
}

export interface BpfMapBatchOpts {
  elem_flags?: number;
  flags?: number;
}

function batch(
  k: BpfHandle,
  cmd: number,
  fd: number,
  in_batch: Uint8Array | null,
  out_batch: Uint8Array | null,
  keys: Uint8Array | null,
  values: Uint8Array | null,
  count: { count: number },
  opts: BpfMapBatchOpts,
): number {
  const attr: MapBatchAttr = {
    map_fd: fd,
    in_batch,
    out_batch,
    keys,
    values,
    count: count.count,
    elem_flags: opts.elem_flags,
    flags: opts.flags,
  };
  const r = sys(k, cmd, attr);
  count.count = attr.count ?? 0;
  return r;
}

/** `count.count`: in, the most to read; out, how many were read. -ENOENT marks the last batch. */
export function bpf_map_lookup_batch(
  k: BpfHandle,
  fd: number,
  in_batch: Uint8Array | null,
  out_batch: Uint8Array,
  keys: Uint8Array,
  values: Uint8Array,
  count: { count: number },
  opts: BpfMapBatchOpts = {},
): number {
  return batch(k, bpf_cmd.BPF_MAP_LOOKUP_BATCH, fd, in_batch, out_batch, keys, values, count, opts);
}

export function bpf_map_lookup_and_delete_batch(
  k: BpfHandle,
  fd: number,
  in_batch: Uint8Array | null,
  out_batch: Uint8Array,
  keys: Uint8Array,
  values: Uint8Array,
  count: { count: number },
  opts: BpfMapBatchOpts = {},
): number {
  return batch(k, bpf_cmd.BPF_MAP_LOOKUP_AND_DELETE_BATCH, fd, in_batch, out_batch, keys, values, count, opts);
}

export function bpf_map_update_batch(
  k: BpfHandle,
  fd: number,
  keys: Uint8Array,
  values: Uint8Array,
  count: { count: number },
  opts: BpfMapBatchOpts = {},
): number {
  return batch(k, bpf_cmd.BPF_MAP_UPDATE_BATCH, fd, null, null, keys, values, count, opts);
}

export function bpf_map_delete_batch(
  k: BpfHandle,
  fd: number,
  keys: Uint8Array,
  count: { count: number },
  opts: BpfMapBatchOpts = {},
): number {
  return batch(k, bpf_cmd.BPF_MAP_DELETE_BATCH, fd, null, null, keys, null, count, opts);
}

export function bpf_map_freeze(k: BpfHandle, fd: number): number {
  return sys(k, bpf_cmd.BPF_MAP_FREEZE, { map_fd: fd });
}

export interface BpfProgLoadOpts {
  expected_attach_type?: number;
  prog_btf_fd?: number;
  prog_flags?: number;
  prog_ifindex?: number;
  kern_version?: number;
  attach_btf_id?: number;
  attach_prog_fd?: number;
  attach_btf_obj_fd?: number;
  fd_array?: readonly number[];
  func_info?: Uint8Array;
  func_info_cnt?: number;
  func_info_rec_size?: number;
  line_info?: Uint8Array;
  line_info_cnt?: number;
  line_info_rec_size?: number;
  log_level?: number;
  log_size?: number;
  log_buf?: Uint8Array;
  /** Out: the size the whole log needed. */
  log_true_size?: number;
  token_fd?: number;
}

export function bpf_prog_load(
  k: BpfHandle,
  prog_type: number,
  prog_name: string | null,
  license: string | null,
  insns: readonly Insn[],
  opts: BpfProgLoadOpts = {},
): number {
  const log_buf = opts.log_buf;
  const log_size = logSizeOf(opts);
  const log_level = opts.log_level ?? 0;
  if (log_size === undefined || log_level > (4 | 2 | 1)) return -EINVAL;
  const attr: ProgLoadAttr = {
    prog_type,
    expected_attach_type: opts.expected_attach_type,
    prog_name: objName(prog_name),
    license: license ?? undefined,
    insns,
    insn_cnt: insns.length,
    prog_btf_fd: opts.prog_btf_fd,
    prog_flags: opts.prog_flags,
    prog_ifindex: opts.prog_ifindex,
    kern_version: opts.kern_version,
    attach_btf_id: opts.attach_btf_id,
    attach_prog_fd: opts.attach_prog_fd,
    attach_btf_obj_fd: opts.attach_prog_fd ? undefined : opts.attach_btf_obj_fd,
    fd_array: opts.fd_array,
    func_info: opts.func_info,
    func_info_cnt: opts.func_info_cnt,
    func_info_rec_size: opts.func_info_rec_size,
    line_info: opts.line_info,
    line_info_cnt: opts.line_info_cnt,
    line_info_rec_size: opts.line_info_rec_size,
    prog_token_fd: opts.token_fd,
  };
  if (log_level) Object.assign(attr, { log_level, log_buf, log_size });
  const retry = log_level === 0 && log_buf ? { log_level: 1, log_buf, log_size, log_true_size: undefined } : null;
  const fd = loadRetryingWithLog(k, bpf_cmd.BPF_PROG_LOAD, attr, retry);
  opts.log_true_size = attr.log_true_size;
  return fd;
}

export interface BpfBtfLoadOpts {
  log_buf?: Uint8Array;
  log_size?: number;
  log_level?: number;
  log_true_size?: number;
  btf_flags?: number;
  token_fd?: number;
}

export function bpf_btf_load(k: BpfHandle, btf_data: Uint8Array, opts: BpfBtfLoadOpts = {}): number {
  const log_size = logSizeOf(opts);
  if (log_size === undefined) return -EINVAL;
  const attr: BtfLoadAttr = {
    btf: btf_data,
    btf_size: btf_data.length,
    btf_flags: opts.btf_flags,
    btf_token_fd: opts.token_fd,
  };
  if (opts.log_level)
    Object.assign(attr, { btf_log_level: opts.log_level, btf_log_buf: opts.log_buf, btf_log_size: log_size });
  const retry =
    !opts.log_level && opts.log_buf ? { btf_log_level: 1, btf_log_buf: opts.log_buf, btf_log_size: log_size } : null;
  const fd = loadRetryingWithLog(k, bpf_cmd.BPF_BTF_LOAD, attr, retry);
  opts.log_true_size = attr.btf_log_true_size;
  return fd;
}

export interface BpfLinkCreateOpts {
  flags?: number;
  target_btf_id?: number;
  /** tracing.cookie (fentry/fexit). */
  cookie?: number | bigint;
}

/** For struct_ops, `prog_fd` is the struct_ops map's fd, as libbpf passes it. */
export function bpf_link_create(
  k: BpfHandle,
  prog_fd: number,
  target_fd: number,
  attach_type: number,
  opts: BpfLinkCreateOpts = {},
): number {
  const attr: LinkCreateAttr = {
    prog_fd,
    target_fd,
    attach_type,
    flags: opts.flags,
    target_btf_id: opts.target_btf_id,
    cookie: opts.cookie,
  };
  return sys(k, bpf_cmd.BPF_LINK_CREATE, attr);
}

export interface BpfLinkUpdateOpts {
  flags?: number;
  old_prog_fd?: number;
  old_map_fd?: number;
}

/** For struct_ops links, `new_prog_fd` is the new map's fd (the union slot is shared). */
export function bpf_link_update(
  k: BpfHandle,
  link_fd: number,
  new_prog_fd: number,
  opts: BpfLinkUpdateOpts = {},
): number {
  if (opts.old_prog_fd && opts.old_map_fd) return -EINVAL;
  const attr: LinkUpdateAttr = {
    link_fd,
    new_prog_fd,
    flags: opts.flags,
    old_prog_fd: opts.old_prog_fd || opts.old_map_fd || undefined,
  };
  return sys(k, bpf_cmd.BPF_LINK_UPDATE, attr);
}

export function bpf_link_detach(k: BpfHandle, link_fd: number): number {
  return sys(k, bpf_cmd.BPF_LINK_DETACH, { link_fd });
}

export interface BpfTestRunOpts {
  data_in?: Uint8Array;
  data_out?: Uint8Array;
  data_size_in?: number;
  data_size_out?: number;
  ctx_in?: Uint8Array;
  ctx_out?: Uint8Array;
  ctx_size_in?: number;
  ctx_size_out?: number;
  /** Out: r0 of the program (u32). */
  retval?: number;
  repeat?: number;
  /** Out: mean ns per run. */
  duration?: number;
  flags?: number;
  cpu?: number;
  batch_size?: number;
}

export function bpf_prog_test_run_opts(k: BpfHandle, prog_fd: number, opts: BpfTestRunOpts): number {
  const attr: ProgTestRunAttr = {
    prog_fd,
    data_in: opts.data_in,
    data_out: opts.data_out,
    data_size_in: opts.data_size_in ?? opts.data_in?.length,
    data_size_out: opts.data_size_out,
    ctx_in: opts.ctx_in,
    ctx_out: opts.ctx_out,
    ctx_size_in: opts.ctx_size_in ?? opts.ctx_in?.length,
    ctx_size_out: opts.ctx_size_out ?? opts.ctx_out?.length,
    repeat: opts.repeat,
    flags: opts.flags,
    cpu: opts.cpu,
    batch_size: opts.batch_size,
  };
  const r = sys(k, bpf_cmd.BPF_PROG_TEST_RUN, attr);
  opts.data_size_out = attr.data_size_out;
  opts.ctx_size_out = attr.ctx_size_out;
  opts.retval = attr.retval;
  opts.duration = attr.duration;
  return r;
}

/** Fills `info` with the object's info struct (bpf_map_info, bpf_prog_info, bpf_link_info, bpf_btf_info). */
export function bpf_obj_get_info_by_fd(k: BpfHandle, fd: number, info: Record<string, unknown>): number {
  return sys(k, bpf_cmd.BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: fd, info });
}

function typedInfo<T>(k: BpfHandle, fd: number, kind: string, info: Partial<T>): number {
  return toNegErrno(() => {
    const f = k.process.files.get(fd);
    if (f.kind !== kind) return -EINVAL;
    Object.assign(info, objGetInfo(k.process, fd));
    return 0;
  });
}

export function bpf_map_get_info_by_fd(k: BpfHandle, fd: number, info: Partial<BpfMapInfo>): number {
  return typedInfo(k, fd, "map", info);
}

export function bpf_prog_get_info_by_fd(k: BpfHandle, fd: number, info: Partial<BpfProgInfo>): number {
  return typedInfo(k, fd, "prog", info);
}

export function bpf_link_get_info_by_fd(k: BpfHandle, fd: number, info: Partial<BpfLinkInfo>): number {
  return typedInfo(k, fd, "link", info);
}

export function bpf_btf_get_info_by_fd(k: BpfHandle, fd: number, info: Partial<BpfBtfInfo>): number {
  return typedInfo(k, fd, "btf", info);
}

function nextId(k: BpfHandle, cmd: number, start_id: number, next: { id: number }): number {
  const attr: GetIdAttr = { start_id };
  const r = sys(k, cmd, attr);
  if (r === 0) next.id = attr.next_id ?? 0;
  return r;
}

/** `next.id` receives the next id (libbpf: `__u32 *next_id`). */
export function bpf_map_get_next_id(k: BpfHandle, start_id: number, next: { id: number }): number {
  return nextId(k, bpf_cmd.BPF_MAP_GET_NEXT_ID, start_id, next);
}

export function bpf_prog_get_next_id(k: BpfHandle, start_id: number, next: { id: number }): number {
  return nextId(k, bpf_cmd.BPF_PROG_GET_NEXT_ID, start_id, next);
}

export function bpf_btf_get_next_id(k: BpfHandle, start_id: number, next: { id: number }): number {
  return nextId(k, bpf_cmd.BPF_BTF_GET_NEXT_ID, start_id, next);
}

export function bpf_link_get_next_id(k: BpfHandle, start_id: number, next: { id: number }): number {
  return nextId(k, bpf_cmd.BPF_LINK_GET_NEXT_ID, start_id, next);
}

export interface BpfGetFdByIdOpts {
  open_flags?: number;
}

export function bpf_map_get_fd_by_id(k: BpfHandle, id: number): number {
  return bpf_map_get_fd_by_id_opts(k, id, {});
}

export function bpf_map_get_fd_by_id_opts(k: BpfHandle, id: number, opts: BpfGetFdByIdOpts): number {
  return sys(k, bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: id, open_flags: opts.open_flags });
}

export function bpf_prog_get_fd_by_id(k: BpfHandle, id: number): number {
  return sys(k, bpf_cmd.BPF_PROG_GET_FD_BY_ID, { prog_id: id });
}

export function bpf_btf_get_fd_by_id(k: BpfHandle, id: number): number {
  return sys(k, bpf_cmd.BPF_BTF_GET_FD_BY_ID, { btf_id: id });
}

export function bpf_link_get_fd_by_id(k: BpfHandle, id: number): number {
  return sys(k, bpf_cmd.BPF_LINK_GET_FD_BY_ID, { link_id: id });
}

export function bpf_obj_pin(k: BpfHandle, fd: number, pathname: string): number {
  return sys(k, bpf_cmd.BPF_OBJ_PIN, { bpf_fd: fd, pathname });
}

export interface BpfObjGetOpts {
  file_flags?: number;
}

export function bpf_obj_get(k: BpfHandle, pathname: string, opts: BpfObjGetOpts = {}): number {
  return sys(k, bpf_cmd.BPF_OBJ_GET, { pathname, file_flags: opts.file_flags });
}

/**
 * mmap(2) of a map fd (MAP_SHARED; `offset` in bytes, page-aligned): the mapping, or a negative
 * errno (-ENOTSUPP for a map type that cannot be mapped, -EPERM / -EACCES for a refused write).
 */
export function mmap(k: BpfHandle, fd: number, length: number, write: boolean, offset: number): UserMapping | number {
  if (offset % 4096) return -EINVAL;
  try {
    return k.kernel.mmap(k.process, fd, offset / 4096, length, write);
  } catch (e) {
    if (e instanceof BpfError) return -e.errno;
    throw e;
  }
}

/** poll(2) of one fd: the EPOLL* mask it reports now, or a negative errno. */
export function poll(k: BpfHandle, fd: number): number {
  return toNegErrno(() => k.kernel.poll(k.process, fd));
}

/** close(2): 0, or -EBADF. */
export function close(k: BpfHandle, fd: number): number {
  return toNegErrno(() => {
    k.process.files.close(fd);
    k.kernel.flushWork();
    return 0;
  });
}
