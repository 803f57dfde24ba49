import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import { BPF_F_SLEEPABLE, bpf_attach_type, bpf_cmd, bpf_prog_type } from "../../src/uapi/bpf.js";
import { BTF_KIND_FUNC, BTF_KIND_STRUCT } from "../../src/uapi/btf.js";
import { EACCES, EINVAL, ENOENT } from "../../src/uapi/errno.js";
import { retProg, throwsErrno } from "../kernel/util.js";
import { repoRoot } from "./helpers.js";
import { loadOne } from "./object_verdicts.js";

/**
 * bpf/attach_targets.bpf.c: fentry/fexit/fmod_ret and LSM programs on functions of the kernel's
 * BTF, checked as 6.18 checks them (bpf_check_attach_target, btf_ctx_access, bpf_lsm.c). The host
 * refuses these program types to us (EPERM), so the oracle is the kernel's own selftests'
 * assertions (verifier_lsm.c, verifier_btf_ctx_access.c, fentry/fmod_ret tests), which these
 * programs repeat one rule at a time: arguments as u64 slots and the return value after them,
 * sleepable and fmod_ret targets, LSM return ranges, disabled and non-sleepable hooks.
 */

const OBJ = join(repoRoot(), "bpf/obj/attach_targets.bpf.o");
const skipObj = existsSync(OBJ) ? false : "bpf/obj/attach_targets.bpf.o not built (needs clang-19)";

const exitRange = (v: number, lo: number, hi: number) =>
  `At program exit the register R0 has smin=${v} smax=${v} should have been in [${lo}, ${hi}]`;

function vmlinuxId(name: string, kind = BTF_KIND_FUNC): number {
  const id = new Kernel({ verifier: true }).btfVmlinux!.findByNameKind(name, kind);
  assert.ok(id > 0, name);
  return id;
}

test("attach_targets.bpf.o: each program refused with the kernel's errno and message, the others load", {
  skip: skipObj,
}, () => {
  const bad: [string, number, string[]][] = [
    ["fentry_ret1", EINVAL, [exitRange(1, 0, 0)]],
    [
      "fentry_no_third_arg",
      EACCES,
      ["func 'bpf_fentry_test2' doesn't have 3-th argument", "invalid bpf_context access off=16 size=8"],
    ],
    ["fentry_int_ptr_deref", EACCES, ["R1 invalid mem access 'scalar'"]],
    ["sleepable_bad", EINVAL, ["bpf_fentry_test2 is not sleepable"]],
    ["fmod_ret_bad", EINVAL, ["bpf_fentry_test2() is not modifiable"]],
    ["lsm_errno_bad", EINVAL, [exitRange(-4096, -4095, 0)]],
    ["lsm_positive_bad", EINVAL, [exitRange(1, -4095, 0)]],
    ["lsm_bool_bad", EINVAL, [exitRange(2, 0, 1)]],
    [
      "lsm_disabled",
      EINVAL,
      [`attach_btf_id ${vmlinuxId("bpf_lsm_getprocattr")} points to disabled hook bpf_lsm_getprocattr`],
    ],
    ["lsm_not_sleepable", EINVAL, ["bpf_lsm_file_alloc_security is not sleepable"]],
    ["d_path_not_allowed", EINVAL, ["helper call is not allowed in probe"]],
  ];
  for (const [name, errno, msgs] of bad) {
    const r = loadOne(OBJ, name);
    assert.equal(r.errno, errno, `${name}: errno (log: ${r.log.slice(-2).join(" / ")})`);
    assert.deepEqual(r.log.slice(-msgs.length), msgs, name);
  }
  const good = [
    "fentry_arg",
    "fexit_ret",
    "fentry_struct_arg",
    "sleepable_ok",
    "fmod_ret_ok",
    "lsm_errno_ok",
    "lsm_bool_ok",
    "lsm_void_any",
    "lsm_sleepable_ok",
    "lsm_file_flags",
    "d_path_allowed",
  ];
  for (const name of good) assert.equal(loadOne(OBJ, name).errno, 0, `${name} loads`);
});

test("PROG_LOAD: a kernel attach target must be a hooked function with an address", () => {
  const k = new Kernel({ verifier: true });
  const p = k.newProcess();
  const A = bpf_attach_type;
  const load = (type: number, eat: number, btfId: number, extra: object = {}) =>
    k.bpf(p, bpf_cmd.BPF_PROG_LOAD, {
      prog_type: type,
      expected_attach_type: eat,
      attach_btf_id: btfId,
      insns: retProg(0),
      insn_cnt: 2,
      license: "GPL",
      ...extra,
    });
  const T = bpf_prog_type.BPF_PROG_TYPE_TRACING;
  const L = bpf_prog_type.BPF_PROG_TYPE_LSM;
  const task = vmlinuxId("task_struct", BTF_KIND_STRUCT);
  throwsErrno(() => load(T, A.BPF_TRACE_FENTRY, task), EINVAL, new RegExp(`^attach_btf_id ${task} is not a function$`));
  // A FUNC of vmlinux BTF with no kallsyms address (a tracepoint's template function).
  throwsErrno(
    () => load(T, A.BPF_TRACE_FENTRY, vmlinuxId("__bpf_trace_sys_enter")),
    ENOENT,
    /^The address of function __bpf_trace_sys_enter cannot be found$/,
  );
  const test1 = vmlinuxId("bpf_fentry_test1");
  throwsErrno(
    () => load(L, A.BPF_LSM_MAC, test1),
    EINVAL,
    new RegExp(`^attach_btf_id ${test1} points to wrong type name bpf_fentry_test1$`),
  );
  const fileOpen = vmlinuxId("bpf_lsm_file_open");
  throwsErrno(
    () => load(L, A.BPF_LSM_MAC, fileOpen, { license: "MIT" }),
    EINVAL,
    /^LSM programs must have a GPL compatible license$/,
  );
  assert.ok(load(L, A.BPF_LSM_MAC, fileOpen) > 0);
  assert.ok(load(L, A.BPF_LSM_MAC, fileOpen, { prog_flags: BPF_F_SLEEPABLE }) > 0);
  assert.ok(load(T, A.BPF_TRACE_FENTRY, test1, { prog_flags: BPF_F_SLEEPABLE }) > 0);
  // __x64_sys_nanosleep may sleep and have its return value changed: a system call.
  const sys = vmlinuxId("__x64_sys_nanosleep");
  assert.ok(load(T, A.BPF_MODIFY_RETURN, sys) > 0);
  assert.ok(load(T, A.BPF_TRACE_FEXIT, sys, { prog_flags: BPF_F_SLEEPABLE }) > 0);
});
