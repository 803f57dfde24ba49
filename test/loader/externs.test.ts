import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { SimTarget } from "../../src/fidelity/sim.js";
import type { BpfHandle } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { BTF_KIND_FUNC } from "../../src/uapi/btf.js";
import { BpfError, EINVAL, ESRCH } from "../../src/uapi/errno.js";
import { ROOT } from "../elf/helpers.js";

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
  // With the strong one given, the extern phase passes: the weak kconfig stays 0, the weak kfunc unresolved.
  const obj2 = BpfObject.open(fixture("extern_kcfg"), { kconfig: "CONFIG_STRUCTOPS_STRONG=3\n" });
  try {
    obj2.load(boot().h as BpfHandle);
  } catch (e) {
    assert.ok(!(e instanceof BpfError && /^extern /.test(e.message)), (e as Error).message);
  }
  const ext = (n: string) => obj2.externs.find((x) => x.name === n);
  assert.deepEqual(
    [ext("CONFIG_STRUCTOPS_STRONG")?.isSet, ext("CONFIG_STRUCTOPS_WEAK")?.isSet, ext("tcp_slow_start")?.isSet],
    [true, false, false],
  );
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
