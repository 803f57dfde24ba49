/**
 * A CLI session that outlives one `structops` invocation. bpftool talks to one long-lived kernel;
 * each structops run boots a fresh simulated one, so the session keeps the operations that changed
 * the kernel as a replay log in a state file and replays them on every boot. The simulated kernel
 * is deterministic (cyclic idr, no randomness), so a replay hands out the same map, program and
 * link ids each time. Objects are recorded with their sha256: a file that changed since it was
 * registered is reported and not replayed, instead of silently loading different code.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { bpf_cmd } from "../uapi/bpf.js";
import { BpfError, EINVAL, ENOENT } from "../uapi/errno.js";
import { StructOpsSession } from "./kernel_session.js";

/** One recorded kernel-changing operation. Ids are the ones the kernel gave at record time. */
export type SessionOp =
  | { op: "register"; path: string; sha256: string; linkDir?: string }
  | { op: "unregister"; map_id: number }
  | { op: "link_detach"; link_id: number };

export interface SessionState {
  version: 1;
  ops: SessionOp[];
}

/** Where output goes; tests swap it to capture what a command prints. */
export const io = {
  out: (s: string): void => void process.stdout.write(s),
  err: (s: string): void => void process.stderr.write(s),
};

/**
 * --state, else $STRUCTOPS_STATE, else $XDG_STATE_HOME/structops, else ~/.local/state/structops.
 * Under node's test runner (NODE_TEST_CONTEXT) the default is a file private to the test process,
 * removed at exit: a test that runs a verb without --state must not read or write the user's session.
 */
export function statePath(opt?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (opt) return resolve(opt);
  if (env.STRUCTOPS_STATE) return resolve(env.STRUCTOPS_STATE);
  if (env.NODE_TEST_CONTEXT) return testStatePath();
  const base = env.XDG_STATE_HOME || join(homedir(), ".local", "state");
  return join(base, "structops", "session.json");
}

let testState: string | undefined;
function testStatePath(): string {
  if (!testState) {
    const dir = mkdtempSync(join(tmpdir(), "structops-test-state-"));
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    testState = join(dir, "session.json");
  }
  return testState;
}

export function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

export function readState(path: string): SessionState {
  if (!existsSync(path)) return { version: 1, ops: [] };
  let st: SessionState;
  try {
    st = JSON.parse(readFileSync(path, "utf8")) as SessionState;
  } catch (e) {
    throw new BpfError(
      EINVAL,
      `state file ${path} is not valid JSON (${(e as Error).message}); run 'structops session reset'`,
    );
  }
  if (st?.version !== 1 || !Array.isArray(st.ops)) {
    throw new BpfError(EINVAL, `state file ${path} has an unknown format; run 'structops session reset'`);
  }
  return st;
}

/** The simulated kernel of a session: booted, then brought to the recorded state by replay. */
export class CliSession extends StructOpsSession {
  /** Problems found while replaying (changed or missing objects, ops that no longer apply). */
  readonly warnings: string[] = [];

  private constructor(
    readonly path: string,
    readonly state: SessionState,
  ) {
    super();
  }

  /** Boot and replay the state file at `path` (absent: an empty session). */
  static open(path: string): CliSession {
    const s = new CliSession(path, readState(path));
    for (const op of s.state.ops) {
      try {
        s.replay(op);
      } catch (e) {
        if (!(e instanceof BpfError)) throw e;
        s.warnings.push(`replaying ${describe(op)}: ${e.message}`);
      }
    }
    s.messages.length = 0;
    return s;
  }

  private replay(op: SessionOp): void {
    if (op.op === "register") {
      if (!existsSync(op.path)) throw new BpfError(ENOENT, `object ${op.path} no longer exists; not replayed`);
      const now = sha256File(op.path);
      if (now !== op.sha256) {
        throw new BpfError(
          EINVAL,
          `object ${op.path} changed since it was registered (sha256 ${op.sha256.slice(0, 12)}..., now ${now.slice(0, 12)}...); not replayed, register it again or run 'structops session reset'`,
        );
      }
      this.register(op.path, op.linkDir);
    } else if (op.op === "unregister") {
      this.unregister(this.select(["id", String(op.map_id)])[0]!);
    } else {
      this.linkDetach(op.link_id);
    }
  }

  /** Run `op` against the kernel now and append it to the log (saved by save()). */
  record(op: SessionOp): void {
    this.replay(op);
    this.state.ops.push(op);
  }

  /** Register an object file and record it. */
  registerRecorded(path: string, linkDir?: string): ReturnType<StructOpsSession["register"]> {
    const abs = resolve(path);
    const sha256 = sha256File(abs);
    const before = this.maps().length;
    const op: SessionOp = linkDir
      ? { op: "register", path: abs, sha256, linkDir }
      : { op: "register", path: abs, sha256 };
    this.record(op);
    return this.maps().slice(before);
  }

  /** BPF_LINK_DETACH of the link with this id (bpftool link detach id ID). */
  linkDetach(id: number): void {
    const lfd = this.kernel.bpf(this.proc, bpf_cmd.BPF_LINK_GET_FD_BY_ID, { link_id: id });
    try {
      this.kernel.bpf(this.proc, bpf_cmd.BPF_LINK_DETACH, { link_fd: lfd });
    } finally {
      this.proc.files.close(lfd);
    }
  }

  /** Write the log atomically (a crash mid-write leaves the old state). */
  save(): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.state, null, 2)}\n`);
    renameSync(tmp, this.path);
  }

  /** Print the replay warnings on stderr (every command does, so a changed object is never silent). */
  reportWarnings(): void {
    for (const w of this.warnings) io.err(`Warning: ${w}\n`);
  }
}

function describe(op: SessionOp): string {
  if (op.op === "register") return `register ${op.path}`;
  if (op.op === "unregister") return `unregister id ${op.map_id}`;
  return `link detach id ${op.link_id}`;
}

/** Open the session of a command's --state option, reporting replay problems. */
export function openSession(stateOpt: string | undefined): CliSession {
  const s = CliSession.open(statePath(stateOpt));
  s.reportWarnings();
  return s;
}

export function register(program: Command): void {
  const cmd = program.command("session").description("the persistent simulated kernel kept between invocations");
  cmd
    .command("reset")
    .option("--state <FILE>", "state file (default $STRUCTOPS_STATE or $XDG_STATE_HOME/structops/session.json)")
    .description("forget every recorded operation: the next command boots an empty kernel")
    .action((o: { state?: string }) => {
      const p = statePath(o.state);
      rmSync(p, { force: true });
      io.err(`Session reset (${p})\n`);
    });
  cmd
    .command("show")
    .option("--state <FILE>", "state file")
    .option("-j, --json", "JSON output")
    .description("the state file and the operations it replays")
    .action((o: { state?: string; json?: boolean }) => {
      const p = statePath(o.state);
      const st = readState(p);
      if (o.json) io.out(`${JSON.stringify({ state: p, ops: st.ops })}\n`);
      else {
        io.out(`state: ${p}\n`);
        for (const op of st.ops) io.out(`\t${describe(op)}\n`);
      }
    });
}

/** Options every session-aware command takes. */
export interface SessionOpts {
  state?: string;
  json?: boolean;
  pretty?: boolean;
}

export const STATE_HELP = "state file (default $STRUCTOPS_STATE, else $XDG_STATE_HOME/structops/session.json)";

/** `-j/--json` and `-p/--pretty` as bpftool prints them (pretty: 4-space indent). */
export function jsonOut(o: SessionOpts, value: unknown): boolean {
  if (!o.json && !o.pretty) return false;
  io.out(`${JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? Number(v) : v), o.pretty ? 4 : undefined)}\n`);
  return true;
}

/** Add --state, -j and -p to a subcommand. */
export function sessionOptions(c: Command): Command {
  return c
    .option("--state <FILE>", STATE_HELP)
    .option("-j, --json", "JSON output")
    .option("-p, --pretty", "pretty JSON");
}
