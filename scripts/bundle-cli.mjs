// Bundles the compiled CLI (dist/src/cli/main.js) into dist/cli/, the `structops` command of
// package.json: shared code in chunks, each verb's code in its own (esbuild's splitting keeps the
// dynamic import of each verb), so `structops prog show` reads a few files instead of the hundred
// modules of the tree. Node's ESM loader pays per module; this is what keeps a verb close to
// `node -e 0` (bench/cli.ts). The sweep's worker is an entry of its own, beside the chunk that
// starts it. Native and plotting packages stay outside, loaded by the verbs that need them.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { build } from "esbuild";

const result = await build({
  entryPoints: ["dist/src/cli/main.js", "dist/src/cli/sweep_worker.js"],
  outdir: "dist/cli",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: ["@resvg/resvg-js", "vega", "vega-lite", "cli-progress"],
  // commander is CommonJS: give its require() of node's modules a real require.
  banner: {
    js: 'import { createRequire as __structopsRequire } from "node:module"; const require = __structopsRequire(import.meta.url);',
  },
  logLevel: "warning",
  metafile: true,
});

// The build's identity, for what is only valid for this code (the verifier verdicts a session
// keeps, src/cli/verdict_cache.ts): a sha256 of every file this build wrote.
const sha = createHash("sha256");
for (const f of Object.keys(result.metafile.outputs).sort()) sha.update(`${f}\n`).update(readFileSync(f));
writeFileSync("dist/cli/BUILD_ID", `${sha.digest("hex")}\n`);
