import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { encodeInsns } from "../../src/isa/insn.js";
import { errnoName } from "../../src/uapi/errno.js";
import { parseVerifierVector, vectorEnv } from "../../src/verifier/vector.js";
import { bpfCheck } from "../../src/verifier/verifier.js";
import { FIXTURES } from "./helpers.js";
import { LOADER } from "./host_log.js";

/**
 * The host kernel as an oracle: each program of the bad-program corpus is loaded as a socket
 * filter through the real bpf(2) (from Python's ctypes: Node has no syscall binding), and the
 * kernel must refuse it with the errno and the message we give. Programs whose environment the
 * host cannot reproduce are left out (unprivileged ones: the test runs as root; maps with a
 * bpf_spin_lock need map BTF; helper sets that differ from a socket filter's).
 */

const NOT_REPRODUCIBLE = new Set([
  "bad_map_fd.data", // map references are fds there, indices here
  "helper_not_allowed.data", // a socket filter may call bpf_ktime_get_ns
  "unknown_func.data", // the host kernel has bpf_tail_call
]);

function skipReason(): string | false {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "needs root for bpf(2)";
  const py = spawnSync("python3", ["-c", "import ctypes"], { encoding: "utf8" });
  if (py.status !== 0) return "python3 with ctypes is not installed";
  return false;
}

const skip = skipReason();

test("the host kernel refuses the corpus for the reasons we give", { skip }, () => {
  const files = readdirSync(FIXTURES)
    .filter((f) => f.endsWith(".data") && !NOT_REPRODUCIBLE.has(f))
    .sort();
  const vs = files
    .map((f) => parseVerifierVector(readFileSync(join(FIXTURES, f), "utf8"), f))
    .filter((v) => v.privileged && !v.maps.some((m) => m.spinLockOff !== undefined));
  const progs = vs.map((v) => ({
    hex: Buffer.from(encodeInsns(v.insns)).toString("hex"),
    maps: v.maps.map((m) => ({
      type: m.type,
      key: m.keySize,
      value: m.valueSize,
      entries: m.maxEntries,
      flags: m.rdonlyProg ? 1 << 7 : 0,
    })),
    license: v.gpl ? "GPL" : "MIT",
    log_level: v.expect?.logLevel ?? 1,
  }));
  const dir = mkdtempSync(join(tmpdir(), "structops-verifier-"));
  try {
    writeFileSync(join(dir, "load.py"), LOADER);
    const out = spawnSync("python3", [join(dir, "load.py")], { input: JSON.stringify(progs), maxBuffer: 1 << 28 });
    assert.equal(out.status, 0, out.stderr?.toString());
    const res: { fd: number; errno: number; log: string }[] = JSON.parse(out.stdout.toString());
    if (res.every((r) => r.errno === 1)) return; // EPERM everywhere: bpf(2) is locked down here
    assert.ok(vs.length >= 25, `${vs.length} programs compared`);
    vs.forEach((v, i) => {
      const k = res[i];
      const ours = bpfCheck(vectorEnv(v, 1));
      assert.ok(k.fd < 0, `${v.name}: the host kernel accepted it`);
      assert.equal(errnoName(k.errno), errnoName(ours.error?.errno ?? 0), `${v.name}: errno`);
      if (v.expect?.logLevel === 0) return;
      // The message is a line of its own, or ends the line of the instruction printed before it.
      const msg = ours.error?.message ?? "?";
      assert.ok(
        k.log.split("\n").some((l) => l === msg || l.endsWith(` ${msg}`)),
        `${v.name}: ours '${ours.error?.message}', the kernel's log ends\n${k.log.split("\n").slice(-5).join("\n")}`,
      );
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
