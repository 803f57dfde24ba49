/**
 * The kernel's struct_ops selftests that need bpf_testmod (test_struct_ops_module,
 * struct_ops_autocreate, test_struct_ops_maybe_null, test_struct_ops_multi_pages), checked on our
 * own programs (bpf/testmod_*.bpf.c, built against the simulated vmlinux and the module's BTF):
 * the loader finds the types in the module's BTF, the maps hold the module, and the module's
 * registration side effects show in the programs' .bss.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { delete_module, EWOULDBLOCK, find_module, module_refcount } from "../../../src/kernel/module.js";
import type { BpfStructOpsMap } from "../../../src/kernel/struct_ops.js";
import {
  bpf_btf_get_fd_by_id,
  bpf_btf_get_info_by_fd,
  bpf_map_get_info_by_fd,
  bpf_obj_pin,
  bpf_prog_test_run_opts,
  close,
} from "../../../src/loader/bpf.js";
import { bpfMapAttachStructOps } from "../../../src/loader/struct_ops_attach.js";
import { bpfTestmodState } from "../../../src/subsys/testmod/bpf_testmod.js";
import { EACCES, EEXIST, EINVAL, ENOTSUP, ENOTSUPP, ESRCH } from "../../../src/uapi/errno.js";
import { bootTestmod, bss32, errOf, openObj, skipFor } from "./helpers.js";

const refs = (r: ReturnType<typeof bootTestmod>): number => module_refcount(find_module(r.k, "bpf_testmod")!);

test("struct_ops_module: types found in the module's BTF; shadow data and test_2 reach bpf_dummy_reg", {
  skip: skipFor("testmod_module"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_module");
  const t1 = obj.findMap("testmod_1")!;
  // skel->struct_ops.testmod_1->data = 13; ->test_2 = skel->progs.tm_test_3
  t1.structOpsValue!.set("data", 13);
  t1.structOpsValue!.set("test_2", obj.findProgram("tm_test_3")!);
  obj.load(r.h);
  // Each created map of a module type holds the module: testmod_1, testmod_2, testmod_zeroed, testmod_odd.
  assert.equal(refs(r), 4);
  // The map's info names the module's BTF, by id: bpf_btf_get_fd_by_id + info.name.
  const info: { btf_vmlinux_id?: number } = {};
  assert.equal(bpf_map_get_info_by_fd(r.h, t1.fd, info), 0);
  const btfFd = bpf_btf_get_fd_by_id(r.h, info.btf_vmlinux_id!);
  const binfo: { name?: string; kernel_btf?: boolean } = {};
  assert.equal(bpf_btf_get_info_by_fd(r.h, btfFd, binfo), 0);
  assert.deepEqual([binfo.name, binfo.kernel_btf], ["bpf_testmod", true]);
  close(r.h, btfFd);
  // tm_test_3 (a `?` program) loads because a created map now uses it; the module BTF fds the
  // loader opened are closed again after the load.
  assert.ok(obj.findProgram("tm_test_3")!.fd > 0);
  const l1 = bpfMapAttachStructOps(t1, r.h);
  assert.equal(bss32(r, obj, "test_1_result") >>> 0, 0xdeadbeef);
  assert.equal(bss32(r, obj, "test_2_result"), 4 + 13 + 3);
  l1.detach();
  const l2 = bpfMapAttachStructOps(obj.findMap("testmod_2")!, r.h);
  assert.equal(bss32(r, obj, "test_2_result"), 4 + 8);
  l2.detach();
  // A flavor whose test_2 has another prototype: libbpf does not compare, the kernel's rules apply.
  bpfMapAttachStructOps(obj.findMap("testmod_odd")!, r.h).detach();
  obj.close();
  r.k.quiesce();
  assert.equal(refs(r), 0);
});

test("struct_ops_module: a member the kernel lacks must stay zero (int and func ptr), else ENOTSUP", {
  skip: skipFor("testmod_module"),
}, () => {
  const r = bootTestmod();
  for (const member of ["zeroed", "zeroed_op"]) {
    const { obj, log } = openObj("testmod_module");
    const value = member === "zeroed" ? 0xdeadbeef : obj.findProgram("tm_zeroed_op")!;
    obj.findMap("testmod_zeroed")!.structOpsValue!.set(member, value);
    const e = errOf(() => obj.load(r.h));
    assert.equal(e.errno, ENOTSUP);
    assert.ok(log.includes(`libbpf: struct_ops init_kern testmod_zeroed: Cannot find member ${member} in kernel BTF`));
  }
  // Nothing stays behind from the failed loads.
  r.k.quiesce();
  assert.equal(refs(r), 0);
});

test("struct_ops_module: without the module the type is in no BTF (ESRCH, libbpf's message)", {
  skip: skipFor("testmod_module"),
}, () => {
  const r = bootTestmod({ noModule: true });
  const { obj, log } = openObj("testmod_module");
  assert.equal(errOf(() => obj.load(r.h)).errno, ESRCH);
  assert.equal(log[0], "libbpf: struct_ops init_kern: struct bpf_testmod_ops is not found in kernel BTF");
});

test("struct_ops_autocreate: the full object fails in init_kern (ENOTSUP); without testmod_v2 it loads", {
  skip: skipFor("testmod_autocreate"),
}, () => {
  const r = bootTestmod();
  const full = openObj("testmod_autocreate");
  assert.equal(errOf(() => full.obj.load(r.h)).errno, ENOTSUP);
  assert.ok(full.log.some((l) => l.startsWith("libbpf: struct_ops init_kern")));

  const { obj } = openObj("testmod_autocreate");
  obj.findMap("testmod_v2")!.setAutocreate(false);
  obj.load(r.h);
  // The programs only testmod_v2 used are left unloaded.
  assert.equal(obj.findProgram("ac_v2_extra")!.fd, -1);
  assert.equal(obj.findProgram("ac_v2_test_1")!.fd, -1);
  assert.equal(obj.findMap("testmod_v2")!.fd, -1);
  // bpf_dummy_reg2 calls test_1 at registration.
  const link = bpfMapAttachStructOps(obj.findMap("testmod_ops2")!, r.h);
  assert.equal(bss32(r, obj, "test_1_result"), 42);
  link.detach();
});

test("struct_ops_maybe_null: a NULL-checked __nullable task is accepted, an unchecked read refused", {
  skip: skipFor("testmod_maybe_null"),
}, () => {
  const r = bootTestmod();
  const ok = openObj("testmod_maybe_null");
  ok.obj.load(r.h);
  assert.ok(ok.obj.findProgram("tm_maybe_null")!.fd > 0);
  // The kernel calls test_maybe_null(0, NULL) nowhere at registration; the map registers fine.
  bpfMapAttachStructOps(ok.obj.findMap("testmod_maybe_null")!, r.h).detach();

  const bad = openObj("testmod_maybe_null");
  bad.obj.findMap("testmod_maybe_null_bad")!.setAutocreate(true);
  const e = errOf(() => bad.obj.load(r.h));
  assert.equal(e.errno, EACCES);
  assert.match(e.message, /R1 invalid mem access 'trusted_ptr_or_null_'/);
});

test("struct_ops_multi_pages: forty trampolines over more than one image page attach and run", {
  skip: skipFor("testmod_multi_pages"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_multi_pages");
  obj.load(r.h);
  const map = obj.findMap("multi_pages")!;
  const link = bpfMapAttachStructOps(map, r.h);
  const st = r.proc.files.get(map.fd).private_data as BpfStructOpsMap;
  assert.equal(st.links.length, 40);
  assert.ok(st.image.pages.length > 1, `${st.image.pages.length} page(s)`);
  for (let n = 1; n <= 40; n++) assert.equal(st.kdata.func(`tramp_${n}`)!.call(100), n + 100);
  link.detach();
});

test("bpf_testmod_ops3 registers one map at a time (EEXIST); its `?` programs load only with their maps", {
  skip: skipFor("testmod_module"),
}, () => {
  const r = bootTestmod();
  const plain = openObj("testmod_module");
  plain.obj.load(r.h);
  assert.equal(plain.obj.findProgram("tm_ops3_test_1")!.fd, -1);
  assert.equal(plain.obj.findMap("ops3_a")!.fd, -1);
  plain.obj.close();

  const { obj } = openObj("testmod_module");
  obj.findMap("ops3_a")!.setAutocreate(true);
  obj.findMap("ops3_b")!.setAutocreate(true);
  obj.load(r.h);
  assert.ok(obj.findProgram("tm_ops3_test_1")!.fd > 0);
  const a = bpfMapAttachStructOps(obj.findMap("ops3_a")!, r.h);
  assert.equal(bpfTestmodState(r.k)!.stOps3!.func("test_1")!.call(), 3);
  assert.equal(errOf(() => bpfMapAttachStructOps(obj.findMap("ops3_b")!, r.h)).errno, EEXIST);
  a.detach();
  assert.equal(bpfTestmodState(r.k)!.stOps3, null);
  bpfMapAttachStructOps(obj.findMap("ops3_b")!, r.h).detach();
});

test("a program for unsupported_ops (no cfi stub) is refused at load (ENOTSUPP)", {
  skip: skipFor("testmod_module"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_module");
  obj.findMap("testmod_unsupported")!.setAutocreate(true);
  const e = errOf(() => obj.load(r.h));
  assert.equal(e.errno, ENOTSUPP);
  assert.match(e.message, /attach to unsupported member unsupported_ops of struct bpf_testmod_ops/);
});

test("module refcount: a map outliving its fd, a pinned link, and rmmod refused while they hold it", {
  skip: skipFor("testmod_module"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_module");
  obj.load(r.h);
  assert.equal(refs(r), 4);
  const link = bpfMapAttachStructOps(obj.findMap("testmod_1")!, r.h);
  assert.equal(bpf_obj_pin(r.h, link.fd, "/sys/fs/bpf/testmod_1"), 0);
  // Every fd of the object and of the link goes: the pinned link keeps testmod_1's map.
  link.detach();
  obj.close();
  r.k.quiesce();
  assert.equal(refs(r), 1);
  const rmmod = errOf(() => delete_module(r.k, "bpf_testmod"));
  assert.equal(rmmod.errno, EWOULDBLOCK);
  assert.match(rmmod.message, /Module bpf_testmod is in use/);
  // The pin goes: link, map, and the module reference with them.
  r.k.unlink("/sys/fs/bpf/testmod_1");
  r.k.quiesce();
  assert.equal(refs(r), 0);
  delete_module(r.k, "bpf_testmod");
  assert.equal(find_module(r.k, "bpf_testmod"), undefined);
});

test("__ref tasks of test_refcounted / test_return_ref_kptr: given back is accepted, a leak refused", {
  skip: skipFor("testmod_refcounted"),
}, () => {
  const r = bootTestmod();
  const ok = openObj("testmod_refcounted");
  ok.obj.load(r.h);
  assert.ok(ok.obj.findProgram("tm_refcounted")!.fd > 0);
  assert.ok(ok.obj.findProgram("tm_return_ref")!.fd > 0);
  const leak = openObj("testmod_refcounted");
  leak.obj.findMap("testmod_ref_leak")!.setAutocreate(true);
  const e = errOf(() => leak.obj.load(r.h));
  assert.equal(e.errno, EINVAL);
  assert.match(e.message, /Unreleased reference id=1 alloc_insn=0/);
  // Released, then returned: not a reference any more, so not a valid return value.
  const rel = openObj("testmod_refcounted");
  rel.obj.findMap("testmod_ref_released")!.setAutocreate(true);
  const e2 = errOf(() => rel.obj.load(r.h));
  assert.equal(e2.errno, EINVAL);
  assert.match(e2.message, /At program exit the register R0 has unknown scalar value should have been in \[0, 0\]/);
});

test("a module kfunc: fd_array names the module's BTF (insn->off), the program holds the module", {
  skip: skipFor("testmod_kfunc"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_kfunc");
  obj.load(r.h);
  const prog = obj.findProgram("tm_call_kfunc")!;
  const call = prog.loadedInsns!.find((i) => i.code === 0x85)!;
  assert.deepEqual([call.src, call.off], [2, 1]); // BPF_PSEUDO_KFUNC_CALL, fd_array[1]
  // Two programs calling the kfunc and one map of a module type.
  assert.equal(refs(r), 3);
  const opts: { retval?: number } = {};
  assert.equal(bpf_prog_test_run_opts(r.h, prog.fd, opts), 0);
  assert.equal(bpfTestmodState(r.k)!.ksymPercpu, 1234);
  // test_1 runs at registration and calls the kfunc too.
  const link = bpfMapAttachStructOps(obj.findMap("testmod_kfunc")!, r.h);
  assert.equal(bpfTestmodState(r.k)!.ksymPercpu, 77);
  link.detach();
  obj.close();
  r.k.quiesce();
  assert.equal(refs(r), 0);
});

test("a module kfunc without the module: libbpf's 'not found in kernel or module BTFs' (EINVAL)", {
  skip: skipFor("testmod_kfunc"),
}, () => {
  const r = bootTestmod({ noModule: true });
  const { obj, log } = openObj("testmod_kfunc");
  assert.equal(errOf(() => obj.load(r.h)).errno, EINVAL);
  assert.ok(
    log.includes("libbpf: extern (func ksym) 'bpf_testmod_test_mod_kfunc': not found in kernel or module BTFs"),
  );
});
