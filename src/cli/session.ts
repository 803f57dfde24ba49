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
import { JsonWriter } from "../btf/json_writer.js";
import { bpf_cmd } from "../uapi/bpf.js";
import { BpfError, ENOENT } from "../uapi/errno.js";
import type { Handle } from "./bpf_info.js";
import { CliError, fileError } from "./errors.js";
import type { RegisterResult, StructOpsSession } from "./kernel_session.js";
import { replayMapOp } from "./map_update.js";
import { codeFingerprint, readVerdicts, VerdictCache, verdictPath, writeVerdicts } from "./verdict_cache.js";

/** One recorded kernel-changing operation. Ids are the ones the kernel gave at record time. */
export type SessionOp =
  | { op: "register"; path: string; sha256: string; linkDir?: string }
  | { op: "unregister"; map_id: number }
  | { op: "link_detach"; link_id: number }
  | { op: "module_load"; name: string }
  | { op: "module_unload"; name: string }
  | {
      op: "map_update";
      map_id: number;
      key: string;
      value?: string;
      value_prog_id?: number;
      value_map_id?: number;
      flags: number;
    }
  | { op: "map_delete"; map_id: number; key: string };

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

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A file's bytes; a failure names the file and the errno. */
export function readBytes(what: string, path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw fileError(`can't read ${what}`, path, e);
  }
}

export function readState(path: string): SessionState {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, ops: [] };
    throw fileError("can't read state file", path, e);
  }
  // An empty file (`: > state.json`, mktemp) is an empty session.
  if (text.trim() === "") return { version: 1, ops: [] };
  let st: SessionState;
  try {
    st = JSON.parse(text) as SessionState;
  } catch (e) {
    throw new CliError(`state file ${path} is not valid JSON (${(e as Error).message}); run 'structops session reset'`);
  }
  if (st?.version !== 1 || !Array.isArray(st.ops)) {
    throw new CliError(`state file ${path} has an unknown format; run 'structops session reset'`);
  }
  return st;
}

/**
 * An empty session's kernel before anything needs booting: it holds no object, so the id walks of
 * the show verbs end at once (ENOENT, as the booted kernel answers). Anything else boots the real
 * kernel first; this only spares an empty `prog show` the kernel's start-up.
 */
const NO_OBJECTS = new Set<number>([
  bpf_cmd.BPF_PROG_GET_NEXT_ID,
  bpf_cmd.BPF_MAP_GET_NEXT_ID,
  bpf_cmd.BPF_LINK_GET_NEXT_ID,
  bpf_cmd.BPF_BTF_GET_NEXT_ID,
  bpf_cmd.BPF_PROG_GET_FD_BY_ID,
  bpf_cmd.BPF_MAP_GET_FD_BY_ID,
  bpf_cmd.BPF_LINK_GET_FD_BY_ID,
  bpf_cmd.BPF_BTF_GET_FD_BY_ID,
]);

let booted = false;
/** Whether this process booted a session's kernel (the launcher's code cache then holds its code). */
export function sessionBooted(): boolean {
  return booted;
}

/** The simulated kernel of a session: booted, then brought to the recorded state by replay. */
export class CliSession implements Handle {
  /** Problems found while replaying (changed or missing objects, ops that no longer apply). */
  readonly warnings: string[] = [];
  private ks?: StructOpsSession;
  /** The verifier's recorded verdicts (once the kernel boots). */
  verdicts?: VerdictCache;

  private constructor(
    readonly path: string,
    readonly state: SessionState,
    private readonly boot: () => StructOpsSession,
  ) {}

  /**
   * Read the state file at `path` (absent or empty: an empty session) and replay it into a booted
   * kernel. An empty session boots only for a verb that changes the kernel (`boot`).
   */
  static async open(path: string, boot = false): Promise<CliSession> {
    const state = readState(path);
    if (!state.ops.length && !boot) {
      return new CliSession(path, state, () => {
        throw new Error("the kernel of an empty session was not booted");
      });
    }
    const { StructOpsSession } = await import("./kernel_session.js");
    const s: CliSession = new CliSession(path, state, () => {
      s.verdicts = new VerdictCache(readVerdicts(verdictPath(path)), codeFingerprint());
      return new StructOpsSession(s.verdicts);
    });
    s.replayAll();
    s.saveVerdicts();
    return s;
  }

  private replayAll(): void {
    const k = this.kernel;
    for (const op of this.state.ops) {
      try {
        this.replay(op);
      } catch (e) {
        if (!(e instanceof BpfError || e instanceof CliError)) throw e;
        this.warnings.push(`replaying ${describe(op)}: ${e.message}`);
      }
    }
    k.messages.length = 0;
  }

  /** The booted kernel (booted now if nothing needed it yet). */
  get kernel(): StructOpsSession {
    if (!this.ks) {
      this.ks = this.boot();
      booted = true;
    }
    return this.ks;
  }

  bpf(cmd: number, attr: Record<string, unknown>): number {
    if (!this.ks && NO_OBJECTS.has(cmd)) throw new BpfError(ENOENT, "no such object");
    return this.kernel.bpf(cmd, attr);
  }
  fdinfo(fd: number): string {
    return this.kernel.fdinfo(fd);
  }
  close(fd: number): void {
    this.kernel.close(fd);
  }
  object(fd: number): unknown {
    return this.kernel.object(fd);
  }

  private replay(op: SessionOp): RegisterResult | undefined {
    if (op.op === "register") {
      if (!existsSync(op.path)) throw new CliError(`object ${op.path} no longer exists; not replayed`);
      const bytes = readBytes("object", op.path);
      const now = sha256(bytes);
      if (now !== op.sha256) {
        throw new CliError(
          `object ${op.path} changed since it was registered (sha256 ${op.sha256.slice(0, 12)}..., now ${now.slice(0, 12)}...); not replayed, register it again or run 'structops session reset'`,
        );
      }
      return this.kernel.register(bytes, op.path, op.linkDir);
    }
    if (op.op === "map_update" || op.op === "map_delete") replayMapOp(this, op);
    else if (op.op === "unregister") this.kernel.unregister(op.map_id);
    else if (op.op === "module_load") this.kernel.loadModule(op.name);
    else if (op.op === "module_unload") this.kernel.unloadModule(op.name);
    else this.kernel.linkDetach(op.link_id);
    return undefined;
  }

  /** Run `op` against the kernel now and append it to the log (saved by save()). */
  record(op: SessionOp): RegisterResult | undefined {
    const r = this.replay(op);
    this.state.ops.push(op);
    return r;
  }

  /** Register an object file and record it (when anything registered). */
  registerRecorded(path: string, linkDir?: string): RegisterResult {
    const abs = resolve(path);
    const bytes = readBytes("object", abs);
    const op: SessionOp = linkDir
      ? { op: "register", path: abs, sha256: sha256(bytes), linkDir }
      : { op: "register", path: abs, sha256: sha256(bytes) };
    const r = this.kernel.register(bytes, abs, linkDir);
    if (r.maps.length) this.state.ops.push(op);
    return r;
  }

  /** Write the log atomically (a crash mid-write leaves the old state). */
  save(): void {
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      const tmp = `${this.path}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(this.state, null, 2)}\n`);
      renameSync(tmp, this.path);
    } catch (e) {
      throw fileError("can't write state file", this.path, e);
    }
    this.saveVerdicts();
  }

  /** Keep the verdicts this run used beside the state file (when they changed). */
  saveVerdicts(): void {
    if (this.verdicts) writeVerdicts(verdictPath(this.path), this.verdicts);
  }

  /** Print the replay warnings on stderr (every command does, so a changed object is never silent). */
  reportWarnings(): void {
    for (const w of this.warnings) io.err(`Warning: ${w}\n`);
  }
}

export function describe(op: SessionOp): string {
  if (op.op === "register") return `register ${op.path}`;
  if (op.op === "unregister") return `unregister id ${op.map_id}`;
  if (op.op === "module_load" || op.op === "module_unload") return `module ${op.op.slice(7)} ${op.name}`;
  if (op.op === "map_update" || op.op === "map_delete") return `map ${op.op.slice(4)} id ${op.map_id} key ${op.key}`;
  return `link detach id ${op.link_id}`;
}

/** Open the session of a command's --state option, reporting replay problems. */
export async function openSession(stateOpt: string | undefined, boot = false): Promise<CliSession> {
  const s = await CliSession.open(statePath(stateOpt), boot);
  s.reportWarnings();
  return s;
}

/** Options every session-aware command takes. */
export interface SessionOpts {
  state?: string;
  json?: boolean;
  pretty?: boolean;
}

export const STATE_HELP = "state file (default $STRUCTOPS_STATE, else $XDG_STATE_HOME/structops/session.json)";

/** `-j/--json` and `-p/--pretty` as bpftool prints them, through its json_writer (pretty: 4-space indent, `},{`). */
export function jsonOut(o: SessionOpts, value: unknown): boolean {
  if (!o.json && !o.pretty) return false;
  io.out(jsonText(value, o.pretty ?? false));
  return true;
}

/**
 * A value the BTF printer lays out itself (from depth 0), in the form asked for: `pretty` is the
 * writer's; numbers stay as printed (a u64 past 2^53 keeps every digit).
 */
export class RawJson {
  constructor(readonly show: (pretty: boolean) => string) {}
}

/** A JS value as bpftool's json_writer would write it. */
export function jsonText(value: unknown, pretty: boolean): string {
  const w = new JsonWriter(pretty);
  let depth = 0;
  const put = (v: unknown): void => {
    if (v instanceof RawJson) {
      const t = v.show(pretty);
      w.raw(pretty ? t.replace(/\n/g, `\n${"    ".repeat(depth)}`) : t);
    } else if (v === null || v === undefined) w.raw("null");
    else if (typeof v === "bigint" || typeof v === "number") w.raw(String(v));
    else if (typeof v === "boolean") w.raw(v ? "true" : "false");
    else if (typeof v === "string") w.string(v);
    else if (Array.isArray(v)) {
      w.startArray();
      depth++;
      for (const x of v) put(x);
      depth--;
      w.endArray();
    } else {
      w.startObject();
      depth++;
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (x === undefined) continue;
        w.name(k);
        put(x);
      }
      depth--;
      w.endObject();
    }
  };
  put(value);
  return w.toString();
}

/** The options of a subcommand merged with the global ones given before the verb (`structops -j prog show`). */
export function optsOf<T>(cmd: Command): T {
  return cmd.optsWithGlobals() as T;
}

/** Add --state, -j and -p to a subcommand. */
export function sessionOptions(c: Command): Command {
  return c
    .option("--state <FILE>", STATE_HELP)
    .option("-j, --json", "JSON output")
    .option("-p, --pretty", "pretty JSON");
}
