/**
 * The subsystems built into the simulated vmlinux (the kernel's .config, in initcall order): TCP
 * and its congestion controls, bpf_dummy_ops, the packet scheduler with bpf_qdisc, sched_ext.
 * The order fixes the vmlinux BTF's type ids, so the kernel a `structops` session boots, the BTF
 * `btf dump id 1 format c` prints and the vmlinux.h bpf/'s objects compile against are one.
 */
import type { Subsystem } from "../kernel/kernel.js";
import { bpfDummyStructOpsSubsystem } from "./dummy/bpf_dummy_struct_ops.js";
import { QdiscKernel, qdiscSubsystem } from "./qdisc/qdisc_init.js";
import { schedExtSubsystem } from "./sched_ext/index.js";
import { bpfTcpCaSubsystem } from "./tcp/bpf_tcp_ca.js";
import { TcpKernel, tcpSubsystem } from "./tcp/tcp_init.js";

/** The per-kernel state of the subsystems that keep any. */
export interface Vmlinux {
  tcp: TcpKernel;
  qdisc: QdiscKernel;
  subsystems: Subsystem[];
}

export function vmlinux(): Vmlinux {
  const tcp = new TcpKernel();
  const qdisc = new QdiscKernel();
  return {
    tcp,
    qdisc,
    subsystems: [
      tcpSubsystem(tcp),
      bpfTcpCaSubsystem(() => tcp.cong),
      bpfDummyStructOpsSubsystem,
      qdiscSubsystem(qdisc),
      schedExtSubsystem,
    ],
  };
}
