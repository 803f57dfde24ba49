import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { BpfError, EACCES, EINVAL } from "../../src/uapi/errno.js";
import { repoRoot } from "./helpers.js";

const OBJ = join(repoRoot(), "bpf/obj");
const GOOD = ["timer_off8_ok", "tc_timer_ok", "callback_registers_itself"];

/**
 * What Linux 6.18 answers for each refused program of bpf/timer_bad.bpf.c: errno, the last line
 * of the log, the instruction it stopped at (-1: refused when the map is bound, before any
 * instruction). Taken from the host kernel; the host test below checks they still agree.
 */
const BAD: [string, number, string, number][] = [
  [
    "callback_returns_one",
    EINVAL,
    "At async callback return the register R0 has smin=1 smax=1 should have been in [0, 0]",
    21,
  ],
  ["callback_returns_ptr", EINVAL, "At async callback return the register R0 is not a known value (map_value)", 15],
  ["callback_writes_key", EACCES, "write to change key R2 not allowed", 15],
  ["init_other_map", EINVAL, "timer pointer in R1 map_uid=0 doesn't match map pointer in R2 map_uid=0", 12],
  ["map_without_timer", EINVAL, "map 'plain' has no valid bpf_timer", 12],
  ["timer_wrong_offset", EINVAL, "off 16 doesn't point to 'struct bpf_timer' that is at 0", 13],
  ["timer_variable_offset", EINVAL, "R1 doesn't have constant offset. bpf_timer has to be at the constant offset", 16],
  ["timer_on_stack", EACCES, "R1 type=fp expected=map_value", 5],
  ["timer_maybe_null", EACCES, "R1 type=map_value_or_null expected=map_value", 10],
  ["timer_load", EACCES, "bpf_timer cannot be accessed directly by load/store", 8],
  ["kprobe_with_timer_map", EINVAL, "tracing progs cannot use bpf_timer yet", -1],
  ["raw_tp_with_timer_map", EINVAL, "tracing progs cannot use bpf_timer yet", -1],
];

/** Our verdict for one program of timer_bad: errno, the log's lines, the error's instruction. */
function load(name: string): { errno: number; log: string[]; insn?: number } {
  const k = new Kernel({ verifier: true });
  const h = { kernel: k, process: k.newProcess() };
  const lines: string[] = [];
  const obj = BpfObject.open(join(OBJ, "timer_bad.bpf.o"), { print: (_l, m) => lines.push(m) });
  for (const p of obj.programs) p.setAutoload(p.name === name);
  const captured: { insn?: number } = {};
  const hook = k.verifier;
  k.verifier = (env) => {
    try {
      return hook?.(env);
    } catch (e) {
      if (e instanceof BpfError) captured.insn = e.context?.insn as number | undefined;
      throw e;
    }
  };
  try {
    obj.load(h);
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    const text = lines.join("");
    const body = text.slice(text.indexOf("-- BEGIN PROG LOAD LOG --") + 25, text.indexOf("-- END PROG LOAD LOG --"));
    const log = body.split("\n").filter((l) => l && !l.startsWith("processed"));
    return { errno: (e.context?.errno as number | undefined) ?? e.errno, log, insn: captured.insn };
  }
  return { errno: 0, log: [] };
}

test("timer_bad: each program refused with 6.18's errno, message and instruction", () => {
  for (const [name, errno, msg, insn] of BAD) {
    const r = load(name);
    assert.equal(r.errno, errno, `${name}: errno (log: ${r.log.slice(-2).join(" / ")})`);
    assert.equal(r.log.at(-1), msg, name);
    if (insn >= 0) assert.equal(r.insn, insn, `${name}: insn`);
  }
  for (const name of GOOD) assert.equal(load(name).errno, 0, `${name} verifies`);
});

test("an async callback is verified after its registrar, as a frame of its own marked async_cb", () => {
  const { log } = load("callback_returns_one");
  // The registrar's path is complete first (level 1 keeps only the failing path): the callback's
  // state follows the bpf_timer_set_callback line, with (map, key, value) in r1-r3.
  const at = log.findIndex((l) => l.startsWith("17: (85) call bpf_timer_set_callback#170 20: "));
  assert.ok(at > 0, log.join("\n"));
  assert.equal(
    log[at].slice(log[at].indexOf(" 20: ")),
    " 20: R1=map_ptr(map=tmap,ks=4,vs=24) R2=map_key(map=tmap,ks=4,vs=24) R3=map_value(id=1,map=tmap,ks=4,vs=24) R10=fp0 async_cb",
  );
  assert.match(log[at + 1], /^20: \(b4\) w0 = 1 +; R0=1 async_cb$/);
});

const HOST_LOADER = join(repoRoot(), "test/fixtures/verifier/host_libbpf_load.py");

function hostSkip(): string | false {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "needs root for bpf(2)";
  if (!existsSync("/sys/kernel/btf/vmlinux")) return "no /sys/kernel/btf/vmlinux";
  const py = spawnSync("python3", ["-c", "import ctypes; ctypes.CDLL('libbpf.so.1')"], { encoding: "utf8" });
  if (py.status !== 0) return "python3 or libbpf.so.1 missing";
  return false;
}

/** The instructions and messages of a level-1 log, without source lines, addresses or statistics. */
function normalise(log: string): string[] {
  return log
    .split("\n")
    .filter((l) => l && !l.startsWith(";") && !l.startsWith("processed") && !l.startsWith("arg#0 reference"))
    .map((l) =>
      l
        .replace(/0x[0-9a-f]{16}/g, "ADDR")
        .replace(/map\[id:\d+\](\[0\]\+\d+)?/g, "ADDR")
        .replace(/ +;/, " ;"),
    );
}

test("the host kernel gives the same verdicts, messages, instructions and logs", { skip: hostSkip() }, () => {
  const run = (progs: string[]) => {
    const out = spawnSync("python3", [HOST_LOADER, join(OBJ, "timer_bad.bpf.o"), ...progs], {
      encoding: "utf8",
      maxBuffer: 1 << 26,
    });
    assert.equal(out.status, 0, out.stderr);
    return JSON.parse(out.stdout) as { prog: string; err: number; log: string }[];
  };
  const good = run(GOOD);
  if (good.every((g) => g.err === -1)) return; // bpf() refused here (EPERM): nothing to compare
  for (const g of good) assert.equal(g.err, 0, `${g.prog}: the host refused it:\n${g.log.slice(-300)}`);
  const bad = run(BAD.map((b) => b[0]));
  bad.forEach((r, i) => {
    const [name, errno, msg, insn] = BAD[i];
    assert.equal(r.err, -errno, `${name}: host errno`);
    const lines = normalise(r.log);
    assert.equal(lines.at(-1), msg, `${name}: host message`);
    if (insn >= 0) {
      const last = lines.filter((l) => /^\d+: \(/.test(l)).at(-1) ?? "";
      assert.equal(Number(last.split(":")[0]), insn, `${name}: host instruction`);
    }
    // The whole level-1 log, line for line.
    assert.deepEqual(normalise(load(name).log.join("\n")), lines, `${name}: ours and the host's log`);
  });
});
