import assert from "node:assert/strict";
import { test } from "node:test";
import { BtfBuilder } from "../../src/btf/builder.js";
import { assemble } from "../../src/isa/asm.js";
import { bpfTimers } from "../../src/kernel/bpf_timer.js";
import { hrtimer_is_queued } from "../../src/kernel/hrtimer.js";
import { Kernel, type Subsystem } from "../../src/kernel/kernel.js";
import { bpf_cmd, bpf_map_type, bpf_prog_type } from "../../src/uapi/bpf.js";
import { BTF_FUNC_GLOBAL, BTF_INT_SIGNED } from "../../src/uapi/btf.js";
import { BpfError, EACCES, EINVAL, errnoName } from "../../src/uapi/errno.js";
import { KF_SLEEPABLE } from "../../src/verifier/env.js";

/**
 * Timer rules on hand-written programs through PROG_LOAD: the instruction each refusal names,
 * the async callback's own frame (a timer callback of a sleepable program is not sleepable),
 * leaks at an async callback's exit, the helpers' licence rule.
 */

const sleepy: Subsystem = {
  name: "timer_test",
  declareTypes(b) {
    const int = b.addInt("int", 4, BTF_INT_SIGNED);
    b.addFunc("timer_test_sleepy", b.addFuncProto(int, []), BTF_FUNC_GLOBAL);
  },
  register(k) {
    k.registerKfunc("timer_test_sleepy", undefined, () => 0, KF_SLEEPABLE);
  },
};

const k = new Kernel({ subsystems: [sleepy] });
const proc = k.newProcess();
const sleepyId = k.kfuncsByName.get("timer_test_sleepy")!.btfId;

/** An ARRAY of struct { struct bpf_timer t; u64 n; } with BTF. */
function timerMap(): number {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const u64 = b.addInt("long long unsigned int", 8);
  const timer = b.addStructAuto("bpf_timer", [{ name: "__opaque", type: b.addArray(u64, int, 2) }]);
  const val = b.addStructAuto("val", [
    { name: "t", type: timer },
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
    map_name: "tmap",
  });
}

const MAP = timerMap();

/** r6 = &tmap[0] (a map value at offset 0), then set the callback `cb`; the rest is `tail`. */
const setCallback = (cb: string, tail = "mov %r0, 0\nexit") => `
  lddw %r6, map_value(${MAP}, 0)
  mov %r1, %r6
  lddw %r2, func(${cb})
  call 170
  ${tail}`;

function load(asm: string, o: { license?: string } = {}): { errno: string; msg: string; insn?: number; log: string } {
  const insns = assemble(asm);
  const logBuf = new Uint8Array(1 << 16);
  const who = proc;
  let errno = "";
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
  try {
    const fd = k.bpf(who, bpf_cmd.BPF_PROG_LOAD, {
      prog_type: bpf_prog_type.BPF_PROG_TYPE_SYSCALL,
      insns,
      insn_cnt: insns.length,
      license: o.license ?? "GPL",
      // Syscall programs are always sleepable.
      prog_flags: 1 << 4,
      log_level: 1,
      log_buf: logBuf,
      log_size: logBuf.length,
    });
    k.close(who, fd);
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    errno = errnoName(e.errno);
  } finally {
    k.verifier = hook;
  }
  const log = new TextDecoder().decode(logBuf.subarray(0, logBuf.indexOf(0)));
  const lines = log.split("\n").filter((l) => l && !l.startsWith("processed "));
  return { errno, msg: lines.at(-1) ?? "", insn, log };
}

function refused(r: ReturnType<typeof load>, errno: number, msg: string, insn?: number): void {
  assert.equal(r.errno, errnoName(errno), r.log);
  assert.equal(r.msg, msg, r.log);
  if (insn !== undefined) assert.equal(r.insn, insn, r.log);
}

const cb = (body: string) => `\ncb:\n${body}\n`;

test("a timer callback of a sleepable program may not sleep: its state is not sleepable", () => {
  // The program itself may call the sleeping kfunc.
  assert.equal(load(setCallback("cb", `call kfunc ${sleepyId}\nmov %r0, 0\nexit`) + cb("mov %r0, 0\nexit")).errno, "");
  refused(
    load(setCallback("cb") + cb(`call kfunc ${sleepyId}\nmov %r0, 0\nexit`)),
    EACCES,
    "program must be sleepable to call sleepable kfunc timer_test_sleepy",
    8,
  );
});

test("an async callback's return: 0 only, a known value, read before exit", () => {
  assert.equal(load(setCallback("cb") + cb("mov %r0, 0\nexit")).errno, "");
  refused(
    load(setCallback("cb") + cb("mov %r0, 2\nexit")),
    EINVAL,
    "At async callback return the register R0 has smin=2 smax=2 should have been in [0, 0]",
    9,
  );
  refused(
    load(setCallback("cb") + cb("ldxdw %r0, [%r3+16]\nexit")),
    EINVAL,
    "At async callback return the register R0 has unknown scalar value should have been in [0, 0]",
    9,
  );
  refused(load(setCallback("cb") + cb("exit")), EACCES, "R0 !read_ok", 8);
  // r1-r3 are (map, key, value) of the timer's map: the callback may use the value.
  assert.equal(load(setCallback("cb") + cb("ldxdw %r0, [%r3+16]\nmov %r0, 0\nexit")).errno, "");
  refused(
    load(setCallback("cb") + cb("ldxdw %r0, [%r3+24]\nmov %r0, 0\nexit")),
    EACCES,
    "R3 min value is outside of the allowed memory range",
    8,
  );
});

test("an async callback that keeps a reference is a leak at its exit", () => {
  const acquire = k.kfuncsByName.get("bpf_task_from_pid")!.btfId;
  refused(
    load(setCallback("cb") + cb(`mov %r1, 1\ncall kfunc ${acquire}\nmov %r0, 0\nexit`)),
    EINVAL,
    "BPF_EXIT instruction in main prog would lead to reference leak",
    11,
  );
});

test("the timer helpers are GPL-only", () => {
  refused(
    load(setCallback("cb") + cb("mov %r0, 0\nexit"), { license: "Dual MIT/BSD-ish" }),
    EINVAL,
    "cannot call GPL-restricted function from non-GPL compatible program",
    5,
  );
});

test("an LRU element evicted with its timer armed: the timer goes with it and never fires", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const u64 = b.addInt("long long unsigned int", 8);
  const timer = b.addStructAuto("bpf_timer", [{ name: "__opaque", type: b.addArray(u64, int, 2) }]);
  const val = b.addStructAuto("val", [
    { name: "t", type: timer },
    { name: "n", type: u64 },
  ]);
  const btf = b.build();
  const btfFd = k.bpf(proc, bpf_cmd.BPF_BTF_LOAD, { btf, btf_size: btf.length });
  const lru = k.bpf(proc, bpf_cmd.BPF_MAP_CREATE, {
    map_type: bpf_map_type.BPF_MAP_TYPE_LRU_HASH,
    key_size: 4,
    value_size: 24,
    max_entries: 4,
    btf_fd: btfFd,
    btf_key_type_id: int,
    btf_value_type_id: val,
  });
  const key = (n: number) => new Uint8Array([n, 0, 0, 0]);
  k.bpf(proc, bpf_cmd.BPF_MAP_UPDATE_ELEM, { map_fd: lru, key: key(0), value: new Uint8Array(24), flags: 0 });
  const insns = assemble(`
    stw [%r10-4], 0
    lddw %r1, map_fd(${lru})
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    mov %r6, %r0
    mov %r1, %r6
    lddw %r2, map_fd(${lru})
    mov %r3, 1
    call 169
    mov %r1, %r6
    lddw %r2, func(cb)
    call 170
    mov %r1, %r6
    mov %r2, 1000000
    mov %r3, 0
    call 171
    out:
    mov %r0, 0
    exit
    cb:
    mov %r0, 0
    exit`);
  const fd = k.bpf(proc, bpf_cmd.BPF_PROG_LOAD, {
    prog_type: bpf_prog_type.BPF_PROG_TYPE_SYSCALL,
    insns,
    insn_cnt: insns.length,
    license: "GPL",
    prog_flags: 1 << 4,
  });
  const attr: { prog_fd: number; retval?: number } = { prog_fd: fd };
  k.bpf(proc, bpf_cmd.BPF_PROG_TEST_RUN, attr);
  assert.equal(attr.retval, 0);
  const armed = () => [...bpfTimers(k).values()].filter((t) => hrtimer_is_queued(t.timer)).length;
  assert.equal(armed(), 1);
  // New keys push key 0 out of the LRU: its timer is cancelled and freed with it.
  for (let n = 1; n <= 32 && armed() > 0; n++) {
    k.bpf(proc, bpf_cmd.BPF_MAP_UPDATE_ELEM, { map_fd: lru, key: key(n), value: new Uint8Array(24), flags: 0 });
  }
  assert.equal(armed(), 0);
  const lookup = new Uint8Array(24);
  assert.throws(() => k.bpf(proc, bpf_cmd.BPF_MAP_LOOKUP_ELEM, { map_fd: lru, key: key(0), value: lookup }));
  k.close(proc, fd);
});
