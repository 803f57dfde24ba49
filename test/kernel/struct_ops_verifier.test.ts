/** The verifier (src/verifier) checking struct_ops programs through bpfStructOpsVerifierTable. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import { bpfStructOpsVerifierTable } from "../../src/kernel/struct_ops.js";
import { bpf_prog_type } from "../../src/uapi/bpf.js";
import { EACCES, EINVAL, ENOTSUPP } from "../../src/uapi/errno.js";
import { bpfCheck } from "../../src/verifier/verifier.js";
import { boot, memberIdx, type Rig, TESTMOD, typeId } from "../subsys/dummy/struct_ops_fixture.js";

function check(r: Rig, struct: string, member: string, asm: string, o: { sleepable?: boolean } = {}) {
  return bpfCheck({
    insns: assemble(asm),
    progType: bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS,
    expectedAttachType: memberIdx(r.k, struct, member),
    attachBtfId: typeId(r.k, struct),
    sleepable: o.sleepable,
    gpl: true,
    privileged: true,
    btf: r.k.btfVmlinux,
    structOps: bpfStructOpsVerifierTable(r.k),
  });
}

const TEST_1 = `
ldxdw %r1, [%r1+0]
jeq %r1, 0, null
ldxw %r0, [%r1+0]
stw [%r1+0], 0x5a
exit
null:
mov32 %r0, 1
exit
`;

test("verifier: dummy test_1 (nullable state, checked) passes; writes only inside bpf_dummy_ops_state", () => {
  const r = boot();
  const ok = check(r, "bpf_dummy_ops", "test_1", TEST_1);
  assert.equal(ok.error, undefined, ok.log);
  assert.equal(ok.attachFuncName, "test_1");
  // Dereferencing the nullable state without a NULL check is refused.
  const nocheck = check(r, "bpf_dummy_ops", "test_1", "ldxdw %r1, [%r1+0]\nldxw %r0, [%r1+0]\nexit");
  assert.ok(nocheck.error, "a nullable argument must be checked");
  // test_2's state is not nullable: no check needed.
  const t2 = check(r, "bpf_dummy_ops", "test_2", "ldxdw %r1, [%r1+0]\nldxw %r0, [%r1+0]\nexit");
  assert.equal(t2.error, undefined, t2.log);
  // A write past the 4-byte state -> EACCES.
  const past = check(r, "bpf_dummy_ops", "test_2", "ldxdw %r1, [%r1+0]\nstw [%r1+4], 1\nmov %r0, 0\nexit");
  assert.equal(past.error?.errno, EACCES, past.log);
});

test("verifier: unsupported members and check_member refusals come through the table", () => {
  const r = boot();
  const uns = check(r, TESTMOD, "unsupported", "mov %r0, 0\nexit");
  assert.equal(uns.error?.errno, ENOTSUPP);
  const sl = check(r, "bpf_dummy_ops", "test_2", "mov %r0, 0\nexit", { sleepable: true });
  assert.equal(sl.error?.errno, EINVAL);
  assert.match(sl.log, /attach to unsupported member test_2 of struct bpf_dummy_ops/);
  const ok = check(r, "bpf_dummy_ops", "test_sleepable", "mov %r0, 0\nexit", { sleepable: true });
  assert.equal(ok.error, undefined, ok.log);
});
