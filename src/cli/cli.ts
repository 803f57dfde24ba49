// structops: a bpftool-like command over the simulated kernel (src/cli/main.ts runs it).
//
// Start-up is kept cheap: only the module of the verb given is imported (a `prog show` never loads
// the plotter, the simulator or the verifier's CLI), and commander itself is imported only here.
import type { Command } from "commander";
import { EXIT_ERROR, errorLine } from "./errors.js";
import { bpftoolGetopt } from "./getopt.js";
import { io } from "./session.js";

type Registrar = { register(program: Command): void };

/** Each verb's modules, imported on demand; `prog`'s subcommands each have their own. */
const VERBS: Record<string, Record<string, () => Promise<Registrar>>> = {
  btf: { "": () => import("./btf.js") },
  conformance: { "": () => import("./conformance.js") },
  prog: {
    dump: () => import("./prog_dump.js"),
    verify: () => import("./prog_verify.js"),
    show: () => import("./prog_show.js"),
    list: () => import("./prog_show.js"),
  },
  map: { "": () => import("./map.js") },
  link: { "": () => import("./link.js") },
  module: { "": () => import("./module.js") },
  session: { "": () => import("./session_cmd.js") },
  struct_ops: { "": () => import("./struct_ops.js") },
  sim: { "": () => import("./sim.js") },
  sched: { "": () => import("./sched.js") },
  sweep: { "": () => import("./sweep.js") },
};

/** The verbs whose command line is parsed as bpftool parses its own (src/cli/getopt.ts). */
const BPFTOOL_VERBS = new Set(["btf", "prog", "map", "link", "module", "session", "struct_ops"]);

/** bpftool's global options, accepted before the verb as well as after it. */
export const GLOBAL_FLAGS = new Set(["-j", "--json", "-p", "--pretty", "-jp", "-pj", "-d", "--debug"]);
const GLOBAL_WITH_VALUE = new Set(["--state"]);

/** The first words that are not options: the verb and its subcommand. */
export function verbOf(args: string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < args.length && words.length < 2; i++) {
    const a = args[i]!;
    if (GLOBAL_WITH_VALUE.has(a)) i++;
    else if (!a.startsWith("-")) words.push(a);
    else if (words.length === 0 && !GLOBAL_FLAGS.has(a) && !a.startsWith("--state=")) break;
  }
  return words;
}

/** The command line wants JSON (errors then go to stdout as `{"error": ...}`, as bpftool's do). */
export function wantsJson(args: string[]): { json: boolean; pretty: boolean } {
  let json = false;
  let pretty = false;
  for (const a of args) {
    if (a === "--") break;
    const cluster = /^-[jp]+$/.test(a);
    if (a === "--json" || (cluster && a.includes("j"))) json = true;
    if (a === "--pretty" || (cluster && a.includes("p"))) pretty = true;
  }
  return { json: json || pretty, pretty };
}

export async function buildProgram(args: string[]): Promise<Command> {
  const { Command } = await import("commander");
  const program = new Command();
  program
    .name("structops")
    .description("BPF struct_ops, the kernel subsystem and the userspace BPF stack around it, in TypeScript")
    .version("0.1.0")
    .option("-j, --json", "JSON output")
    .option("-p, --pretty", "pretty-printed JSON output (implies -j)")
    .option(
      "--state <FILE>",
      "session state file (default $STRUCTOPS_STATE, else $XDG_STATE_HOME/structops/session.json)",
    )
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      // commander's refusals as bpftool words them: one `Error: ...` line (JSON under -j).
      outputError: (s) => {
        const line = s
          .replace(/^error: /, "")
          .replace(/^unknown option/, "unrecognized option")
          .trimEnd();
        fail(line.split("\n")[0]!, args);
      },
    });
  const [verb, sub] = verbOf(args);
  const table = verb !== undefined ? VERBS[verb] : undefined;
  const loaders = table
    ? [...new Set(sub !== undefined && table[sub] ? [table[sub]] : Object.values(table))]
    : Object.values(VERBS).flatMap((t) => [...new Set(Object.values(t))]);
  const mods = new Set<Registrar>();
  for (const load of loaders) mods.add(await load());
  for (const m of mods) m.register(program);
  // Usage errors of every subcommand come back here instead of exiting with commander's 1.
  const override = (c: Command) => {
    c.exitOverride();
    for (const s of c.commands) override(s);
  };
  override(program);
  return program;
}

function fail(line: string, args: string[]): number {
  const { json, pretty } = wantsJson(args);
  if (json) io.out(`${JSON.stringify({ error: line }, null, pretty ? 4 : undefined)}\n`);
  else io.err(`Error: ${line}\n`);
  return EXIT_ERROR;
}

/**
 * Run one command line (`argv` as process.argv) and return its exit status (src/cli/errors.ts); a
 * verb that finishes with a status other than 0 sets process.exitCode.
 */
export async function main(argv: string[]): Promise<number> {
  let args = argv.slice(2);
  process.exitCode = 0;
  const verb = verbOf(args)[0];
  if (verb !== undefined && BPFTOOL_VERBS.has(verb)) {
    const g = bpftoolGetopt(args);
    if (!g.ok) {
      if (g.json) io.out(`${JSON.stringify({ error: g.error }, null, g.pretty ? 4 : undefined)}\n`);
      else io.err(`Error: ${g.error}\n`);
      return EXIT_ERROR;
    }
    args = g.args;
    argv = [...argv.slice(0, 2), ...args];
  }
  try {
    await (await buildProgram(args)).parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (e) {
    const ce = e as { code?: string; exitCode?: number };
    if (typeof ce.code === "string" && ce.code.startsWith("commander.")) {
      // commander has printed its message (usage errors) or the help/version text.
      const ok = ce.code === "commander.helpDisplayed" || ce.code === "commander.version" || ce.exitCode === 0;
      return ok ? 0 : EXIT_ERROR;
    }
    const line = errorLine(e);
    if (line !== undefined) return fail(line, args);
    // A bug, not a user error: one line unless asked for the trace.
    if (process.env.STRUCTOPS_DEBUG) io.err(`${(e as Error)?.stack ?? String(e)}\n`);
    return fail(`internal error: ${(e as Error)?.message ?? String(e)}`, args);
  }
}
