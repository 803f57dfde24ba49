import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { SimTarget } from "../../src/fidelity/sim.js";
import { disassemble } from "../../src/isa/disasm.js";
import type { Insn } from "../../src/isa/insn.js";
import type { BpfProgInfo } from "../../src/kernel/bpf.js";
import {
  type BpfHandle,
  type BpfTestRunOpts,
  bpf_prog_get_info_by_fd,
  bpf_prog_test_run_opts,
} from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { BTF_KIND_FUNC } from "../../src/uapi/btf.js";
import { BpfError, EINVAL, ESRCH } from "../../src/uapi/errno.js";
import { ROOT } from "../elf/helpers.js";

/** libbpf's POISON_CALL_KFUNC_BASE (src/libbpf.c): helper id of a call to an unresolved weak kfunc. */
const POISON_CALL_KFUNC_BASE = 2002000000;

const fixture = (name: string) => join(ROOT, "test/fixtures/elf", `${name}.bpf.o`);

/** The simulated TCP kernel (its BTF declares tcp_slow_start), or why it cannot be used. */
function boot(): { h?: BpfHandle; why: string | false } {
  try {
    const kernel = new SimTarget().kernel;
    const ok = (kernel.btfVmlinux?.findByNameKind("tcp_slow_start", BTF_KIND_FUNC) ?? -1) > 0;
    return ok ? { h: { kernel, process: kernel.newProcess() }, why: false } : { why: "no tcp_slow_start kfunc" };
  } catch (e) {
    return { why: `the simulated TCP kernel does not boot: ${(e as Error).message}` };
  }
}
const why = boot().why;

test("externs: a strong kconfig extern no config sets fails with -ESRCH; weak externs (an incompatible weak kfunc) do not", {
  skip: why,
}, () => {
  const log: string[] = [];
  const obj = BpfObject.open(fixture("extern_kcfg"), { print: (_l, m) => log.push(m) });
  assert.throws(
    () => obj.load(boot().h as BpfHandle),
    (e: unknown) =>
      e instanceof BpfError &&
      e.errno === ESRCH &&
      e.message === "extern 'CONFIG_STRUCTOPS_STRONG' (strong): not resolved",
  );
  // With the strong one given, the weak kconfig stays 0 and the weak kfunc unresolved.
  const obj2 = BpfObject.open(fixture("extern_kcfg"), { kconfig: "CONFIG_STRUCTOPS_STRONG=3\n" });
  obj2.load(boot().h as BpfHandle);
  const ext = (n: string) => obj2.externs.find((x) => x.name === n);
  assert.deepEqual(
    [ext("CONFIG_STRUCTOPS_STRONG")?.isSet, ext("CONFIG_STRUCTOPS_WEAK")?.isSet, ext("tcp_slow_start")?.isSet],
    [true, false, false],
  );
});

test("externs: an unresolved weak kfunc's poisoned call behind bpf_ksym_exists() is dead code: the program loads and runs", {
  skip: why,
}, () => {
  const h = boot().h as BpfHandle;
  const obj = BpfObject.open(fixture("extern_kcfg"), { kconfig: "CONFIG_STRUCTOPS_STRONG=3\n" });
  obj.load(h);
  const prog = obj.programs.find((p) => p.name === "kcfg_prog");
  assert.ok(prog?.loadedInsns && prog.fd !== undefined && prog.fd >= 0);
  // libbpf poisons the call as helper POISON_CALL_KFUNC_BASE + ext index, which no kernel has.
  const poisoned = prog.loadedInsns.findIndex((i) => i.code === 0x85 && i.src === 0 && i.imm >= POISON_CALL_KFUNC_BASE);
  assert.ok(poisoned > 0, "the loaded program carries libbpf's poisoned kfunc call");
  const info: Partial<BpfProgInfo> = {};
  assert.equal(bpf_prog_get_info_by_fd(h, prog.fd, info), 0);
  const xlated = info.xlated_prog_insns as Insn[];
  assert.equal(xlated.length, prog.loadedInsns.length);
  // sanitize_dead_code: the never-walked call is the kernel's trap `ja -1` (bpftool: goto pc-1).
  assert.deepEqual(xlated[poisoned], { code: 0x05, dst: 0, src: 0, off: -1, imm: 0 });
  assert.equal(disassemble(xlated)[poisoned], "ja -1");
  assert.ok(!xlated.some((i) => i.code === 0x85 && i.imm >= POISON_CALL_KFUNC_BASE));
  // The program runs: tcp_slow_start is NULL, so it returns STRONG + WEAK = 3 + 0.
  const run: BpfTestRunOpts = {};
  assert.equal(bpf_prog_test_run_opts(h, prog.fd, run), 0);
  assert.equal(run.retval, 3);
});

test("externs: a strong kfunc whose prototype differs from the kernel's is libbpf's EINVAL", { skip: why }, () => {
  const obj = BpfObject.open(fixture("extern_kfunc"));
  assert.throws(
    () => obj.load(boot().h as BpfHandle),
    (e: unknown) =>
      e instanceof BpfError &&
      e.errno === EINVAL &&
      /^extern \(func ksym\) 'tcp_slow_start': func_proto \[\d+\] incompatible with vmlinux \[\d+\]$/.test(e.message),
  );
});
