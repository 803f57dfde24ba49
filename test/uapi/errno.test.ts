import assert from "node:assert/strict";
import { test } from "node:test";
import { BPF_F_LINK, BPF_F_VTYPE_BTF_OBJ_FD, bpf_struct_ops_state } from "../../src/uapi/bpf.js";
import { BpfError, EINVAL, ENOTSUPP, EOPNOTSUPP, errnoName, toNegErrno } from "../../src/uapi/errno.js";

test("ENOTSUPP is the kernel-internal 524, distinct from EOPNOTSUPP", () => {
  assert.equal(ENOTSUPP, 524);
  assert.equal(EOPNOTSUPP, 95);
  assert.equal(errnoName(524), "ENOTSUPP");
});

test("uapi numbers match include/uapi/linux/bpf.h", () => {
  assert.equal(BPF_F_LINK, 0x2000);
  assert.equal(BPF_F_VTYPE_BTF_OBJ_FD, 0x8000);
  assert.deepEqual(Object.values(bpf_struct_ops_state), [0, 1, 2, 3]);
});

test("BpfError carries errno and context; toNegErrno gives libbpf's convention", () => {
  const e = new BpfError(EINVAL, "member name too long", { member: "name" });
  assert.equal(e.code, "EINVAL");
  assert.equal(e.wrap("struct_ops map cubic").message, "struct_ops map cubic: member name too long");
  assert.equal(
    toNegErrno(() => {
      throw e;
    }),
    -EINVAL,
  );
  assert.throws(() =>
    toNegErrno(() => {
      throw new TypeError("bug");
    }),
  );
});
