import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { EINVAL } from "../../src/uapi/errno.js";
import { repoRoot } from "./helpers.js";
import { checkRefusals, compareWithHost, hostSkip } from "./object_verdicts.js";

/**
 * References in bpf_loop callbacks (bpf/callback_refs.bpf.c): a callback that gives back what
 * it takes loads and runs with every reference returned; one that keeps a reference (from a
 * kfunc or out of a kptr) is refused at the main program's exit, naming the callback's
 * instruction, as 6.18 does. Iterations of a callback repeating an earlier one's state are not
 * an infinite loop.
 */

const OBJ = join(repoRoot(), "bpf/obj/callback_refs.bpf.o");
const GOOD = ["loop_release", "loop_xchg"];
const LEAK = [
  "Unreleased reference id=2 alloc_insn=12",
  "BPF_EXIT instruction in main prog would lead to reference leak",
];
const BAD: [string, number, string[], number][] = [
  ["loop_leak", EINVAL, LEAK, 10],
  [
    "loop_xchg_leak",
    EINVAL,
    ["Unreleased reference id=2 alloc_insn=19", "BPF_EXIT instruction in main prog would lead to reference leak"],
    7,
  ],
];

test("callback_refs.bpf.o: callbacks that give their references back load and run", () => {
  const k = new Kernel({ verifier: true });
  const h = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(OBJ);
  obj.load(h);
  const other = k.newProcess();
  const t = other.task;
  assert.ok(t);
  for (const name of GOOD) {
    const ctx = new Uint8Array(new Int32Array([other.pid, 0]).buffer);
    const attr = { prog_fd: obj.findProgram(name)?.fd ?? -1, ctx_in: ctx, ctx_size_in: ctx.length, retval: 0 };
    assert.equal(k.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr), 0, name);
    assert.ok(attr.retval > 0, `${name}: bpf_loop ran its iterations (${attr.retval})`);
    assert.equal(t.usage, 1, `${name}: every reference came back`);
  }
});

test("callback_refs: a reference a callback keeps is a leak at the main program's exit", () => {
  checkRefusals(OBJ, BAD);
});

test("the host kernel agrees on callback references", { skip: hostSkip() }, () => {
  compareWithHost(OBJ, GOOD, BAD);
});

test("a freed program's image goes with it: its callbacks' function addresses stop resolving", () => {
  const k = new Kernel({ verifier: true });
  const h = { kernel: k, process: k.newProcess() };
  const vm = k.vm;
  assert.ok(vm);
  for (let round = 0; round < 3; round++) {
    const obj = BpfObject.open(OBJ);
    obj.load(h);
    for (const name of GOOD) {
      const attr = { prog_fd: obj.findProgram(name)?.fd ?? -1, ctx_in: new Uint8Array(8), ctx_size_in: 8, retval: 0 };
      k.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr);
    }
    assert.ok(vm.liveFunctionAddresses() > 0, "loaded programs with callbacks have function addresses");
    obj.close();
    k.quiesce();
    // bpf_prog_free after the grace period: the VM keeps nothing of them (once it kept every
    // program it had ever loaded, and all they referenced, for the kernel's lifetime).
    assert.equal(vm.liveFunctionAddresses(), 0, `round ${round}`);
  }
});
