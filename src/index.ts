/**
 * structops as a library. Each layer is a namespace (`btf`, `isa`, `vm`, `verifier`, `kernel`,
 * `loader`, `sim`); the entry points most programs need are also exported by name: the
 * simulated `Kernel`, libbpf's `bpf.h` API (`bpf_map_create`, `bpf_prog_load`, ... with libbpf
 * 1.0's negative-errno convention), `BpfObject` (libbpf's open/load/attach), `BpfError`.
 */
export * as btf from "./btf/index.js";
export * as isa from "./isa/index.js";
export * as kernel from "./kernel/index.js";
export { Kernel, type Subsystem } from "./kernel/kernel.js";
export * from "./loader/bpf.js";
export * as loader from "./loader/index.js";
export { BpfMap, BpfObject, BpfProgram, BpfStructOpsLink } from "./loader/index.js";
export { BpfCcHost } from "./sim/bpf_cc.js";
export * as sim from "./sim/sim.js";
export { bpfDummyStructOpsSubsystem } from "./subsys/dummy/bpf_dummy_struct_ops.js";
export { bpfTcpCaSubsystem } from "./subsys/tcp/bpf_tcp_ca.js";
export { TcpKernel, tcpSubsystem } from "./subsys/tcp/tcp_init.js";
export * from "./uapi/index.js";
export * as verifier from "./verifier/index.js";
export * as vm from "./vm/index.js";
