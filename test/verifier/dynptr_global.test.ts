import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { EACCES, EINVAL } from "../../src/uapi/errno.js";
import { repoRoot } from "./helpers.js";
import { checkRefusals, compareWithHost, hostSkip, loadOne } from "./object_verdicts.js";

/**
 * Global functions taking `struct bpf_dynptr *` (bpf/dynptr_global.bpf.c): the caller passes an
 * initialized dynptr (process_dynptr_func), the callee gets a CONST_PTR_TO_DYNPTR it reads and
 * writes through but may not release, re-initialise or dereference; compared with the host kernel.
 */

const OBJ = join(repoRoot(), "bpf/obj/dynptr_global.bpf.o");
const caller = "Caller passes invalid args into func#1 ('dyn_sum')";
const BAD: [string, number, string[], number][] = [
  ["release_in_global", EINVAL, ["cannot release unowned const bpf_dynptr"], 16],
  ["reinit_in_global", EINVAL, ["Dynptr has to be an uninitialized dynptr"], 16],
  ["reserve_in_global", EINVAL, ["Dynptr has to be an uninitialized dynptr"], 16],
  ["deref_in_global", EACCES, ["R1 invalid mem access 'dynptr_ptr'"], 11],
  ["pass_uninit", EINVAL, ["Expected an initialized dynptr as arg #0", caller], 2],
  ["pass_map_value", EINVAL, ["arg#0 expected pointer to stack or const struct bpf_dynptr", caller], 9],
  [
    "pass_misaligned",
    EINVAL,
    ["cannot pass in dynptr at an offset=-28", "Expected an initialized dynptr as arg #0", caller],
    9,
  ],
];

test("dynptr_global.bpf.o: a local and a ringbuf dynptr lent to global functions, written and read back", () => {
  const k = new Kernel({ verifier: true });
  const h = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(OBJ);
  obj.load(h);
  const run = (name: string) => {
    const attr = { prog_fd: obj.findProgram(name)?.fd ?? -1, retval: -1 };
    assert.equal(k.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr), 0, name);
    return attr.retval;
  };
  // 40 written at offset 0, read back twice (read, slice) plus buf[8..16) (0) and the size (64).
  assert.equal(run("local_through_global"), 40 + 40 + 64);
  // The record's bytes 8..16 are whatever the ring held there: a fresh ring holds zeroes.
  assert.equal(run("ringbuf_through_global"), 7 + 7 + 16);
});

test("dynptr_global: the callee's register is the kernel's (type=skb), the caller's checks come first", () => {
  const r = loadOne(OBJ, "deref_in_global");
  assert.ok(
    r.log.some((l) => l.includes("R1=dynptr_ptr(id=2,type=skb)")),
    r.log.join("\n"),
  );
});

test("dynptr_global: refusals with the kernel's messages", () => {
  checkRefusals(OBJ, BAD);
});

test("the host kernel verifies the dynptr-taking global functions as we do", { skip: hostSkip() }, () => {
  compareWithHost(OBJ, ["local_through_global", "ringbuf_through_global"], BAD);
});
