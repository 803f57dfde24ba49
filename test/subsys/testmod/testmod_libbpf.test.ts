/**
 * The struct_ops selftests that check libbpf's rules and the verifier's return-value rules on
 * bpf_testmod_ops (test_struct_ops_module's null_out_cb and forgotten_cb, bad_struct_ops'
 * invalid_prog_reuse, test_struct_ops_kptr_return and its _fail variants), on our own programs
 * (bpf/testmod_callbacks.bpf.c, bpf/testmod_kptr_return.bpf.c).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { bpfMapAttachStructOps } from "../../../src/loader/struct_ops_attach.js";
import { type BpfError, EACCES, EINVAL } from "../../../src/uapi/errno.js";
import { bootTestmod, errOf, openObj, skipFor } from "./helpers.js";

test("null_out_cb: a shadow NULL in a slot the kernel has turns the callback off; it is not loaded", {
  skip: skipFor("testmod_callbacks"),
}, () => {
  const r = bootTestmod();
  // Loaded, cb_out_of_range is refused by the verifier.
  const as = openObj("testmod_callbacks");
  as.obj.findProgram("cb_unused")!.setAutoload(false);
  const e = errOf(() => as.obj.load(r.h));
  assert.equal(e.errno, EINVAL);
  assert.match(e.message, /^prog 'cb_out_of_range': failed to load/);
  assert.match(e.message, /math between map_value pointer and register with unbounded min value is not allowed/);

  const { obj } = openObj("testmod_callbacks");
  obj.findProgram("cb_unused")!.setAutoload(false);
  obj.findMap("nulled")!.structOpsValue!.set("test_1", null);
  obj.load(r.h);
  const prog = obj.findProgram("cb_out_of_range")!;
  assert.equal(prog.autoload, false);
  assert.ok(prog.fd < 0);
  // The map registers with the slot empty: bpf_dummy_reg skips test_1.
  bpfMapAttachStructOps(obj.findMap("nulled")!, r.h).detach();
});

test("forgotten_cb: a struct_ops program no map uses fails the load with libbpf's message; in a slot it loads", {
  skip: skipFor("testmod_callbacks"),
}, () => {
  const r = bootTestmod();
  const forgot = openObj("testmod_callbacks");
  forgot.obj.findMap("nulled")!.structOpsValue!.set("test_1", null);
  const e = errOf(() => forgot.obj.load(r.h));
  assert.equal(e.errno, EINVAL);
  const msg = `libbpf: prog 'cb_unused': SEC("struct_ops") program isn't referenced anywhere, did you forget to use it?`;
  assert.ok(forgot.log.includes(msg), forgot.log.join("\n"));

  const { obj } = openObj("testmod_callbacks");
  obj.findMap("nulled")!.structOpsValue!.set("test_1", null);
  obj.findMap("spare")!.structOpsValue!.set("test_1", obj.findProgram("cb_unused")!);
  obj.load(r.h);
  assert.ok(obj.findProgram("cb_unused")!.fd > 0);
});

test("invalid_prog_reuse: one program in maps of two struct_ops types", { skip: skipFor("testmod_callbacks") }, () => {
  const r = bootTestmod();
  const { obj, log } = openObj("testmod_callbacks");
  obj.findProgram("cb_unused")!.setAutoload(false);
  obj.findMap("nulled")!.structOpsValue!.set("test_1", null);
  obj.findMap("reuse")!.setAutocreate(true);
  assert.equal(errOf(() => obj.load(r.h)).errno, EINVAL);
  assert.ok(
    log.some((l) =>
      l.startsWith("libbpf: struct_ops init_kern reuse func ptr test_1: invalid reuse of prog cb_shared"),
    ),
    log.join("\n"),
  );
});

test("kptr_return: the __ref task or NULL is returned; a scalar, an inner pointer, an allocated object are not", {
  skip: skipFor("testmod_kptr_return"),
}, () => {
  const r = bootTestmod();
  const ok = openObj("testmod_kptr_return");
  ok.obj.load(r.h);
  assert.ok(ok.obj.findProgram("kr_ok")!.fd > 0);
  const refused = (map: string): BpfError => {
    const { obj } = openObj("testmod_kptr_return");
    obj.findMap(map)!.setAutocreate(true);
    return errOf(() => obj.load(r.h));
  };
  const scalar = refused("ret_scalar");
  assert.equal(scalar.errno, EINVAL);
  assert.match(scalar.message, /At program exit the register R0 has smin=3 smax=3 should have been in \[0, 0\]/);
  const inner = refused("ret_inner");
  assert.equal(inner.errno, EACCES);
  assert.match(inner.message, /dereference of modified trusted_ptr_ ptr R0 off=\d+ disallowed/);
  const local = refused("ret_local");
  assert.equal(local.errno, EINVAL);
  assert.match(local.message, /At program exit the register R0 is not a known value \(ptr_or_null_\)/);
  // kptr_return_fail__wrong_type: a referenced cgroup is not the task the member returns.
  const cgroup = refused("ret_cgroup");
  assert.equal(cgroup.errno, EINVAL);
  assert.match(cgroup.message, /R0=ptr_or_null_cgroup\(id=\d+,ref_obj_id=\d+\)/);
  assert.match(cgroup.message, /At program exit the register R0 is not a known value \(ptr_or_null_\)/);
});

test("__ref: the argument read again after its release is refused", { skip: skipFor("testmod_kptr_return") }, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_kptr_return");
  obj.findMap("ret_reread")!.setAutocreate(true);
  const e = errOf(() => obj.load(r.h));
  assert.equal(e.errno, EACCES);
  assert.match(e.message, /invalid bpf_context access off=8\. Reference may already be released/);
});

test("refcounted_fail__global_subprog: a global function reads a __ref argument it does not hold", {
  skip: skipFor("testmod_ref_global"),
}, () => {
  const r = bootTestmod();
  // The global function only looks at the scalar argument: verified on its own, accepted.
  const ok = openObj("testmod_ref_global");
  ok.obj.load(r.h);
  assert.ok(ok.obj.findProgram("rg_ok")!.fd > 0);
  // Verified after the main program, holding no reference: its load of the task is refused,
  // after the caller released it (the selftest's case) and while the caller still holds it.
  for (const [map, func] of [
    ["testmod_rg_release_twice", "rg_release_from_ctx"],
    ["testmod_rg_read_held", "rg_pid_from_ctx"],
  ]) {
    const { obj, log } = openObj("testmod_ref_global");
    obj.findMap("testmod_rg_ok")!.setAutocreate(false);
    obj.findMap(map)!.setAutocreate(true);
    const e = errOf(() => obj.load(r.h));
    assert.equal(e.errno, EACCES, map);
    const text = log.join("\n");
    assert.match(text, new RegExp(`Validating ${func}\\(\\) func#1\\.\\.\\.`), map);
    assert.match(text, /invalid bpf_context access off=8\. Reference may already be released/, map);
  }
});
