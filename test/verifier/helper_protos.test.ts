/** Helper prototypes as the kernel declares them: which arguments the verifier reads and checks. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import { EACCES } from "../../src/uapi/errno.js";
import type { VerifierEnv } from "../../src/verifier/env.js";
import { ARG_DONTCARE, bpf_trace_printk_proto, bpfBaseFuncProto } from "../../src/verifier/helper_protos.js";
import { bpfCheck } from "../../src/verifier/verifier.js";

function env(asm: string): VerifierEnv {
  return {
    insns: assemble(asm),
    progType: 1,
    privileged: true,
    gpl: true,
    ops: { name: "test", isValidAccess: () => undefined, getFuncProto: (id) => bpfBaseFuncProto(id, true) },
  };
}

// "%d\0" on the stack, r1 = its address, r2 = 3.
const FMT = `stw [%r10-8], 0x6425
mov %r1, %r10
add %r1, -8
mov %r2, 3
`;

test("bpf_trace_printk types fmt and fmt_size only (kernel/trace/bpf_trace.c)", () => {
  assert.equal(bpf_trace_printk_proto.argTypes.length, 2);
  assert.ok(bpf_trace_printk_proto.argTypes.every((t) => t !== ARG_DONTCARE));
});

test("bpf_trace_printk: r3-r5 are not read, so a call without varargs is accepted", () => {
  const r = bpfCheck(env(`${FMT}call 6\nmov %r0, 0\nexit`));
  assert.equal(r.ok, true, r.log);
});

test("bpf_trace_printk: a pointer among the varargs is not checked (ARG_DONTCARE)", () => {
  const r = bpfCheck(env(`${FMT}mov %r3, %r10\ncall 6\nmov %r0, 0\nexit`));
  assert.equal(r.ok, true, r.log);
});

test("bpf_trace_printk: fmt and fmt_size are still checked", () => {
  const noSize = bpfCheck(env("stw [%r10-8], 0x6425\nmov %r1, %r10\nadd %r1, -8\ncall 6\nmov %r0, 0\nexit"));
  assert.equal(noSize.ok, false);
  assert.equal(noSize.error?.message, "R2 !read_ok");
  const scalarFmt = bpfCheck(env("mov %r1, 0\nmov %r2, 3\ncall 6\nmov %r0, 0\nexit"));
  assert.equal(scalarFmt.ok, false);
  assert.equal(scalarFmt.error?.errno, EACCES, scalarFmt.error?.message);
  assert.match(scalarFmt.error?.message ?? "", /^R1 type=scalar expected=fp/);
});
