/** The `prog` verb: `prog dump` and `prog verify` register under one parent command. */
import type { Command } from "commander";

/** The program's `prog` command, created by whichever subcommand registers first. */
export function progCommand(program: Command): Command {
  const found = program.commands.find((c) => c.name() === "prog");
  if (found) return found;
  return program.command("prog").description("inspect and manage BPF programs");
}
