import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { xlatedDump, xlatedPlain } from "../../src/cli/prog_dump.js";
import { assemble } from "../../src/isa/asm.js";
import type { BpfProg } from "../../src/kernel/bpf.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { type BpfHandle, bpf_map_lookup_elem } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import type { VerifierResult } from "../../src/verifier/env.js";
import { BPF_MAX_LOOPS, BPF_REG_AX, fixupMayGoto } from "../../src/verifier/fixups.js";
import { VmMemory } from "../../src/vm/memory.js";
import type { Vm } from "../../src/vm/vm.js";
import { Vm as VmClass } from "../../src/vm/vm.js";
import { objPath } from "../elf/helpers.js";
import { TIERS } from "../vm/harness.js";

/**
 * may_goto's budget as the kernel keeps it: do_misc_fixups rewrites each may_goto into a count
 * in a hidden stack slot of its function, set to BPF_MAX_LOOPS when the function is entered.
 * bpf/may_goto_budget.bpf.c's loops have no bound but cond_break; what they count shows that each
 * call has its own budget (one count per run would leave the second call and the caller's loop
 * one pass each).
 */

const OBJ = "may_goto_budget";
const skipObj = existsSync(objPath(OBJ)) ? false : `bpf/obj/${OBJ}.bpf.o not built (needs clang-19)`;

function load(): { h: BpfHandle; obj: BpfObject } {
  const kernel = new Kernel({ subsystems: [] });
  const h = { kernel, process: kernel.newProcess() };
  const obj = BpfObject.open(objPath(OBJ));
  obj.load(h);
  return { h, obj };
}

function progOf(h: BpfHandle, obj: BpfObject, name: string): BpfProg {
  const p = obj.findProgram(name);
  assert.ok(p);
  const prog = [...h.kernel.prog_idr.values()].find((q) => (q as BpfProg).name === name) as BpfProg | undefined;
  assert.ok(prog);
  return prog;
}

function bss(h: BpfHandle, obj: BpfObject): DataView {
  const m = obj.internalMap(".bss");
  assert.ok(m);
  const out = new Uint8Array(m.valueSize);
  assert.equal(bpf_map_lookup_elem(h, m.fd, new Uint8Array(4), out), 0);
  return new DataView(out.buffer);
}

const MAX = BigInt(BPF_MAX_LOOPS);

test("may_goto_budget.bpf.o: each call of a function has its own budget, in every tier", { skip: skipObj }, () => {
  const { h, obj } = load();
  const vm = h.kernel.vm as Vm;
  for (const tier of TIERS) {
    for (const name of ["budgets", "nested"]) {
      const prog = progOf(h, obj, name);
      vm.setTier(prog.vmProg as never, tier);
      // Two calls spending 8M passes each: past the VM's default instruction budget.
      vm.run(prog.vmProg as never, {}, { budget: 20 * BPF_MAX_LOOPS });
    }
    const b = bss(h, obj);
    // spin_iters[0..1], main_iters, nested_total
    assert.equal(b.getBigUint64(0, true), MAX + 1n, `${tier}: the first call runs out of its budget`);
    assert.equal(b.getBigUint64(8, true), MAX + 1n, `${tier}: the second call starts with a whole budget`);
    assert.equal(b.getBigUint64(16, true), 1000n, `${tier}: the caller's loop keeps its own budget`);
    assert.equal(b.getBigUint64(24, true), 3000n, `${tier}: a callee's loop inside the caller's`);
  }
});

test("may_goto_budget.bpf.o: the xlated program is the rewritten one, the slot below each function's stack", {
  skip: skipObj,
}, () => {
  const { h, obj } = load();
  const prog = progOf(h, obj, "budgets");
  const vr = prog.aux.verifier_result as VerifierResult;
  // budgets and spin use 16 bytes of stack each; the budget's slot adds 8.
  assert.deepEqual(vr.stackDepth, [24, 24]);
  assert.ok(!prog.insnsi.some((i) => i.code === 0xe5), "no may_goto left");
  for (const start of vr.subprogStarts) {
    assert.deepEqual(prog.insnsi[start], { code: 0x7a, dst: 10, src: 0, off: -24, imm: BPF_MAX_LOOPS });
  }
  const ax = prog.insnsi.filter((i) => i.dst === BPF_REG_AX || i.src === BPF_REG_AX);
  assert.equal(ax.length, 8, "load, test, decrement and store for each of the two may_goto");
  // func_info follows the functions' starts.
  const fi = new DataView(prog.aux.func_info!.buffer, prog.aux.func_info!.byteOffset);
  assert.equal(fi.getUint32(8, true), vr.subprogStarts[1]);
});

test("a may_goto that starts a function: a jump back to it skips the budget's store (adjust_jmp_off)", () => {
  // f's first instruction is the may_goto its loop jumps back to.
  const insns = assemble("mov %r0, 0\ncall local f\nexit\nf:\nmay_goto out\nadd %r0, 1\nja f\nout:\nexit");
  const p = { insns, subprogStarts: [0, 3], stackDepth: [0, 0] };
  fixupMayGoto(p);
  assert.deepEqual(p.subprogStarts, [0, 3]);
  assert.deepEqual(p.stackDepth, [0, 8]);
  assert.deepEqual(p.insns[3], { code: 0x7a, dst: 10, src: 0, off: -8, imm: BPF_MAX_LOOPS });
  const ja = p.insns.findIndex((i) => i.code === 0x05);
  assert.equal(ja + 1 + p.insns[ja]!.off, 4, "the loop goes back to the load, not the store");
  for (const tier of TIERS) {
    const vm = new VmClass(new VmMemory(), { tier, budget: 8 * BPF_MAX_LOOPS });
    const P = vm.load(p.insns);
    assert.equal(vm.run(P).r0, MAX, tier);
  }
});

function hostSkip(): string | false {
  if (skipObj) return skipObj;
  if (process.platform !== "linux" || process.getuid?.() !== 0) return "needs root for bpf(2)";
  if (spawnSync("bpftool", ["version"]).status !== 0) return "bpftool is not installed";
  if (!existsSync("/sys/fs/bpf")) return "no bpffs";
  return false;
}

/** Map ids and call targets' names differ between kernels; the instructions must not. */
function normalise(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.replace(/map\[id:\d+\]/g, "map").replace(/(call [^#\s]+)#\S+$/, "$1"))
    .map((l) => l.replace(/call (unknown|arch_bpf_timed_may_goto)$/, "call timed_may_goto"))
    .filter((l) => l.length > 0);
}

test("the host kernel's xlated programs (x86-64: the timed form) are ours with bpf_jit_supports_timed_may_goto", {
  skip: hostSkip(),
}, async () => {
  const dir = mkdtempSync("/sys/fs/bpf/structops-maygoto-");
  try {
    const r = spawnSync("bpftool", ["prog", "loadall", objPath(OBJ), join(dir, "p")], { encoding: "utf8" });
    if (r.status !== 0 && /Operation not permitted/.test(r.stderr)) return;
    assert.equal(r.status, 0, r.stderr);
    // x86-64's form calls arch_bpf_timed_may_goto, which the VM does not have: dump only.
    // The CLI's session is the handle bpftool's printers read the program back through.
    const { StructOpsSession } = await import("../../src/cli/kernel_session.js");
    const s = new StructOpsSession();
    s.kernel.timedMayGoto = true;
    s.kernel.jit = undefined;
    const obj = BpfObject.open(objPath(OBJ));
    obj.load({ kernel: s.kernel, process: s.proc });
    const h = { kernel: s.kernel, process: s.proc };
    for (const name of ["budgets", "nested"]) {
      const host = spawnSync("bpftool", ["prog", "dump", "xlated", "pinned", join(dir, "p", name)], {
        encoding: "utf8",
      });
      assert.equal(host.status, 0, host.stderr);
      const id = progOf(h, obj, name).id;
      const ours = xlatedPlain(await xlatedDump(s, id), false);
      assert.deepEqual(normalise(ours), normalise(host.stdout), name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
