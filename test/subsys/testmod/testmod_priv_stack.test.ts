/**
 * Private stacks, checked as the kernel's struct_ops_private_stack selftests check them, on our own
 * programs (bpf/testmod_priv_stack.bpf.c, bpf/testmod_priv_stack_bad.bpf.c): bpf_testmod_ops3's
 * check_member asks for them for test_1, whose programs may then use more than 512 bytes along a
 * call chain (private_stack); test_2's may not (private_stack_fail); and the trampoline of a
 * program on private stacks skips a nested run of it, counting a recursion miss
 * (private_stack_recur).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { BpfProg } from "../../../src/kernel/bpf.js";
import type { BpfObject } from "../../../src/loader/object.js";
import { bpfMapAttachStructOps } from "../../../src/loader/struct_ops_attach.js";
import { bpfTestmodTestRead } from "../../../src/subsys/testmod/bpf_testmod.js";
import { EACCES } from "../../../src/uapi/errno.js";
import { bootTestmod, bss32, openObj, skipFor, type TestmodRig } from "./helpers.js";

function kprog(r: TestmodRig, obj: BpfObject, name: string): BpfProg {
  return r.proc.files.get(obj.findProgram(name)!.fd).private_data as BpfProg;
}

test("private_stack: test_1 runs 608 bytes of stack along its calls, then test_2 through the kfunc", {
  skip: skipFor("testmod_priv_stack"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_priv_stack");
  obj.load(r.h);
  const big = kprog(r, obj, "big_test_1");
  const stack = (big.aux.verifier_result as { stackDepth: number[] }).stackDepth;
  assert.ok(stack[0] + stack[1] > 512, `stack ${stack}`);
  assert.equal(big.aux.jits_use_priv_stack, true);
  // test_2 needs no private stack: 384 bytes in all.
  assert.equal(kprog(r, obj, "mid_test_2").aux.jits_use_priv_stack, false);
  const link = bpfMapAttachStructOps(obj.findMap("wide")!, r.h);
  bpfTestmodTestRead(r.k);
  assert.equal(bss32(r, obj, "first"), 15);
  assert.equal(bss32(r, obj, "second"), 40);
  assert.equal(big.recursion_misses, 0);
  link.detach();
});

test("private_stack_fail: test_2 (no private stack) with 608 bytes along its calls is refused", {
  skip: skipFor("testmod_priv_stack_bad"),
}, () => {
  const r = bootTestmod();
  const { obj, log } = openObj("testmod_priv_stack_bad");
  let errno = 0;
  try {
    obj.load(r.h);
  } catch (e) {
    errno = (e as { errno: number }).errno;
  }
  assert.equal(errno, EACCES);
  assert.match(log.join("\n"), /combined stack size of 2 calls is \d+\. Too large/);
});

test("private_stack_recur: test_1 calling test_1 again: the nested run is a recursion miss", {
  skip: skipFor("testmod_priv_stack"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_priv_stack");
  obj.load(r.h);
  const again = kprog(r, obj, "again_test_1");
  assert.equal(again.aux.jits_use_priv_stack, true);
  const link = bpfMapAttachStructOps(obj.findMap("again")!, r.h);
  bpfTestmodTestRead(r.k);
  assert.equal(bss32(r, obj, "runs"), 1);
  assert.equal(again.recursion_misses, 1);
  bpfTestmodTestRead(r.k);
  assert.equal(bss32(r, obj, "runs"), 2);
  assert.equal(again.recursion_misses, 2);
  link.detach();
});
