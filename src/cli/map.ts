/**
 * `structops map show|list [id ID]` and `map dump id ID`, bpftool's map verbs over the session's
 * kernel. A struct_ops map's value goes through the BTF pretty printer with the kernel's type for
 * it (btf_vmlinux_value_type_id); other maps print keys and values as hex bytes, like bpftool
 * does for maps without BTF.
 */
import type { Command } from "commander";
import type { Btf } from "../btf/btf.js";
import { btfTypeSeqShow, btfTypeSeqShowJson } from "../btf/seq_show.js";
import { bpf_cmd, bpf_map_type } from "../uapi/bpf.js";
import { BpfError } from "../uapi/errno.js";
import { type Handle, mapTypeName, objView, progTypeName, selectIds } from "./bpf_info.js";
import { registerMapElemVerbs } from "./map_update.js";
import { io, jsonOut, openSession, optsOf, type SessionOpts, sessionOptions } from "./session.js";

/** What the printers need of the kernel's map: its sizes and, for struct_ops, the kernel BTF of its value. */
interface MapView {
  map_type: number;
  key_size: number;
  value_size: number;
  btfData?: Btf;
  btf_vmlinux_value_type_id?: number;
}

const isStructOpsMap = (m: MapView) => m.map_type === bpf_map_type.BPF_MAP_TYPE_STRUCT_OPS;

/** bpftool's `map show -j` object for one map. */
export function mapJson(h: Handle, id: number): Record<string, unknown> {
  const { info, fdinfo } = objView(h, "map", id);
  const type = Number(info.type);
  const out: Record<string, unknown> = {
    id: info.id,
    type: mapTypeName(type) ?? type,
    name: info.name,
    flags: info.map_flags,
    bytes_key: info.key_size,
    bytes_value: info.value_size,
    max_entries: info.max_entries,
    bytes_memlock: Number(fdinfo.memlock ?? 0),
  };
  // A prog array's owner (bpftool reads it from the fdinfo), before `frozen` as bpftool prints it.
  if (fdinfo.owner_prog_type !== undefined) {
    const t = Number(fdinfo.owner_prog_type);
    out.owner_prog_type = progTypeName(t) ?? t;
    out.owner_jited = Number(fdinfo.owner_jited) !== 0;
  }
  out.frozen = Number(fdinfo.frozen ?? 0);
  if (Number(info.btf_id)) out.btf_id = info.btf_id;
  return out;
}

export function mapPlain(m: Record<string, unknown>): string {
  let s = `${m.id}: ${m.type}  name ${m.name}  flags 0x${Number(m.flags).toString(16)}`;
  s += `\n\tkey ${m.bytes_key}B  value ${m.bytes_value}B  max_entries ${m.max_entries}  memlock ${m.bytes_memlock}B`;
  if (m.owner_prog_type !== undefined)
    s += `\n\towner_prog_type ${m.owner_prog_type}  owner${m.owner_jited ? "" : " not"} jited`;
  // bpftool's third line: btf_id and/or frozen, absent when there is neither.
  const third = [m.btf_id !== undefined ? `btf_id ${m.btf_id}` : "", m.frozen ? "frozen" : ""].filter(Boolean);
  if (third.length) s += `\n\t${third.join("  ")}`;
  return `${s}\n`;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0"));

export interface MapEntry {
  key: Uint8Array;
  value: Uint8Array;
}

/** Every entry of map `id`, read through BPF_MAP_GET_NEXT_KEY and BPF_MAP_LOOKUP_ELEM. */
export function mapEntries(h: Handle, id: number): { map: MapView; entries: MapEntry[] } {
  objView(h, "map", id); // bpftool's message for an id that names no map
  const fd = h.bpf(bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: id });
  try {
    const map = h.object(fd) as MapView;
    const entries: MapEntry[] = [];
    let key: Uint8Array | null = null;
    for (;;) {
      const next: Uint8Array = new Uint8Array(map.key_size);
      try {
        h.bpf(bpf_cmd.BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key, next_key: next });
      } catch (e) {
        if (e instanceof BpfError && e.code === "ENOENT") break;
        throw e;
      }
      const value = new Uint8Array(map.value_size);
      try {
        h.bpf(bpf_cmd.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: next, value });
        entries.push({ key: next, value });
      } catch (e) {
        // Gone between get_next_key and lookup, or an unset struct_ops value: skip, as bpftool.
        if (!(e instanceof BpfError && e.code === "ENOENT")) throw e;
      }
      key = next;
    }
    return { map, entries };
  } finally {
    h.close(fd);
  }
}

/** bpftool map dump: plain text. */
export function mapDumpPlain(h: Handle, id: number): string {
  const { map, entries } = mapEntries(h, id);
  let s = "";
  for (const e of entries) {
    if (isStructOpsMap(map)) {
      // bpftool's BTF form: a pretty JSON array of {"value": ...}, the value at depth 2.
      const v = btfTypeSeqShow(map.btfData!, map.btf_vmlinux_value_type_id!, e.value).replace(/\n/g, "\n        ");
      s += `${s ? "," : "["}{\n        "value": ${v}\n    }`;
    } else s += `key: ${hex(e.key).join(" ")}  value: ${hex(e.value).join(" ")}\n`;
  }
  if (isStructOpsMap(map)) return s ? `${s}\n]\n` : "[]\n";
  return `${s}Found ${entries.length} element${entries.length === 1 ? "" : "s"}\n`;
}

/** bpftool map dump -j: [{key, value}] as hex-string bytes, plus "formatted" where BTF types the value. */
export function mapDumpJson(h: Handle, id: number): unknown[] {
  const { map, entries } = mapEntries(h, id);
  return entries.map((e) => {
    const row: Record<string, unknown> = {
      key: hex(e.key).map((x) => `0x${x}`),
      value: hex(e.value).map((x) => `0x${x}`),
    };
    if (isStructOpsMap(map)) {
      row.formatted = { value: btfTypeSeqShowJson(map.btfData!, map.btf_vmlinux_value_type_id!, e.value) };
    }
    return row;
  });
}

export function register(program: Command): void {
  const cmd = program.command("map").description("inspect and update BPF maps");
  sessionOptions(cmd.command("show"))
    .alias("list")
    .argument("[SPEC...]", "id ID")
    .description("show the session kernel's maps")
    .action(async (spec: string[], _o: SessionOpts, c: Command) => {
      const o = optsOf<SessionOpts>(c);
      const s = await openSession(o.state);
      const rows = selectIds(s, "map", spec).map((id) => mapJson(s, id));
      if (!jsonOut(o, spec.length ? rows[0] : rows)) for (const r of rows) io.out(mapPlain(r));
    });
  sessionOptions(cmd.command("dump"))
    .argument("<SPEC...>", "id ID")
    .description("dump a map's entries")
    .action(async (spec: string[], _o: SessionOpts, c: Command) => {
      const o = optsOf<SessionOpts>(c);
      const s = await openSession(o.state);
      const [id] = selectIds(s, "map", spec, true);
      if (!jsonOut(o, o.json || o.pretty ? mapDumpJson(s, id!) : null)) io.out(mapDumpPlain(s, id!));
    });
  registerMapElemVerbs(cmd);
}
