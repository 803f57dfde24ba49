/** The simulated kernel's vmlinux BTF is BTF the real kernel's checker accepts. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { BtfInt } from "../../src/btf/types.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { bpfDummyStructOpsSubsystem } from "../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { bpfTcpCaSubsystem } from "../../src/subsys/tcp/bpf_tcp_ca.js";
import { TcpKernel, tcpSubsystem } from "../../src/subsys/tcp/tcp_init.js";
import { BTF_KIND_INT } from "../../src/uapi/btf.js";

function bootFull(): Kernel {
  const tcp = new TcpKernel();
  return new Kernel({ subsystems: [tcpSubsystem(tcp), bpfTcpCaSubsystem(() => tcp.cong), bpfDummyStructOpsSubsystem] });
}

test("vmlinux BTF of a kernel with TCP and bpf_dummy_ops passes the kernel's BTF checks", () => {
  const btf = bootFull().btfVmlinux!;
  assert.doesNotThrow(() => btf.validate());
});

test("vmlinux `char` has no encoding, as pahole emits it (SIGNED|CHAR is 'Unsupported encoding')", () => {
  const btf = bootFull().btfVmlinux!;
  const id = btf.findByNameKind("char", BTF_KIND_INT);
  assert.ok(id > 0);
  const t = btf.typeById(id) as BtfInt;
  assert.equal(t.encoding, 0);
  assert.equal(t.size, 1);
});
