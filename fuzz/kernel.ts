/** A simulated kernel with every subsystem, as the CLI boots it, and its leak checks. */
import { Kernel, type Subsystem } from "../src/kernel/kernel.js";
import { bpfDummyStructOpsSubsystem } from "../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { bpfTcpCaSubsystem } from "../src/subsys/tcp/bpf_tcp_ca.js";
import { registerTcpBpf } from "../src/subsys/tcp/bpf_tcp_ca_kfuncs.js";
import { TcpCongControl } from "../src/subsys/tcp/tcp_cong.js";
import { tcpReno } from "../src/subsys/tcp/tcp_reno.js";
import { FuzzInvariant } from "./target.js";

/**
 * What the kernel's cond_resched() does in the fuzzer: a beat of the worker's heartbeat, so a
 * verifier walking toward its instruction limit is not taken for a hang (the worker sets it).
 */
export const resched = { beat: (): void => {} };

export function bootKernel(): Kernel {
  const cong = new TcpCongControl(tcpReno());
  const kfuncs: Subsystem = {
    name: "tcp_bpf",
    register: (k) => registerTcpBpf(k, { cong, sockByAddr: () => undefined }),
  };
  const k = new Kernel({ subsystems: [bpfTcpCaSubsystem(() => cong), kfuncs, bpfDummyStructOpsSubsystem] });
  k.condResched = () => resched.beat();
  return k;
}

/** After every process exited and a grace period passed, nothing BPF may be left but kernel BTF. */
export function assertNothingLeft(k: Kernel, kernelBtfs: number): void {
  k.quiesce();
  if (k.map_idr.size) throw new FuzzInvariant(`${k.map_idr.size} map(s) left after every fd closed`);
  if (k.prog_idr.size) throw new FuzzInvariant(`${k.prog_idr.size} program(s) left after every fd closed`);
  if (k.link_idr.size) throw new FuzzInvariant(`${k.link_idr.size} link(s) left after every fd closed`);
  if (k.btf_idr.size !== kernelBtfs)
    throw new FuzzInvariant(`${k.btf_idr.size - kernelBtfs} BTF object(s) left after every fd closed`);
}
