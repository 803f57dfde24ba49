/** `structops link show|list [id ID]` and `link detach id ID`, bpftool's link verbs. */
import type { Command } from "commander";
import { bpf_link_type } from "../uapi/bpf.js";
import { type Handle, linkTypeName, objView, selectIds } from "./bpf_info.js";
import { io, jsonOut, openSession, optsOf, type SessionOpts, sessionOptions } from "./session.js";

/** bpftool's `link show -j` object for one link. */
export function linkJson(h: Handle, id: number): Record<string, unknown> {
  const { info } = objView(h, "link", id);
  const type = Number(info.type);
  const out: Record<string, unknown> = { id: info.id, type: linkTypeName(type) ?? type, prog_id: info.prog_id };
  // A detached struct_ops link has no map left: the kernel reports map_id 0.
  if (type === bpf_link_type.BPF_LINK_TYPE_STRUCT_OPS) {
    out.map_id = (info.struct_ops as { map_id: number } | undefined)?.map_id ?? 0;
  }
  return out;
}

/** bpftool's plain line: a struct_ops link has no program, so it names its map (`map N`). */
export function linkPlain(l: Record<string, unknown>): string {
  const what = l.map_id !== undefined ? `map ${l.map_id}` : `prog ${l.prog_id}`;
  return `${l.id}: ${l.type}  ${what}  \n`;
}

export function register(program: Command): void {
  const cmd = program.command("link").description("inspect and detach BPF links");
  sessionOptions(cmd.command("show"))
    .alias("list")
    .argument("[SPEC...]", "id ID")
    .description("show the session kernel's links")
    .action(async (spec: string[], _o: SessionOpts, c: Command) => {
      const o = optsOf<SessionOpts>(c);
      const s = await openSession(o.state);
      const rows = selectIds(s, "link", spec).map((id) => linkJson(s, id));
      if (!jsonOut(o, spec.length ? rows[0] : rows)) for (const r of rows) io.out(linkPlain(r));
    });
  sessionOptions(cmd.command("detach"))
    .argument("<SPEC...>", "id ID")
    .description("detach a link (recorded in the session)")
    .action(async (spec: string[], _o: SessionOpts, c: Command) => {
      const o = optsOf<SessionOpts>(c);
      const s = await openSession(o.state);
      const [id] = selectIds(s, "link", spec, true);
      // bpftool's message when the id names no link.
      linkJson(s, id!);
      s.record({ op: "link_detach", link_id: id! });
      s.save();
      jsonOut(o, null); // bpftool -j prints null for a command with no output
    });
}
