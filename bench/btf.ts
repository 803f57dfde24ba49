/**
 * Opening the host's vmlinux BTF: read + parse/index + 1,000 name lookups (a fixed-seed random
 * sample of the type names, so the lazily built name index is included), beside
 * `bpftool btf dump file /sys/kernel/btf/vmlinux >/dev/null` timed as a child process in the same
 * run (bpftool has to parse the same file, so its wall time bounds what parsing costs it).
 * Also our full raw dump (every type decoded and formatted) against the same bpftool run, and
 * the `format c` dump against bpftool's.
 * Each figure is the median of several runs. ratio = ours / bpftool (below 1: we are faster).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Btf } from "../src/btf/btf.js";
import { btfDumpC } from "../src/btf/dump_c.js";
import { btfDumpRaw } from "../src/btf/dump_raw.js";
import { btfFree, btfParseRaw } from "../src/cli/btf_file.js";
import { type BenchResult, median } from "./bench.js";

const VMLINUX = "/sys/kernel/btf/vmlinux";
const RUNS = 9;
const LOOKUPS = 1000;

/** mulberry32: a small seeded PRNG so the sample is the same every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sampleNames(): string[] {
  const btf = Btf.parse(new Uint8Array(readFileSync(VMLINUX)));
  const rand = rng(0x5eed);
  const names: string[] = [];
  while (names.length < LOOKUPS) {
    const id = 1 + Math.floor(rand() * btf.nrTypes);
    const name = btf.nameOf(id);
    if (name) names.push(name);
  }
  return names;
}

function bpftoolMs(...extra: string[]): number | undefined {
  const devnull = openSync("/dev/null", "w");
  const t0 = performance.now();
  const r = spawnSync("bpftool", ["btf", "dump", "file", VMLINUX, ...extra], { stdio: ["ignore", devnull, "ignore"] });
  const ms = performance.now() - t0;
  return r.status === 0 ? ms : undefined;
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/**
 * Ours, as the C baseline does it (btf__parse, btf__type_cnt, btf__free): read the file, parse and
 * index it, count the types, free it; CPU ms.
 */
function parseOnce(): { ms: number; types: number } {
  const t0 = cpuMs();
  const btf = btfParseRaw(VMLINUX);
  const types = btf.nrTypes;
  btf.typeById(types);
  btfFree(btf);
  return { ms: cpuMs() - t0, types };
}

/**
 * Parsing vmlinux beside libbpf's btf__parse() (bench/c/btf_parse.c, built with gcc -O2 against
 * libbpf-dev in this run): read the file, parse and index every type, the type count, both in
 * CPU time. Two rows: the median of RUNS parses in one process, and the first parse of a fresh
 * process (median of FRESH processes; what a tool that parses once pays, page faults of the
 * new 5 MB buffer and, for us, code not yet optimised included). libbpf 1.1's btf__parse, like
 * ours, checks the header and string section and walks the type section once, decoding nothing.
 */
const FRESH = 5;
const ROUNDS = 5;

function parseVsLibbpf(): BenchResult[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const src = [join(here, "c", "btf_parse.c"), join(here, "..", "..", "bench", "c", "btf_parse.c")].find(existsSync);
  if (!src) return [];
  const dir = mkdtempSync(join(tmpdir(), "structops-btf-"));
  try {
    const exe = join(dir, "btf_parse");
    if (spawnSync("gcc", ["-O2", "-o", exe, src, "-lbpf"], { stdio: "ignore" }).status !== 0) return [];
    const c = (runs: number): number[] | undefined => {
      const r = spawnSync(exe, [VMLINUX, String(runs)], { encoding: "utf8" });
      return r.status === 0 ? r.stdout.trim().split(" ").map(Number) : undefined;
    };
    // Rounds taking turns, so a change in the machine's load falls on both sides alike.
    const libbpfSteady: number[] = [];
    const libbpfMemAll: number[] = [];
    const ours: number[] = [];
    let count = 0;
    let n = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const steady = c(RUNS);
      if (!steady) return [];
      libbpfSteady.push(steady[0]);
      count = steady[2];
      libbpfMemAll.push(steady[3]);
      const mine: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const one = parseOnce();
        n = one.types;
        mine.push(one.ms);
      }
      ours.push(median(mine));
    }
    const libbpfMs = median(libbpfSteady);
    const libbpfMem = median(libbpfMemAll);
    const libbpfFirst: number[] = [];
    const oursFirst: number[] = [];
    for (let i = 0; i < FRESH; i++) {
      const one = c(1);
      if (one) libbpfFirst.push(one[1]);
      const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "--parse-once"], {
        encoding: "utf8",
      });
      if (r.status === 0) oursFirst.push(Number(r.stdout.trim()));
    }
    const ms = median(ours);
    const data = readFileSync(VMLINUX);
    const mem: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = cpuMs();
      Btf.parse(data).typeById(n);
      mem.push(cpuMs() - t0);
    }
    const memMs = median(mem);
    const rows: BenchResult[] = [
      {
        name: "parse vmlinux from memory (parse + index every type, no read)",
        value: memMs,
        unit: "ms",
        baseline: { name: "libbpf btf__new, CPU ms", value: libbpfMem },
        ratio: memMs / libbpfMem,
        note: `CPU time, median of ${RUNS}; btf__new also copies the 5 MB it is given, Btf.parse keeps it`,
      },
      {
        name: "parse vmlinux (read + parse + index every type + free)",
        value: ms,
        unit: "ms",
        baseline: { name: "libbpf btf__parse, CPU ms", value: libbpfMs },
        ratio: ms / libbpfMs,
        note: `CPU time, median of ${ROUNDS} rounds (each the median of ${RUNS} in one process, taking turns with libbpf's); ${n + 1} vs ${count} types (with void); goal <= libbpf: ${ms <= libbpfMs ? "met" : "missed"}`,
      },
    ];
    if (oursFirst.length && libbpfFirst.length) {
      const first = median(oursFirst);
      const base = median(libbpfFirst);
      rows.push({
        name: "parse vmlinux, first parse of a fresh process",
        value: first,
        unit: "ms",
        baseline: { name: "libbpf btf__parse, first call, CPU ms", value: base },
        ratio: first / base,
        note: `CPU time, median of ${FRESH} processes each; process start-up not counted on either side`,
      });
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchResult[]> {
  if (!existsSync(VMLINUX)) return [];
  const parse = parseVsLibbpf();
  const names = sampleNames();
  const open: number[] = [];
  const dump: number[] = [];
  const tool: number[] = [];
  const dumpC: number[] = [];
  const toolC: number[] = [];
  let found = 0;
  for (let i = 0; i < RUNS; i++) {
    let t0 = performance.now();
    const btf = Btf.parse(new Uint8Array(readFileSync(VMLINUX)));
    found = 0;
    for (const n of names) if (btf.findByName(n) > 0) found++;
    open.push(performance.now() - t0);
    t0 = performance.now();
    btfDumpRaw(btf);
    dump.push(performance.now() - t0);
    const b = bpftoolMs();
    if (b !== undefined) tool.push(b);
    t0 = performance.now();
    btfDumpC(btf);
    dumpC.push(performance.now() - t0);
    const c = bpftoolMs("format", "c");
    if (c !== undefined) toolC.push(c);
  }
  if (found !== LOOKUPS) throw new Error(`only ${found} of ${LOOKUPS} sampled names found`);
  const ours = median(open);
  const ourDump = median(dump);
  const base = tool.length ? { name: "bpftool btf dump file vmlinux >/dev/null", value: median(tool) } : undefined;
  const baseC = toolC.length
    ? { name: "bpftool btf dump file vmlinux format c >/dev/null", value: median(toolC) }
    : undefined;
  const ourC = median(dumpC);
  return [
    ...parse,
    {
      name: `open+index vmlinux + ${LOOKUPS} name lookups`,
      value: ours,
      unit: "ms",
      baseline: base,
      ratio: base ? ours / base.value : undefined,
      note: `median of ${RUNS}; ratio = ours / bpftool wall time`,
    },
    {
      name: "full raw dump of vmlinux (decode + format every type)",
      value: ourDump,
      unit: "ms",
      baseline: base,
      ratio: base ? ourDump / base.value : undefined,
      note: "string built in memory; bpftool also formats every type",
    },
    {
      name: "format c dump of vmlinux (vmlinux.h)",
      value: ourC,
      unit: "ms",
      baseline: baseC,
      ratio: baseC ? ourC / baseC.value : undefined,
      note: "string built in memory",
    },
  ];
}

const isMain = process.argv[1] && import.meta.url === new URL(process.argv[1], "file:").href;
if (isMain && process.argv.includes("--parse-once")) process.stdout.write(`${parseOnce().ms}\n`);
else if (isMain) {
  const rows = await run();
  if (!rows.length) console.log(`${VMLINUX} not present: nothing to measure`);
  for (const r of rows)
    console.log(
      `${r.name}: ${r.value.toFixed(1)} ${r.unit}` +
        (r.baseline ? ` | ${r.baseline.name}: ${r.baseline.value.toFixed(1)} ms | ratio ${r.ratio?.toFixed(2)}x` : ""),
    );
}
