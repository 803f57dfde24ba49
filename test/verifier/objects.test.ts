import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpfObjectLoad } from "../../src/loader/object_load.js";
import { bpfDummyStructOpsSubsystem } from "../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { bpfTcpCaSubsystem } from "../../src/subsys/tcp/bpf_tcp_ca.js";
import { TcpKernel, tcpSubsystem } from "../../src/subsys/tcp/tcp_init.js";
import { BpfError } from "../../src/uapi/errno.js";
import { repoRoot } from "./helpers.js";

/**
 * Every committed object (bpf/obj/*.bpf.o) loads into the simulated kernel, whose PROG_LOAD runs
 * the verifier on each program. A failure before any program reaches the verifier (a kernel
 * piece not there yet) skips with its reason; a verifier rejection fails with the log.
 */
const OBJ = join(repoRoot(), "bpf/obj");
const objects = existsSync(OBJ) ? readdirSync(OBJ).filter((f) => f.endsWith(".bpf.o")) : [];

test("there are committed objects", { skip: objects.length ? false : `no objects in ${OBJ}` }, () => {
  assert.ok(objects.length > 0);
});

/** A kernel with TCP congestion control and bpf_dummy_ops, as the simulator boots it. */
function bootKernel(): Kernel {
  const tcp = new TcpKernel();
  return new Kernel({
    verifier: true,
    subsystems: [tcpSubsystem(tcp), bpfTcpCaSubsystem(() => tcp.cong), bpfDummyStructOpsSubsystem],
  });
}

for (const f of objects) {
  test(`${f}: every program verifies`, (t) => {
    const kernel = bootKernel();
    // Count the programs the verifier actually saw (the kernel's hook is opt-in).
    const hook = kernel.verifier;
    let verified = 0;
    kernel.verifier = (env) => {
      verified++;
      return hook?.(env);
    };
    const logs: string[] = [];
    const obj = BpfObject.open(join(OBJ, f), { print: (_l, m) => logs.push(m) });
    try {
      // Log level 0, as libbpf loads (a failed load is retried at level 1 to explain itself).
      bpfObjectLoad(obj, { kernel, process: kernel.newProcess() });
    } catch (e) {
      if (!(e instanceof BpfError)) throw e;
      const verifierLog = logs.find((l) => l.includes("-- BEGIN PROG LOAD LOG --"));
      if (!verifierLog) {
        t.skip(`not loadable yet for a reason outside the verifier: ${e.message}`);
        return;
      }
      assert.fail(`${f}: ${e.message}\n${verifierLog}`);
    }
    const autoload = obj.programs.filter((p) => p.autoload);
    for (const p of autoload) assert.ok(p.fd >= 0, `${p.name} loaded`);
    assert.ok(hook, "the kernel runs the verifier");
    assert.equal(verified, autoload.length, "every program went through the verifier");
  });
}
