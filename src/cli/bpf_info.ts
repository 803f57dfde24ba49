/**
 * What bpftool's `prog/map/link show` read, read the same way from the simulated kernel: walk the
 * ids with BPF_*_GET_NEXT_ID, open each with BPF_*_GET_FD_BY_ID, take BPF_OBJ_GET_INFO_BY_FD and
 * the fdinfo (memlock comes from there, as in bpftool), close.
 */
import { Btf } from "../btf/btf.js";
import { bpf_cmd, bpf_link_type, bpf_map_type, bpf_prog_type, nameOf } from "../uapi/bpf.js";
import { BTF_KIND_FUNC } from "../uapi/btf.js";
import { BpfError } from "../uapi/errno.js";
import { CliError } from "./errors.js";

export type ObjKind = "prog" | "map" | "link" | "btf";

const CMDS = {
  prog: { next: bpf_cmd.BPF_PROG_GET_NEXT_ID, get: bpf_cmd.BPF_PROG_GET_FD_BY_ID, key: "prog_id" },
  map: { next: bpf_cmd.BPF_MAP_GET_NEXT_ID, get: bpf_cmd.BPF_MAP_GET_FD_BY_ID, key: "map_id" },
  link: { next: bpf_cmd.BPF_LINK_GET_NEXT_ID, get: bpf_cmd.BPF_LINK_GET_FD_BY_ID, key: "link_id" },
  btf: { next: bpf_cmd.BPF_BTF_GET_NEXT_ID, get: bpf_cmd.BPF_BTF_GET_FD_BY_ID, key: "btf_id" },
} as const;

/** The process a verb runs as: its bpf() calls, its fds. */
export interface Handle {
  bpf(cmd: number, attr: Record<string, unknown>): number;
  /** /proc/self/fdinfo/FD */
  fdinfo(fd: number): string;
  close(fd: number): void;
  /** The kernel object behind an fd, for printers that need its BTF (bpftool reads it back with more bpf() calls). */
  object(fd: number): unknown;
}

/** Every live id of a kind, ascending (bpftool's do_show loop). */
export function allIds(h: Handle, kind: ObjKind): number[] {
  const out: number[] = [];
  let id = 0;
  for (;;) {
    const attr: Record<string, unknown> = { start_id: id };
    try {
      h.bpf(CMDS[kind].next, attr);
    } catch (e) {
      if (e instanceof BpfError && e.code === "ENOENT") return out;
      throw e;
    }
    id = Number(attr.next_id);
    out.push(id);
  }
}

export interface ObjView {
  info: Record<string, unknown>;
  /** fdinfo fields, e.g. memlock. */
  fdinfo: Record<string, string>;
}

/** Open id, read its info and fdinfo, close. ENOENT names the id as bpftool does. */
export function objView(h: Handle, kind: ObjKind, id: number): ObjView {
  let fd: number;
  try {
    fd = h.bpf(CMDS[kind].get, { [CMDS[kind].key]: id });
  } catch (e) {
    if (e instanceof BpfError && e.code === "ENOENT") {
      throw new CliError(`${GET_BY_ID_ERR[kind](id)}: No such file or directory`);
    }
    throw e;
  }
  try {
    const attr: Record<string, unknown> = { bpf_fd: fd };
    h.bpf(bpf_cmd.BPF_OBJ_GET_INFO_BY_FD, attr);
    const fi: Record<string, string> = {};
    for (const line of h.fdinfo(fd).split("\n")) {
      const m = /^([a-z_]+):\s*(.*)$/.exec(line);
      if (m) fi[m[1]!] = m[2]!;
    }
    return { info: attr.info as Record<string, unknown>, fdinfo: fi };
  } finally {
    h.close(fd);
  }
}

/** bpftool's messages when an id names nothing (prog.c, map.c, link.c). */
const GET_BY_ID_ERR: Record<ObjKind, (id: number) => string> = {
  prog: (id) => `get by id (${id})`,
  map: (id) => `get map by id (${id})`,
  link: (id) => `failed to get link with ID ${id}`,
  btf: (id) => `can't get BTF object by id (${id})`,
};

/** bpftool's parse of an ID: strtoul, the whole word, within u32 (`can't parse abc as ID`). */
export function parseId(word: string | undefined, what = "ID"): number {
  if (word === undefined) throw new CliError(`expected ${what}, got nothing`);
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(word) || Number(word) > 0xffffffff) {
    throw new CliError(`can't parse ${word} as ${what}`);
  }
  return Number(word);
}

/** `[id ID]` -> the ids to show (all of them without a spec). */
export function selectIds(h: Handle, kind: ObjKind, spec: string[], required = false): number[] {
  if (spec.length === 0) {
    if (required) throw new CliError(`expected 'id ${kind.toUpperCase()}_ID', got nothing`);
    return allIds(h, kind);
  }
  const [kw, val] = spec;
  if (kw !== "id") throw new CliError(`expected 'id', got: '${kw}'`);
  if (val === undefined) throw new CliError(`expected ${kind} id after 'id'`);
  if (spec.length > 2) throw new CliError(`too many arguments: '${spec.slice(2).join(" ")}'`);
  return [parseId(val)];
}

/** libbpf's lower-case type names: BPF_MAP_TYPE_STRUCT_OPS -> struct_ops. */
function typeName(table: Record<string, number>, prefix: string, t: number): string | undefined {
  return nameOf(table, t)?.slice(prefix.length).toLowerCase();
}
export const progTypeName = (t: number) => typeName(bpf_prog_type, "BPF_PROG_TYPE_", t);
export const mapTypeName = (t: number) => typeName(bpf_map_type, "BPF_MAP_TYPE_", t);
export const linkTypeName = (t: number) => typeName(bpf_link_type, "BPF_LINK_TYPE_", t);

export const hexBytes = (b: ArrayLike<number>) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/**
 * The BTF object with this id, parsed (BPF_BTF_GET_FD_BY_ID, then the info's copy of the blob);
 * a module's split BTF is read over vmlinux's (id 1), as bpftool loads it.
 */
export function btfById(h: Handle, id: number): Btf | undefined {
  let fd: number;
  try {
    fd = h.bpf(bpf_cmd.BPF_BTF_GET_FD_BY_ID, { btf_id: id });
  } catch (e) {
    if (e instanceof BpfError) return undefined;
    throw e;
  }
  try {
    const attr: Record<string, unknown> = { bpf_fd: fd };
    h.bpf(bpf_cmd.BPF_OBJ_GET_INFO_BY_FD, attr);
    const info = attr.info as { btf?: Uint8Array; kernel_btf?: boolean; name?: string };
    if (!info.btf) return undefined;
    const base = info.kernel_btf && info.name !== "vmlinux" ? btfById(h, 1) : undefined;
    return Btf.parse(info.btf, { base });
  } finally {
    h.close(fd);
  }
}

/** bpf_func_info records: (insn_off, type_id). */
export function funcInfos(info: Record<string, unknown>): { insnOff: number; typeId: number }[] {
  const raw = info.func_info as Uint8Array | undefined;
  if (!raw) return [];
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: { insnOff: number; typeId: number }[] = [];
  for (let o = 0; o + 8 <= raw.byteLength; o += 8) {
    out.push({ insnOff: dv.getUint32(o, true), typeId: dv.getUint32(o + 4, true) });
  }
  return out;
}

/**
 * bpftool's get_prog_full_name(): the kernel keeps 15 characters of a program's name; when all 15
 * are used, the name of the program's first BTF FUNC (func_info[0]) is the full one.
 */
export function progFullName(h: Handle, info: Record<string, unknown>, btf?: Btf): string {
  const name = String(info.name ?? "");
  if (name.length < BPF_OBJ_NAME_LEN - 1) return name;
  const [fi] = funcInfos(info);
  if (!Number(info.btf_id) || !fi) return name;
  const b = btf ?? btfById(h, Number(info.btf_id));
  if (!b) return name;
  try {
    const t = b.typeById(fi.typeId);
    return t.kind === BTF_KIND_FUNC && t.name ? t.name : name;
  } catch {
    return name;
  }
}

const BPF_OBJ_NAME_LEN = 16;
