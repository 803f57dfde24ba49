#!/usr/bin/env node
/**
 * The `structops` command (package.json "bin"; scripts/bundle-cli.mjs builds it into
 * dist/cli/main.js). The CLI is one CommonJS script beside it (structops.cjs), compiled here
 * through vm.Script with V8's code cache (src/cli/code_cache.ts): the one the build made beside
 * the bundle, else one this user's runs made; a run that had none writes one when it exits.
 * STRUCTOPS_CODE_CACHE=off compiles from source and writes nothing.
 */
// First: the V8 flags hold from before the bundle is compiled (the code cache depends on them).
import "./v8_flags.js";
import { isAscii } from "node:buffer";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { setFlagsFromString } from "node:v8";
import vm from "node:vm";
import {
  type CodeCache,
  cacheKey,
  pruneUserCaches,
  readCodeCache,
  userCachePath,
  writeCodeCache,
} from "./code_cache.js";

interface Bundle {
  run(argv: string[]): Promise<number>;
  sessionBooted(): boolean;
}

// Most runs of the command last a few hundred ms: by default V8 sends a function to its optimising
// compiler after ~66 KB of its bytecode ran, and in a run that short most of those compiles (on
// background threads, counted in the process's CPU time) finish too late to pay back; four times
// that budget keeps the ones that do. Long runs (sim, sweep, sched) lose a few ms of warm-up.
// Before the bundle is compiled: the code cache is made and used under the same flags.
setFlagsFromString("--interrupt-budget=262144");

const here = dirname(fileURLToPath(import.meta.url));
const file = join(here, "structops.cjs");
const bytes = readFileSync(file);
// esbuild writes ASCII: read as Latin-1 it is the same text, made without UTF-8 decoding (and the
// key hashes the bytes, not the text encoded back).
const source = bytes.toString(isAscii(bytes) ? "latin1" : "utf8");
const env = process.env;
const key = cacheKey(bytes, `${process.execArgv.join(" ")} ${env.NODE_OPTIONS ?? ""}`);
const off = env.STRUCTOPS_CODE_CACHE === "off";
// The build writes its cache from a run of its own (scripts/bundle-cli.mjs).
const out = env.STRUCTOPS_CODE_CACHE_OUT;

let used: CodeCache | undefined;
let from: string | undefined;
if (!off && !out) {
  for (const path of [`${file}.cache`, userCachePath(key)]) {
    used = readCodeCache(path, key);
    if (used) {
      from = path;
      break;
    }
  }
}
// One line, so the bundle's line numbers stay those of structops.cjs in a stack trace.
const script = new vm.Script(
  `(function (exports, require, module, __filename, __dirname, __structops_url, __structops_import) {${source}\n})`,
  { filename: file, cachedData: used?.data },
);
// V8 may still refuse a cache (a V8 flag set some way the key does not see): then the bundle
// compiled from source, as with none.
if (script.cachedDataRejected) used = undefined;
const module = { exports: {} as Bundle };
// The outside packages' import() (scripts/bundle-cli.mjs), resolved from here as from the bundle.
const importer = (name: string): Promise<unknown> => import(name);
script.runInThisContext()(module.exports, createRequire(file), module, file, here, pathToFileURL(file).href, importer);
const bundle = module.exports;

/** Where this run's cache goes when it exits, if anywhere. */
function target(kernel: boolean): string | undefined {
  if (off) return undefined;
  if (out) return out;
  if (!used) return userCachePath(key);
  // A cache made without a session's kernel gives way to one made with it.
  if (from !== `${file}.cache` && !used.kernel && kernel) return userCachePath(key);
  return undefined;
}

if (!off) {
  process.on("exit", () => {
    const kernel = bundle.sessionBooted();
    const path = target(kernel);
    if (path === undefined) return;
    try {
      writeCodeCache(path, key, { data: script.createCachedData(), kernel });
      if (path !== out) pruneUserCaches(path);
    } catch {
      // A cache that cannot be written (read-only home) only costs the next run its compile.
    }
  });
}

bundle.run(process.argv).then((code) => {
  process.exitCode = code;
});
