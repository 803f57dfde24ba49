// Verification time of a program with references and a list under a lock: list_many of
// bpf/obj/graph.bpf.o (thirty bpf_obj_new, push under bpf_spin_lock, pop, drop, unrolled: about
// 1,000 instructions), verified as the simulated kernel's PROG_LOAD presents it. The baseline is
// the control-flow and dataflow passes alone (check_cfg + liveness) on the same instructions.
// Goal: under 50 ms.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bpfVerifierHook } from "../src/kernel/bpf_verifier.js";
import { Kernel } from "../src/kernel/kernel.js";
import type { VerifierEnv as KernelVerifierEnv } from "../src/kernel/syscall_prog.js";
import { BpfObject } from "../src/loader/object.js";
import { checkCfg } from "../src/verifier/cfg.js";
import { computeLiveness } from "../src/verifier/liveness.js";
import type { BenchResult } from "./bench.js";

function best(fn: () => void, reps: number): number {
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    min = Math.min(min, performance.now() - t);
  }
  return min;
}

/** Load graph.bpf.o's list_many into a simulated kernel, keeping its verifier input. */
function listManyEnv(): KernelVerifierEnv {
  const root = join(fileURLToPath(import.meta.url), "../..");
  const paths = [root, join(root, ".."), process.cwd()].map((d) => join(d, "bpf/obj/graph.bpf.o"));
  let lastErr: unknown;
  for (const p of paths) {
    const k = new Kernel({ verifier: true });
    let env: KernelVerifierEnv | undefined;
    k.verifier = (e) => {
      env = e;
      return bpfVerifierHook(e);
    };
    try {
      const obj = BpfObject.open(p);
      for (const prog of obj.programs) prog.setAutoload(prog.name === "list_many");
      obj.load({ kernel: k, process: k.newProcess() });
      if (env) return env;
    } catch (e) {
      lastErr = e;
    }
  }
  throw lastErr ?? new Error("graph.bpf.o: list_many not loaded");
}

export async function run(): Promise<BenchResult[]> {
  const env = listManyEnv();
  const r = bpfVerifierHook(env);
  const t = best(() => bpfVerifierHook(env), 15);
  const cfg = best(
    () =>
      computeLiveness(
        env.insns,
        checkCfg(env.insns, true, () => {}),
      ),
    15,
  );
  return [
    {
      name: `verify graph.bpf.o list_many: references and a list under a lock (${env.insns.length} insns)`,
      value: t,
      unit: "ms",
      baseline: { name: "check_cfg + liveness only", value: cfg },
      ratio: t / cfg,
      note: `processed ${r.stats.processed} insns, total_states ${r.stats.totalStates}; goal < 50 ms`,
    },
  ];
}
