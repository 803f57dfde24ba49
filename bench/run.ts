// One command for every benchmark: `npm run bench [-- name...] [--write]`.
// Each bench/<name>.ts exports run(): Promise<BenchResult[]> and measures its own baseline in the
// same run; this prints them side by side and, with --write, records them in bench/RESULTS.md.
import { readFileSync, writeFileSync } from "node:fs";
import { arch, cpus, platform } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchResult } from "./bench.js";
import { mergeResults } from "./results.js";

const BENCHES = ["btf", "vm", "loader", "verifier", "sim", "qdisc", "sweep", "cli", "playground", "sched"];

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  if (a >= 100) return n.toFixed(0);
  return n.toFixed(a >= 10 ? 1 : 3);
}

function machineLine(): string {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  return `Latest run: ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${platform()}/${arch()}, ${cpus().length} x ${cpu}.`;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const write = args.includes("--write");
  const only = args.filter((a) => !a.startsWith("--"));
  const rows: string[] = [];
  for (const name of BENCHES) {
    if (only.length > 0 && !only.includes(name)) continue;
    let mod: { run?: () => Promise<BenchResult[]> };
    try {
      mod = await import(`./${name}.js`);
    } catch (e) {
      if ((e as { code?: string }).code === "ERR_MODULE_NOT_FOUND") continue;
      throw e;
    }
    if (!mod.run) continue;
    process.stderr.write(`bench ${name}...\n`);
    const results = await mod.run();
    for (const r of results) {
      const base = r.baseline ? `${r.baseline.name}: ${fmt(r.baseline.value)}` : "";
      const ratio = r.ratio !== undefined ? `${r.ratio.toFixed(2)}x` : "";
      const line = `| ${name} | ${r.name} | ${fmt(r.value)} ${r.unit} | ${base} | ${ratio} | ${r.note ?? ""} |`;
      rows.push(line);
      console.log(line);
    }
  }
  if (write) {
    const here = dirname(fileURLToPath(import.meta.url));
    // dist/bench/run.js -> bench/RESULTS.md in the source tree
    const out = join(here, "..", "..", "bench", "RESULTS.md");
    let old = "";
    try {
      old = readFileSync(out, "utf8");
    } catch {
      // no file yet
    }
    const ran = BENCHES.filter((b) => only.length === 0 || only.includes(b));
    writeFileSync(out, mergeResults(old, ran, rows, only.length === 0 ? machineLine() : null));
    process.stderr.write(`wrote ${out}\n`);
  }
}

await main();
