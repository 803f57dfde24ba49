/** `structops link show|list [id ID]` and `link detach id ID`, bpftool's link verbs. */
import type { Command } from "commander";
import { type Handle, linkTypeName, objView, selectIds } from "./bpf_info.js";
import { io, jsonOut, openSession, type SessionOpts, sessionOptions } from "./session.js";

/** bpftool's `link show -j` object for one link. */
export function linkJson(h: Handle, id: number): Record<string, unknown> {
  const { info } = objView(h, "link", id);
  const type = Number(info.type);
  const out: Record<string, unknown> = { id: info.id, type: linkTypeName(type) ?? type };
  const st = info.struct_ops as { map_id: number } | undefined;
  // A struct_ops link has no program; bpftool shows its map instead.
  if (st) out.map_id = st.map_id;
  else out.prog_id = info.prog_id;
  return out;
}

export function linkPlain(l: Record<string, unknown>): string {
  const what = l.map_id !== undefined ? `map_id ${l.map_id}` : `prog ${l.prog_id}`;
  return `${l.id}: ${l.type}  ${what}\n`;
}

export function register(program: Command): void {
  const cmd = program.command("link").description("inspect and detach BPF links");
  sessionOptions(cmd.command("show"))
    .alias("list")
    .argument("[SPEC...]", "id ID")
    .description("show the session kernel's links")
    .action((spec: string[], o: SessionOpts) => {
      const s = openSession(o.state);
      const rows = selectIds(s, "link", spec).map((id) => linkJson(s, id));
      if (!jsonOut(o, spec.length ? rows[0] : rows)) for (const r of rows) io.out(linkPlain(r));
    });
  cmd
    .command("detach")
    .argument("<SPEC...>", "id ID")
    .option("--state <FILE>", "state file")
    .description("detach a link (recorded in the session)")
    .action((spec: string[], o: SessionOpts) => {
      const s = openSession(o.state);
      const [id] = selectIds(s, "link", spec);
      s.record({ op: "link_detach", link_id: id! });
      s.save();
    });
}
