/**
 * `structops conformance DIR`: run every eBPF ISA conformance vector (.data) in DIR in every
 * VM tier. Prints `PASS: file` or `FAIL: file (why)` per file, then `N passed, N failed`;
 * exits non-zero on any failure (or when DIR holds no .data file, most likely a wrong path).
 * `-j/--json` prints the outcomes as JSON instead; `--tier` restricts the run to one tier.
 */
import type { Command } from "commander";
import { runConformanceDir, TIERS } from "../vm/conformance.js";
import type { Tier } from "../vm/program.js";
import { EXIT_ERROR, fileError } from "./errors.js";

interface ConformanceOptions {
  json?: boolean;
  tier?: string;
}

export function register(program: Command): void {
  program
    .command("conformance")
    .description("run the eBPF ISA conformance vectors (.data files) of DIR in every VM tier")
    .argument("<dir>", "directory of .data files")
    .option("-j, --json", "JSON output")
    .option("--tier <tier>", `run only this tier (${TIERS.join(", ")})`)
    .action((dir: string, opts: ConformanceOptions) => {
      let tiers: readonly Tier[] = TIERS;
      if (opts.tier !== undefined) {
        if (!TIERS.includes(opts.tier as Tier)) {
          console.error(`Error: unknown tier '${opts.tier}' (expected ${TIERS.join(", ")})`);
          process.exitCode = EXIT_ERROR;
          return;
        }
        tiers = [opts.tier as Tier];
      }
      let outcomes: ReturnType<typeof runConformanceDir>;
      try {
        outcomes = runConformanceDir(dir, tiers);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const msg = code ? fileError("can't read conformance directory", dir, e).message : (e as Error).message;
        console.error(`Error: ${msg}`);
        process.exitCode = EXIT_ERROR;
        return;
      }
      const passed = outcomes.filter((o) => o.pass).length;
      const failed = outcomes.length - passed;
      if (opts.json) {
        console.log(JSON.stringify({ tiers, passed, failed, results: outcomes }, null, 2));
      } else {
        for (const o of outcomes) console.log(o.pass ? `PASS: ${o.file}` : `FAIL: ${o.file} (${o.why})`);
        console.log(`${passed} passed, ${failed} failed`);
      }
      if (failed > 0 || outcomes.length === 0) process.exitCode = 1;
    });
}
