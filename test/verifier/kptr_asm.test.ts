import assert from "node:assert/strict";
import { test } from "node:test";
import { BPF_KPTR_REF, BPF_KPTR_UNREF, type BtfRecord } from "../../src/btf/record.js";
import { assemble } from "../../src/isa/asm.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { bpf_map_type } from "../../src/uapi/bpf.js";
import { BTF_KIND_STRUCT } from "../../src/uapi/btf.js";
import { EACCES, EINVAL } from "../../src/uapi/errno.js";
import type { VerifierEnv, VerifierMap } from "../../src/verifier/env.js";
import { bpfBaseFuncProto } from "../../src/verifier/helper_protos.js";
import { resolveLdImm64 } from "../../src/verifier/vector.js";
import { bpfCheck } from "../../src/verifier/verifier.js";

/**
 * kptr rules clang does not emit (BPF_ST, odd sizes and offsets, a map without BTF), on asm
 * against an ARRAY whose value is `{ struct task_struct __kptr_untrusted *u; struct task_struct
 * __kptr *r; long n; }`, with 6.18's messages (check_map_access, check_map_kptr_access,
 * process_kptr_func).
 */

const vmlinux = new Kernel().btfVmlinux;
assert.ok(vmlinux);
const taskId = vmlinux.findByNameKind("task_struct", BTF_KIND_STRUCT);
const kptr = { localTypeId: 1, name: "task_struct", btf: vmlinux, btfId: taskId };
const RECORD: BtfRecord = {
  cnt: 2,
  fieldMask: BPF_KPTR_UNREF | BPF_KPTR_REF,
  spinLockOff: -1,
  resSpinLockOff: -1,
  timerOff: -1,
  wqOff: -1,
  refcountOff: -1,
  taskWorkOff: -1,
  fields: [
    { offset: 0, size: 8, type: BPF_KPTR_UNREF, kptr },
    { offset: 8, size: 8, type: BPF_KPTR_REF, kptr },
  ],
};
const MAP: VerifierMap = {
  type: bpf_map_type.BPF_MAP_TYPE_ARRAY,
  keySize: 4,
  valueSize: 24,
  maxEntries: 1,
  flags: 0,
  name: "kmap",
  record: RECORD,
};

/** r6 = the element (a lookup with a constant key: never NULL), then `body`. */
function check(body: string, map: VerifierMap = MAP) {
  const insns = assemble(`stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, map_fd(0)
call 1
mov %r6, %r0
${body}
mov %r0, 0
exit`);
  const env: VerifierEnv = {
    insns,
    ldImm64Aux: resolveLdImm64(insns),
    progType: 1,
    privileged: true,
    gpl: true,
    logLevel: 1,
    btf: vmlinux,
    maps: [map],
    ops: {
      name: "test",
      isValidAccess: () => undefined,
      getFuncProto: (id) => bpfBaseFuncProto(id, true),
    },
  };
  return bpfCheck(env);
}

const CASES: [string, string, number, string | null][] = [
  ["BPF_ST of 0 to an untrusted kptr", "stdw [%r6+0], 0", 0, null],
  ["BPF_ST of another value", "stdw [%r6+0], 1", EACCES, "BPF_ST imm must be 0 when storing to kptr at off=0"],
  ["BPF_ST to a referenced kptr", "stdw [%r6+8], 0", EACCES, "store to referenced kptr disallowed"],
  ["STX of NULL to a referenced kptr", "mov %r1, 0\nstxdw [%r6+8], %r1", EACCES, "store to referenced kptr disallowed"],
  ["a 4-byte load of a kptr", "ldxw %r1, [%r6+0]", EACCES, "kptr access size must be BPF_DW"],
  ["a load across a kptr", "ldxdw %r1, [%r6+4]", EACCES, "kptr access misaligned expected=0 off=4"],
  [
    "an untrusted load dereferenced after its NULL check",
    "ldxdw %r1, [%r6+0]\njeq %r1, 0, +1\nldxw %r0, [%r1+0]",
    0,
    null,
  ],
  ["a referenced kptr loaded is not a reference", "ldxdw %r1, [%r6+8]\njeq %r1, 0, +1\nstxdw [%r6+0], %r1", 0, null],
  [
    "bpf_kptr_xchg on a non-constant offset",
    "call 7\nand %r0, 8\nmov %r1, %r6\nadd %r1, %r0\nmov %r2, 0\ncall 194",
    EINVAL,
    "R1 doesn't have constant offset. kptr has to be at the constant offset",
  ],
];

test("kptr fields in a map value: BPF_ST, sizes, offsets (6.18's messages)", () => {
  for (const [what, body, errno, msg] of CASES) {
    const r = check(body);
    if (!msg) {
      assert.equal(r.ok, true, `${what}: ${r.log}`);
      continue;
    }
    assert.equal(r.ok, false, what);
    assert.equal(r.error?.errno, errno, `${what}: ${r.log}`);
    const last = r.log
      .split("\n")
      .filter((l) => l && !l.startsWith("processed"))
      .at(-1);
    assert.equal(last, msg, what);
  }
});

test("bpf_kptr_xchg needs the map's BTF and a kptr in its record", () => {
  const xchg = "mov %r1, %r6\nadd %r1, 8\nmov %r2, 0\ncall 194\njeq %r0, 0, +0";
  let r = check(xchg, { ...MAP, hasBtf: false, record: null });
  assert.match(r.log, /map 'kmap' has to have BTF in order to use bpf_kptr_xchg\n/);
  assert.equal(r.error?.errno, EINVAL);
  r = check(xchg, { ...MAP, record: null });
  assert.match(r.log, /R1 has no valid kptr\n/);
});
