/**
 * `structops prog show|list [id ID]`: bpftool's program listing over the session's kernel. The
 * plain lines are bpftool's; loaded_at/uid are left out (a replayed kernel has no wall clock).
 */
import type { Command } from "commander";
import { allIds, type Handle, hexBytes, objView, progFullName, progTypeName, selectIds } from "./bpf_info.js";
import { CliError } from "./errors.js";
import { progCommand } from "./prog.js";
import { io, jsonOut, openSession, optsOf, type SessionOpts, sessionOptions } from "./session.js";

/** bpftool's `prog show -j` object for one program. */
export function progJson(h: Handle, id: number): Record<string, unknown> {
  const { info, fdinfo } = objView(h, "prog", id);
  const type = Number(info.type);
  const out: Record<string, unknown> = {
    id: info.id,
    type: progTypeName(type) ?? type,
    name: progFullName(h, info),
    tag: hexBytes(info.tag as Uint8Array),
    gpl_compatible: Boolean(info.gpl_compatible),
  };
  if (Number(info.run_time_ns)) {
    out.run_time_ns = Number(info.run_time_ns);
    out.run_cnt = Number(info.run_cnt);
  }
  out.bytes_xlated = info.xlated_prog_len;
  const jited = Number(info.jited_prog_len) > 0;
  out.jited = jited;
  if (jited) out.bytes_jited = info.jited_prog_len;
  out.bytes_memlock = Number(fdinfo.memlock ?? 0);
  const mapIds = info.map_ids as number[];
  if (mapIds.length) out.map_ids = mapIds;
  if (Number(info.btf_id)) out.btf_id = info.btf_id;
  return out;
}

/** bpftool's plain text for the object progJson() returns. */
export function progPlain(p: Record<string, unknown>): string {
  let s = `${p.id}: ${p.type}  name ${p.name}  tag ${p.tag}${p.gpl_compatible ? "  gpl" : ""}`;
  if (p.run_time_ns !== undefined) s += ` run_time_ns ${p.run_time_ns} run_cnt ${p.run_cnt}`;
  s += `\n\txlated ${p.bytes_xlated}B`;
  s += p.jited ? `  jited ${p.bytes_jited}B` : "  not jited";
  s += `  memlock ${p.bytes_memlock}B`;
  if (p.map_ids) s += `  map_ids ${(p.map_ids as number[]).join(",")}`;
  if (p.btf_id !== undefined) s += `\n\tbtf_id ${p.btf_id}`;
  return `${s}\n`;
}

/**
 * bpftool's PROG: `id ID` or `name NAME` (every program of that name; the full name from BTF or
 * the kernel's 15 characters); nothing: every program.
 */
export function selectProgs(h: Handle, spec: string[]): number[] {
  if (spec[0] !== "name") return selectIds(h, "prog", spec);
  const name = spec[1];
  if (name === undefined) throw new CliError("expected program name after 'name'");
  if (spec.length > 2) throw new CliError(`too many arguments: '${spec.slice(2).join(" ")}'`);
  const ids = allIds(h, "prog").filter((id) => {
    const { info } = objView(h, "prog", id);
    return info.name === name || progFullName(h, info) === name;
  });
  if (!ids.length) throw new CliError(`can't find program with name '${name}'`);
  return ids;
}

export function register(program: Command): void {
  sessionOptions(progCommand(program).command("show"))
    .alias("list")
    .argument("[SPEC...]", "id ID | name NAME")
    .description("show the session kernel's programs")
    .action(async (spec: string[], _o: SessionOpts, c: Command) => {
      const o = optsOf<SessionOpts>(c);
      const s = await openSession(o.state);
      const rows = selectProgs(s, spec).map((id) => progJson(s, id));
      // bpftool: an array for the whole list or several programs of one name, else the one object.
      if (!jsonOut(o, spec.length && rows.length === 1 ? rows[0] : rows)) for (const r of rows) io.out(progPlain(r));
    });
}
