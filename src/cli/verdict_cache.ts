/**
 * What the verifier concluded about each program of a session, kept beside the state file so a
 * replay need not walk every program again. An entry is found by the key of its run
 * (src/cli/verdict_key.ts: the instructions, program type, attach BTF id and member, maps, the
 * kernel's BTF and tables, capabilities, log level, and the code itself), and holds all the
 * verifier hands back to PROG_LOAD: the log, statistics, stack depths, subprogram starts, the
 * attached member, and which instructions a verified path reached. Everything else of the load
 * (ids, tag, dead-code rewrite, context conversion, JIT) runs as always, so a replay from the cache
 * leaves the kernel exactly as a full one. Only accepted programs are kept; a refusal is verified
 * again, and a key that does not match (another object, kernel, option or build) is a miss.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { VerifierEnv, VerifierResult, VerifierStats } from "../verifier/env.js";
import { verdictKey } from "./verdict_key.js";

/** One accepted run, as stored. */
export interface Verdict {
  log: string;
  stats: VerifierStats;
  stackDepth: number[];
  subprogStarts: number[];
  attachFuncName?: string;
  /** jits_use_priv_stack. */
  privStack?: boolean;
  /** Base64 of the per-instruction flags. */
  seen?: string;
  memProven?: string;
}

interface VerdictFile {
  version: 1;
  verdicts: Record<string, Verdict>;
}

const b64 = (a: Uint8Array | undefined) => a && Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");
const bytes = (s: string | undefined) => (s === undefined ? undefined : new Uint8Array(Buffer.from(s, "base64")));

function toVerdict(r: VerifierResult): Verdict {
  return {
    log: r.log,
    stats: { ...r.stats },
    stackDepth: [...r.stackDepth],
    subprogStarts: [...r.subprogStarts],
    attachFuncName: r.attachFuncName,
    privStack: r.privStack,
    seen: b64(r.seen),
    memProven: b64(r.memProven),
  };
}

/** A fresh result per use: PROG_LOAD's later steps write into it (the epilogue's stack slot). */
function fromVerdict(v: Verdict): VerifierResult {
  return {
    ok: true,
    log: v.log,
    stats: { ...v.stats },
    stackDepth: [...v.stackDepth],
    subprogStarts: [...v.subprogStarts],
    attachFuncName: v.attachFuncName,
    privStack: v.privStack === true,
    seen: bytes(v.seen),
    memProven: bytes(v.memProven),
  };
}

export class VerdictCache {
  hits = 0;
  misses = 0;
  /** Runs with an input the key cannot name: always verified. */
  unkeyed = 0;
  /** The entries this run used or made: what is worth keeping. */
  private readonly used = new Map<string, Verdict>();

  constructor(
    private readonly stored: Readonly<Record<string, Verdict>>,
    readonly code: string,
  ) {}

  /** The verifier's answer for `env`: recorded if an identical run was, else `verify`'s (then recorded). */
  check(env: VerifierEnv, verify: (env: VerifierEnv) => VerifierResult): VerifierResult {
    const key = verdictKey(env, this.code);
    if (key === undefined) {
      this.unkeyed++;
      return verify(env);
    }
    const v = this.used.get(key) ?? (Object.hasOwn(this.stored, key) ? this.stored[key] : undefined);
    if (v) {
      this.hits++;
      this.used.set(key, v);
      return fromVerdict(v);
    }
    this.misses++;
    const r = verify(env);
    if (r.ok) this.used.set(key, toVerdict(r));
    return r;
  }

  /** Whether the entries to keep differ from the ones read. */
  get changed(): boolean {
    const keys = Object.keys(this.stored);
    return keys.length !== this.used.size || keys.some((k) => !this.used.has(k));
  }

  /** The entries used by this run, as the file stores them. */
  toFile(): VerdictFile {
    return { version: 1, verdicts: Object.fromEntries(this.used) };
  }
}

/** Where a session's verdicts live: beside its state file. */
export const verdictPath = (statePath: string) => `${statePath}.verdicts`;

/** The verdicts stored for a session; a missing, unreadable or foreign file is an empty cache. */
export function readVerdicts(path: string): Record<string, Verdict> {
  try {
    const f = JSON.parse(readFileSync(path, "utf8")) as VerdictFile;
    if (f?.version === 1 && f.verdicts && typeof f.verdicts === "object") return f.verdicts;
  } catch {
    // A cache only: whatever is wrong with it, the verifier answers instead.
  }
  return {};
}

/** Write the entries this run used, atomically; failing to is not an error of the command. */
export function writeVerdicts(path: string, cache: VerdictCache): void {
  if (!cache.changed) return;
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(cache.toFile()));
    renameSync(tmp, path);
  } catch {
    rmSync(tmp, { force: true });
  }
}

let fingerprint: string | undefined;

/**
 * The running code's identity, so another build never answers from this one's verdicts: the
 * bundle's BUILD_ID (scripts/bundle-cli.mjs hashes what it wrote), else a sha256 of every module of
 * the tree this file is part of (dist/src, or src under tsx).
 */
export function codeFingerprint(): string {
  if (fingerprint) return fingerprint;
  const here = dirname(fileURLToPath(import.meta.url));
  try {
    fingerprint = `bundle ${readFileSync(join(here, "BUILD_ID"), "utf8").trim()}`;
    return fingerprint;
  } catch {
    // not the bundle
  }
  // src/cli or dist/src/cli: the whole tree above; the bundle: its own directory.
  const root = basename(here) === "cli" && existsSync(join(here, "..", "kernel")) ? join(here, "..") : here;
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(js|mjs|ts)$/.test(name) && !name.endsWith(".d.ts")) files.push(p);
    }
  };
  walk(root);
  const sha = createHash("sha256");
  for (const f of files) sha.update(`${relative(root, f)}\n`).update(readFileSync(f));
  fingerprint = sha.digest("hex");
  return fingerprint;
}
