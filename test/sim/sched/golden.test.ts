// The same seed gives the same run: every preset under the fair class and under a BPF scheduler
// (every op as BPF) gives byte for byte the JSON `structops sched --json` prints, as recorded in
// test/fixtures/sched/golden.json (sha256 of each run's JSON). A change that means to alter the
// simulation rewrites the record with STRUCTOPS_WRITE_GOLDEN=1; one that means only to be faster
// must leave it as it is. The BPF scheduler gives the same JSON in every VM tier.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Kernel } from "../../../src/kernel/kernel.js";
import { Sched } from "../../../src/kernel/sched/core.js";
import { BpfSchedHost } from "../../../src/sim/sched/bpf_sched.js";
import { Machine } from "../../../src/sim/sched/machine.js";
import { schedMetrics } from "../../../src/sim/sched/metrics.js";
import { PRESETS } from "../../../src/sim/sched/workload.js";
import { schedExtSubsystem } from "../../../src/subsys/sched_ext/index.js";
import type { Tier } from "../../../src/vm/program.js";
import { repoRoot } from "../../repo_root.js";

const ROOT = repoRoot();
const GOLDEN = join(ROOT, "test/fixtures/sched/golden.json");
const VTIME = join(ROOT, "bpf/obj/sim/scx_vtime.bpf.o");
const DURATION = 200e6;
const CPUS = 8;
const SEED = 7;
const rewrite = process.env.STRUCTOPS_WRITE_GOLDEN === "1";
const hasExt = new Sched(new Kernel({ subsystems: [schedExtSubsystem] })).ext !== null && existsSync(VTIME);

/** What `structops sched --json --duration 200ms --seed 7 --workload PRESET --scx SPEC` prints. */
function runJson(preset: string, bpf: boolean, tier?: Tier): string {
  const scx = bpf ? "bpf/obj/sim/scx_vtime.bpf.o" : "fair";
  const m = new Machine({
    cpus: CPUS,
    workload: PRESETS[preset]!(CPUS),
    seed: SEED,
    subsystems: bpf ? [schedExtSubsystem] : [],
  });
  let host: BpfSchedHost | undefined;
  if (bpf) {
    host = new BpfSchedHost(m);
    const map = host.load(VTIME);
    if (tier) host.setTier(tier);
    host.attach(scx, map);
    m.onTick = () => host!.collect();
  }
  m.run(DURATION);
  host?.collect();
  const out = {
    scheduler: scx,
    workload: preset,
    seed: SEED,
    metrics: schedMetrics(m, DURATION),
    switches: host?.switches ?? [],
    exits: host?.exits ?? [],
    events: m.q.executed,
  };
  return `${JSON.stringify(out)}\n`;
}

const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const recorded: Record<string, string> = existsSync(GOLDEN) ? JSON.parse(readFileSync(GOLDEN, "utf8")) : {};
const seen: Record<string, string> = {};

function check(key: string, json: string): void {
  const got = sha(json);
  seen[key] = got;
  if (rewrite) return;
  assert.ok(recorded[key], `${key}: no record in ${GOLDEN} (STRUCTOPS_WRITE_GOLDEN=1 writes it)`);
  assert.equal(got, recorded[key], `${key}: the run's JSON changed (${json.length} bytes)`);
}

describe("the same seed gives byte-identical sched JSON", () => {
  after(() => {
    if (rewrite) writeFileSync(GOLDEN, `${JSON.stringify({ ...recorded, ...seen }, null, 2)}\n`);
  });
  for (const preset of Object.keys(PRESETS)) {
    it(`${preset}, fair class`, () => check(`${preset}/fair`, runJson(preset, false)));
    it(`${preset}, scx_vtime.bpf.o`, { skip: !hasExt && "no ext class or scx_vtime.bpf.o" }, () =>
      check(`${preset}/scx_vtime`, runJson(preset, true)),
    );
  }
  it("scx_vtime.bpf.o on interactive: the same JSON in every tier", { skip: !hasExt && "no ext class" }, () => {
    const json = runJson("interactive", true);
    for (const tier of ["interp", "jit", "wasm"] as const) assert.equal(runJson("interactive", true, tier), json, tier);
  });
});
