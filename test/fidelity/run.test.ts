import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { hostAvailable } from "../../src/fidelity/host.js";
import { formatResult, loadScenarios, runScenario } from "../../src/fidelity/main.js";
import { parseFlags } from "../../src/fidelity/runner.js";
import { parseScenario } from "../../src/fidelity/scenario.js";
import { SimTarget } from "../../src/fidelity/sim.js";
import type { Outcome } from "../../src/fidelity/target.js";
import { BPF_F_TEST_RUN_ON_CPU } from "../../src/uapi/bpf.js";
import { ENOENT } from "../../src/uapi/errno.js";

const scenarios = loadScenarios();
const hostWhy = hostAvailable();

/** A scenario whose difference is reported but not yet fixed (header `known:`) is skipped, saying why. */
const skipKnown = (known: string | undefined) => (known ? `known difference: ${known}` : false);

describe("structops meets every scenario's written expectations", () => {
  for (const sc of scenarios) {
    test(sc.name, { skip: skipKnown(sc.headers.known) }, async () => {
      const r = await runScenario(sc, false);
      assert.notEqual(r.verdict.kind, "differs", formatResult(r, true));
    });
  }
});

describe("the host kernel and structops agree on every scenario", () => {
  for (const sc of scenarios) {
    test(sc.name, { skip: hostWhy ?? skipKnown(sc.headers.known) }, async (t) => {
      const r = await runScenario(sc, true);
      if (r.verdict.kind === "skip") {
        // The host refused something the scenario needs (a type, the system libbpf...): say so.
        t.skip(r.verdict.why);
        return;
      }
      assert.ok(r.kernel && r.kernel.length === sc.steps.length, "every step ran on the host");
      assert.ok(r.verdict.kind === "same" || r.deliberate, formatResult(r, true));
    });
  }
});

test("no scenario leaves a congestion control registered in the host kernel", { skip: hostWhy ?? false }, async () => {
  // Register a map-mode CC, close its only fd and stop: the helper must delete it on exit.
  const sc = parseScenario(
    [
      "name: leak-check",
      '$ss = prog_asm tcp_congestion_ops.ssthresh "mov %r0, 2\\nexit"',
      '$ca = prog_asm tcp_congestion_ops.cong_avoid "mov %r0, 0\\nexit"',
      '$un = prog_asm tcp_congestion_ops.undo_cwnd "mov %r0, 10\\nexit"',
      "$m = map_create tcp_congestion_ops => ok",
      "update $m { name=$uniq ssthresh=$ss cong_avoid=$ca undo_cwnd=$un } => ok",
      "tcp_xfer $uniq bytes=4096 => ok",
      "close $m => ok",
    ].join("\n"),
  );
  const r = await runScenario(sc, true);
  assert.equal(r.verdict.kind, "same", formatResult(r, true));
  const avail = readFileSync("/proc/sys/net/ipv4/tcp_available_congestion_control", "utf8");
  assert.doesNotMatch(avail, /\bfid_[0-9a-f]{10}\b/);
});

test("a structops bug shows up as DIFFERS naming the step, on the host and without it", async () => {
  // delete answering ENOENT in every state: the map-mode scenario expects ok, then EINPROGRESS.
  class DeleteBug extends SimTarget {
    override async delete(): Promise<Outcome> {
      return { ok: false, errno: ENOENT };
    }
  }
  const sc = scenarios.find((s) => s.name.startsWith("update-twice-and-delete-states"))!;
  for (const host of hostWhy ? [false] : [false, true]) {
    const r = await runScenario(sc, host, { sim: () => new DeleteBug() });
    assert.equal(r.verdict.kind, "differs");
    const text = formatResult(r, true);
    assert.match(text, /line 13 \(delete\): structops ENOENT, scenario expects ok/);
    // With the kernel's run beside it, the lookup after the delete is compared member by member.
    if (host) assert.match(text, /line 14 \(lookup\): common\.state: kernel 2, structops 1/);
  }
});

test("test_run flags= and cpu= reach PROG_TEST_RUN: raw_tp refuses cpu without BPF_F_TEST_RUN_ON_CPU", async () => {
  // Were cpu dropped on the way, `cpu=1` would run; were flags dropped, `flags=0x80` would run.
  const lines = [
    "name: test-run-flags-reach-the-kernel",
    '$rt = prog_asm raw_tp "mov %r0, 3\\nexit" => ok',
    "test_run $rt cpu=1 => EINVAL",
    "test_run $rt flags=BPF_F_TEST_RUN_ON_CPU cpu=0 => ok",
    '$sc = prog_asm syscall "mov %r0, 4\\nexit" sleepable=1 => ok',
    "test_run $sc flags=0x80 => EINVAL",
    "test_run $sc => ok",
  ].join("\n");
  const r = await runScenario(parseScenario(lines), false);
  assert.equal(r.verdict.kind, "same", formatResult(r, true));
  // With the expectation flipped the run must differ: the step is really checked.
  const flipped = parseScenario(lines.replace("cpu=1 => EINVAL", "cpu=1 => ok"));
  assert.equal((await runScenario(flipped, false)).verdict.kind, "differs");
});

test("flag words: the uapi spelling (BPF_F_TEST_RUN_ON_CPU, BPF_NOEXIST) equals the short one", () => {
  assert.equal(parseFlags("BPF_F_TEST_RUN_ON_CPU"), BPF_F_TEST_RUN_ON_CPU);
  assert.equal(parseFlags("TEST_RUN_ON_CPU|0x80"), BPF_F_TEST_RUN_ON_CPU | 0x80);
  assert.equal(parseFlags("BPF_NOEXIST"), parseFlags("NOEXIST"));
  assert.throws(() => parseFlags("BPF_F_NO_SUCH_FLAG"), /unknown flag/);
});
