import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { BtfBuilder } from "../../src/btf/builder.js";
import { assemble } from "../../src/isa/asm.js";
import { bpfWorks } from "../../src/kernel/bpf_wq.js";
import { Kernel, type Subsystem } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_cmd, bpf_map_type, bpf_prog_type } from "../../src/uapi/bpf.js";
import { BTF_FUNC_GLOBAL, BTF_INT_SIGNED } from "../../src/uapi/btf.js";
import { BpfError, EINVAL, errnoName } from "../../src/uapi/errno.js";
import { KF_SLEEPABLE } from "../../src/verifier/env.js";
import { repoRoot } from "../repo_root.js";

/**
 * bpf_wq: bpf_wq_init / bpf_wq_set_callback_impl / bpf_wq_start on a map value's struct bpf_wq,
 * the callback verified as a sleepable async callback, run as deferred work after the syscall.
 */

const sleepy: Subsystem = {
  name: "wq_test",
  declareTypes(b) {
    const int = b.addInt("int", 4, BTF_INT_SIGNED);
    b.addFunc("wq_test_sleepy", b.addFuncProto(int, []), BTF_FUNC_GLOBAL);
  },
  register(k) {
    k.registerKfunc("wq_test_sleepy", undefined, () => 0, KF_SLEEPABLE);
  },
};

const k = new Kernel({ subsystems: [sleepy] });
const proc = k.newProcess();
const id = (name: string) => k.kfuncsByName.get(name)!.btfId;

/** An ARRAY of struct { struct bpf_wq w; u64 n; } with BTF. */
function wqMap(name: string): number {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const u64 = b.addInt("long long unsigned int", 8);
  const wq = b.addStructAuto("bpf_wq", [{ name: "__opaque", type: b.addArray(u64, int, 2) }]);
  const val = b.addStructAuto("val", [
    { name: "w", type: wq },
    { name: "n", type: u64 },
  ]);
  const btf = b.build();
  const btfFd = k.bpf(proc, bpf_cmd.BPF_BTF_LOAD, { btf, btf_size: btf.length });
  return k.bpf(proc, bpf_cmd.BPF_MAP_CREATE, {
    map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY,
    key_size: 4,
    value_size: 24,
    max_entries: 1,
    btf_fd: btfFd,
    btf_key_type_id: int,
    btf_value_type_id: val,
    map_name: name,
  });
}

const MAP = wqMap("wqmap");
const MAP2 = wqMap("wqmap2");

/** Init, set the callback `cb`, start: each result into the value's n (the last one wins). */
const arm = (cb: string, wq = "%r6", map = MAP) => `
  lddw %r6, map_value(${MAP}, 0)
  mov %r1, ${wq}
  lddw %r2, map_fd(${map})
  mov %r3, 0
  call kfunc ${id("bpf_wq_init")}
  mov %r1, %r6
  lddw %r2, func(${cb})
  mov %r3, 0
  mov %r4, 0
  call kfunc ${id("bpf_wq_set_callback_impl")}
  mov %r1, %r6
  mov %r2, 0
  call kfunc ${id("bpf_wq_start")}
  mov %r0, 0
  exit
`;

function load(asm: string): { fd: number; errno: string; msg: string; insn?: number; log: string } {
  const insns = assemble(asm);
  const logBuf = new Uint8Array(1 << 16);
  let insn: number | undefined;
  const hook = k.verifier;
  k.verifier = (env) => {
    try {
      return hook?.(env);
    } catch (e) {
      if (e instanceof BpfError) insn = e.context?.insn as number | undefined;
      throw e;
    }
  };
  let fd = -1;
  let errno = "";
  try {
    fd = k.bpf(proc, bpf_cmd.BPF_PROG_LOAD, {
      prog_type: bpf_prog_type.BPF_PROG_TYPE_SYSCALL,
      insns,
      insn_cnt: insns.length,
      license: "GPL",
      prog_flags: 1 << 4,
      log_level: 1,
      log_buf: logBuf,
      log_size: logBuf.length,
    });
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    errno = errnoName(e.errno);
  } finally {
    k.verifier = hook;
  }
  const log = new TextDecoder().decode(logBuf.subarray(0, logBuf.indexOf(0)));
  const lines = log.split("\n").filter((l) => l && !l.startsWith("processed "));
  return { fd, errno, msg: lines.at(-1) ?? "", insn, log };
}

const COUNT = `
cb:
  ldxdw %r1, [%r3+16]
  add %r1, 1
  stxdw [%r3+16], %r1
  call kfunc ${id("wq_test_sleepy")}
  mov %r0, 0
  exit`;

test("a work item runs its callback once the syscall that started it returns; the callback may sleep", () => {
  const r = load(arm("cb") + COUNT);
  assert.equal(r.errno, "", r.log);
  const attr: { prog_fd: number; retval?: number } = { prog_fd: r.fd };
  k.bpf(proc, bpf_cmd.BPF_PROG_TEST_RUN, attr);
  const value = new Uint8Array(24);
  k.bpf(proc, bpf_cmd.BPF_MAP_LOOKUP_ELEM, { map_fd: MAP, key: new Uint8Array(4), value });
  assert.equal(new DataView(value.buffer).getBigUint64(16, true), 1n, "the callback ran once");
  // Running the program again: bpf_wq_init is -EBUSY, the work runs again.
  k.bpf(proc, bpf_cmd.BPF_PROG_TEST_RUN, attr);
  k.bpf(proc, bpf_cmd.BPF_MAP_LOOKUP_ELEM, { map_fd: MAP, key: new Uint8Array(4), value });
  assert.equal(new DataView(value.buffer).getBigUint64(16, true), 2n);
  // A user-space update of the element frees its work item and the program reference.
  assert.equal(bpfWorks(k).size, 1);
  k.bpf(proc, bpf_cmd.BPF_MAP_UPDATE_ELEM, {
    map_fd: MAP,
    key: new Uint8Array(4),
    value: new Uint8Array(24),
    flags: 0,
  });
  assert.equal(bpfWorks(k).size, 0);
  k.close(proc, r.fd);
});

test("bpf_wq rules: the callback returns 0, the work item at its offset, the same map, a map value", () => {
  const bad = (asm: string, msg: string, insn: number) => {
    const r = load(asm);
    assert.equal(r.errno, errnoName(EINVAL), r.log);
    assert.equal(r.msg, msg, r.log);
    assert.equal(r.insn, insn, r.log);
  };
  bad(
    `${arm("cb")}\ncb:\nmov %r0, 1\nexit`,
    "At async callback return the register R0 has smin=1 smax=1 should have been in [0, 0]",
    19,
  );
  bad(
    `mov %r7, %r1\n${arm("cb", "%r7")}${COUNT}`.replace("mov %r1, %r7", "mov %r1, %r6\nadd %r1, 16"),
    "off 16 doesn't point to 'struct bpf_wq' that is at 0",
    8,
  );
  bad(arm("cb", "%r6", MAP2) + COUNT, "workqueue pointer in R1 map_uid=0 doesn't match map pointer in R2 map_uid=0", 6);
  bad(arm("cb", "%r10") + COUNT, "arg#0 doesn't point to a map value", 6);
});

const OBJ = join(repoRoot(), "bpf/obj/wq_bad.bpf.o");
/** bpf/wq_bad.bpf.c: errno and last log line of 6.18 (from the host), the instruction (-1: at map binding). */
const BAD: [string, number, string, number][] = [
  [
    "wq_callback_returns_one",
    EINVAL,
    "At async callback return the register R0 has smin=1 smax=1 should have been in [0, 0]",
    23,
  ],
  ["wq_wrong_offset", EINVAL, "off 16 doesn't point to 'struct bpf_wq' that is at 0", 13],
  ["wq_other_map", EINVAL, "workqueue pointer in R1 map_uid=0 doesn't match map pointer in R2 map_uid=0", 12],
  ["wq_on_stack", EINVAL, "arg#0 doesn't point to a map value", 6],
  ["kprobe_with_wq_map", EINVAL, "tracing progs cannot use bpf_wq yet", -1],
];

function loadObj(name: string): { errno: number; msg: string; insn?: number } {
  const kk = new Kernel();
  const h = { kernel: kk, process: kk.newProcess() };
  const lines: string[] = [];
  const obj = BpfObject.open(OBJ, { print: (_l, m) => lines.push(m) });
  for (const p of obj.programs) p.setAutoload(p.name === name);
  let insn: number | undefined;
  const hook = kk.verifier;
  kk.verifier = (env) => {
    try {
      return hook?.(env);
    } catch (e) {
      if (e instanceof BpfError) insn = e.context?.insn as number | undefined;
      throw e;
    }
  };
  try {
    obj.load(h);
    return { errno: 0, msg: "" };
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    const text = lines.join("");
    const body = text.slice(text.indexOf("-- BEGIN PROG LOAD LOG --") + 25, text.indexOf("-- END PROG LOAD LOG --"));
    const log = body.split("\n").filter((l) => l && !l.startsWith("processed"));
    return { errno: (e.context?.errno as number | undefined) ?? e.errno, msg: log.at(-1) ?? "", insn };
  }
}

test("wq_bad.bpf.o: refused with 6.18's errno, message and instruction; wq_ok loads", () => {
  assert.equal(loadObj("wq_ok").errno, 0);
  for (const [name, errno, msg, insn] of BAD) {
    const r = loadObj(name);
    assert.equal(r.errno, errno, name);
    assert.equal(r.msg, msg, name);
    if (insn >= 0) assert.equal(r.insn, insn, name);
  }
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
  const out = spawnSync("python3", [loader, OBJ, "wq_ok", ...BAD.map((b) => b[0])], { encoding: "utf8" });
  assert.equal(out.status, 0, out.stderr);
  const res = JSON.parse(out.stdout) as { prog: string; err: number; log: string }[];
  if (res[0].err === -1) return; // bpf() refused here
  assert.equal(res[0].err, 0, res[0].log.slice(-300));
  res.slice(1).forEach((r, i) => {
    const [name, errno, msg, insn] = BAD[i];
    const lines = r.log.split("\n").filter((l) => l && !l.startsWith("processed"));
    assert.equal(r.err, -errno, name);
    assert.equal(lines.at(-1), msg, name);
    if (insn >= 0) {
      const last = lines.filter((l) => /^\d+: \(/.test(l)).at(-1) ?? "";
      assert.equal(Number(last.split(":")[0]), insn, `${name}: host instruction`);
    }
  });
});
