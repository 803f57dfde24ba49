/**
 * The simulated kernel's BPF core.
 *
 * Entry points: `new Kernel({ subsystems, verifier, config, progTagHash })`, `kernel.newProcess()`,
 * `kernel.bpf(proc, cmd, attr)` (the bpf() syscall: a number or a thrown BpfError),
 * `kernel.close/dup/exit/poll/fdinfo/objGetInfo/socket/unlink`, `kernel.rcu` and
 * `kernel.quiesce()/advance()` for grace periods, `kernel.setTimeNs/advanceTimeNs` for the clock
 * (moving it fires the hrtimers that expire on the way: `hrtimer_start`, `hrtimer_next_expiry`).
 * Subsystems plug in with `registerMapType`, `registerProgType`, `registerLinkCreate`,
 * `registerHelper`, `registerKfunc`, `kernel.structOps` and `kernel.verifier`, and use the
 * kernel's primitives: `bpf_map_inc/put/inc_not_zero`, `bpf_prog_get/put/inc`, `fdget`,
 * `bpf_link_init/prime/settle/cleanup/put`, `bpf_prog_run`.
 */
export * from "./arraymap.js";
export * from "./bpf.js";
export * from "./bpf_attr.js";
export * from "./bpf_sk_storage.js";
export * from "./btf_obj.js";
export * from "./capability.js";
export * from "./core.js";
export * from "./file.js";
export * from "./hashtab.js";
export * from "./helpers.js";
export * from "./hrtimer.js";
export * from "./idr.js";
export { declareKernelTypes, type KernelBaseTypes } from "./init.js";
export * from "./inode.js";
export * from "./kernel.js";
export * from "./map_batch.js";
export * from "./process.js";
export * from "./rcu.js";
export * from "./sock.js";
export * from "./syscall.js";
export * from "./syscall_common.js";
export * from "./syscall_link.js";
export * from "./syscall_map.js";
export * from "./syscall_prog.js";
export * from "./test_run.js";
