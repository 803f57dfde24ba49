/**
 * The BTF of the selftests' bpf_testmod module (tools/testing/selftests/bpf/test_kmods/
 * bpf_testmod.h, 6.18): `struct bpf_testmod_ops` (the members that test nullable and referenced
 * arguments, a returned reference, shadow copies of non-pointer members, and forty `tramp_N`
 * pointers whose trampolines take more than one image page), `struct bpf_testmod_ops2` and
 * `struct bpf_testmod_ops3`, the cfi stub functions whose parameter names carry the `__nullable` /
 * `__ref` tags, the struct_ops value types, and the module's kfuncs. Split BTF: vmlinux is the
 * base, so `struct task_struct` is vmlinux's.
 */
import type { BtfBuilder } from "../../btf/builder.js";
import { builderFind, declareStructOpsValueType } from "../../kernel/struct_ops.js";
import { BTF_FUNC_GLOBAL, BTF_FUNC_STATIC, BTF_KIND_INT, BTF_KIND_STRUCT, BTF_KIND_TYPEDEF } from "../../uapi/btf.js";
import { BpfError, EINVAL } from "../../uapi/errno.js";

export const BPF_TESTMOD = "bpf_testmod";
export const BPF_TESTMOD_OPS = "bpf_testmod_ops";
export const BPF_TESTMOD_OPS2 = "bpf_testmod_ops2";
export const BPF_TESTMOD_OPS3 = "bpf_testmod_ops3";
export const BPF_TESTMOD_ST_OPS = "bpf_testmod_st_ops";
export const BPF_TESTMOD_MULTI_ST_OPS = "bpf_testmod_multi_st_ops";
/** tramp_1 .. tramp_40. */
export const NR_TRAMPS = 40;

/**
 * Member name -> the FUNC the cfi stub slot points at. bpf_testmod_init fills every tramp_N slot
 * with bpf_testmod_tramp; unsupported_ops has no stub, so programs cannot attach to it.
 */
export const BPF_TESTMOD_OPS_STUBS: Readonly<Record<string, string>> = {
  test_1: "bpf_testmod_test_1",
  test_2: "bpf_testmod_test_2",
  test_maybe_null: "bpf_testmod_ops__test_maybe_null",
  test_refcounted: "bpf_testmod_ops__test_refcounted",
  test_return_ref_kptr: "bpf_testmod_ops__test_return_ref_kptr",
  ...Object.fromEntries(Array.from({ length: NR_TRAMPS }, (_, i) => [`tramp_${i + 1}`, "bpf_testmod_tramp"])),
};
export const BPF_TESTMOD_OPS2_STUBS: Readonly<Record<string, string>> = { test_1: "bpf_testmod_test_1" };
export const BPF_TESTMOD_OPS3_STUBS: Readonly<Record<string, string>> = {
  test_1: "bpf_testmod_test_3",
  test_2: "bpf_testmod_test_4",
};

export const BPF_TESTMOD_ST_OPS_STUBS: Readonly<Record<string, string>> = {
  test_prologue: "bpf_test_mod_st_ops__test_prologue",
  test_epilogue: "bpf_test_mod_st_ops__test_epilogue",
  test_pro_epilogue: "bpf_test_mod_st_ops__test_pro_epilogue",
};
export const BPF_TESTMOD_MULTI_ST_OPS_STUBS: Readonly<Record<string, string>> = {
  test_1: "bpf_testmod_multi_st_ops__test_1",
};

/** The module's kfuncs the struct_ops selftests call (bpf_testmod_kfunc.h), with their prototypes. */
export const ST_OPS_KFUNCS = [
  "bpf_kfunc_st_ops_test_prologue",
  "bpf_kfunc_st_ops_test_epilogue",
  "bpf_kfunc_st_ops_test_pro_epilogue",
  "bpf_kfunc_st_ops_inc10",
] as const;

function find(b: BtfBuilder, name: string, kind: number): number {
  const id = builderFind(b, name, kind);
  if (id < 0) throw new BpfError(EINVAL, `bpf_testmod BTF needs ${name} from vmlinux`);
  return id;
}

export function declareTestmodTypes(b: BtfBuilder): void {
  const tInt = find(b, "int", BTF_KIND_INT);
  const tChar = find(b, "char", BTF_KIND_INT);
  const task = find(b, "task_struct", BTF_KIND_STRUCT);
  const pTask = b.addPtr(task);
  const pCgrp = b.addPtr(find(b, "cgroup", BTF_KIND_STRUCT));

  const intVoid = b.addFuncProto(tInt, []);
  const voidIntInt = b.addFuncProto(0, [
    { name: "a", type: tInt },
    { name: "b", type: tInt },
  ]);
  const intDummyTask = b.addFuncProto(tInt, [
    { name: "dummy", type: tInt },
    { name: "task", type: pTask },
  ]);
  const retRef = b.addFuncProto(pTask, [
    { name: "dummy", type: tInt },
    { name: "task", type: pTask },
    { name: "cgrp", type: pCgrp },
  ]);
  const intValue = b.addFuncProto(tInt, [{ name: "value", type: tInt }]);
  const pIntVoid = b.addPtr(intVoid);
  const unsupported = b.addStructAuto("", [
    { name: "a", type: tInt },
    { name: "b", type: tInt },
  ]);
  const pIntValue = b.addPtr(intValue);
  b.addStructAuto(BPF_TESTMOD_OPS, [
    { name: "test_1", type: pIntVoid },
    { name: "test_2", type: b.addPtr(voidIntInt) },
    { name: "test_maybe_null", type: b.addPtr(intDummyTask) },
    { name: "unsupported_ops", type: pIntVoid },
    { name: "test_refcounted", type: b.addPtr(intDummyTask) },
    { name: "test_return_ref_kptr", type: b.addPtr(retRef) },
    { name: "onebyte", type: tChar },
    { name: "unsupported", type: unsupported },
    { name: "data", type: tInt },
    ...Array.from({ length: NR_TRAMPS }, (_, i) => ({ name: `tramp_${i + 1}`, type: pIntValue })),
  ]);
  b.addStructAuto(BPF_TESTMOD_OPS2, [{ name: "test_1", type: pIntVoid }]);
  b.addStructAuto(BPF_TESTMOD_OPS3, [
    { name: "test_1", type: pIntVoid },
    { name: "test_2", type: pIntVoid },
  ]);

  // The cfi stubs, as the module's BTF has them (static functions; the tags are parameter names).
  const stub = (name: string, proto: number) => b.addFunc(name, proto, BTF_FUNC_STATIC);
  stub("bpf_testmod_test_1", intVoid);
  stub("bpf_testmod_test_2", voidIntInt);
  stub("bpf_testmod_test_3", intVoid);
  stub("bpf_testmod_test_4", intVoid);
  stub("bpf_testmod_tramp", intValue);
  stub(
    "bpf_testmod_ops__test_maybe_null",
    b.addFuncProto(tInt, [
      { name: "dummy", type: tInt },
      { name: "task__nullable", type: pTask },
    ]),
  );
  stub(
    "bpf_testmod_ops__test_refcounted",
    b.addFuncProto(tInt, [
      { name: "dummy", type: tInt },
      { name: "task__ref", type: pTask },
    ]),
  );
  stub(
    "bpf_testmod_ops__test_return_ref_kptr",
    b.addFuncProto(pTask, [
      { name: "dummy", type: tInt },
      { name: "task__ref", type: pTask },
      { name: "cgrp", type: pCgrp },
    ]),
  );

  // The module's kfunc: `void bpf_testmod_test_mod_kfunc(int i)` stores i in the module.
  b.addFunc("bpf_testmod_test_mod_kfunc", b.addFuncProto(0, [{ name: "i", type: tInt }]), BTF_FUNC_GLOBAL);

  declareStOpsTypes(b, tInt);

  declareStructOpsValueType(b, BPF_TESTMOD_OPS);
  declareStructOpsValueType(b, BPF_TESTMOD_OPS2);
  declareStructOpsValueType(b, BPF_TESTMOD_OPS3);
  declareStructOpsValueType(b, BPF_TESTMOD_ST_OPS);
  declareStructOpsValueType(b, BPF_TESTMOD_MULTI_ST_OPS);

  // `void bpf_testmod_ops3_call_test_1(void)` / `_2`: call the registered bpf_testmod_ops3's member.
  const voidVoid = b.addFuncProto(0, []);
  b.addFunc("bpf_testmod_ops3_call_test_1", voidVoid, BTF_FUNC_GLOBAL);
  b.addFunc("bpf_testmod_ops3_call_test_2", voidVoid, BTF_FUNC_GLOBAL);

  // DEFINE_PER_CPU(int, bpf_testmod_ksym_percpu): the module's one per-CPU variable.
  const tIntMod = builderFind(b, "int", BTF_KIND_INT);
  const ksym = b.addVar("bpf_testmod_ksym_percpu", tIntMod, 1 /* global */);
  b.addDatasec(".data..percpu", 4, [{ type: ksym, offset: 0, size: 4 }]);
}

/**
 * `struct st_ops_args`, `struct bpf_testmod_st_ops` (the prologue/epilogue members and the
 * module owner), `struct bpf_testmod_multi_st_ops` (test_1, the list node and the map id the
 * module keeps), their stubs and the kfuncs that call them.
 */
function declareStOpsTypes(b: BtfBuilder, tInt: number): void {
  const u64 = builderFind(b, "u64", BTF_KIND_TYPEDEF);
  const u32 = builderFind(b, "u32", BTF_KIND_TYPEDEF);
  const args = b.addStructAuto("st_ops_args", [
    { name: "a", type: u64 >= 0 ? u64 : find(b, "long long unsigned int", BTF_KIND_INT) },
  ]);
  const pArgs = b.addPtr(args);
  const intArgs = b.addFuncProto(tInt, [{ name: "args", type: pArgs }]);
  const pIntArgs = b.addPtr(intArgs);
  const mod = builderFind(b, "module", BTF_KIND_STRUCT);
  b.addStructAuto(BPF_TESTMOD_ST_OPS, [
    { name: "test_prologue", type: pIntArgs },
    { name: "test_epilogue", type: pIntArgs },
    { name: "test_pro_epilogue", type: pIntArgs },
    { name: "owner", type: b.addPtr(mod >= 0 ? mod : b.addFwd("module")) },
  ]);
  // struct hlist_node is vmlinux's on a real kernel; the simulated vmlinux has none. Same layout.
  let node = builderFind(b, "hlist_node", BTF_KIND_STRUCT);
  if (node < 0) {
    const pVoid = b.addPtr(0);
    node = b.addStructAuto("hlist_node", [
      { name: "next", type: pVoid },
      { name: "pprev", type: pVoid },
    ]);
  }
  b.addStructAuto(BPF_TESTMOD_MULTI_ST_OPS, [
    { name: "test_1", type: pIntArgs },
    { name: "node", type: node },
    { name: "id", type: tInt },
  ]);
  for (const stub of [...Object.values(BPF_TESTMOD_ST_OPS_STUBS), ...Object.values(BPF_TESTMOD_MULTI_ST_OPS_STUBS)]) {
    b.addFunc(stub, intArgs, BTF_FUNC_STATIC);
  }
  for (const name of ST_OPS_KFUNCS) b.addFunc(name, intArgs, BTF_FUNC_GLOBAL);
  const idProto = b.addFuncProto(tInt, [
    { name: "args", type: pArgs },
    { name: "id", type: u32 >= 0 ? u32 : find(b, "unsigned int", BTF_KIND_INT) },
  ]);
  b.addFunc("bpf_kfunc_multi_st_ops_test_1", idProto, BTF_FUNC_GLOBAL);
}
