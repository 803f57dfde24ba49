import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import { BpfError, E2BIG, EFAULT, EINVAL, EPERM, isBpfError } from "../../src/uapi/errno.js";
import { VmBudgetExceeded, VmFault } from "../../src/vm/fault.js";
import type { HelperCall } from "../../src/vm/helper.js";
import { VmMemory } from "../../src/vm/memory.js";
import type { HelperFn, LoadOpts } from "../../src/vm/program.js";
import { Vm } from "../../src/vm/vm.js";
import { runIn, TIERS } from "./harness.js";

const errno = (n: number) => (e: unknown) => isBpfError(e) && e.errno === n;

for (const tier of TIERS) {
  const run = (asm: string, opts: LoadOpts = {}, args = {}) => runIn(tier, asm, args, opts).result.r0;

  test(`[${tier}] helpers are called by id with r1-r5 and set r0`, () => {
    const seen: unknown[] = [];
    const helpers = new Map<number, HelperFn>([
      [
        7,
        (c: HelperCall) => {
          seen.push(c.id, c.insnIdx, c.arg(1), c.argNum(2), c.argLo(3), c.argHi(3), c.arg(5));
          c.setRet(-22);
        },
      ],
    ]);
    const r0 = run("mov %r1, -1\nmov %r2, 300\nlddw %r3, 0x1234567800000009\nmov %r4, 0\nmov %r5, 5\ncall 7\nexit", {
      helpers,
    });
    assert.equal(r0, 2n ** 64n - 22n);
    assert.deepEqual(seen, [7, 6, 2n ** 64n - 1n, 300, 9, 0x12345678, 5n]);
  });

  test(`[${tier}] kfuncs are called by BTF id; unknown helpers and kfuncs are rejected at load`, () => {
    const kfuncs = { 1234: (c: HelperCall) => c.setRet(c.arg(1) * 2n) };
    assert.equal(run("mov %r1, 21\ncall runtime 1234\nexit", { kfuncs }), 42n);
    assert.throws(
      () => run("call 99\nexit"),
      (e: unknown) => errno(EINVAL)(e) && /unknown#99/.test((e as Error).message),
    );
    assert.throws(() => run("call runtime 5\nexit", { kfuncs }), errno(EINVAL));
  });

  test(`[${tier}] a helper's bad memory access faults at the call instruction`, () => {
    const helpers = { 1: (c: HelperCall) => c.setRet(c.mem.readU64(c.argNum(1))) };
    assert.throws(
      () => run("mov %r0, 0\nmov %r1, 16\ncall 1\nexit", { helpers, name: "h" }),
      (e: unknown) =>
        e instanceof VmFault &&
        e.insn === 2 &&
        e.addr === 16n &&
        /h: insn 2: invalid access of 8 bytes at 0x10/.test(e.message),
    );
  });

  test(`[${tier}] a helper's BpfError stops the program`, () => {
    const helpers = {
      1: () => {
        throw new BpfError(EPERM, "not allowed");
      },
    };
    assert.throws(() => run("call 1\nexit", { helpers }), errno(EPERM));
  });

  test(`[${tier}] helper arguments are r1..r5`, () => {
    const helpers = { 1: (c: HelperCall) => c.setRet(c.arg(0)) };
    assert.throws(() => run("call 1\nexit", { helpers }), errno(EINVAL));
  });

  test(`[${tier}] bpf-to-bpf calls pass r1-r5, preserve r6-r9 and give each frame its own stack`, () => {
    const asm = `
      mov %r6, 6
      mov %r9, 9
      stdw [%r10-8], 100
      mov %r1, 1
      mov %r5, 5
      call local f
      ldxdw %r2, [%r10-8]
      add %r0, %r2
      add %r0, %r6
      add %r0, %r9
      exit
    f:
      stdw [%r10-8], 1000
      mov %r6, 0
      mov %r9, 0
      mov %r0, %r1
      add %r0, %r5
      exit`;
    assert.equal(run(asm), 6n + 100n + 6n + 9n);
  });

  test(`[${tier}] eight frames are allowed, a ninth faults`, () => {
    const chain = (depth: number) => {
      let s = "mov %r0, 0\ncall local f1\nexit\n";
      for (let i = 1; i < depth; i++) s += `f${i}:\nadd %r0, 1\n${i + 1 < depth ? `call local f${i + 1}\n` : ""}exit\n`;
      return s;
    };
    assert.equal(run(chain(8)), 7n);
    assert.throws(
      () => run(chain(9)),
      (e: unknown) => errno(E2BIG)(e) && /call stack of 9 frames is too deep/.test((e as Error).message),
    );
  });

  test(`[${tier}] recursion is bounded by the frame limit, not by the host stack`, () => {
    assert.throws(() => run("f:\ncall local f\nexit"), errno(E2BIG));
  });

  test(`[${tier}] callx reaches a helper by id or a function of the program by address`, () => {
    const helpers = { 5: (c: HelperCall) => c.setRet(c.arg(1) + 1n) };
    assert.equal(run("mov %r1, 41\nmov %r2, 5\ncall %r2\nexit", { helpers }), 42n);
    assert.equal(run("lddw %r2, func(g)\nmov %r1, 9\ncall %r2\nadd %r0, 1\nexit\ng:\nmov %r0, %r1\nexit"), 10n);
    assert.throws(() => run("mov %r2, 77\ncall %r2\nexit", { helpers }), errno(EFAULT));
  });

  test(`[${tier}] an instruction budget stops runaway programs`, () => {
    const { vm, prog } = runIn(tier, "mov %r0, 0\nexit");
    assert.equal(vm.run(prog, {}, { budget: 2 }).insnsExecuted, 2);
    const loop = vm.load(assemble("l:\nja l\nexit"), { name: "spin" });
    assert.throws(
      () => vm.run(loop, {}, { budget: 1000 }),
      (e: unknown) =>
        e instanceof VmBudgetExceeded &&
        e.errno === E2BIG &&
        e.insn === 0 &&
        /spin: instruction budget of 1000 exhausted at insn 0/.test(e.message),
    );
  });

  test(`[${tier}] insnsExecuted counts instructions (ld_imm64 once)`, () => {
    const { result } = runIn(tier, "lddw %r0, 1\nmov %r1, 3\nl:\nsub %r1, 1\njne %r1, 0, l\nexit");
    assert.equal(result.insnsExecuted, 1 + 1 + 3 * 2 + 1);
  });

  test(`[${tier}] callbacks: a helper runs a BPF_PSEUDO_FUNC function (bpf_loop)`, () => {
    // bpf_loop(nr, callback, ctx, flags): calls callback(i, ctx) until it returns 1.
    const helpers = {
      181: (c: HelperCall) => {
        let i = 0;
        for (; i < c.argNum(1); i++) if (c.invokeCallback(c.arg(2), [i, c.arg(3)]) === 1n) break;
        c.setRet(i);
      },
    };
    const asm = `
      stdw [%r10-8], 0
      mov %r1, 10
      lddw %r2, func(cb)
      mov %r3, %r10
      add %r3, -8
      mov %r4, 0
      call 181
      ldxdw %r1, [%r10-8]
      lsh %r1, 8
      or %r0, %r1
      exit
    cb:
      ldxdw %r3, [%r2]
      add %r3, %r1
      stxdw [%r2], %r3
      mov %r0, 0
      jne %r1, 4, +1
      mov %r0, 1
      exit`;
    // Iterations 0..4 run; the sum 0+1+2+3+4 = 10 lands in the caller's stack.
    assert.equal(run(asm, { helpers }), (10n << 8n) | 4n);
  });

  test(`[${tier}] memory growth inside a helper is seen by the running program`, () => {
    const mem = new VmMemory({ initialBytes: 1 << 17 });
    const vm = new Vm(mem, { tier });
    const helpers = {
      1: (c: HelperCall) => {
        const r = c.mem.alloc(4 << 20, { perm: "rw", kind: "data" });
        c.mem.writeU32(r.addr + 16, 77);
        c.setRet(r.addr);
      },
    };
    const p = vm.load(assemble("stw [%r10-4], 5\ncall 1\nldxw %r1, [%r0+16]\nldxw %r0, [%r10-4]\nadd %r0, %r1\nexit"), {
      helpers,
    });
    assert.equal(vm.run(p).r0, 82n);
  });

  test(`[${tier}] fast paths: runNumber returns r0 signed, runU32 its low half`, () => {
    const { vm, prog } = runIn(tier, "mov %r0, %r1\nadd %r0, %r2\nexit");
    assert.equal(vm.runNumber(prog, 5, -27), -22);
    assert.equal(vm.runU32(prog, 5, -27), 0xffffffea);
    assert.equal(vm.runNumber(prog, 2 ** 40, 1), 2 ** 40 + 1);
    vm.runNumber(prog, 5, -27);
    assert.equal(vm.lastInsns, 3);
    assert.equal(vm.lastR0Lo, -22);
    assert.equal(vm.lastR0Hi, -1);
    assert.equal(vm.run(prog, 7).r0, 7n, "a bare number is r1 (a ctx address)");
  });
}

test("load rejects jumps out of range, into an ld_imm64, and falling off the end", () => {
  const vm = new Vm(new VmMemory());
  assert.throws(() => vm.load(assemble("ja +5\nexit")), errno(EINVAL));
  assert.throws(() => vm.load(assemble("ja +1\nlddw %r0, 1\nexit")), errno(EINVAL));
  assert.throws(
    () => vm.load(assemble("mov %r0, 0")),
    (e: unknown) => errno(EINVAL)(e) && /last insn/.test(String(e)),
  );
  assert.throws(() => vm.load([]), errno(EINVAL));
  assert.throws(() => vm.load([{ code: 0xff, dst: 0, src: 0, off: 0, imm: 0 }, ...assemble("exit")]), errno(EINVAL));
});

test("very long programs run in the interpreter even when the compiling tier is asked for", () => {
  const vm = new Vm(new VmMemory(), { tier: "jit", jitMaxInsns: 4 });
  const short = vm.load(assemble("mov %r0, 1\nexit"));
  const long = vm.load(assemble("mov %r0, 1\nadd %r0, 1\nadd %r0, 1\nadd %r0, 1\nexit"));
  assert.equal(short.tier, "jit");
  assert.equal(long.tier, "interp");
  assert.equal(vm.run(long).r0, 4n);
});

test("an unloaded program no longer runs and its function addresses stop resolving", () => {
  const vm = new Vm(new VmMemory());
  const P = vm.load(assemble("lddw %r1, func(cb)\nmov %r0, 1\nexit\ncb:\nmov %r0, 2\nexit"), { name: "gone" });
  const addr = vm.funcAddress(P, 4);
  assert.equal(vm.invokeCallback(addr, []), 2n);
  vm.unload(P);
  assert.throws(() => vm.invokeCallback(addr, []), errno(EFAULT));
  assert.throws(
    () => vm.run(P),
    (e: unknown) => errno(EINVAL)(e) && /gone: program was unloaded/.test(String(e)),
  );
});
