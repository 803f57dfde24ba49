// Bundles the compiled CLI (dist/src/cli) into dist/cli/, the `structops` command of package.json,
// all CommonJS (dist/cli/package.json says so): Node's ESM loader pays per module, its view of a
// builtin module loads all of that module's parts (fs's streams and promises), and it has no
// code cache.
//   structops.cjs   the whole CLI as one script (each verb's modules initialised only when the verb
//                   runs), compiled by the launcher through vm.Script so that V8's code cache serves it;
//   main.js         the launcher (src/cli/launcher.ts);
//   structops.cjs.cache  the code cache, made by a run that replays a session of two objects;
//   sweep_worker.js the sweep's worker thread, an entry of its own.
// Native and plotting packages stay outside, loaded by the verbs that need them.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";

const external = ["@resvg/resvg-js", "vega", "vega-lite", "cli-progress"];
const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  external,
  logLevel: "warning",
  metafile: true,
};
// import.meta.url has no meaning in a script: the launcher passes the bundle's URL to it, the
// other entries compute their own.
const ownUrl = { js: '"use strict"; var __structops_url = require("node:url").pathToFileURL(__filename).href;' };
const define = { "import.meta.url": "__structops_url" };

rmSync("dist/cli", { recursive: true, force: true });
const results = await Promise.all([
  build({
    ...common,
    entryPoints: ["dist/src/cli/bundle.js"],
    outfile: "dist/cli/structops.cjs",
    format: "cjs",
    define,
  }),
  build({
    ...common,
    entryPoints: ["dist/src/cli/launcher.js"],
    outfile: "dist/cli/main.js",
    format: "cjs",
    define,
    banner: ownUrl,
  }),
  build({
    ...common,
    entryPoints: ["dist/src/cli/sweep_worker.js"],
    outfile: "dist/cli/sweep_worker.js",
    format: "cjs",
    define,
    banner: ownUrl,
  }),
]);
// A script run from a code cache loses the import() callback V8 was given when it compiled
// (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING): the outside packages' import() goes through the
// launcher's instead. The verbs' own modules are already inside the script.
let bundle = readFileSync("dist/cli/structops.cjs", "utf8");
for (const name of external) {
  bundle = bundle.replaceAll(`import(${JSON.stringify(name)})`, `__structops_import(${JSON.stringify(name)})`);
}
const left = bundle.match(/[^\w.$]import\([^)]*\)/);
if (left) throw new Error(`dist/cli/structops.cjs: ${left[0]} would fail from the code cache`);
writeFileSync("dist/cli/structops.cjs", bundle);
writeFileSync("dist/cli/package.json", `${JSON.stringify({ type: "commonjs" })}\n`);

// The build's identity, for what is only valid for this code (the verifier verdicts a session
// keeps, src/cli/verdict_cache.ts): a sha256 of every file this build wrote.
const sha = createHash("sha256");
const outputs = results.flatMap((r) => Object.keys(r.metafile.outputs)).sort();
for (const f of outputs) sha.update(`${f}\n`).update(readFileSync(f));
writeFileSync("dist/cli/BUILD_ID", `${sha.digest("hex")}\n`);

// The code cache: a session of two objects (one registered with a link) registered, then a run
// that replays it and lists its programs writes the cache of everything it compiled. Without the
// objects (a tree without bpf/obj), an empty session's run makes it. A run that fails (a verifier
// change that refuses an object) is reported and the build goes on: the command is then slower to
// start, and its tests say what broke.
const dir = mkdtempSync(join(tmpdir(), "structops-build-"));
try {
  const env = { ...process.env, STRUCTOPS_STATE: join(dir, "session.json") };
  const so = (args, extra = {}) => {
    const r = spawnSync(process.execPath, ["dist/cli/main.js", ...args], {
      env: { ...env, ...extra },
      encoding: "utf8",
    });
    if (r.status !== 0) {
      const why = (r.stderr || r.error?.message || `status ${r.status}`).trim();
      process.stderr.write(`bundle-cli: structops ${args.join(" ")} failed (${why}); the code cache covers less\n`);
    }
  };
  for (const obj of ["bpf/obj/tcp_reno.bpf.o", "bpf/obj/tcp_cubic.bpf.o"].filter((o) => existsSync(o))) {
    so(["struct_ops", "register", obj], { STRUCTOPS_CODE_CACHE: "off" });
  }
  so(["prog", "show"], { STRUCTOPS_CODE_CACHE_OUT: "dist/cli/structops.cjs.cache" });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
