// Verification time of CUBIC: the largest program of bpf/obj/tcp_cubic.bpf.o (so_cubic_cong_avoid,
// with bictcp_update, cubic_root and hystart inlined), verified as the simulated kernel's PROG_LOAD
// presents it; and a synthetic CUBIC-sized program from the assembler (many diamonds on map values,
// spills, a bounded-loop subprogram, helper calls). The baseline is the control-flow and dataflow
// passes alone (check_cfg + liveness) on the same instructions, so the ratio is the cost of the path
// walk itself. Goal: under 50 ms. And the walk to the complexity limit (1M instructions) of loops
// that never converge, as the fuzzer found them, against verifying CUBIC in the same run: the time
// one bad program can cost the kernel's PROG_LOAD. Goal: under 1.5 s.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { assemble } from "../src/isa/asm.js";
import { bpfVerifierHook } from "../src/kernel/bpf_verifier.js";
import { Kernel } from "../src/kernel/kernel.js";
import type { VerifierEnv as KernelVerifierEnv } from "../src/kernel/syscall_prog.js";
import { BpfObject } from "../src/loader/object.js";
import { bpfObjectLoad } from "../src/loader/object_load.js";
import { bpfDummyStructOpsSubsystem } from "../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { bpfTcpCaSubsystem } from "../src/subsys/tcp/bpf_tcp_ca.js";
import { TcpKernel, tcpSubsystem } from "../src/subsys/tcp/tcp_init.js";
import { bpf_map_type } from "../src/uapi/bpf.js";
import { checkCfg } from "../src/verifier/cfg.js";
import { computeLiveness } from "../src/verifier/liveness.js";
import { resolveLdImm64, vectorEnv } from "../src/verifier/vector.js";
import { bpfCheck } from "../src/verifier/verifier.js";
import type { BenchResult } from "./bench.js";
import { run as runGraph } from "./verifier_graph.js";

/** A large program in the shape clang gives bpf_cubic: branches on state fields, a root loop. */
export function cubicLikeAsm(blocks = 60): string {
  const L: string[] = [];
  L.push("mov %r9, %r1", "stw [%r10-4], 0", "mov %r2, %r10", "add %r2, -4", "lddw %r1, map_fd(0)", "call 1");
  L.push("jeq %r0, 0, out", "mov %r7, %r0", "call 5", "stxdw [%r10-16], %r0");
  for (let b = 0; b < blocks; b++) {
    const off = (b % 16) * 8;
    L.push(`ldxdw %r6, [%r7+${off}]`);
    L.push(`jgt %r6, ${1000 + b}, big${b}`);
    L.push("mul %r6, 3", "add %r6, 7", `ja join${b}`);
    L.push(`big${b}:`, "rsh %r6, 2", "ldxdw %r1, [%r10-16]", "sub %r6, %r1");
    L.push(`join${b}:`);
    if (b % 10 === 9) {
      L.push("mov %r1, %r6", "call local root", "add %r6, %r0");
    }
    if (b % 7 === 3) L.push("stxdw [%r10-24], %r6", "ldxdw %r6, [%r10-24]");
    L.push(`jset %r6, 1, odd${b}`, "xor %r6, 5", `odd${b}:`);
    L.push(`stxdw [%r7+${off}], %r6`);
  }
  L.push("out:", "mov %r0, 0", "exit");
  // cubic_root-like: a bounded loop of 32 shift-and-add steps.
  L.push("root:", "mov %r0, 0", "mov %r2, 0", "rootloop:", "add %r0, %r1", "rsh %r1, 1", "add %r2, 1");
  L.push("jlt %r2, 32, rootloop", "exit");
  return L.join("\n");
}

/**
 * Loops the verifier walks to BPF_COMPLEXITY_LIMIT_INSNS: a counter that changes every iteration
 * in a register, or in a stack slot, with the other registers constant and live, so every
 * checkpoint of the loop stays in progress and each visit compares against them.
 */
export const LIMIT_LOOPS: Record<string, string> = {
  register: [
    "mov %r0, 2",
    "mov %r2, 2",
    "mov %r3, 11",
    "mov %r4, 39",
    "mov %r5, 2",
    "mov %r7, 0",
    "mov %r8, -3",
    "loop:",
    "mov %r9, 0x7fffffff",
    "jge %r7, 32, out",
    "add32 %r8, 1",
    "jne %r0, %r4, loop",
    "out:",
    "add %r0, %r8",
    "add %r0, %r9",
    "add %r0, %r2",
    "add %r0, %r3",
    "add %r0, %r5",
    "exit",
  ].join("\n"),
  stack: [
    "mov %r0, 2",
    "mov %r2, 2",
    "mov %r3, 11",
    "mov %r4, 39",
    "stdw [%r10-8], 0",
    "stdw [%r10-16], 0",
    "loop:",
    "ldxdw %r1, [%r10-8]",
    "add %r1, 1",
    "stxdw [%r10-8], %r1",
    "mov %r1, 0",
    "jge %r3, 32, out",
    "jne %r0, %r4, loop",
    "out:",
    "ldxdw %r0, [%r10-8]",
    "add %r0, %r2",
    "exit",
  ].join("\n"),
};

function best(fn: () => void, reps: number): number {
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    min = Math.min(min, performance.now() - t);
  }
  return min;
}

/** Load tcp_cubic.bpf.o into a simulated kernel, keeping the verifier input of its largest program. */
function cubicObjectEnv(): KernelVerifierEnv {
  const root = join(fileURLToPath(import.meta.url), "../..");
  const objPath = [root, join(root, ".."), process.cwd()].map((d) => join(d, "bpf/obj/tcp_cubic.bpf.o"));
  const tcp = new TcpKernel();
  const k = new Kernel({
    verifier: true,
    subsystems: [tcpSubsystem(tcp), bpfTcpCaSubsystem(() => tcp.cong), bpfDummyStructOpsSubsystem],
  });
  let biggest: KernelVerifierEnv | undefined;
  k.verifier = (env) => {
    if (!biggest || env.insns.length > biggest.insns.length) biggest = env;
    return bpfVerifierHook(env);
  };
  let lastErr: unknown;
  for (const p of objPath) {
    try {
      bpfObjectLoad(BpfObject.open(p), { kernel: k, process: k.newProcess() });
      lastErr = undefined;
      break;
    } catch (e) {
      lastErr = e;
    }
  }
  if (lastErr || !biggest) throw lastErr ?? new Error("tcp_cubic.bpf.o: no program loaded");
  return biggest;
}

export async function run(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  let cubicMs: number | undefined;
  try {
    const env = cubicObjectEnv();
    const k = env.kernel;
    const cfg = () =>
      computeLiveness(
        env.insns,
        checkCfg(env.insns, true, () => {}),
      );
    const r = bpfVerifierHook(env);
    const t = best(() => bpfVerifierHook(env), 30);
    cubicMs = t;
    out.push({
      name: `verify tcp_cubic.bpf.o so_cubic_cong_avoid (${env.insns.length} insns)`,
      value: t,
      unit: "ms",
      baseline: { name: "check_cfg + liveness only", value: best(cfg, 30) },
      ratio: t / best(cfg, 30),
      note: `processed ${r.stats.processed} insns, total_states ${r.stats.totalStates}; goal < 50 ms`,
    });
    void k;
  } catch (e) {
    out.push({
      name: "verify tcp_cubic.bpf.o",
      value: Number.NaN,
      unit: "ms",
      note: `not loadable: ${(e as Error).message}`,
    });
  }
  const insns = assemble(cubicLikeAsm());
  const env = vectorEnv({
    name: "cubic-like",
    insns,
    memSize: 64,
    maps: [{ type: bpf_map_type.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 128, maxEntries: 1, flags: 0 }],
    privileged: true,
    helpers: true,
    gpl: true,
  });
  env.ldImm64Aux = resolveLdImm64(insns);
  const first = bpfCheck(env);
  if (!first.ok) throw new Error(`bench program rejected: ${first.error?.message}\n${first.log}`);
  const verify = best(() => bpfCheck(env), 15);
  const cfgOnly = best(() => {
    const cfg = checkCfg(insns, true, () => {});
    computeLiveness(insns, cfg);
  }, 15);
  const s = first.stats;
  for (const [name, src] of Object.entries(LIMIT_LOOPS)) {
    const loop = vectorEnv({
      name,
      insns: assemble(src),
      memSize: 64,
      maps: [],
      privileged: true,
      helpers: true,
      gpl: true,
    });
    const r = bpfCheck(loop);
    if (r.ok || !r.error?.message.startsWith("BPF program is too large"))
      throw new Error(`${name} loop: expected the complexity limit, got ${r.error?.message ?? "accepted"}`);
    const t = best(() => bpfCheck(loop), 3);
    out.push({
      name: `walk to the complexity limit, ${name} counter loop (${r.stats.processed - 1} insns)`,
      value: t,
      unit: "ms",
      ...(cubicMs !== undefined
        ? { baseline: { name: "verify tcp_cubic.bpf.o so_cubic_cong_avoid", value: cubicMs }, ratio: t / cubicMs }
        : {}),
      note: `"${r.error.message}", total_states ${r.stats.totalStates}; goal < 1500 ms`,
    });
  }
  return [
    ...out,
    ...(await runGraph()),
    {
      name: `verify cubic-like program (${insns.length} insns)`,
      value: verify,
      unit: "ms",
      baseline: { name: "check_cfg + liveness only", value: cfgOnly },
      ratio: verify / cfgOnly,
      note: `processed ${s.processed} insns, total_states ${s.totalStates}, peak_states ${s.peakStates}; goal < 50 ms`,
    },
  ];
}

const isMain = process.argv[1] && import.meta.url === new URL(process.argv[1], "file:").href;
if (isMain) {
  for (const r of await run()) {
    console.log(`${r.name}: ${r.value.toFixed(2)} ${r.unit}`);
    if (r.baseline)
      console.log(
        `  baseline ${r.baseline.name}: ${r.baseline.value.toFixed(3)} ${r.unit} (ratio ${r.ratio?.toFixed(1)})`,
      );
    if (r.note) console.log(`  ${r.note}`);
  }
}
