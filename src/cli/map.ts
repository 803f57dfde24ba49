/**
 * `structops map show|list [id ID]` and `map dump id ID`, bpftool's map verbs over the session's
 * kernel; the element verbs (and dump's printing) are in map_update.ts. A map with BTF dumps through
 * the BTF pretty printer (a struct_ops value with the kernel's type for it,
 * btf_vmlinux_value_type_id), others as hex rows, as bpftool does.
 */
import type { Command } from "commander";
import { allIds, type Handle, mapTypeName, objView, progTypeName } from "./bpf_info.js";
import { CliError } from "./errors.js";
import { mapInfo, mapParseFds, SilentFailure } from "./map_parse.js";
import { dumpMaps, registerMapElemVerbs, runVerb } from "./map_update.js";
import { io, jsonOut, type SessionOpts, sessionOptions } from "./session.js";

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

/** bpftool map dump -j: [{key, value}] as hex-string bytes, plus "formatted" where BTF types the entry. */
export function mapDumpJson(h: Handle, id: number): unknown[] {
  return dumpMaps(h, ["id", String(id)], true) as unknown[];
}

/** do_show()'s MAP: the ids of the maps it names (a name no map has: exit 255 without a word). */
function showIds(h: Handle, argv: string[]): number[] {
  if (argv.length !== 2) throw new CliError("expected 'id', 'name' or 'pinned' and a map: bpftool map show [MAP]");
  const fds = mapParseFds(h, argv);
  if (!fds.length) throw new SilentFailure();
  try {
    return fds.map((fd) => mapInfo(h, fd).id);
  } finally {
    for (const fd of fds) h.close(fd);
  }
}

export function register(program: Command): void {
  const cmd = program.command("map").description("inspect and update BPF maps");
  sessionOptions(cmd.command("show"))
    .alias("list")
    .argument("[MAP...]", "id ID | name NAME | pinned FILE")
    .description("show the session kernel's maps")
    .action((argv: string[], _o: SessionOpts, c: Command) =>
      runVerb(c, false, (s, o) => {
        const ids = argv.length ? showIds(s, argv) : allIds(s, "map");
        const rows = ids.map((id) => mapJson(s, id));
        // bpftool: an array for the whole list or several maps of one name, else the one object.
        if (!jsonOut(o, argv.length && rows.length === 1 ? rows[0] : rows)) for (const r of rows) io.out(mapPlain(r));
      }),
    );
  sessionOptions(cmd.command("dump"))
    .argument("[MAP...]", "id ID | name NAME | pinned FILE")
    .description("dump a map's entries (every map of that name)")
    .action((argv: string[], _o: SessionOpts, c: Command) =>
      runVerb(c, false, (s, o) => {
        const json = !!(o.json || o.pretty);
        const r = dumpMaps(s, argv, json);
        if (!jsonOut(o, json ? r : null)) io.out(r as string);
      }),
    );
  registerMapElemVerbs(cmd);
}
