/**
 * `structops struct_ops register OBJ [LINK_DIR] | show | dump | unregister`, with bpftool's
 * spellings and output, on the session's persistent simulated kernel (src/cli/session.ts):
 * `register` and `unregister` are recorded in the state file, so a later invocation shows them.
 * `--obj OBJ` keeps the older one-run behaviour: a fresh kernel with OBJ registered, nothing saved.
 */
import type { Command } from "commander";
import { StructOpsSession } from "./kernel_session.js";
import { type CliSession, io, jsonOut, openSession, type SessionOpts, sessionOptions } from "./session.js";

export { StructOpsSession } from "./kernel_session.js";

interface Opts extends SessionOpts {
  obj?: string[];
}

/** The kernel a read or unregister acts on: the persistent session, or a one-run one with --obj. */
function sessionFor(o: Opts): { s: StructOpsSession; persist?: CliSession } {
  if (o.obj?.length) {
    const s = new StructOpsSession();
    for (const f of o.obj) s.register(f);
    s.messages.length = 0;
    return { s };
  }
  const persist = openSession(o.state);
  return { s: persist, persist };
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function register(program: Command): void {
  const cmd = program.command("struct_ops").description("register, show, dump and unregister struct_ops maps");
  sessionOptions(cmd.command("register"))
    .argument("<OBJ>", "BPF object whose struct_ops maps to register")
    .argument("[LINK_DIR]", "bpffs directory to pin the links in (under /sys/fs/bpf)")
    .description("load OBJ and register every struct_ops map in it (recorded in the session)")
    .action((obj: string, linkDir: string | undefined, o: Opts) => {
      const s = openSession(o.state);
      const maps = s.registerRecorded(obj, linkDir);
      s.save();
      if (
        !jsonOut(
          o,
          maps.map((m) => s.show(m)),
        )
      )
        for (const line of s.messages) io.err(`${line}\n`);
    });
  sessionOptions(cmd.command("show"))
    .alias("list")
    .argument("[SPEC...]", "id ID | name NAME")
    .option("--obj <OBJ>", "one-run kernel: register this object first (repeatable)", collect)
    .description("show registered struct_ops maps")
    .action((spec: string[], o: Opts) => {
      const { s } = sessionFor(o);
      const rows = s.select(spec).map((m) => s.show(m));
      // bpftool prints "%u: %-15s %-32s"; the trailing padding of the last column is dropped.
      if (!jsonOut(o, rows)) for (const r of rows) io.out(`${r.id}: ${r.name.padEnd(15)} ${r.kernel_struct_ops}\n`);
    });
  sessionOptions(cmd.command("dump"))
    .argument("[SPEC...]", "id ID | name NAME")
    .option("--obj <OBJ>", "one-run kernel: register this object first (repeatable)", collect)
    .description("dump struct_ops maps: map info and value")
    .action((spec: string[], o: Opts) => {
      const { s } = sessionFor(o);
      for (const m of s.select(spec)) io.out(s.dump(m));
    });
  sessionOptions(cmd.command("unregister"))
    .argument("<SPEC...>", "id ID | name NAME")
    .option("--obj <OBJ>", "one-run kernel: register this object first (repeatable)", collect)
    .description("unregister struct_ops maps (recorded in the session)")
    .action((spec: string[], o: Opts) => {
      const { s, persist } = sessionFor(o);
      for (const m of s.select(spec)) {
        if (persist) persist.record({ op: "unregister", map_id: m.id });
        else s.unregister(m);
      }
      persist?.save();
      for (const line of s.messages) io.err(`${line}\n`);
    });
}
