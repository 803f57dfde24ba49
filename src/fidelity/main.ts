/**
 * `npm run fidelity`: run every scenario in fidelity/scenarios on the host kernel (when it can)
 * and on structops, and print `SAME: name`, `DIFFERS: name: ...` or `SKIP: name: why` per
 * scenario, then `N passed, N failed`. Options: --sim-only (check structops against the written
 * expectations alone), --only <substring>, -v (show every difference line), --dump (every step on
 * both targets), -j/--json (one JSON document instead of lines).
 */
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compareRuns, type Verdict } from "./compare.js";
import { HostTarget, hostAvailable, repoRoot } from "./host.js";
import { type Observation, ScenarioRun } from "./runner.js";
import { parseScenario, type Scenario } from "./scenario.js";
import { SimTarget } from "./sim.js";
import type { Target } from "./target.js";

export const SCENARIO_DIR = "fidelity/scenarios";

export function loadScenarios(dir = join(repoRoot(), SCENARIO_DIR)): Scenario[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".scn"))
    .sort()
    .map((f) => parseScenario(readFileSync(join(dir, f), "utf8"), f));
}

/** A unique CA/map name for one run: TCP_CA_NAME_MAX is 16 with the NUL. */
export function uniqueName(): string {
  return `fid_${randomBytes(5).toString("hex")}`;
}

export interface ScenarioResult {
  scenario: Scenario;
  verdict: Verdict;
  /** The scenario documents this difference as deliberate (header `deliberate:`). */
  deliberate?: string;
  kernel: Observation[] | null;
  sim: Observation[];
}

/**
 * Run one scenario on structops and, unless `host` is false, on the host kernel; each target is
 * fresh (a new helper process, a new simulated kernel) and is shut down even when a step throws.
 */
export interface RunOptions {
  /** The structops target to use (default: a fresh SimTarget); tests inject faulty ones. */
  sim?: () => Target;
}

export async function runScenario(sc: Scenario, host: boolean, opts: RunOptions = {}): Promise<ScenarioResult> {
  const uniq = uniqueName();
  let kernel: Observation[] | null = null;
  const needs = sc.headers.needs?.split(/\s+/).filter(Boolean) ?? [];
  if (host) {
    const t = new HostTarget();
    try {
      const missing = needs.find((n) => t.btf.findByName(n) < 0);
      if (missing) return skip(sc, `host kernel BTF has no ${missing}`);
      kernel = await new ScenarioRun(t, uniq).run(sc);
    } finally {
      await t.shutdown();
    }
  }
  const s = opts.sim ? opts.sim() : new SimTarget();
  let sim: Observation[];
  try {
    sim = await new ScenarioRun(s, uniq).run(sc);
  } finally {
    await s.shutdown();
  }
  const verdict = compareRuns(kernel, sim);
  const deliberate = sc.headers.deliberate;
  return { scenario: sc, verdict, deliberate, kernel, sim };
}

function skip(sc: Scenario, why: string): ScenarioResult {
  return { scenario: sc, verdict: { kind: "skip", why }, kernel: null, sim: [] };
}

export function formatResult(r: ScenarioResult, verbose = false): string {
  const v = r.verdict;
  const name = r.scenario.name;
  if (v.kind === "same") return `SAME: ${name}`;
  if (v.kind === "skip") return `SKIP: ${name}: ${v.why}`;
  const head = `DIFFERS: ${name}: ${v.diffs[0]}${v.diffs.length > 1 ? ` (+${v.diffs.length - 1} more)` : ""}`;
  const known = r.scenario.headers.known;
  const doc = r.deliberate ? ` [deliberate: ${r.deliberate}]` : known ? ` [known: ${known}]` : "";
  return verbose ? [head + doc, ...v.diffs.slice(1).map((d) => `    ${d}`)].join("\n") : head + doc;
}

/** Every step's result and details on both targets (--dump). */
export function dumpRuns(r: ScenarioResult): string {
  const lines: string[] = [];
  const show = (who: string, o: Observation | undefined): void => {
    if (!o) return;
    const d = o.detail ? ` ${[...o.detail].map(([k, v]) => `${k}=${v}`).join(" ")}` : "";
    lines.push(`    ${who.padEnd(9)} ${o.result}${d}`);
  };
  for (let i = 0; i < Math.max(r.sim.length, r.kernel?.length ?? 0); i++) {
    const step = (r.sim[i] ?? r.kernel![i])!.step;
    lines.push(`  ${step.line}: ${step.text}`);
    show("kernel", r.kernel?.[i]);
    show("structops", r.sim[i]);
  }
  return lines.join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const simOnly = argv.includes("--sim-only");
  const verbose = argv.includes("-v") || argv.includes("--verbose");
  const dump = argv.includes("--dump");
  const json = argv.includes("-j") || argv.includes("--json");
  const log = json ? () => {} : (line: string) => console.log(line);
  const rows: Record<string, unknown>[] = [];
  const oi = argv.indexOf("--only");
  const only = oi >= 0 ? argv[oi + 1] : undefined;
  let host = !simOnly;
  if (host) {
    const why = hostAvailable();
    if (why) {
      log(`host kernel not used: ${why}; checking structops against the scenarios' expectations`);
      host = false;
    }
  }
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const sc of loadScenarios()) {
    if (only && !sc.name.includes(only)) continue;
    const r = await runScenario(sc, host);
    log(formatResult(r, verbose));
    if (dump) log(dumpRuns(r));
    rows.push({
      name: sc.name,
      file: sc.file,
      result: r.verdict.kind,
      ...(r.verdict.kind === "differs" ? { diffs: r.verdict.diffs } : {}),
      ...(r.verdict.kind === "skip" ? { why: r.verdict.why } : {}),
      ...(sc.headers.known ? { known: sc.headers.known } : {}),
      ...(r.deliberate ? { deliberate: r.deliberate } : {}),
    });
    if (r.verdict.kind === "skip") skipped++;
    else if (r.verdict.kind === "same" || r.deliberate) passed++;
    else failed++;
  }
  if (json) console.log(JSON.stringify({ host, scenarios: rows, passed, failed, skipped }, null, 2));
  else log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  return failed ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(e);
      process.exit(2);
    },
  );
}
