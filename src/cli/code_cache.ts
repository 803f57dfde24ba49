/**
 * V8's code cache for the bundled CLI (dist/cli/structops.cjs). Most of a `structops` run's
 * start-up was V8 compiling the bundle; a cache made after a run that replayed a session holds
 * the bytecode of every function that run compiled, so the next run deserializes instead of
 * compiling. V8 checks a cache only against its own version, its flags and the source's length,
 * and a cache with damaged bytecode aborts the process: the file carries the bundle's identity
 * and a hash of the payload, and anything that does not match is ignored (the bundle is then
 * compiled from source, as without a cache).
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

const MAGIC = "structops code cache 1\n";

/** Whether the run that made a cache booted a session's kernel (its code is then in the cache). */
export interface CodeCache {
  data: Buffer;
  kernel: boolean;
}

/**
 * What a cache must have been made for: this bundle's source, this node, this V8 and these flags
 * (`flags`: node's command-line options, which V8 would otherwise refuse the cache for after reading it).
 * The source as the file's bytes or as its text gives the same key (the text is hashed as UTF-8).
 */
export function cacheKey(source: string | Uint8Array, flags: string): string {
  return createHash("sha256")
    .update(`${process.version} ${process.arch} v8 ${process.versions.v8} ${flags}\n`)
    .update(source)
    .digest("hex");
}

/** The cache at `path` if it was made for `key` and is intact; otherwise undefined. */
export function readCodeCache(path: string, key: string): CodeCache | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return undefined;
  }
  if (bytes.toString("latin1", 0, MAGIC.length) !== MAGIC) return undefined;
  const eol = bytes.indexOf(10, MAGIC.length);
  if (eol < 0) return undefined;
  let head: { key?: unknown; sha256?: unknown; kernel?: unknown };
  try {
    head = JSON.parse(bytes.toString("utf8", MAGIC.length, eol));
  } catch {
    return undefined;
  }
  if (head?.key !== key) return undefined;
  const data = bytes.subarray(eol + 1);
  if (createHash("sha256").update(data).digest("hex") !== head.sha256) return undefined;
  return { data, kernel: head.kernel === true };
}

/** Write a cache for `key` (atomically: a reader sees the old file or the new one, whole). */
export function writeCodeCache(path: string, key: string, cache: CodeCache): void {
  const sha256 = createHash("sha256").update(cache.data).digest("hex");
  const head = Buffer.from(`${MAGIC}${JSON.stringify({ key, sha256, kernel: cache.kernel })}\n`);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, Buffer.concat([head, cache.data]));
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Where a run writes the cache when the one built beside the bundle does not serve (another node
 * than the build's): $XDG_CACHE_HOME/structops, else ~/.cache/structops, one file per key.
 */
export function userCachePath(key: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "structops", `code-${key.slice(0, 16)}.bin`);
}

/**
 * Keep the `keep` newest caches of the directory a user cache is in: each bundle, node and set of
 * flags has its own, and an old one never serves again once the build or node changed.
 */
export function pruneUserCaches(path: string, keep = 4): void {
  const dir = dirname(path);
  const caches = readdirSync(dir)
    .filter((n) => /^code-[0-9a-f]{16}\.bin$/.test(n))
    .map((n) => ({ p: join(dir, n), t: statSync(join(dir, n)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { p } of caches.slice(keep)) rmSync(p, { force: true });
}
