/** net/bpf/test_run.c: BPF_PROG_TEST_RUN for the generic program types. */
import { BPF_F_TEST_RUN_ON_CPU } from "../uapi/bpf.js";
import { BpfError, EFAULT, EINVAL } from "../uapi/errno.js";
import { bpfRawTpFuncProto } from "../verifier/helper_protos.js";
import type { BpfProg, BpfProgTypeOps } from "./bpf.js";
import type { ProgTestRunAttr } from "./bpf_attr.js";
import { num } from "./bpf_attr.js";
import { bpf_prog_run } from "./core.js";
import { testRunSkb, testRunXdp } from "./test_run_pkt.js";

const U16_MAX = 0xffff;
const MAX_BPF_FUNC_ARGS = 12;

/**
 * bpf_test_run(): run `repeat` times (at least once); duration is the mean simulated time per
 * run in ns (the clock only moves when something advances it, so it is deterministic).
 */
export function bpf_test_run(
  prog: BpfProg,
  ctx: number | bigint | readonly (number | bigint)[],
  repeat: number,
): { retval: number; duration: number } {
  const k = prog.kernel;
  const n = Math.max(1, repeat);
  const t0 = k.ktimeGetNs();
  let r0 = 0n;
  for (let i = 0; i < n; i++) r0 = bpf_prog_run(prog, ctx);
  const dt = k.ktimeGetNs() - t0;
  return { retval: Number(BigInt.asUintN(32, r0)), duration: Number(dt / BigInt(n)) };
}

function noData(attr: ProgTestRunAttr, allowFlags: boolean): void {
  if (
    attr.data_in ||
    attr.data_out ||
    attr.ctx_out ||
    num(attr.duration) ||
    num(attr.repeat) ||
    num(attr.batch_size) ||
    (!allowFlags && num(attr.flags))
  ) {
    throw new BpfError(EINVAL, "this program type takes no data_in/data_out/ctx_out/duration/repeat");
  }
}

/** Copy ctx_in into a fresh VM region (memdup_user); r1 points at it. */
function ctxRegion(prog: BpfProg, attr: ProgTestRunAttr): { addr: number; free: () => Uint8Array } | null {
  const size = num(attr.ctx_size_in);
  if (!size) return null;
  const src = attr.ctx_in;
  if (!src || src.length < size) throw new BpfError(EFAULT, "ctx_in is shorter than ctx_size_in");
  const k = prog.kernel;
  const r = k.mem.alloc(size, { perm: "rw", kind: "ctx", name: "test_run ctx" });
  k.mem.bytes(r.addr, size).set(src.subarray(0, size));
  return {
    addr: r.addr,
    free: () => {
      const out = k.mem.bytes(r.addr, size).slice();
      k.mem.free(r);
      return out;
    },
  };
}

export const testRunOps: Record<"syscall" | "raw_tp" | "skb" | "xdp", BpfProgTypeOps> = {
  /** bpf_prog_test_run_syscall: ctx in, ctx copied back, retval. */
  syscall: {
    // syscall_prog_is_valid_access(): any aligned offset below U16_MAX of the user's ctx buffer.
    verifier_ops: {
      name: "syscall",
      isValidAccess: (off, size) => (off >= 0 && off < U16_MAX && off % size === 0 ? {} : undefined),
    },
    test_run(prog, attr) {
      noData(attr, false);
      if (num(attr.ctx_size_in) > U16_MAX) throw new BpfError(EINVAL, "ctx_size_in over U16_MAX");
      const ctx = ctxRegion(prog, attr);
      try {
        attr.retval = bpf_test_run(prog, ctx?.addr ?? 0, 1).retval;
      } finally {
        const out = ctx?.free();
        if (out && attr.ctx_in) attr.ctx_in.set(out);
      }
    },
  },
  /** bpf_prog_test_run_raw_tp: ctx_in is the u64 argument array. */
  raw_tp: {
    // raw_tp_prog_func_proto / bpf_raw_tp_is_valid_access (bpf_tracing_ctx_access): reads of the
    // up to 12 u64 arguments, aligned to the access size.
    verifier_ops: {
      name: "raw_tracepoint",
      getFuncProto: bpfRawTpFuncProto,
      isValidAccess: (off, size, write) =>
        off >= 0 && off < MAX_BPF_FUNC_ARGS * 8 && !write && off % size === 0 ? {} : undefined,
    },
    test_run(prog, attr) {
      noData(attr, true);
      const size = num(attr.ctx_size_in);
      if (size > MAX_BPF_FUNC_ARGS * 8) throw new BpfError(EINVAL, "ctx_size_in over 12 arguments");
      // Unknown flag bits are ignored here (net/bpf/test_run.c checks only cpu against the flag).
      if (!(num(attr.flags) & BPF_F_TEST_RUN_ON_CPU) && num(attr.cpu)) throw new BpfError(EINVAL, "cpu without flag");
      const ctx = ctxRegion(prog, attr);
      const k = prog.kernel;
      const cpu = num(attr.cpu);
      try {
        const run = () => bpf_test_run(prog, ctx?.addr ?? 0, 1).retval;
        // BPF_F_TEST_RUN_ON_CPU: run there (smp_call_function_single); ENXIO past nr_cpu_ids.
        attr.retval = !(num(attr.flags) & BPF_F_TEST_RUN_ON_CPU) || cpu === k.cpu ? run() : k.onCpu(cpu, run);
      } finally {
        ctx?.free();
      }
    },
  },
  /** bpf_prog_test_run_skb: test_run_pkt.ts. */
  skb: { test_run: testRunSkb },
  /** bpf_prog_test_run_xdp: test_run_pkt.ts. */
  xdp: { test_run: testRunXdp },
};
