import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { resched } from "../../fuzz/kernel.js";
import { ROOT } from "../../fuzz/repo.js";
import { insnTarget } from "../../fuzz/target_insn.js";
import { decodeInsns } from "../../src/isa/insn.js";
import { bpf_map_type } from "../../src/uapi/bpf.js";
import type { VerifierVector } from "../../src/verifier/vector.js";
import { bpfCheck } from "../../src/verifier/verifier.js";
import { hostLikeEnv, hostLogs, hostSkipReason } from "../verifier/host_log.js";

/**
 * Programs the insn target found that the verifier walks to its 1M-instruction limit: loops that
 * never converge (a counter in a register, a fetch from a stack slot, a branch on the frame
 * pointer). They once took longer than a hang is; their verdict is the kernel's E2BIG, and stays
 * so however fast the walk gets (bench/verifier.ts times it).
 */
const fixture = (name: string) => new Uint8Array(readFileSync(join(ROOT, "test/fixtures/fuzz", name)));

/** A fuzz input as a verifier vector: its map fds are the worker's one array map, index 0. */
function vector(name: string): VerifierVector {
  const input = fixture(name);
  const insns = decodeInsns(input.subarray(1, 1 + Math.floor((input.length - 1) / 8) * 8));
  for (const i of insns) if (i.code === 0x18 && (i.src === 1 || i.src === 2)) i.imm = 0;
  const map = { type: bpf_map_type.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 16, maxEntries: 4, flags: 0 };
  return { name, insns, memSize: 64, maps: [map], privileged: true, helpers: true, gpl: true };
}

/** The verdict and the statistics line of a host log (log level 4: statistics and errors only). */
function verdict(log: string): { msg: string; stats: string } {
  const lines = log.trim().split("\n");
  const stats = lines.find((l) => l.startsWith("processed ")) ?? "";
  const msg = lines.find((l) => /infinite loop detected|BPF program is too large/.test(l)) ?? "";
  return { msg: msg.replace(/^.*?(infinite loop|BPF program)/, "$1"), stats };
}

/** Ours, walked without a log (a level-1 log of a million-instruction path costs more than the walk). */
function ourVerdict(name: string): { msg: string; stats: string } {
  const r = bpfCheck(hostLikeEnv(vector(name), 0));
  const s = r.stats;
  return {
    msg: r.error?.message ?? "",
    stats: `processed ${s.processed} insns (limit 1000000) max_states_per_insn ${s.maxStatesPerInsn} total_states ${s.totalStates} peak_states ${s.peakStates} mark_read ${s.markRead}`,
  };
}

// seed777-149385 is `if r0 s> r0 goto pc-1` on an unknown r0: a million conditional jumps, each
// narrowing r0 by one at both ends, as the host kernel's log shows. loop-seed20261207 subtracts a
// u16 from w7 until its s32 range can grow no more (32,768 iterations), and the state then
// repeats: the loop check compares with every state still being explored, which only the
// kernel's eviction of states that keep missing keeps cheap.
const CASES: [string, RegExp][] = [
  ["insn-limit-seed1-33686.bin", /^BPF program is too large\. Processed 1000001 insn$/],
  ["insn-limit-seed102-35183.bin", /^BPF program is too large\. Processed 1000001 insn$/],
  ["insn-limit-seed102-19239.bin", /^BPF program is too large\. Processed 1000001 insn$/],
  ["insn-limit-seed777-149385.bin", /^BPF program is too large\. Processed 1000001 insn$/],
  ["insn-loop-seed20261207-114604.bin", /^infinite loop detected at insn 7$/],
];
const ours = new Map<string, { msg: string; stats: string }>();
for (const [name, msg] of CASES) {
  test(`${name}: refused as the kernel refuses it`, () => {
    const v = ourVerdict(name);
    ours.set(name, v);
    assert.match(v.msg, msg);
  });
}

// The states the walk keeps (how often it checkpoints, which states it evicts, how many it
// compares) decide when a loop is caught: the host's statistics line must be ours, number for number.
test("the host kernel walks each the same: processed, max_states_per_insn, total_states, peak_states", (t) => {
  const skip = hostSkipReason();
  if (skip) return t.skip(skip);
  const host = hostLogs(
    CASES.map(([name]) => vector(name)),
    4,
  );
  CASES.forEach(([name], i) => {
    const mine = ours.get(name) ?? ourVerdict(name);
    assert.equal(verdict(host[i].log).stats, mine.stats, name);
    assert.equal(verdict(host[i].log).msg, mine.msg, name);
  });
});

/**
 * A walk to the limit takes the verifier a second or more (the host kernel's own took 5 s for a
 * loop the fuzzer found): like do_check's cond_resched(), it reports progress every 4096
 * instructions, which the fuzzer's heartbeat counts; the verdict does not change.
 */
test("a walk to the complexity limit calls cond_resched as it goes", () => {
  insnTarget.setup?.();
  let beats = 0;
  const before = resched.beat;
  resched.beat = () => {
    beats++;
  };
  try {
    assert.equal(
      insnTarget.run(fixture("insn-limit-seed1-33686.bin")),
      "refused/E2BIG: BPF program is too large. Processed N insn",
    );
  } finally {
    resched.beat = before;
  }
  assert.equal(beats, Math.floor(1_000_000 / 4096));
});
