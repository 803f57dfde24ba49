// `structops sched` as a user runs it: the fair class on presets and rt-app files, byte-identical
// JSON for a seed, range-checked options with one-line errors, the plot.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { so } from "./spawn.js";

const dir = mkdtempSync(join(tmpdir(), "structops-sched-"));
const state = join(dir, "state.json");
const sched = (...args: string[]) => so(["sched", ...args], state);

describe("structops sched", () => {
  it("runs the fair class on a preset: a row per task and the machine's figures", async () => {
    const r = await sched("--cpus", "4", "--workload", "interactive", "--duration", "500ms");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^scheduler: fair, workload interactive, 4 CPUs/m);
    assert.match(r.out, /^\s*100\s+hog-0\s+0\s+\d+\.\d ms/m);
    assert.match(r.out, /^\s*107\s+ui-3\s/m);
    assert.match(r.out, /4 CPUs, 0\.5 s: utilisation 100\.0%/);
    assert.match(r.out, /Jain's index over weighted shares 0\.9\d{3}/);
  });

  it("the same seed gives byte-identical --json; another seed another run", async () => {
    const args = ["--cpus", "4", "--workload", "build", "--duration", "300ms", "--json"];
    const a = await sched(...args, "--seed", "9");
    const b = await sched(...args, "--seed", "9");
    const c = await sched(...args, "--seed", "10");
    assert.equal(a.code, 0, a.err);
    assert.equal(a.out, b.out);
    assert.notEqual(a.out, c.out);
    const j = JSON.parse(a.out);
    assert.equal(j.metrics.cpus, 4);
    assert.ok(j.metrics.tasks.some((t: { exited: boolean }) => t.exited));
  });

  it("an rt-app JSON file: nice, affinity and phases", async () => {
    const f = join(dir, "w.json");
    writeFileSync(
      f,
      JSON.stringify({
        tasks: {
          big: { priority: -5, cpus: [0], run: 1e6 },
          small: { priority: 5, cpus: [0], run: 1e6 },
          burst: { phases: { a: { loop: 3, run: 1000, sleep: 1000 }, b: { run: 5000 } }, cpus: [1] },
        },
      }),
    );
    const r = await sched("--cpus", "2", "--workload", f, "--duration", "1s", "--json");
    assert.equal(r.code, 0, r.err);
    const t = JSON.parse(r.out).metrics.tasks as { name: string; runtime_ms: number; weight: number }[];
    const big = t.find((x) => x.name === "big")!;
    const small = t.find((x) => x.name === "small")!;
    assert.equal(big.weight, 3121);
    assert.equal(small.weight, 335);
    // One CPU shared by weight.
    assert.ok(Math.abs(big.runtime_ms / (big.runtime_ms + small.runtime_ms) - 3121 / 3456) < 0.01);
  });

  it("--nodes splits the CPUs into NUMA nodes; --offline/--online CPU@TIME as a workload's hotplug events", async () => {
    const r = await sched(
      ...["--cpus", "4", "--nodes", "2", "--workload", "hogs", "--duration", "200ms", "--json"],
      ...["--offline", "3@50ms", "--online", "3@120ms", "--offline", "2@150ms"],
    );
    assert.equal(r.code, 0, r.err);
    const m = JSON.parse(r.out).metrics as { utilisation: number[] };
    // CPU 3 is away 70 ms of 200, CPU 2 the last 50 ms.
    assert.deepEqual(m.utilisation, [1, 1, 0.75, 0.65]);
    const t = await sched("--cpus", "4", "--nodes", "2", "--workload", "hogs", "--duration", "10ms");
    assert.match(t.out, /^scheduler: fair, workload hogs, 4 CPUs \(smt 1, llc 2, 2 nodes\)/m);
  });

  it("every option is range-checked: one line naming the option, the value and what is allowed", async () => {
    const cases: [string[], RegExp][] = [
      [["--cpus", "0"], /--cpus "0": expected an integer from 1 to 256/],
      [["--cpus", "8", "--smt", "3"], /--smt 3: expected threads per core from 1 to 8, dividing --cpus/],
      [["--duration", "1h"], /--duration "1h": expected a duration from 1ms to 3600s/],
      [["--hz", "333"], /--hz "333": expected one of 100, 250, 300, 1000/],
      [["--seed", "-1"], /--seed "-1": expected an integer from 0 to 4294967295/],
      [["--cs-cost", "2s"], /--cs-cost "2s": expected a duration from 0 to 1ms/],
      [["--switch-at", "5s"], /--switch-at and --to go together/],
      [
        ["--switch-at", "5s", "--to", "fair", "--duration", "1s"],
        /--switch-at "5s": expected a time before --duration 1s/,
      ],
      [
        ["--workload", "nosuch"],
        /--workload "nosuch": expected a preset \(hogs, mixed-nice, interactive, build, pipe\)/,
      ],
      [["--scx", "cfs"], /--scx "cfs": expected fair or a BPF object OBJ.o\[:MAP\]/],
      [["--plot", "x.gif"], /--plot "x.gif": expected a file name ending in .svg or .png/],
      [["--cpus", "4", "--nodes", "3"], /--nodes 3: expected NUMA nodes, dividing --cpus into whole LLCs/],
      [["--cpus", "4", "--offline", "4@1ms"], /--offline "4@1ms": expected CPU@TIME, a CPU below 4/],
      [["--cpus", "4", "--duration", "1s", "--online", "1@2s"], /--online "1@2s": expected CPU@TIME/],
    ];
    for (const [args, re] of cases) {
      const r = await sched(...args);
      assert.equal(r.code, 255, `${args.join(" ")}: ${r.out}`);
      assert.match(r.err, re);
      assert.equal(r.err.trim().split("\n").length, 1, r.err);
    }
    const f = join(dir, "bad.json");
    writeFileSync(f, JSON.stringify({ tasks: { a: { run: -1 } } }));
    const r = await sched("--workload", f);
    assert.match(r.err, /a\.run: expected an integer in 0\.\.3600000000, got -1/);
  });

  it("--plot writes the per-CPU timeline and latency distributions", async () => {
    const out = join(dir, "t.svg");
    const r = await sched("--cpus", "2", "--workload", "pipe", "--duration", "20ms", "--plot", out);
    assert.equal(r.code, 0, r.err);
    assert.ok(existsSync(out));
    const svg = readFileSync(out, "utf8");
    assert.match(svg, /per-CPU timeline/);
    assert.match(svg, /wake-up latency/);
    assert.match(svg, /cpu1/);
  });
});
