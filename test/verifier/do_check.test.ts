import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import { bpf_map_type } from "../../src/uapi/bpf.js";
import { EINVAL } from "../../src/uapi/errno.js";
import type { VerifierEnv, VerifierMap } from "../../src/verifier/env.js";
import { bpfBaseFuncProto } from "../../src/verifier/helper_protos.js";
import { resolveLdImm64 } from "../../src/verifier/vector.js";
import { bpfCheck } from "../../src/verifier/verifier.js";

const ARRAY: VerifierMap = {
  type: bpf_map_type.BPF_MAP_TYPE_ARRAY,
  keySize: 4,
  valueSize: 16,
  maxEntries: 1,
  flags: 0,
};

function env(asm: string, extra: Partial<VerifierEnv> = {}): VerifierEnv {
  const insns = assemble(asm);
  return {
    insns,
    ldImm64Aux: resolveLdImm64(insns),
    progType: 1,
    privileged: true,
    gpl: true,
    logLevel: 2,
    maps: [ARRAY],
    ops: {
      name: "test",
      isValidAccess: (off, size) => (off >= 0 && off + size <= 16 ? {} : undefined),
      getFuncProto: (id) => bpfBaseFuncProto(id, true),
    },
    ...extra,
  };
}

const LOOKUP = `stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, map_fd(0)
call 1`;

test("a bounded loop verifies: the counter's range decides the exit", () => {
  const r = bpfCheck(
    env(`mov %r0, 0
     mov %r1, 0
     loop:
     add %r0, 3
     add %r1, 1
     jlt %r1, 100, loop
     exit`),
  );
  assert.equal(r.ok, true, r.log);
  assert.ok(r.stats.processed > 300 && r.stats.processed < 1000, `${r.stats.processed}`);
});

test("state pruning keeps a chain of diamonds linear", () => {
  const blocks: string[] = ["mov %r0, 0"];
  for (let i = 0; i < 30; i++) {
    blocks.push(
      `ldxb %r6, [%r1+${i % 16}]`,
      `jgt %r6, ${i}, a${i}`,
      "add %r0, 1",
      `ja b${i}`,
      `a${i}:`,
      "add %r0, 2",
      `b${i}:`,
    );
  }
  blocks.push("exit");
  const r = bpfCheck(env(blocks.join("\n")));
  assert.equal(r.ok, true, r.log);
  // 2^30 paths without pruning; each join is proven once per incoming state shape.
  assert.ok(r.stats.processed < 2000, `${r.stats.processed}`);
  assert.match(r.log, /: safe$/m);
});

test("a value that decides a branch is tracked exactly: no pruning across different constants", () => {
  const r = bpfCheck(
    env(`ldxdw %r6, [%r1]
     mov %r7, 1
     jgt %r6, 5, a
     mov %r7, 2
     a:
     jeq %r7, 2, b
     mov %r0, 0
     exit
     b:
     ldxdw %r0, [%r1+16]
     exit`),
  );
  assert.equal(r.ok, false);
  assert.equal(r.error?.message, "invalid bpf_context access off=16 size=8");
  assert.equal(r.error?.context.insn, 7);
});

test("a null check applies to every copy of the pointer", () => {
  const r = bpfCheck(
    env(`${LOOKUP}
     mov %r6, %r0
     jeq %r0, 0, out
     ldxdw %r0, [%r6+8]
     exit
     out:
     mov %r0, 0
     exit`),
  );
  assert.equal(r.ok, true, r.log);
});

test("spilled pointers come back with their type; zeroed slots read as zero", () => {
  const r = bpfCheck(
    env(`stxdw [%r10-8], %r1
     stdw [%r10-16], 0
     ldxdw %r2, [%r10-8]
     ldxdw %r0, [%r2+8]
     ldxdw %r3, [%r10-16]
     add %r0, %r3
     exit`),
  );
  assert.equal(r.ok, true, r.log);
  assert.match(r.log, /R2=ctx\(\)/);
  assert.match(r.log, /R3=0/);
});

test("a variable offset into a map value verifies once bounded", () => {
  const r = bpfCheck(
    env(`${LOOKUP}
     jeq %r0, 0, out
     ldxdw %r1, [%r0]
     and %r1, 7
     add %r0, %r1
     ldxb %r0, [%r0+8]
     exit
     out:
     mov %r0, 0
     exit`),
  );
  assert.equal(r.ok, true, r.log);
  assert.match(r.log, /R0=map_value\(ks=4,vs=16,smin=smin32=0,smax=umax=smax32=umax32=7,var_off=\(0x0; 0x7\)\)/);
});

test("bpf-to-bpf calls: arguments in, r6-r9 kept, r0 out, r1-r5 gone", () => {
  const ok = bpfCheck(
    env(`mov %r6, 7
     mov %r1, 5
     call local f
     add %r0, %r6
     exit
     f:
     mov %r0, %r1
     exit`),
  );
  assert.equal(ok.ok, true, ok.log);
  assert.match(ok.log, /caller:/);
  const bad = bpfCheck(
    env(`mov %r1, 5
     call local f
     mov %r0, %r1
     exit
     f:
     mov %r0, 0
     exit`),
  );
  assert.equal(bad.error?.message, "R1 !read_ok");
  assert.equal(bad.error?.context.insn, 2);
});

test("a callee cannot return a pointer to its own stack", () => {
  const r = bpfCheck(
    env(`call local f
     exit
     f:
     mov %r0, %r10
     exit`),
  );
  assert.equal(r.error?.message, "cannot return stack pointer to the caller frame");
});

test("bpf_loop: the callback is verified, its return value must be 0 or 1", () => {
  const ok = bpfCheck(
    env(`mov %r1, 10
     lddw %r2, func(cb)
     mov %r3, 0
     mov %r4, 0
     call 181
     exit
     cb:
     mov %r0, 0
     exit`),
  );
  assert.equal(ok.ok, true, ok.log);
  const bad = bpfCheck(
    env(`mov %r1, 10
     lddw %r2, func(cb)
     mov %r3, 0
     mov %r4, 0
     call 181
     exit
     cb:
     mov %r0, 2
     exit`),
  );
  assert.equal(bad.error?.message, "At callback return the register R0 has smin=2 smax=2 should have been in [0, 1]");
  assert.equal(bad.error?.errno, EINVAL);
});

test("the return value range of the program type is enforced", () => {
  const e = env("mov %r0, 2\nexit");
  e.ops = { ...e.ops!, returnRange: [0n, 1n] };
  const r = bpfCheck(e);
  assert.equal(r.error?.message, "At program exit the register R0 has smin=2 smax=2 should have been in [0, 1]");
  assert.equal(r.error?.context.insn, 1);
});

test("loads from a frozen read-only map are constants", () => {
  const rodata: VerifierMap = {
    ...ARRAY,
    rdonlyProg: true,
    frozen: true,
    valueBytes: new Uint8Array([42, 0, 0, 0, 0, 0, 0, 0]),
  };
  const r = bpfCheck(
    env(
      `lddw %r1, map_value(0, 0)
       ldxdw %r0, [%r1]
       exit`,
      { maps: [rodata] },
    ),
  );
  assert.equal(r.ok, true, r.log);
  assert.match(r.log, /R0=42/);
});

test("32-bit arithmetic on a pointer is refused", () => {
  const r = bpfCheck(env("mov %r0, %r10\nadd32 %r0, 8\nexit", { allowPtrLeaks: false }));
  assert.equal(r.error?.message, "R0 32-bit pointer arithmetic prohibited");
});

test("the log reads like the kernel's: instruction lines, state comments, branch headers", () => {
  const r = bpfCheck(
    env(
      `${LOOKUP}
     jeq %r0, 0, out
     ldxdw %r0, [%r0]
     exit
     out:
     mov %r0, 0
     exit`,
      { maps: [{ ...ARRAY, type: bpf_map_type.BPF_MAP_TYPE_HASH }] },
    ),
  );
  assert.equal(r.ok, true);
  const lines = r.log.split("\n");

  // As the kernel prints it: the comment at column 38, registers read as well as written.
  assert.ok(lines.includes("1: (bf) r2 = r10                      ; R2=fp0 R10=fp0"), r.log);
  assert.ok(lines.includes("0: (62) *(u32 *)(r10 -4) = 0          ; R10=fp0 fp-8=0000????"), r.log);
  assert.ok(
    lines.some((l) => /^5: \(85\) call bpf_map_lookup_elem#1 +; R0=map_value_or_null\(id=1/.test(l)),
    r.log,
  );
  assert.ok(
    lines.some((l) => /^from 6 to 9: R0(_w)?=0 R10=fp0/.test(l)),
    r.log,
  );
  assert.match(
    lines[lines.length - 2],
    /^processed \d+ insns \(limit 1000000\) max_states_per_insn \d+ total_states \d+ peak_states \d+ mark_read \d+$/,
  );
});

test("func_info must describe the subprograms the verifier finds", () => {
  const asm = "call local f\nexit\nf:\nmov %r0, 0\nexit";
  assert.equal(
    bpfCheck(
      env(asm, {
        funcInfo: [
          { insnOff: 0, typeId: 1 },
          { insnOff: 2, typeId: 2 },
        ],
      }),
    ).ok,
    true,
  );
  const r = bpfCheck(env(asm, { funcInfo: [{ insnOff: 0, typeId: 1 }] }));
  assert.equal(r.error?.message, "number of funcs in func_info doesn't match number of subprogs");
  const r2 = bpfCheck(
    env(asm, {
      funcInfo: [
        { insnOff: 0, typeId: 1 },
        { insnOff: 3, typeId: 2 },
      ],
    }),
  );
  assert.equal(r2.error?.message, "func_info BTF section doesn't match subprog layout in BPF program");
  assert.equal(r2.error?.context.insn, 3);
});

test("log level 2 names the subprograms and prints states at prune points", () => {
  const r = bpfCheck(env("call local f\nexit\nf:\nmov %r0, 0\nexit", { logLevel: 2 }));
  assert.match(r.log, /^func#0 @0\nfunc#1 @2\n/);
  assert.match(r.log, /^0: R1=ctx\(\) R10=fp0$/m);
  const l1 = bpfCheck(env("call local f\nexit\nf:\nmov %r0, 0\nexit", { logLevel: 1 }));
  assert.doesNotMatch(l1.log, /func#/);
});

test("bpf_loop: later iterations see what earlier ones left in the context", () => {
  // Iteration 1 reads 0 from the context and stores 64 there; iteration 2 would index with 64.
  const r = bpfCheck(
    env(`stdw [%r10-8], 0
     mov %r1, 2
     lddw %r2, func(cb)
     mov %r3, %r10
     add %r3, -8
     mov %r4, 0
     call 181
     mov %r0, 0
     exit
     cb:
     ldxdw %r3, [%r2]
     stdw [%r2], 64
     mov %r4, %r10
     add %r4, -16
     stdw [%r10-16], 0
     add %r4, %r3
     ldxb %r0, [%r4]
     mov %r0, 0
     exit`),
  );
  assert.equal(r.ok, false, r.log);
  assert.equal(r.error?.message, "math between fp pointer and register with unbounded min value is not allowed");
  const ok = bpfCheck(
    env(`stdw [%r10-8], 0
     mov %r1, 100
     lddw %r2, func(cb)
     mov %r3, %r10
     add %r3, -8
     mov %r4, 0
     call 181
     ldxdw %r0, [%r10-8]
     exit
     cb:
     ldxdw %r3, [%r2]
     add %r3, 1
     stxdw [%r2], %r3
     mov %r0, 0
     exit`),
  );
  assert.equal(ok.ok, true, ok.log);
  assert.ok(ok.stats.processed < 200, `${ok.stats.processed}`);
});

test("only some program types may be sleepable", () => {
  const r = bpfCheck(env("mov %r0, 0\nexit", { sleepable: true }));
  assert.equal(
    r.error?.message,
    "Only fentry/fexit/fmod_ret, lsm, iter, uprobe, and struct_ops programs can be sleepable",
  );
  assert.equal(r.error?.errno, EINVAL);
});

test("a value that comes back through a spill is tracked exactly where it is used", () => {
  // The safe path (r7 = 0) is walked first; the join must not prune the r7 = 100 path, whose
  // value reaches the pointer arithmetic through a spill and a fill.
  const r = bpfCheck(
    env(
      `ldxdw %r6, [%r1]
     mov %r7, 100
     jgt %r6, 5, a
     mov %r7, 0
     a:
     stxdw [%r10-16], %r7
     ${LOOKUP}
     jeq %r0, 0, out
     ldxdw %r8, [%r10-16]
     add %r0, %r8
     ldxb %r0, [%r0]
     exit
     out:
     mov %r0, 0
     exit`,
      { testStateFreq: true },
    ),
  );
  assert.equal(r.ok, false, r.log);
  assert.equal(r.error?.message, "R0 min value is outside of the allowed memory range");
  assert.match(r.log, /invalid access to map value, value_size=16 off=100 size=1/);
});

test("scalar += pointer: the scalar's value is tracked exactly too", () => {
  // As the spill test, with the scalar on the left of the addition.
  const r = bpfCheck(
    env(
      `ldxdw %r6, [%r1]
     mov %r7, 100
     jgt %r6, 5, a
     mov %r7, 0
     a:
     ${LOOKUP}
     jeq %r0, 0, out
     add %r7, %r0
     ldxb %r0, [%r7]
     exit
     out:
     mov %r0, 0
     exit`,
      { testStateFreq: true },
    ),
  );
  assert.equal(r.ok, false, r.log);
  assert.equal(r.error?.message, "R7 min value is outside of the allowed memory range");
});

test("a callee's store into its caller's stack is tracked exactly", () => {
  // f stores either 0 or 100 into the caller's slot; the caller then indexes a map value by it.
  const r = bpfCheck(
    env(
      `ldxdw %r2, [%r1]
     stdw [%r10-16], 0
     mov %r1, %r10
     add %r1, -16
     call local f
     ${LOOKUP}
     jeq %r0, 0, out
     ldxdw %r8, [%r10-16]
     add %r0, %r8
     ldxb %r0, [%r0]
     exit
     out:
     mov %r0, 0
     exit
     f:
     mov %r3, 100
     jgt %r2, 5, g
     mov %r3, 0
     g:
     jset %r2, 1, h
     h:
     stxdw [%r1], %r3
     mov %r0, 0
     exit`,
      { testStateFreq: true },
    ),
  );
  assert.equal(r.ok, false, r.log);
  assert.equal(r.error?.message, "R0 min value is outside of the allowed memory range");
});

test("bpf_spin_lock: lock, update the value, unlock; unlocking without a lock is refused", () => {
  const maps: VerifierMap[] = [{ ...ARRAY, type: bpf_map_type.BPF_MAP_TYPE_HASH, spinLockOff: 0 }];
  const ok = bpfCheck(
    env(
      `${LOOKUP}
       jeq %r0, 0, out
       mov %r6, %r0
       mov %r1, %r6
       call 93
       stdw [%r6+8], 1
       mov %r1, %r6
       call 94
       out:
       mov %r0, 0
       exit`,
      { maps },
    ),
  );
  assert.equal(ok.ok, true, ok.log);
  const bad = bpfCheck(
    env(
      `${LOOKUP}
       jeq %r0, 0, out
       mov %r1, %r0
       call 94
       out:
       mov %r0, 0
       exit`,
      { maps },
    ),
  );
  assert.equal(bad.error?.message, "bpf_spin_unlock without taking a lock");
  assert.equal(bad.error?.context.insn, 8);
  const wrongOff = bpfCheck(
    env(
      `${LOOKUP}
       jeq %r0, 0, out
       mov %r1, %r0
       add %r1, 8
       call 93
       out:
       mov %r0, 0
       exit`,
      { maps },
    ),
  );
  assert.equal(wrongOff.error?.message, "off 8 doesn't point to 'struct bpf_spin_lock' that is at 0");
});

test("helpers may take a whole map value that holds a bpf_spin_lock", () => {
  const maps: VerifierMap[] = [{ ...ARRAY, type: bpf_map_type.BPF_MAP_TYPE_HASH, spinLockOff: 0 }];
  const r = bpfCheck(
    env(
      `${LOOKUP}
       jeq %r0, 0, out
       mov %r3, %r0
       mov %r2, %r10
       add %r2, -4
       lddw %r1, map_fd(0)
       mov %r4, 0
       call 2
       out:
       mov %r0, 0
       exit`,
      { maps },
    ),
  );
  assert.equal(r.ok, true, r.log);
});

test("an array lookup with a constant key in bounds needs no null check", () => {
  const prog = (key: number) =>
    bpfCheck(
      env(`stw [%r10-4], ${key}
       mov %r2, %r10
       add %r2, -4
       lddw %r1, map_fd(0)
       call 1
       ldxdw %r0, [%r0]
       exit`),
    );
  // stw of a non-zero constant leaves STACK_MISC bytes: the key is unknown then.
  assert.equal(prog(0).ok, true, prog(0).log);
  const r = prog(5);
  assert.equal(r.error?.message, "R0 invalid mem access 'map_value_or_null'");
});

test("log level 1 keeps the path to the error only; a verified program leaves the statistics", () => {
  const ok = bpfCheck(env("ldxdw %r0, [%r1]\njgt %r0, 5, a\nmov %r0, 1\na:\nexit", { logLevel: 1 }));
  assert.equal(ok.ok, true);
  assert.match(
    ok.log,
    /^processed \d+ insns \(limit 1000000\) max_states_per_insn \d+ total_states \d+ peak_states \d+ mark_read \d+\n$/,
  );
  // The fall-through path (r1 = 0) is proven first; its lines are gone once the jump is walked.
  const bad = bpfCheck(
    env("ldxdw %r2, [%r1]\nmov %r0, 0\njgt %r2, 5, a\nmov %r0, 1\nexit\na:\nldxdw %r0, [%r1+16]\nexit", {
      logLevel: 1,
    }),
  );
  assert.equal(bad.error?.message, "invalid bpf_context access off=16 size=8");
  assert.doesNotMatch(bad.log, /^3: \(b7\) r0 = 1/m);
  // 6.18 prints the popped state inline, after the branch instruction pop_log cut back to.
  assert.match(bad.log, /^2: \(25\) if r2 > 0x5 goto pc\+2 5: R0=0 R1=ctx\(\) R2=scalar\(umin=6\) R10=fp0\n5: /m);
  assert.doesNotMatch(bad.log, /^from /m);
  const l2 = bpfCheck(
    env("ldxdw %r2, [%r1]\nmov %r0, 0\njgt %r2, 5, a\nmov %r0, 1\nexit\na:\nldxdw %r0, [%r1+16]\nexit", {
      logLevel: 2,
    }),
  );
  assert.match(l2.log, /^3: \(b7\) r0 = 1/m);
  // Level 2 heads the popped path with "from X to Y:" and repeats the state at Y.
  assert.match(l2.log, /^\nfrom 2 to 5: (R\S+ )+R10=fp0\n5: (R\S+ )+R10=fp0\n5: \(79\)/m);
});
