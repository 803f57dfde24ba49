import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { bpfVerifierEnv } from "../../src/kernel/bpf_verifier.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { BpfError, EACCES, EINVAL } from "../../src/uapi/errno.js";
import { bpfCheck } from "../../src/verifier/verifier.js";
import { repoRoot } from "../repo_root.js";

/**
 * Global functions (bpf/global_subprog.bpf.c): verified once each, on their own, after the main
 * program, from their BTF prototypes; calls checked against the prototype. Every verdict, errno,
 * message and instruction is 6.18's, compared with the host kernel where it can load them.
 */

const OBJ = join(repoRoot(), "bpf/obj/global_subprog.bpf.o");

/** Programs that load, and the last line of their level-1 log before the statistics ("" for none). */
const OK: [string, string][] = [
  ["gs_ok", "Func#4 ('gs_calls_sum') is safe for any args that match its prototype"],
  ["gs_ok_dead_call", ""],
  ["gs_ok_nonnull", "Func#1 ('gs_deref_nonnull') is safe for any args that match its prototype"],
  ["gs_ok_maybe_null", "Func#1 ('gs_sum') is safe for any args that match its prototype"],
  ["gs_ok_unknown_ret", "Func#1 ('gs_sum') is safe for any args that match its prototype"],
  ["gs_ok_trusted", "Func#2 ('gs_task_pid_or_0') is safe for any args that match its prototype"],
  ["gs_ok_untrusted", "Func#1 ('gs_untrusted_pid') is safe for any args that match its prototype"],
];

/** Refused programs: errno, the log's last two lines, the instruction of the last one. */
const BAD: [string, number, string, string, number][] = [
  [
    "gs_bad_body",
    EINVAL,
    "10: (0f) r2 += r1",
    "math between map_value pointer and register with unbounded min value is not allowed",
    10,
  ],
  ["gs_nullable_deref", EACCES, "6: (61) r0 = *(u32 *)(r1 +0)", "R1 invalid mem access 'mem_or_null'", 6],
  [
    "gs_nonnull_maybe_null",
    EINVAL,
    "arg#0 is expected to be non-NULL",
    "Caller passes invalid args into func#1 ('gs_deref_nonnull')",
    8,
  ],
  ["gs_ptr_as_scalar", EINVAL, "R2 is not a scalar", "Caller passes invalid args into func#1 ('gs_add')", 3],
  [
    "gs_mem_too_small",
    EINVAL,
    "invalid read from stack R1 off=-8 size=16",
    "Caller passes invalid args into func#1 ('gs_sum')",
    4,
  ],
  ["gs_ctx_not_ctx", EINVAL, "arg#0 expects pointer to ctx", "Caller passes invalid args into func#1 ('gs_ctx')", 2],
  [
    "gs_void_ret",
    EINVAL,
    "Global function gs_void() doesn't return scalar. Only those are supported.",
    "Caller passes invalid args into func#1 ('gs_void')",
    4,
  ],
  [
    "gs_trusted_null",
    EINVAL,
    "R1 must be referenced or trusted",
    "Caller passes invalid args into func#1 ('gs_task_pid')",
    1,
  ],
  [
    "gs_trusted_rcu",
    EINVAL,
    "R1 must be referenced or trusted",
    "Caller passes invalid args into func#1 ('gs_task_pid')",
    2,
  ],
  [
    "gs_trusted_off",
    EACCES,
    "R1 is of type task_struct but task_struct is expected",
    "Caller passes invalid args into func#1 ('gs_task_pid')",
    4,
  ],
  [
    "gs_skb_moved",
    EACCES,
    "dereference of modified ctx ptr R1 off=192 disallowed",
    "Caller passes invalid args into func#1 ('gs_skb_len')",
    1,
  ],
  ["gs_ret_ptr", EINVAL, "7: (95) exit", "At subprogram exit the register R0 is not a scalar value (ctx)", 7],
  [
    "gs_under_lock",
    EINVAL,
    "global function calls are not allowed while holding a lock,",
    "use static function instead",
    13,
  ],
];

interface Loaded {
  errno: number;
  log: string[];
  insn?: number;
}

/**
 * Load one program of the object into a fresh simulated kernel; its log is the verifier's run on
 * the same input at `level` (libbpf asks for a log only once a load failed).
 */
function loadOne(name: string, level = 1): Loaded {
  const k = new Kernel();
  const h = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(OBJ, { print: () => {} });
  for (const p of obj.programs) p.setAutoload(p.name === name);
  let insn: number | undefined;
  let log = "";
  const hook = k.verifier;
  k.verifier = (env) => {
    log = bpfCheck({ ...bpfVerifierEnv(env), logLevel: level }).log;
    try {
      return hook?.(env);
    } catch (e) {
      if (e instanceof BpfError) insn = e.context?.insn as number | undefined;
      throw e;
    }
  };
  let errno = 0;
  try {
    obj.load(h);
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    errno = (e.context?.errno as number | undefined) ?? e.errno;
  }
  return { errno, log: log.split("\n").filter((l) => l && !l.startsWith("processed")), insn };
}

test("global_subprog.bpf.o: accepted programs, each global function verified once after the main program", () => {
  for (const [name, last] of OK) {
    const r = loadOne(name);
    assert.equal(r.errno, 0, `${name}: ${r.log.join("\n")}`);
    assert.equal(r.log.at(-1) ?? "", last, name);
  }
  // Level 2: the call assumes the function valid, R0 an unknown scalar; the function is verified
  // later from its prototype (a nonnull pointer: mem of the pointee's size), then declared safe.
  const l2 = loadOne("gs_ok_nonnull", 2).log;
  const at = (s: string) => l2.indexOf(s);
  assert.ok(at("Func#1 ('gs_deref_nonnull') is global and assumed valid.") > 0, l2.join("\n"));
  assert.equal(l2[at("Func#1 ('gs_deref_nonnull') is global and assumed valid.") + 1], "5: R0=scalar()");
  assert.ok(at("Validating gs_deref_nonnull() func#1...") > at("5: (95) exit"));
  assert.equal(l2[at("Validating gs_deref_nonnull() func#1...") + 1], "6: R1=mem(sz=4) R10=fp0");
  // The main program's `void *ctx` is no memory of known size: said once, not an error.
  assert.ok(l2.includes("arg#0 reference type('UNKNOWN ') size cannot be determined: -22"));
});

test("global_subprog.bpf.o: refusals at the call and inside the function, with 6.18's messages", () => {
  for (const [name, errno, prev, msg, insn] of BAD) {
    const r = loadOne(name);
    assert.equal(r.errno, errno, `${name}: ${r.log.join("\n")}`);
    assert.deepEqual(r.log.slice(-2), [prev, msg], name);
    assert.equal(r.insn, insn, name);
  }
  // A body is verified with its own entry state, after the main program's (whose log is gone).
  const body = loadOne("gs_bad_body").log;
  assert.deepEqual(body.slice(0, 2), ["Validating gs_oob() func#1...", "2: R10=fp0"]);
  // A trusted argument: the kernel struct of its BTF type, maybe NULL where it is nullable.
  const tl = loadOne("gs_ok_trusted", 2).log;
  const entry = (f: string) => tl[tl.indexOf(`Validating ${f}`) + 1];
  assert.match(entry("gs_task_pid() func#1..."), /^\d+: R1=trusted_ptr_task_struct\(id=\d+\) R10=fp0$/);
  assert.match(entry("gs_task_pid_or_0() func#2..."), /^\d+: R1=trusted_ptr_or_null_task_struct\(id=\d+\) R10=fp0$/);
  const deref = loadOne("gs_nullable_deref").log;
  assert.deepEqual(deref.slice(0, 2), ["Validating gs_deref() func#1...", "6: R1=mem_or_null(id=1,sz=4) R10=fp0"]);
});

function hostSkip(): string | false {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "needs root for bpf(2)";
  const py = spawnSync("python3", ["-c", "import ctypes; ctypes.CDLL('libbpf.so.1')"], { encoding: "utf8" });
  if (py.status !== 0) return "python3 or libbpf.so.1 missing";
  return false;
}

test("the host kernel gives the same verdicts, messages and instructions", { skip: hostSkip() }, () => {
  const loader = join(repoRoot(), "test/fixtures/verifier/host_libbpf_load.py");
  const names = [...OK.map((o) => o[0]), ...BAD.map((b) => b[0])];
  const out = spawnSync("python3", [loader, OBJ, ...names], { encoding: "utf8" });
  assert.equal(out.status, 0, out.stderr);
  const res = JSON.parse(out.stdout) as { prog: string; err: number; log: string }[];
  if (res[0].err === -1) return; // bpf() refused here
  const host = new Map(res.map((r) => [r.prog, r]));
  const lines = (log: string) => log.split("\n").filter((l) => l && !l.startsWith("processed") && !l.startsWith(";"));
  for (const [name, last] of OK) {
    const r = host.get(name)!;
    assert.equal(r.err, 0, `${name}: ${r.log.slice(-300)}`);
    assert.equal(lines(r.log).at(-1) ?? "", last, name);
  }
  for (const [name, errno, prev, msg, insn] of BAD) {
    const r = host.get(name)!;
    const l = lines(r.log);
    assert.equal(r.err, -errno, name);
    assert.deepEqual(l.slice(-2), [prev, msg], name);
    const lastInsn = l.filter((x) => /^\d+: \(/.test(x)).at(-1) ?? "";
    assert.equal(Number(lastInsn.split(":")[0]), insn, `${name}: host instruction`);
  }
});
