import type { Insn } from "../isa/insn.js";
import { bpf_cmd } from "../uapi/bpf.js";
import { BpfError, EFAULT, EINVAL } from "../uapi/errno.js";

/**
 * `union bpf_attr`, one TypeScript shape per command. Every numeric field is optional and means 0
 * when absent, as in a zeroed attr. Pointers to user memory are Uint8Arrays (or objects the kernel
 * fills, for info). `extra` stands for bytes past the command's last field (or a field of another
 * command of the union): any non-zero entry there makes CHECK_ATTR fail with EINVAL, as it does in
 * the kernel. Fields the kernel writes back (next_id, retval, log_true_size...) are written into
 * the same object.
 */
export interface AttrTail {
  extra?: Record<string, number | bigint | Uint8Array | undefined>;
}

export interface MapCreateAttr extends AttrTail {
  map_type?: number;
  key_size?: number;
  value_size?: number;
  max_entries?: number;
  map_flags?: number;
  inner_map_fd?: number;
  numa_node?: number;
  map_name?: string | Uint8Array;
  map_ifindex?: number;
  btf_fd?: number;
  btf_key_type_id?: number;
  btf_value_type_id?: number;
  btf_vmlinux_value_type_id?: number;
  map_extra?: number | bigint;
  value_type_btf_obj_fd?: number;
  map_token_fd?: number;
}

export interface MapElemAttr extends AttrTail {
  map_fd?: number;
  key?: Uint8Array | null;
  /** Input for UPDATE, output buffer for LOOKUP. */
  value?: Uint8Array | null;
  next_key?: Uint8Array | null;
  flags?: number | bigint;
}

export interface MapFreezeAttr extends AttrTail {
  map_fd?: number;
}

export interface ProgLoadAttr extends AttrTail {
  prog_type?: number;
  insn_cnt?: number;
  insns?: readonly Insn[] | Uint8Array;
  license?: string | Uint8Array | null;
  log_level?: number;
  log_size?: number;
  log_buf?: Uint8Array | null;
  kern_version?: number;
  prog_flags?: number;
  prog_name?: string | Uint8Array;
  prog_ifindex?: number;
  expected_attach_type?: number;
  prog_btf_fd?: number;
  func_info_rec_size?: number;
  func_info?: Uint8Array | null;
  func_info_cnt?: number;
  line_info_rec_size?: number;
  line_info?: Uint8Array | null;
  line_info_cnt?: number;
  attach_btf_id?: number;
  attach_prog_fd?: number;
  attach_btf_obj_fd?: number;
  core_relo_cnt?: number;
  fd_array?: readonly number[] | null;
  core_relos?: Uint8Array | null;
  core_relo_rec_size?: number;
  log_true_size?: number;
  prog_token_fd?: number;
}

export interface ObjGetInfoAttr extends AttrTail {
  bpf_fd?: number;
  info_len?: number;
  /** Filled by the kernel with the object's info struct. */
  info?: Record<string, unknown> | null;
}

export interface GetIdAttr extends AttrTail {
  start_id?: number;
  map_id?: number;
  prog_id?: number;
  btf_id?: number;
  link_id?: number;
  next_id?: number;
  open_flags?: number;
  fd_by_id_token_fd?: number;
}

export interface BtfLoadAttr extends AttrTail {
  btf?: Uint8Array | null;
  btf_log_buf?: Uint8Array | null;
  btf_size?: number;
  btf_log_size?: number;
  btf_log_level?: number;
  btf_log_true_size?: number;
  btf_flags?: number;
  btf_token_fd?: number;
}

export interface LinkCreateAttr extends AttrTail {
  prog_fd?: number;
  map_fd?: number;
  target_fd?: number;
  target_ifindex?: number;
  attach_type?: number;
  flags?: number;
  target_btf_id?: number;
  /** link_create.tracing.cookie (fentry/fexit). */
  cookie?: number | bigint;
}

/** BPF_RAW_TRACEPOINT_OPEN: a tracepoint name (raw_tp), or none for fentry/fexit (the target is the program's). */
export interface RawTracepointOpenAttr extends AttrTail {
  name?: string | null;
  prog_fd?: number;
  cookie?: number | bigint;
}

export interface LinkUpdateAttr extends AttrTail {
  link_fd?: number;
  new_prog_fd?: number;
  new_map_fd?: number;
  flags?: number;
  old_prog_fd?: number;
  old_map_fd?: number;
}

export interface LinkDetachAttr extends AttrTail {
  link_fd?: number;
}

export interface ProgTestRunAttr extends AttrTail {
  prog_fd?: number;
  retval?: number;
  data_size_in?: number;
  data_size_out?: number;
  data_in?: Uint8Array | null;
  data_out?: Uint8Array | null;
  repeat?: number;
  duration?: number;
  ctx_size_in?: number;
  ctx_size_out?: number;
  ctx_in?: Uint8Array | null;
  ctx_out?: Uint8Array | null;
  flags?: number;
  cpu?: number;
  batch_size?: number;
}

/** The batch commands' part (in_batch/out_batch are key-sized tokens; count is in/out). */
export interface MapBatchAttr extends AttrTail {
  in_batch?: Uint8Array | null;
  out_batch?: Uint8Array | null;
  keys?: Uint8Array | null;
  values?: Uint8Array | null;
  count?: number;
  map_fd?: number;
  elem_flags?: number;
  flags?: number;
}

export interface EnableStatsAttr extends AttrTail {
  type?: number;
}

export type BpfAttr =
  | import("./inode.js").ObjPinAttr
  | EnableStatsAttr
  | MapBatchAttr
  | MapCreateAttr
  | MapElemAttr
  | MapFreezeAttr
  | ProgLoadAttr
  | ObjGetInfoAttr
  | GetIdAttr
  | BtfLoadAttr
  | LinkCreateAttr
  | RawTracepointOpenAttr
  | LinkUpdateAttr
  | LinkDetachAttr
  | ProgTestRunAttr;

const ELEM_FIELDS = ["map_fd", "key", "value", "flags"];
const BATCH_FIELDS = ["in_batch", "out_batch", "keys", "values", "count", "map_fd", "elem_flags", "flags"];
const ID_ALIASES = ["start_id", "map_id", "prog_id", "btf_id", "link_id"];
/** BPF_OBJ_GET_NEXT_ID_LAST_FIELD is next_id: open_flags must be 0 there. */
const ID_FIELDS = [...ID_ALIASES, "next_id"];

/**
 * The fields each command's part of the union has, up to its `BPF_<CMD>_LAST_FIELD` (v6.9+).
 * Aliases of the same union slot are listed together.
 */
const FIELDS: Record<number, readonly string[]> = {
  [bpf_cmd.BPF_MAP_CREATE]: [
    "map_type",
    "key_size",
    "value_size",
    "max_entries",
    "map_flags",
    "inner_map_fd",
    "numa_node",
    "map_name",
    "map_ifindex",
    "btf_fd",
    "btf_key_type_id",
    "btf_value_type_id",
    "btf_vmlinux_value_type_id",
    "map_extra",
    "value_type_btf_obj_fd",
    "map_token_fd",
  ],
  [bpf_cmd.BPF_MAP_LOOKUP_ELEM]: ELEM_FIELDS,
  [bpf_cmd.BPF_MAP_UPDATE_ELEM]: ELEM_FIELDS,
  [bpf_cmd.BPF_MAP_DELETE_ELEM]: ELEM_FIELDS,
  [bpf_cmd.BPF_MAP_GET_NEXT_KEY]: ["map_fd", "key", "next_key"],
  [bpf_cmd.BPF_MAP_FREEZE]: ["map_fd"],
  [bpf_cmd.BPF_MAP_LOOKUP_AND_DELETE_ELEM]: ELEM_FIELDS,
  [bpf_cmd.BPF_ENABLE_STATS]: ["type"],
  [bpf_cmd.BPF_OBJ_PIN]: ["pathname", "bpf_fd", "file_flags", "path_fd"],
  [bpf_cmd.BPF_OBJ_GET]: ["pathname", "bpf_fd", "file_flags", "path_fd"],
  [bpf_cmd.BPF_MAP_LOOKUP_BATCH]: BATCH_FIELDS,
  [bpf_cmd.BPF_MAP_LOOKUP_AND_DELETE_BATCH]: BATCH_FIELDS,
  [bpf_cmd.BPF_MAP_UPDATE_BATCH]: BATCH_FIELDS,
  [bpf_cmd.BPF_MAP_DELETE_BATCH]: BATCH_FIELDS,
  [bpf_cmd.BPF_PROG_LOAD]: [
    "prog_type",
    "insn_cnt",
    "insns",
    "license",
    "log_level",
    "log_size",
    "log_buf",
    "kern_version",
    "prog_flags",
    "prog_name",
    "prog_ifindex",
    "expected_attach_type",
    "prog_btf_fd",
    "func_info_rec_size",
    "func_info",
    "func_info_cnt",
    "line_info_rec_size",
    "line_info",
    "line_info_cnt",
    "attach_btf_id",
    "attach_prog_fd",
    "attach_btf_obj_fd",
    "core_relo_cnt",
    "fd_array",
    "core_relos",
    "core_relo_rec_size",
    "log_true_size",
    "prog_token_fd",
  ],
  [bpf_cmd.BPF_OBJ_GET_INFO_BY_FD]: ["bpf_fd", "info_len", "info"],
  [bpf_cmd.BPF_PROG_GET_NEXT_ID]: ID_FIELDS,
  [bpf_cmd.BPF_MAP_GET_NEXT_ID]: ID_FIELDS,
  [bpf_cmd.BPF_BTF_GET_NEXT_ID]: ID_FIELDS,
  [bpf_cmd.BPF_LINK_GET_NEXT_ID]: ID_FIELDS,
  // The fd-by-id commands end at different fields: PROG and LINK stop at the id itself.
  [bpf_cmd.BPF_MAP_GET_FD_BY_ID]: [...ID_ALIASES, "next_id", "open_flags"],
  [bpf_cmd.BPF_PROG_GET_FD_BY_ID]: ID_ALIASES,
  [bpf_cmd.BPF_BTF_GET_FD_BY_ID]: ID_ALIASES,
  [bpf_cmd.BPF_LINK_GET_FD_BY_ID]: ID_ALIASES,
  [bpf_cmd.BPF_BTF_LOAD]: [
    "btf",
    "btf_log_buf",
    "btf_size",
    "btf_log_size",
    "btf_log_level",
    "btf_log_true_size",
    "btf_flags",
    "btf_token_fd",
  ],
  [bpf_cmd.BPF_LINK_CREATE]: [
    "prog_fd",
    "map_fd",
    "target_fd",
    "target_ifindex",
    "attach_type",
    "flags",
    "target_btf_id",
    "cookie",
  ],
  [bpf_cmd.BPF_RAW_TRACEPOINT_OPEN]: ["name", "prog_fd", "cookie"],
  [bpf_cmd.BPF_LINK_UPDATE]: ["link_fd", "new_prog_fd", "new_map_fd", "flags", "old_prog_fd", "old_map_fd"],
  [bpf_cmd.BPF_LINK_DETACH]: ["link_fd"],
  [bpf_cmd.BPF_PROG_TEST_RUN]: [
    "prog_fd",
    "retval",
    "data_size_in",
    "data_size_out",
    "data_in",
    "data_out",
    "repeat",
    "duration",
    "ctx_size_in",
    "ctx_size_out",
    "ctx_in",
    "ctx_out",
    "flags",
    "cpu",
    "batch_size",
  ],
};

function isZero(v: unknown): boolean {
  if (v === undefined || v === null || v === 0 || v === 0n || v === "") return true;
  return false;
}

/**
 * CHECK_ATTR(cmd): the bytes past the command's last field must be zero. Here: every property that
 * is not one of the command's fields (and every `extra` entry) must be absent or zero.
 */
export function checkAttr(cmd: number, attr: object): void {
  const fields = FIELDS[cmd];
  if (!fields) return;
  for (const [k, v] of Object.entries(attr)) {
    if (k === "extra") {
      for (const [ek, ev] of Object.entries((v ?? {}) as Record<string, unknown>)) {
        if (!isZero(ev)) throw new BpfError(EINVAL, `CHECK_ATTR: non-zero attr bytes past the last field (${ek})`);
      }
      continue;
    }
    if (!fields.includes(k) && !isZero(v)) {
      throw new BpfError(EINVAL, `CHECK_ATTR: field ${k} is past the last field of this command`, { field: k });
    }
  }
}

/** Number of an optional numeric attr field (absent -> 0). */
export function num(v: number | bigint | undefined | null): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === "bigint") return Number(v);
  // A numeric field holding something else is a caller bug the kernel could never see: refuse it.
  if (typeof v !== "number" || !Number.isFinite(v)) throw new BpfError(EINVAL, "attr field is not a number");
  return v;
}

/** A user buffer field: a Uint8Array of at least `size` bytes, else EFAULT (copy_from_user). */
export function userBuf(v: unknown, size: number, what: string): Uint8Array {
  // Copying no bytes never faults, whatever the pointer (a ring buffer's value_size 0).
  if (size === 0 && !(v instanceof Uint8Array)) return new Uint8Array(0);
  if (!(v instanceof Uint8Array) || v.length < size) throw new BpfError(EFAULT, `${what} must be ${size} bytes`);
  return v;
}
