/**
 * The simulated kernel an object is inspected in: every struct_ops subsystem the project has, and
 * bpf_testmod loaded (as the kernel's struct_ops selftests run), so any of our objects registers
 * as it would on a kernel built with them. A new subsystem adds its boot line here.
 */
import { Kernel } from "../../src/kernel/kernel.js";
import { bpfDummyStructOpsSubsystem } from "../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { schedExtSubsystem } from "../../src/subsys/sched_ext/index.js";
import { bpfTcpCaSubsystem } from "../../src/subsys/tcp/bpf_tcp_ca.js";
import { TcpKernel, tcpSubsystem } from "../../src/subsys/tcp/tcp_init.js";
import { loadBpfTestmod } from "../../src/subsys/testmod/bpf_testmod.js";

export function bootKernel(): Kernel {
  const tcp = new TcpKernel();
  const k = new Kernel({
    verifier: true,
    subsystems: [tcpSubsystem(tcp), bpfTcpCaSubsystem(() => tcp.cong), bpfDummyStructOpsSubsystem, schedExtSubsystem],
  });
  loadBpfTestmod(k);
  return k;
}
