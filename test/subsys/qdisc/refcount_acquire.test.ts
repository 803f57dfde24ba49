/**
 * bpf_refcount_acquire on a reference the program owns cannot fail (is_kfunc_ret_null with
 * arg_owning_ref): bpf_qdisc_fq's enqueue, the kernel's selftest, uses a flow's second reference
 * without a NULL check. From a non-owning reference the result may be NULL. bpf/graph_refcount.bpf.c;
 * the host kernel loads the host build of the same source to the same verdicts.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { Kernel } from "../../../src/kernel/kernel.js";
import { bpf_prog_test_run_opts } from "../../../src/loader/bpf.js";
import { BpfObject } from "../../../src/loader/object.js";
import { EACCES } from "../../../src/uapi/errno.js";
import { checkRefusals, compareWithHost, hostSkip } from "../../verifier/object_verdicts.js";

const SIM = "bpf/obj/sim/graph_refcount.bpf.o";
const HOST = "bpf/obj/graph_refcount.bpf.o";
const BAD: [string, number, string[], number][] = [
  ["refcount_non_owning", EACCES, ["26: (7b) *(u64 *)(r6 +0) = r1", "R6 invalid mem access 'ptr_or_null_'"], 26],
];

test("refcount_acquire of an owned object: used without a NULL check, and it runs", { skip: !existsSync(SIM) }, () => {
  const k = new Kernel();
  const h = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(SIM);
  obj.load(h);
  const opts = { retval: -1 };
  assert.equal(bpf_prog_test_run_opts(h, obj.findProgram("refcount_owning")!.fd, opts), 0);
  assert.equal(opts.retval, 0);
});

test("refcount_acquire of a non-owning reference may be NULL: the unchecked write is refused", {
  skip: !existsSync(SIM),
}, () => {
  checkRefusals(SIM, BAD);
});

test("the host kernel agrees", { skip: hostSkip() || !existsSync(HOST) }, () => {
  compareWithHost(HOST, ["refcount_owning"], BAD);
});
