import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { gridFrom, runSweep, type SweepCliOptions, type SweepWorkerStats } from "../../src/cli/sweep.js";
import { runPoint } from "../../src/cli/sweep_run.js";
import {
  costliestFirst,
  expandGrid,
  mergeRows,
  parseSeeds,
  parseShard,
  reportSpec,
  resolveBuffer,
  shardFromEnv,
  shardPoints,
  summarise,
  toCsv,
} from "../../src/sim/sweep.js";
import { repoRoot } from "./helpers.js";

const base: SweepCliOptions = {
  cc: "cubic,bbr",
  rate: "12mbit,24mbit",
  delay: "10ms",
  buffer: "0.5bdp,30pkts",
  flows: "1,2",
  seeds: "1..2",
  duration: "1s",
  hz: "1000",
};

test("the grid: every combination once, cc outermost and seed innermost, indices 0..n-1", () => {
  const { points, all } = gridFrom(base);
  assert.equal(all, 2 * 2 * 1 * 2 * 2 * 2);
  assert.deepEqual(
    points.map((p) => p.index),
    [...Array(all).keys()],
  );
  assert.deepEqual(points[0], {
    index: 0,
    cc: "cubic",
    rate: "12mbit",
    delay: "10ms",
    buffer: "0.5bdp",
    flows: 1,
    seed: 1,
  });
  assert.deepEqual(points[1]!.seed, 2);
  assert.equal(points[all - 1]!.cc, "bbr");
  assert.deepEqual(parseSeeds("1..3,7"), [1, 2, 3, 7]);
  assert.throws(() => parseSeeds("3..1"), /end below start/);
  assert.throws(() => gridFrom({ ...base, rate: "12 furlongs" }), { code: "EINVAL" });
  assert.throws(() => gridFrom({ ...base, flows: "0" }), { code: "EINVAL" });
  assert.throws(() => gridFrom({ ...base, seeds: "x" }), { code: "EINVAL" });
});

test("every axis value is range-checked as `structops sim` checks it, before any run", () => {
  const cases: [Partial<SweepCliOptions>, RegExp][] = [
    [{ rate: "0" }, /^--rate "0": expected a rate from 1kbit/],
    [{ rate: "12mbit,200gbit" }, /^--rate "200gbit"/],
    [{ delay: "20s" }, /^--delay "20s": expected a one-way delay/],
    [{ duration: "0" }, /^--duration "0": expected a duration from 1ms/],
    [{ hz: "0" }, /^--hz "0": expected one of 100, 250, 300, 1000/],
    [{ hz: "abc" }, /^--hz "abc"/],
    [{ loss: "2" }, /^--loss "2": expected a probability in \[0, 1\)/],
    [{ loss: "-0.1" }, /^--loss "-0.1"/],
    [{ ecnThreshold: "0" }, /^--ecn-threshold "0"/],
    [{ flows: "1,1001" }, /^--flows "1001": expected an integer from 1 to 1000/],
    [{ seeds: "4294967296" }, /^--seed "4294967296"/],
    [{ buffer: "2000mb" }, /^--buffer "2000mb"/],
  ];
  for (const [o, msg] of cases)
    assert.throws(() => gridFrom({ ...base, ...o }), { code: "EINVAL", message: msg }, String(Object.values(o)));
  // Values at the edges of each range are taken.
  assert.equal(gridFrom({ ...base, rate: "1kbit", hz: "100", loss: "0", flows: "1000", seeds: "0" }).all, 2 * 2);
});

test("buffers in BDP units: rate x round trip (twice the one-way delay)", () => {
  // 12 Mbit/s x 20 ms = 30 000 bytes
  assert.equal(resolveBuffer("1bdp", "12mbit", "10ms"), "30000b");
  assert.equal(resolveBuffer("0.5BDP", "12mbit", "10ms"), "15000b");
  assert.equal(resolveBuffer("45kb", "12mbit", "10ms"), "45kb");
});

test("runs start costliest first (rate x flows, BPF x3), ties in grid order", () => {
  const { points } = gridFrom({
    ...base,
    cc: "cubic,bpf-cubic",
    rate: "10mbit,40mbit",
    flows: "1,2",
    seeds: "1..2",
  } as SweepCliOptions);
  const order = costliestFirst(points, (p) => p.cc.startsWith("bpf-"));
  const cost = (p: (typeof points)[number]) =>
    Number.parseInt(p.rate, 10) * p.flows * (p.cc.startsWith("bpf-") ? 3 : 1);
  assert.equal(order.length, points.length);
  assert.deepEqual(new Set(order.map((p) => p.index)), new Set(points.map((p) => p.index)));
  for (let i = 1; i < order.length; i++) {
    const [a, b] = [order[i - 1]!, order[i]!];
    assert.ok(cost(a) > cost(b) || (cost(a) === cost(b) && a.index < b.index), `${a.index} before ${b.index}`);
  }
  assert.equal(order[0]!.cc, "bpf-cubic");
  assert.equal(order.at(-1)!.rate, "10mbit");
});

test("shards partition the grid (round robin), from --shard or a batch engine's environment", () => {
  const points = expandGrid({ cc: ["a", "b"], rate: ["1"], delay: ["1"], buffer: ["1"], flows: [1], seeds: [1, 2, 3] });
  const parts = [0, 1, 2, 3].map((i) => shardPoints(points, { index: i, count: 4 }).map((p) => p.index));
  assert.deepEqual(parts, [[0, 4], [1, 5], [2], [3]]);
  assert.deepEqual(shardFromEnv({ JOB_COMPLETION_INDEX: "2", JOB_COMPLETIONS: "4" }), { index: 2, count: 4 });
  assert.deepEqual(shardFromEnv({ SLURM_ARRAY_TASK_ID: "5", SLURM_ARRAY_TASK_MIN: "1", SLURM_ARRAY_TASK_COUNT: "8" }), {
    index: 4,
    count: 8,
  });
  assert.equal(shardFromEnv({}), undefined);
  assert.throws(() => shardFromEnv({ JOB_COMPLETION_INDEX: "0" }), /JOB_COMPLETIONS/);
  assert.throws(() => parseShard("4/4"), /0 <= i < N/);
  assert.equal(gridFrom({ ...base, shard: "1/3" }, {}).points.length, Math.ceil((32 - 1) / 3));
  assert.deepEqual(gridFrom(base, { SLURM_ARRAY_TASK_ID: "0", SLURM_ARRAY_TASK_COUNT: "2" }).shard, {
    index: 0,
    count: 2,
  });
});

test("worker threads give the rows a direct run gives, in index order, deterministically", async () => {
  const { points } = gridFrom({ ...base, cc: "bbr,reno", rate: "12mbit", buffer: "1bdp", flows: "2", seeds: "1,2" });
  const opts = { duration: "1s", hz: "1000", loss: "0.01" };
  const workers: SweepWorkerStats[] = [];
  const viaWorkers = await runSweep(points, opts, 2, undefined, workers);
  assert.deepEqual(
    viaWorkers.map((r) => r.index),
    points.map((p) => p.index),
  );
  // Each worker says how many runs it took and, on Linux, its own thread's CPU time.
  assert.equal(workers.length, 2);
  assert.equal(
    workers.reduce((a, w) => a + w.runs, 0),
    points.length,
  );
  if (process.platform === "linux") assert.ok(workers.every((w) => w.cpuNs !== undefined && w.cpuNs > 0));
  const direct = points.map((p) => runPoint(p, opts));
  assert.deepEqual(JSON.parse(JSON.stringify(viaWorkers)), JSON.parse(JSON.stringify(direct)));
  // Random loss makes the seed matter.
  assert.notDeepEqual(viaWorkers[0]!.metrics, viaWorkers[1]!.metrics);
  const csv = toCsv(viaWorkers).trim().split("\n");
  assert.equal(csv.length, points.length + 1);
  assert.match(csv[1]!, /^0,bbr,12mbit,10ms,1bdp,30000b,2,1,1s,/);
  const spec = JSON.stringify(reportSpec(viaWorkers));
  assert.match(spec, /throughput vs p95 queueing delay/);
  assert.match(spec, /Jain's index/);
});

test("--qdisc is a grid dimension after cc: each run is `sim --qdisc` of its point, one series per cc and qdisc", () => {
  const o: SweepCliOptions = {
    ...base,
    cc: "cubic,bbr",
    qdisc: "pfifo,bpf-fq",
    rate: "12mbit",
    buffer: "1bdp",
    flows: "2",
    seeds: "1",
  };
  const { points, all } = gridFrom(o);
  assert.equal(all, 4);
  assert.deepEqual(
    points.map((p) => [p.cc, p.qdisc]),
    [
      ["cubic", "pfifo"],
      ["cubic", "bpf-fq"],
      ["bbr", "pfifo"],
      ["bbr", "bpf-fq"],
    ],
  );
  // Without --qdisc the points (and so the rows) are as they were.
  assert.equal("qdisc" in gridFrom(base).points[0]!, false);
  assert.throws(() => gridFrom({ ...o, qdisc: "red" }), { code: "EINVAL", message: /^--qdisc "red": unknown qdisc/ });
  const opts = { duration: "2s", hz: "1000" };
  const rows = points.map((p) => runPoint(p, opts));
  // bpf-fq shares the link between the two flows; the rows say which qdisc they ran over.
  const bpfFq = rows.find((r) => r.cc === "bbr" && r.qdisc === "bpf-fq")!;
  assert.ok(bpfFq.metrics.flows.every((f) => f.drops !== undefined));
  assert.deepEqual(
    summarise(rows).map((x) => x.cc),
    ["cubic over pfifo", "cubic over bpf-fq", "bbr over pfifo", "bbr over bpf-fq"],
  );
  const csv = toCsv(rows).trim().split("\n");
  assert.match(csv[0]!, /,qdisc,rcv_cc$/);
  assert.match(csv[2]!, /,bpf-fq,$/);
  // Merging keeps runs over different qdiscs apart.
  assert.equal(mergeRows([rows.map((r) => JSON.stringify(r)).join("\n")]).length, 4);
  // pfifo at the grid's buffer is the droptail run of the same point.
  const droptail = runPoint({ ...points[0]!, qdisc: undefined }, opts);
  assert.deepEqual(rows[0]!.metrics, droptail.metrics);
});

test("--rcv-cc is a grid dimension after cc: each run is `sim --rcv-cc` of its point, one series per pair", async () => {
  const o: SweepCliOptions = {
    ...base,
    cc: "dctcp",
    rcvCc: "dctcp,reno",
    rate: "12mbit",
    buffer: "1bdp",
    flows: "1",
    seeds: "1",
    ecnThreshold: "10pkts",
  };
  const { points, all } = gridFrom(o);
  assert.equal(all, 2);
  assert.deepEqual(
    points.map((p) => [p.index, p.cc, p.rcvCc]),
    [
      [0, "dctcp", "dctcp"],
      [1, "dctcp", "reno"],
    ],
  );
  assert.equal("rcvCc" in gridFrom(base).points[0]!, false);
  assert.throws(() => gridFrom({ ...o, rcvCc: "," }), { code: "EINVAL", message: /^--rcv-cc: no values/ });
  const opts = { duration: "2s", hz: "1000", ecnThreshold: "10pkts" };
  const rows = await runSweep(points, opts, 1);
  // A DCTCP receiver is what the sender's own CA gives; a Reno receiver echoes CE the classic way
  // (ECE held until CWR), so DCTCP's alpha and the queue it keeps are another run's.
  const own = runPoint({ ...points[0]!, rcvCc: undefined }, opts);
  assert.deepEqual(rows[0]!.metrics, own.metrics);
  assert.notDeepEqual(rows[1]!.metrics, rows[0]!.metrics);
  assert.deepEqual(
    rows.map((r) => r.rcvCc),
    ["dctcp", "reno"],
  );
  assert.deepEqual(
    summarise(rows).map((x) => x.cc),
    ["dctcp to dctcp", "dctcp to reno"],
  );
  const csv = toCsv(rows).trim().split("\n");
  assert.match(csv[2]!, /,reno$/);
  assert.equal(mergeRows([rows.map((r) => JSON.stringify(r)).join("\n")]).length, 2);
  // An unknown receivers' CA fails its run with sim's message.
  await assert.rejects(
    runSweep([{ ...points[0]!, rcvCc: "vegas" }], opts, 1),
    /--rcv-cc "vegas": unknown congestion control/,
  );
});

const main = join(repoRoot(), "dist", "src", "cli", "main.js");

test("structops sweep in two shards, then `sweep report` merges them into the unsharded result", {
  skip: existsSync(main) ? false : "dist not built",
}, () => {
  const dir = mkdtempSync(join(tmpdir(), "sweep-"));
  try {
    const args = ["sweep", "--cc", "reno,bbr", "--rate", "12mbit", "--delay", "5ms", "--buffer", "1bdp,4bdp"];
    const more = ["--seeds", "1", "--duration", "1s", "-J", "2", "--no-progress"];
    const env: NodeJS.ProcessEnv = { ...process.env, JOB_COMPLETION_INDEX: undefined, SLURM_ARRAY_TASK_ID: undefined };
    const sh = (extra: string[], e = env) =>
      execFileSync("node", [main, ...args, ...more, ...extra], { env: e, encoding: "utf8" });
    const whole = sh([]);
    sh(["--shard", "0/2", "-o", join(dir, "a.jsonl")]);
    sh(["-o", join(dir, "b.jsonl")], { ...env, JOB_COMPLETION_INDEX: "1", JOB_COMPLETIONS: "2" });
    const a = readFileSync(join(dir, "a.jsonl"), "utf8");
    const b = readFileSync(join(dir, "b.jsonl"), "utf8");
    assert.equal(a.trim().split("\n").length, 2);
    assert.deepEqual(mergeRows([a, b]), mergeRows([whole]));
    const rep = execFileSync(
      "node",
      [
        main,
        "sweep",
        "report",
        join(dir, "a.jsonl"),
        join(dir, "b.jsonl"),
        "--plot",
        join(dir, "r.svg"),
        "--csv",
        join(dir, "r.csv"),
      ],
      { encoding: "utf8" },
    );
    assert.match(rep, /^reno\s+2\s/m);
    assert.match(rep, /^bbr\s+2\s/m);
    assert.match(readFileSync(join(dir, "r.svg"), "utf8"), /^<svg/);
    assert.equal(readFileSync(join(dir, "r.csv"), "utf8").trim().split("\n").length, 5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
