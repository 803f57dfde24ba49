/**
 * The BTF of net/bpf/bpf_dummy_struct_ops.c: `struct bpf_dummy_ops_state`, `struct bpf_dummy_ops`,
 * its cfi stub functions (whose parameter names carry the `__nullable` tag) and the struct_ops
 * value type `struct bpf_struct_ops_bpf_dummy_ops`.
 */
import type { BtfBuilder } from "../../btf/builder.js";
import { builderFind, declareStructOpsValueType } from "../../kernel/struct_ops.js";
import { BTF_FUNC_STATIC, BTF_INT_CHAR, BTF_INT_SIGNED, BTF_KIND_INT } from "../../uapi/btf.js";

export const BPF_DUMMY_OPS = "bpf_dummy_ops";
export const BPF_DUMMY_OPS_STATE = "bpf_dummy_ops_state";

/** Member name -> stub function name (the kernel's __bpf_bpf_dummy_ops cfi_stubs). */
export const BPF_DUMMY_OPS_STUBS = {
  test_1: "bpf_dummy_ops__test_1",
  test_2: "bpf_dummy_test_2",
  test_sleepable: "bpf_dummy_test_sleepable",
} as const;

function int(b: BtfBuilder, name: string, size: number, encoding: number): number {
  const id = builderFind(b, name, BTF_KIND_INT);
  return id > 0 ? id : b.addInt(name, size, encoding);
}

export interface DummyBtfIds {
  state: number;
  ops: number;
  value: number;
}

export function declareDummyTypes(b: BtfBuilder): DummyBtfIds {
  const tInt = int(b, "int", 4, BTF_INT_SIGNED);
  const tUShort = int(b, "short unsigned int", 2, 0);
  const tChar = int(b, "char", 1, BTF_INT_CHAR | BTF_INT_SIGNED);
  const tULong = int(b, "long unsigned int", 8, 0);
  const state = b.addStructAuto(BPF_DUMMY_OPS_STATE, [{ name: "val", type: tInt }]);
  const pState = b.addPtr(state);
  const p1 = [{ name: "cb", type: pState }];
  const p2 = [
    { name: "cb", type: pState },
    { name: "a1", type: tInt },
    { name: "a2", type: tUShort },
    { name: "a3", type: tChar },
    { name: "a4", type: tULong },
  ];
  const test1 = b.addFuncProto(tInt, p1);
  const test2 = b.addFuncProto(tInt, p2);
  const testSleepable = b.addFuncProto(tInt, p1);
  const ops = b.addStructAuto(BPF_DUMMY_OPS, [
    { name: "test_1", type: b.addPtr(test1) },
    { name: "test_2", type: b.addPtr(test2) },
    { name: "test_sleepable", type: b.addPtr(testSleepable) },
  ]);
  // The stubs: the same prototypes, with the parameter names that tag nullable arguments.
  b.addFunc(
    BPF_DUMMY_OPS_STUBS.test_1,
    b.addFuncProto(tInt, [{ name: "cb__nullable", type: pState }]),
    BTF_FUNC_STATIC,
  );
  b.addFunc(BPF_DUMMY_OPS_STUBS.test_2, b.addFuncProto(tInt, p2), BTF_FUNC_STATIC);
  b.addFunc(BPF_DUMMY_OPS_STUBS.test_sleepable, b.addFuncProto(tInt, p1), BTF_FUNC_STATIC);
  const value = declareStructOpsValueType(b, BPF_DUMMY_OPS);
  return { state, ops, value };
}
