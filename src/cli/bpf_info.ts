/**
 * What bpftool's `prog/map/link show` read, read the same way from the simulated kernel: walk the
 * ids with BPF_*_GET_NEXT_ID, open each with BPF_*_GET_FD_BY_ID, take BPF_OBJ_GET_INFO_BY_FD and
 * the fdinfo (memlock comes from there, as in bpftool), close.
 */
import type { Kernel } from "../kernel/kernel.js";
import type { Process } from "../kernel/process.js";
import { fdinfo } from "../kernel/syscall.js";
import { bpf_cmd, bpf_link_type, bpf_map_type, bpf_prog_type, nameOf } from "../uapi/bpf.js";
import { BpfError, EINVAL, ENOENT } from "../uapi/errno.js";

export type ObjKind = "prog" | "map" | "link";

const CMDS = {
  prog: { next: bpf_cmd.BPF_PROG_GET_NEXT_ID, get: bpf_cmd.BPF_PROG_GET_FD_BY_ID, key: "prog_id" },
  map: { next: bpf_cmd.BPF_MAP_GET_NEXT_ID, get: bpf_cmd.BPF_MAP_GET_FD_BY_ID, key: "map_id" },
  link: { next: bpf_cmd.BPF_LINK_GET_NEXT_ID, get: bpf_cmd.BPF_LINK_GET_FD_BY_ID, key: "link_id" },
} as const;

export interface Handle {
  kernel: Kernel;
  proc: Process;
}

/** Every live id of a kind, ascending (bpftool's do_show loop). */
export function allIds(h: Handle, kind: ObjKind): number[] {
  const out: number[] = [];
  let id = 0;
  for (;;) {
    const attr: Record<string, unknown> = { start_id: id };
    try {
      h.kernel.bpf(h.proc, CMDS[kind].next, attr);
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
    fd = h.kernel.bpf(h.proc, CMDS[kind].get, { [CMDS[kind].key]: id });
  } catch (e) {
    if (e instanceof BpfError && e.code === "ENOENT") {
      throw new BpfError(ENOENT, `get ${kind} by id (${id}): No such file or directory`);
    }
    throw e;
  }
  try {
    const attr: Record<string, unknown> = { bpf_fd: fd };
    h.kernel.bpf(h.proc, bpf_cmd.BPF_OBJ_GET_INFO_BY_FD, attr);
    const fi: Record<string, string> = {};
    for (const line of fdinfo(h.proc, fd).split("\n")) {
      const m = /^([a-z_]+):\s*(.*)$/.exec(line);
      if (m) fi[m[1]!] = m[2]!;
    }
    return { info: attr.info as Record<string, unknown>, fdinfo: fi };
  } finally {
    h.proc.files.close(fd);
  }
}

/** `[id ID]` -> the ids to show (all of them without a spec). */
export function selectIds(h: Handle, kind: ObjKind, spec: string[]): number[] {
  if (spec.length === 0) return allIds(h, kind);
  const [kw, val] = spec;
  if (kw !== "id" || val === undefined || !/^\d+$/.test(val)) {
    throw new BpfError(EINVAL, `expected 'id', got: '${spec.join(" ")}'`);
  }
  return [Number(val)];
}

/** libbpf's lower-case type names: BPF_MAP_TYPE_STRUCT_OPS -> struct_ops. */
function typeName(table: Record<string, number>, prefix: string, t: number): string | undefined {
  return nameOf(table, t)?.slice(prefix.length).toLowerCase();
}
export const progTypeName = (t: number) => typeName(bpf_prog_type, "BPF_PROG_TYPE_", t);
export const mapTypeName = (t: number) => typeName(bpf_map_type, "BPF_MAP_TYPE_", t);
export const linkTypeName = (t: number) => typeName(bpf_link_type, "BPF_LINK_TYPE_", t);

export const hexBytes = (b: ArrayLike<number>) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
