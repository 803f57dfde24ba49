import assert from "node:assert/strict";
import { test } from "node:test";
import type { BtfBuilder } from "../../src/btf/builder.js";
import { assemble } from "../../src/isa/asm.js";
import { CAP_SYS_BOOT } from "../../src/kernel/capability.js";
import { Kernel, type Subsystem } from "../../src/kernel/kernel.js";
import { builderFind, declareStructOpsValueType, registerBpfStructOps } from "../../src/kernel/struct_ops.js";
import { bpfDummyStructOpsSubsystem } from "../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { bpf_cmd, bpf_prog_type } from "../../src/uapi/bpf.js";
import { BTF_FUNC_GLOBAL, BTF_FUNC_STATIC, BTF_KIND_INT, BTF_KIND_STRUCT } from "../../src/uapi/btf.js";
import { BpfError, EACCES, EINVAL, errnoName } from "../../src/uapi/errno.js";
import { KF_DESTRUCTIVE, KF_SLEEPABLE } from "../../src/verifier/env.js";

/**
 * struct_ops argument and return rules from the stub functions' parameter names, on a struct_ops
 * type of this test's own (the kernel exercises them through bpf_testmod): `__ref` arguments are
 * references the program holds from its first instruction, and a member returning a struct
 * pointer takes back a reference of its type, unmodified, or NULL. The messages are 6.18's, as
 * the kernel's struct_ops_refcounted and struct_ops_kptr_return selftests expect them.
 */

const ST = "refs_test_ops";

/**
 * struct refs_test_ops {
 *   int (*test_refcounted)(int dummy, struct task_struct *task);            // stub: task__ref
 *   struct task_struct *(*test_return_ref)(int dummy, struct task_struct *task); // stub: task__ref
 *   int (*test_maybe_null)(int dummy, struct task_struct *task);            // stub: task__nullable
 *   struct task_struct *(*test_return_plain)(int dummy, struct task_struct *task);
 * };
 */
function declareTypes(b: BtfBuilder): void {
  const int = builderFind(b, "int", BTF_KIND_INT);
  const task = builderFind(b, "task_struct", BTF_KIND_STRUCT);
  const pTask = b.addPtr(task);
  const protoInt = b.addFuncProto(int, [
    { name: "dummy", type: int },
    { name: "task", type: pTask },
  ]);
  const protoTask = b.addFuncProto(pTask, [
    { name: "dummy", type: int },
    { name: "task", type: pTask },
  ]);
  b.addStructAuto(ST, [
    { name: "test_refcounted", type: b.addPtr(protoInt) },
    { name: "test_return_ref", type: b.addPtr(protoTask) },
    { name: "test_maybe_null", type: b.addPtr(protoInt) },
    { name: "test_return_plain", type: b.addPtr(protoTask) },
  ]);
  const stub = (name: string, ret: number, tag: string) =>
    b.addFunc(
      name,
      b.addFuncProto(ret, [
        { name: "dummy", type: int },
        { name: `task${tag}`, type: pTask },
      ]),
      BTF_FUNC_STATIC,
    );
  stub("refs_test_refcounted", int, "__ref");
  stub("refs_test_return_ref", pTask, "__ref");
  stub("refs_test_maybe_null", int, "__nullable");
  stub("refs_test_return_plain", pTask, "");
  declareStructOpsValueType(b, ST);
  // Two kfuncs of this test's own, flagged as a sleeping and a destructive one.
  b.addFunc("refs_test_sleepy", b.addFuncProto(int, []), BTF_FUNC_GLOBAL);
  b.addFunc("refs_test_destructive", b.addFuncProto(int, []), BTF_FUNC_GLOBAL);
}

const refsTestSubsystem: Subsystem = {
  name: "refs_test",
  declareTypes,
  register(k: Kernel): void {
    registerBpfStructOps(k, {
      name: ST,
      cfiStubs: {
        test_refcounted: "refs_test_refcounted",
        test_return_ref: "refs_test_return_ref",
        test_maybe_null: "refs_test_maybe_null",
        test_return_plain: "refs_test_return_plain",
      },
      initMember: () => 0,
      reg: () => {},
      unreg: () => {},
    });
    k.registerKfunc("refs_test_sleepy", undefined, () => 0, KF_SLEEPABLE);
    k.registerKfunc("refs_test_destructive", undefined, () => 0, KF_DESTRUCTIVE);
  },
};

const k = new Kernel({ subsystems: [bpfDummyStructOpsSubsystem, refsTestSubsystem] });
const proc = k.newProcess();
const btf = k.btfVmlinux!;
const stId = btf.findByNameKind(ST, BTF_KIND_STRUCT);
const kfunc = (name: string) => k.kfuncsByName.get(name)!.btfId;

/** PROG_LOAD of a program for `member`: its fd, or the errno and the log's last message line. */
function load(
  member: string,
  asm: string,
  o: { progType?: number; sleepable?: boolean; who?: typeof proc } = {},
): { fd: number; errno: string; msg: string; log: string } {
  const t = btf.typeById(stId) as { members: { name: string }[] };
  const insns = assemble(asm);
  const logBuf = new Uint8Array(1 << 16);
  const structOps = o.progType === undefined;
  let fd: number;
  try {
    fd = k.bpf(o.who ?? proc, bpf_cmd.BPF_PROG_LOAD, {
      prog_type: o.progType ?? bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS,
      insns,
      insn_cnt: insns.length,
      license: "GPL",
      prog_name: member.slice(0, 15),
      expected_attach_type: structOps ? t.members.findIndex((m) => m.name === member) : 0,
      attach_btf_id: structOps ? stId : 0,
      prog_flags: o.sleepable ? 1 << 4 : 0,
      log_level: 1,
      log_buf: logBuf,
      log_size: logBuf.length,
    });
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    fd = -e.errno;
  }
  const log = new TextDecoder().decode(logBuf.subarray(0, logBuf.indexOf(0)));
  const lines = log.split("\n").filter((l) => l && !l.startsWith("processed "));
  if (fd >= 0) k.close(o.who ?? proc, fd);
  return { fd, errno: fd < 0 ? errnoName(-fd) : "", msg: lines.at(-1) ?? "", log };
}

const ok = (r: ReturnType<typeof load>) => assert.ok(r.fd >= 0, r.log);
const refused = (r: ReturnType<typeof load>, errno: number, msg: string | RegExp) => {
  assert.ok(r.fd < 0, `loaded:\n${r.log}`);
  assert.ok(r.log, `no log, ${r.errno}`);
  assert.equal(r.errno, errnoName(errno), `${r.errno} ${r.log}`);
  if (typeof msg === "string") assert.equal(r.msg, msg, r.log);
  else assert.match(r.msg, msg, r.log);
};

test("a __ref argument is a reference the program holds: released once, it loads", () => {
  ok(
    load(
      "test_refcounted",
      `ldxdw %r1, [%r1+8]
       call kfunc ${kfunc("bpf_task_release")}
       mov %r0, 0
       exit`,
    ),
  );
  // Loaded on two paths, released on each: one reference, not two.
  ok(
    load(
      "test_refcounted",
      `ldxdw %r2, [%r1]
       ldxdw %r1, [%r1+8]
       jeq %r2, 0, +3
       ldxw %r0, [%r1+12]
       call kfunc ${kfunc("bpf_task_release")}
       ja +1
       call kfunc ${kfunc("bpf_task_release")}
       mov %r0, 0
       exit`,
    ),
  );
});

test("a __ref argument not released leaks from instruction 0", () => {
  const r = load("test_refcounted", "mov %r0, 0\nexit");
  refused(r, EINVAL, "BPF_EXIT instruction in main prog would lead to reference leak");
  assert.match(r.log, /^Unreleased reference id=1 alloc_insn=0$/m);
  // It is trusted and referenced as loaded from the context.
  const l2 = load("test_refcounted", "ldxdw %r6, [%r1+8]\nmov %r0, 0\nexit");
  assert.match(l2.log, /R6_?w?=trusted_ptr_task_struct\(ref_obj_id=1\)/);
});

test("a __ref argument loaded again after its release is refused (check_ctx_access)", () => {
  const r = load(
    "test_refcounted",
    `mov %r6, %r1
     ldxdw %r1, [%r6+8]
     call kfunc ${kfunc("bpf_task_release")}
     ldxdw %r1, [%r6+8]
     call kfunc ${kfunc("bpf_task_release")}
     mov %r0, 0
     exit`,
  );
  refused(r, EACCES, "invalid bpf_context access off=8. Reference may already be released");
});

test("a member returning a struct pointer takes back the reference it gave, or NULL", () => {
  // Return the task (the reference goes back to the kernel) or release it and return NULL.
  ok(
    load(
      "test_return_ref",
      `ldxdw %r2, [%r1]
       ldxdw %r0, [%r1+8]
       and %r2, 1
       jeq %r2, 0, +4
       mov %r1, %r0
       call kfunc ${kfunc("bpf_task_release")}
       mov %r0, 0
       exit
       exit`,
    ),
  );
});

test("returning a non-NULL scalar where a referenced pointer is expected", () => {
  refused(
    load(
      "test_return_ref",
      `ldxdw %r1, [%r1+8]
       call kfunc ${kfunc("bpf_task_release")}
       mov %r0, 1
       exit`,
    ),
    EINVAL,
    "At program exit the register R0 has smin=1 smax=1 should have been in [0, 0]",
  );
});

test("returning the reference moved off the object", () => {
  refused(
    load(
      "test_return_ref",
      `ldxdw %r0, [%r1+8]
       add %r0, 16
       exit`,
    ),
    EACCES,
    "dereference of modified trusted_ptr_ ptr R0 off=16 disallowed",
  );
});

test("returning a reference of another type", () => {
  refused(
    load(
      "test_return_ref",
      `ldxdw %r1, [%r1+8]
       call kfunc ${kfunc("bpf_task_release")}
       call kfunc ${kfunc("bpf_cpumask_create")}
       exit`,
    ),
    EINVAL,
    "At program exit the register R0 is not a known value (ptr_or_null_)",
  );
});

test("a pointer-returning member without __ref: an unreferenced argument cannot be returned", () => {
  refused(
    load("test_return_plain", "ldxdw %r0, [%r1+8]\nexit"),
    EINVAL,
    /^At program exit the register R0 is not a known value \(trusted_ptr_\)$/,
  );
  // A reference the program acquired itself may be handed over.
  ok(
    load(
      "test_return_plain",
      `ldxdw %r1, [%r1+8]
       call kfunc ${kfunc("bpf_task_acquire")}
       exit`,
    ),
  );
});

test("a __nullable argument must be checked before it is read", () => {
  refused(
    load("test_maybe_null", "ldxdw %r1, [%r1+8]\nldxw %r0, [%r1+12]\nexit"),
    EACCES,
    "R1 invalid mem access 'trusted_ptr_or_null_'",
  );
  ok(load("test_maybe_null", "ldxdw %r1, [%r1+8]\nmov %r0, 0\njeq %r1, 0, +1\nldxw %r0, [%r1+12]\nexit"));
});

test("a KF_SLEEPABLE kfunc: only from a sleepable program, and not inside an RCU section", () => {
  const call = `call kfunc ${kfunc("refs_test_sleepy")}\nmov %r0, 0\nexit`;
  const tc = bpf_prog_type.BPF_PROG_TYPE_SCHED_CLS;
  const sys = bpf_prog_type.BPF_PROG_TYPE_SYSCALL;
  refused(
    load("cls", call, { progType: tc }),
    EACCES,
    "program must be sleepable to call sleepable kfunc refs_test_sleepy",
  );
  ok(load("sys", call, { progType: sys, sleepable: true }));
  refused(
    load(
      "sys",
      `call kfunc ${kfunc("bpf_rcu_read_lock")}
       call kfunc ${kfunc("refs_test_sleepy")}
       call kfunc ${kfunc("bpf_rcu_read_unlock")}
       mov %r0, 0
       exit`,
      { progType: sys, sleepable: true },
    ),
    EACCES,
    "kernel func refs_test_sleepy is sleepable within rcu_read_lock region",
  );
  // A sleepable struct_ops program may call it; a non-sleepable one may not.
  refused(
    load(
      "test_refcounted",
      `ldxdw %r6, [%r1+8]
       call kfunc ${kfunc("refs_test_sleepy")}
       mov %r1, %r6
       call kfunc ${kfunc("bpf_task_release")}
       mov %r0, 0
       exit`,
    ),
    EACCES,
    "program must be sleepable to call sleepable kfunc refs_test_sleepy",
  );
});

test("a KF_DESTRUCTIVE kfunc needs CAP_SYS_BOOT", () => {
  const call = `call kfunc ${kfunc("refs_test_destructive")}\nmov %r0, 0\nexit`;
  const tc = bpf_prog_type.BPF_PROG_TYPE_SCHED_CLS;
  ok(load("cls", call, { progType: tc }));
  const noBoot = k.newProcess();
  noBoot.setCap(CAP_SYS_BOOT, false);
  refused(
    load("cls", call, { progType: tc, who: noBoot }),
    EACCES,
    "calling kernel function with KF_DESTRUCTIVE flag requires CAP_SYS_BOOT capability",
  );
});
