/**
 * Module variable ksyms, checked as the kernel's ksyms_module selftest checks them, on our own
 * program (bpf/testmod_ksyms.bpf.c): `extern const int bpf_testmod_ksym_percpu __ksym` resolves
 * in the module's BTF to the module's per-CPU variable, which bpf_this_cpu_ptr and
 * bpf_per_cpu_ptr reach, and which the module's kfunc writes. The module's per-CPU copies and
 * its symbol go with it.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { bpf_prog_test_run_opts } from "../../../src/loader/bpf.js";
import { bpfTestmodState, unloadBpfTestmod } from "../../../src/subsys/testmod/bpf_testmod.js";
import { ESRCH } from "../../../src/uapi/errno.js";
import { bootTestmod, bssVar, errOf, openObj, skipFor } from "./helpers.js";

test("ksyms_module: the module's per-CPU variable through a ksym, this CPU's copy and another's", {
  skip: skipFor("testmod_ksyms"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_ksyms");
  obj.load(r.h);
  // The ld_imm64 names the module's BTF by fd: the program holds it.
  const ld = obj.findProgram("ksym_store")!.loadedInsns!.filter((i) => i.code === 0x18 && i.src === 3);
  assert.ok(ld.length > 0);
  const run = (value: number, cpu: number) => {
    bssVar(r, obj, "value", 4, value);
    bssVar(r, obj, "cpu", 4, cpu);
    const opts: { retval?: number } = {};
    assert.equal(bpf_prog_test_run_opts(r.h, obj.findProgram("ksym_store")!.fd, opts), 0);
    assert.equal(opts.retval, 0);
    return ["before", "after", "other"].map((n) => bssVar(r, obj, n, 4));
  };
  assert.ok(r.k.nrCpus >= 2, "two CPUs at least");
  // DEFINE_PER_CPU(...) = 123 on every CPU; the kfunc writes this CPU's copy only.
  assert.deepEqual(run(42, 1), [123, 42, 123]);
  assert.equal(bpfTestmodState(r.k)!.ksymPercpu, 42);
  assert.deepEqual(run(7, r.k.cpu), [42, 7, 7]);
  // Past the possible CPUs bpf_per_cpu_ptr answers NULL.
  assert.deepEqual(run(8, r.k.nrCpus), [7, 8, -1]);
  obj.close();
  r.k.quiesce();
  assert.ok(r.k.ksyms.has("bpf_testmod_ksym_percpu"));
  unloadBpfTestmod(r.k);
  assert.equal(r.k.ksyms.has("bpf_testmod_ksym_percpu"), false);
});

test("ksyms_module: without the module, libbpf finds no such ksym", { skip: skipFor("testmod_ksyms") }, () => {
  const r = bootTestmod({ noModule: true });
  const { obj } = openObj("testmod_ksyms");
  const e = errOf(() => obj.load(r.h));
  assert.equal(e.errno, ESRCH);
  assert.equal(e.message, "extern (var ksym) 'bpf_testmod_ksym_percpu': not found in kernel BTF");
});
