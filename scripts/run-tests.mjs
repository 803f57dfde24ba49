// Runs every compiled test file under dist/test with node's test runner.
// Node 20's runner takes no glob, so the files are found here.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function find(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}
const only = process.argv.slice(2);
const files = find("dist/test", []).filter((f) => only.length === 0 || only.some((o) => f.includes(o)));
files.sort();
const r = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
