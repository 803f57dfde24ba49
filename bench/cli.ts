/**
 * The `structops` command's start-up, whole process, as a user runs it (the built dist/cli/main.js):
 * `prog show` on an empty session against `node -e 0` measured alternately in the same run
 * (goal: at most 2x), then on sessions with 1, 2 and 3 registered objects, each replayed into a
 * freshly booted kernel (goal: at most 0.1 s more per object than the empty session).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BenchResult, median } from "./bench.js";

const MAIN = "dist/cli/main.js";
const RUNS = 9;
const OBJECTS = ["bpf/obj/tcp_reno.bpf.o", "bpf/obj/tcp_dctcp.bpf.o", "bpf/obj/tcp_cubic.bpf.o"];

function wallMs(args: string[], env: NodeJS.ProcessEnv = {}): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} failed: ${r.stderr}`);
  return ms;
}

export async function run(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "structops-bench-cli-"));
  try {
    const state = (n: number) => join(dir, `s${n}.json`);
    for (let n = 1; n <= OBJECTS.length; n++) {
      for (const o of OBJECTS.slice(0, n)) wallMs([MAIN, "struct_ops", "register", o], { STRUCTOPS_STATE: state(n) });
    }
    const node: number[] = [];
    const ours: number[][] = OBJECTS.map(() => []).concat([[]]);
    wallMs(["-e", "0"]);
    for (let i = 0; i < RUNS; i++) {
      node.push(wallMs(["-e", "0"]));
      for (let n = 0; n <= OBJECTS.length; n++) {
        ours[n]!.push(wallMs([MAIN, "prog", "show"], { STRUCTOPS_STATE: state(n) }));
      }
    }
    const base = median(node);
    const empty = median(ours[0]!);
    const out: BenchResult[] = [
      {
        name: "structops prog show, empty session (whole process)",
        value: empty,
        unit: "ms",
        baseline: { name: "node -e 0", value: base },
        ratio: empty / base,
        note: `goal <= 2x: ${empty / base <= 2 ? "met" : "not met"}; median of ${RUNS}, alternating`,
      },
    ];
    for (let n = 1; n <= OBJECTS.length; n++) {
      const v = median(ours[n]!);
      const per = (v - empty) / n;
      out.push({
        name: `structops prog show, ${n} registered object${n > 1 ? "s" : ""} replayed`,
        value: v,
        unit: "ms",
        baseline: { name: "empty session", value: empty },
        ratio: v / empty,
        note: `${per.toFixed(0)} ms per object (goal <= 100: ${per <= 100 ? "met" : "not met"}); ${OBJECTS.slice(0, n)
          .map((o) => o.replace("bpf/obj/", ""))
          .join(", ")}`,
      });
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
