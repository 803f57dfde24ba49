import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import { branchTarget, disassemble, formatInsn } from "../../src/isa/disasm.js";
import { ldImm64 } from "../../src/isa/insn.js";

const PROG = `
  lddw %r1, 0x1122334455667788
  mov %r0, 0
loop:
  add %r0, 1
  jlt %r0, 10, loop
  call local f
  ja out
  mov %r0, 7
out:
  exit
f:
  lddw %r2, func(g)
  mov %r0, 1
g:
  exit`;

test("one line per instruction: an ld_imm64 is printed once for its two slots", () => {
  const insns = [...ldImm64(1, 0x1122334455667788n), { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 }];
  assert.deepEqual(disassemble(insns), ["lddw %r1, 0x1122334455667788", "exit"]);
  assert.deepEqual(disassemble(insns, { syntax: "llvm" }), ["r1 = 0x1122334455667788 ll", "exit"]);
  assert.equal(formatInsn(insns, 2), "exit");
  assert.equal(formatInsn(insns, 0, "llvm"), "r1 = 0x1122334455667788 ll");
});

test("without labels, jumps and local calls print as slot distances", () => {
  const insns = assemble(PROG);
  assert.deepEqual(disassemble(insns), [
    "lddw %r1, 0x1122334455667788",
    "mov %r0, 0",
    "add %r0, 1",
    "jlt %r0, 10, -2",
    "call local +3",
    "ja +1",
    "mov %r0, 7",
    "exit",
    "lddw %r2, func(+2)",
    "mov %r0, 1",
    "exit",
  ]);
});

test("with labels, every jump, local call and function reference target is named and defined", () => {
  const insns = assemble(PROG);
  const conf = disassemble(insns, { labels: true });
  assert.deepEqual(conf, [
    "lddw %r1, 0x1122334455667788",
    "mov %r0, 0",
    "L3: add %r0, 1",
    "jlt %r0, 10, L3",
    "call local L9",
    "ja L8",
    "mov %r0, 7",
    "L8: exit",
    "L9: lddw %r2, func(L12)",
    "mov %r0, 1",
    "L12: exit",
  ]);
  const llvm = disassemble(insns, { syntax: "llvm", labels: true });
  assert.equal(llvm[3], "if r0 < 0xa goto -0x2 <L3>");
  assert.equal(llvm[4], "call pc+0x3 <L9>");
  assert.equal(llvm[8], "L9: r2 = func(pc+0x2 <L12>) ll");
  assert.deepEqual(assemble(conf.join("\n")), insns);
  assert.deepEqual(assemble(llvm.join("\n"), { syntax: "llvm" }), insns);
});

test("a target outside the program or inside an ld_imm64 gets no label (it could not be read back)", () => {
  const insns = assemble("ja +5\nja +1\nlddw %r0, 1\nexit");
  assert.deepEqual(disassemble(insns, { labels: true }), ["ja +5", "ja +1", "lddw %r0, 0x1", "exit"]);
  assert.equal(branchTarget({ kind: "ja", off: 5 }, 0), 6);
  assert.equal(branchTarget({ kind: "exit" }, 0), undefined);
  assert.equal(branchTarget({ kind: "call", callee: "helper", imm: 1, off: 0 }, 0), undefined);
});

test("objdump flavour prints what llvm-objdump prints even where it loses the source field", () => {
  const insns = assemble("call local +1\ncall runtime 16, 2\nlddw %r1, map_fd(5)\nexit\nexit");
  assert.deepEqual(disassemble(insns, { syntax: "llvm", objdump: true }), [
    "call 0x1",
    "call 0x10",
    "ld_pseudo\tr1, 0x1, 0x5",
    "exit",
    "exit",
  ]);
  assert.deepEqual(disassemble(insns, { syntax: "llvm" }).slice(0, 3), [
    "call pc+0x1",
    "call kfunc 0x10, 0x2",
    "r1 = map_fd(0x5) ll",
  ]);
});
