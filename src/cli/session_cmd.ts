/** `structops session show|reset`: the state file the other verbs replay (src/cli/session.ts). */
import { rmSync } from "node:fs";
import type { Command } from "commander";
import { fileError } from "./errors.js";
import { describe, io, jsonOut, optsOf, readState, type SessionOpts, sessionOptions, statePath } from "./session.js";
import { verdictPath } from "./verdict_cache.js";

export function register(program: Command): void {
  const cmd = program.command("session").description("the persistent simulated kernel kept between invocations");
  sessionOptions(cmd.command("reset"))
    .description("forget every recorded operation: the next command boots an empty kernel")
    .action((_o: SessionOpts, c: Command) => {
      const p = statePath(optsOf<SessionOpts>(c).state);
      try {
        rmSync(p, { force: true });
        rmSync(verdictPath(p), { force: true });
      } catch (e) {
        throw fileError("can't remove state file", p, e);
      }
      io.err(`Session reset (${p})\n`);
    });
  sessionOptions(cmd.command("show"))
    .description("the state file and the operations it replays")
    .action((_o: SessionOpts, c: Command) => {
      const o = optsOf<SessionOpts>(c);
      const p = statePath(o.state);
      const st = readState(p);
      if (!jsonOut(o, { state: p, ops: st.ops })) {
        io.out(`state: ${p}\n`);
        for (const op of st.ops) io.out(`\t${describe(op)}\n`);
      }
    });
}
