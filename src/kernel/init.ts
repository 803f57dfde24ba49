/**
 * Boot (init/main.c for the BPF core): built-in map types, program types and helpers, the vmlinux
 * BTF built from the kernel's and each subsystem's declarations, the VM runtime, then subsystems.
 */

import { Btf } from "../btf/btf.js";
import { BtfBuilder } from "../btf/builder.js";
import { bpf_map_type, bpf_prog_type } from "../uapi/bpf.js";
import { BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED } from "../uapi/btf.js";
import { BpfError, EINVAL } from "../uapi/errno.js";
import { type HelperCall, Vm, VmMemory } from "../vm/index.js";
import { array_map_ops, percpu_array_map_ops } from "./arraymap.js";
import type { BpfProg } from "./bpf.js";
import { registerCgrpStorage } from "./bpf_cgrp_storage.js";
import { declareDynptrTypes, registerDynptr } from "./bpf_dynptr.js";
import { declareGraphTypes, type ProgKernelFn, registerGraphKfuncs } from "./bpf_graph_kfuncs.js";
import { declareIterTypes, declareLoopConsts, registerIterHelpers } from "./bpf_iter.js";
import { declareIterBitsTypes, registerIterBitsKfuncs } from "./bpf_iter_bits.js";
import { declareKeyTypes, registerKeyKfuncs } from "./bpf_key.js";
import { declareLsmTypes, registerLsm } from "./bpf_lsm.js";
import { declareMapTypes } from "./bpf_map_btf.js";
import { sk_storage_map_ops } from "./bpf_sk_storage.js";
import { task_storage_map_ops } from "./bpf_task_storage.js";
import { declareTimerTypes, registerTimerHelpers } from "./bpf_timer.js";
import { declareTracepointTypes, registerRawTracepoints, registerTraceProgTypes } from "./bpf_trace.js";
import { bpfVerifierHook } from "./bpf_verifier.js";
import { declareWqTypes, registerWqKfuncs } from "./bpf_wq.js";
import { btf_register_kernel } from "./btf_obj.js";
import { declareCpumaskMoreTypes } from "./cpumask.js";
import { filterVerifierOps } from "./filter.js";
import { registerFilterHelpers } from "./filter_helpers.js";
import { htab_lru_map_ops, htab_map_ops, htab_percpu_map_ops } from "./hashtab.js";
import { registerBaseHelpers } from "./helpers.js";
import type { Kernel, KernelOptions, Kfunc } from "./kernel.js";
import { bpfCoreKfuncs } from "./kfuncs.js";
import { registerLdAbsHelpers } from "./ld_abs.js";
import { declareLinuxTypes } from "./linux_types.js";
import { arrayOfMapsOps, htabOfMapsOps } from "./map_in_map.js";
import type { Module } from "./module.js";
import { declarePercpuVars } from "./percpu.js";
import { progArrayOps, registerTailCall } from "./prog_array.js";
import { queue_stack_map_ops } from "./queue_stack_maps.js";
import { registerRingbufHelpers, ringbuf_map_ops } from "./ringbuf.js";
import { declareTaskTypes, taskStructAddMember } from "./task.js";
import { declareTcpStates } from "./tcp_states.js";
import { testRunOps } from "./test_run.js";
import { SKB_TEST_RUN_PROG_TYPES } from "./test_run_pkt.js";
import { declareTraceTargetTypes, registerTraceTargets } from "./trace_targets.js";
import { registerTracing } from "./trampoline.js";
import { registerUserRingbufHelpers, user_ringbuf_map_ops } from "./user_ringbuf.js";

/** Ids of the base types in the vmlinux BTF being built, for subsystems' declarations. */
export interface KernelBaseTypes {
  readonly char: number;
  readonly u8: number;
  readonly u16: number;
  readonly int: number;
  readonly u32: number;
  readonly s64: number;
  readonly u64: number;
  readonly ulong: number;
  readonly bool: number;
  readonly list_head: number;
  readonly module: number;
  readonly refcount_t: number;
  readonly bpf_struct_ops_state: number;
  readonly bpf_struct_ops_common_value: number;
  readonly task_struct: number;
  readonly cpumask: number;
  readonly cpumask_t: number;
}

/** The base types every kernel's BTF has, and the BPF core's own (struct_ops needs them). */
export function declareKernelTypes(b: BtfBuilder): KernelBaseTypes {
  const u8 = b.addInt("unsigned char", 1, BTF_INT_CHAR);
  // As in vmlinux: plain `char` carries no encoding (the BTF checker refuses SIGNED|CHAR).
  const charT = b.addInt("char", 1, 0);
  b.addInt("short", 2, BTF_INT_SIGNED);
  const u16 = b.addInt("short unsigned int", 2);
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const u32 = b.addInt("unsigned int", 4);
  const s64 = b.addInt("long long int", 8, BTF_INT_SIGNED);
  const u64 = b.addInt("long long unsigned int", 8);
  b.addInt("long int", 8, BTF_INT_SIGNED);
  const ulong = b.addInt("long unsigned int", 8);
  const bool = b.addInt("_Bool", 1, BTF_INT_BOOL);
  for (const [n, t] of [
    ["__u8", u8],
    ["u8", u8],
    ["__u16", u16],
    ["u16", u16],
    ["__u32", u32],
    ["u32", u32],
    ["__s32", int],
    ["s32", int],
    ["__u64", u64],
    ["u64", u64],
    ["__s64", s64],
    ["s64", s64],
    ["size_t", ulong],
  ] as const) {
    b.addTypedef(n, t);
  }
  const atomic = b.addStructAuto("", [{ name: "counter", type: int }]);
  const atomic_t = b.addTypedef("atomic_t", atomic);
  const refcount = b.addStructAuto("refcount_struct", [{ name: "refs", type: atomic_t }]);
  const refcount_t = b.addTypedef("refcount_t", refcount);
  const listFwd = b.addFwd("list_head");
  const listPtr = b.addPtr(listFwd);
  const list_head = b.addStructAuto("list_head", [
    { name: "next", type: listPtr },
    { name: "prev", type: listPtr },
  ]);
  const module = b.addStructAuto("module", [{ name: "name", type: b.addArray(charT, int, 56) }]);
  const state = b.addEnum("bpf_struct_ops_state", 4, [
    { name: "BPF_STRUCT_OPS_STATE_INIT", val: 0 },
    { name: "BPF_STRUCT_OPS_STATE_INUSE", val: 1 },
    { name: "BPF_STRUCT_OPS_STATE_TOBEFREE", val: 2 },
    { name: "BPF_STRUCT_OPS_STATE_READY", val: 3 },
  ]);
  const common = b.addStructAuto("bpf_struct_ops_common_value", [
    { name: "refcnt", type: refcount_t },
    { name: "state", type: state },
  ]);
  const { task_struct, cpumask, cpumask_t } = declareTaskTypes(b, { int, u32, ulong, char: charT, refcount_t });
  return {
    task_struct,
    cpumask,
    cpumask_t,
    char: charT,
    u8,
    u16,
    int,
    u32,
    s64,
    u64,
    ulong,
    bool,
    list_head,
    module,
    refcount_t,
    bpf_struct_ops_state: state,
    bpf_struct_ops_common_value: common,
  };
}

/** Program types this kernel knows (PROG_LOAD of another type is EINVAL). */
const KNOWN_PROG_TYPES = Object.values(bpf_prog_type).filter((t) => t !== 0);

export function bootKernel(k: Kernel, opts: KernelOptions): void {
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_ARRAY, array_map_ops);
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_PERCPU_ARRAY, percpu_array_map_ops);
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_HASH, htab_map_ops);
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_PERCPU_HASH, htab_percpu_map_ops);
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_LRU_HASH, htab_lru_map_ops);
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_LRU_PERCPU_HASH, htab_percpu_map_ops);
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_SK_STORAGE, sk_storage_map_ops);
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_TASK_STORAGE, task_storage_map_ops);
  registerCgrpStorage(k);
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_QUEUE, queue_stack_map_ops);
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_STACK, queue_stack_map_ops);
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_RINGBUF, ringbuf_map_ops);
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_USER_RINGBUF, user_ringbuf_map_ops);
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_ARRAY_OF_MAPS, arrayOfMapsOps(array_map_ops));
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_HASH_OF_MAPS, htabOfMapsOps(htab_map_ops));
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_PROG_ARRAY, progArrayOps(array_map_ops));
  registerTailCall(k);
  for (const t of KNOWN_PROG_TYPES) k.registerProgType(t, {});
  k.registerProgType(bpf_prog_type.BPF_PROG_TYPE_SYSCALL, testRunOps.syscall);
  k.registerProgType(bpf_prog_type.BPF_PROG_TYPE_RAW_TRACEPOINT, testRunOps.raw_tp);
  for (const [t, verifier_ops] of filterVerifierOps) k.registerProgType(t, { verifier_ops });
  for (const t of SKB_TEST_RUN_PROG_TYPES) k.registerProgType(t, testRunOps.skb);
  k.registerProgType(bpf_prog_type.BPF_PROG_TYPE_XDP, testRunOps.xdp);
  registerLdAbsHelpers(k);
  registerFilterHelpers(k);
  registerBaseHelpers(k);
  registerTracing(k);
  registerRawTracepoints(k);
  registerTraceProgTypes(k);

  if (!opts.noVmlinuxBtf) {
    const b = new BtfBuilder();
    const base = declareKernelTypes(b);
    declareIterTypes(b, base);
    bpfCoreKfuncs.declareTypes?.(b, base);
    for (const s of k.subsystems) s.declareTypes?.(b, base);
    // After the subsystems' types, so their ids stay where they were.
    declareGraphTypes(b, base);
    declarePercpuVars(b, base);
    declareTimerTypes(b, base);
    declareWqTypes(b, base);
    declareDynptrTypes(b, base);
    declareMapTypes(b, base);
    declareTracepointTypes(b, base);
    declareKeyTypes(b, base);
    declareTraceTargetTypes(b, base);
    declareLsmTypes(b, base);
    declareIterBitsTypes(b, base);
    declareCpumaskMoreTypes(b, base);
    declareLoopConsts(b);
    // include/linux/stddef.h's enum { false, true } (vmlinux.h users write true/false from it), and
    // task_struct.migration_disabled: 0, as no simulated task pins itself to its CPU.
    b.addEnum("", 4, [
      { name: "false", val: 0 },
      { name: "true", val: 1 },
    ]);
    taskStructAddMember(b, "migration_disabled", base.u16);
    declareLinuxTypes(b, base);
    declareTcpStates(b);
    const data = b.build();
    k.btfVmlinuxObj = btf_register_kernel(k, Btf.parse(data), data, "vmlinux");
  }
  registerIterHelpers(k);
  if (k.btfVmlinux) registerIterBitsKfuncs(k);
  registerTimerHelpers(k);
  registerRingbufHelpers(k);
  registerUserRingbufHelpers(k);
  if (k.btfVmlinux) registerWqKfuncs(k);
  if (k.btfVmlinux) registerDynptr(k);
  if (k.mem instanceof VmMemory) bindVm(k, new Vm(k.mem));
  // The verifier runs on every PROG_LOAD, as in the kernel; `verifier: false` is for tests of
  // the runtime checks that sit behind it (the VM still checks every access).
  if (opts.verifier !== false) k.verifier = bpfVerifierHook;
  if (k.btfVmlinux) bpfCoreKfuncs.register?.(k);
  if (k.btfVmlinux) registerGraphKfuncs(k);
  if (k.btfVmlinux) registerKeyKfuncs(k);
  registerTraceTargets(k);
  registerLsm(k);
  for (const s of k.subsystems) s.register?.(k);
  for (const s of k.subsystems) s.boot?.(k);
}

/**
 * bpf_prog_select_runtime(): hand the resolved program to the VM with the kernel's helper and kfunc
 * tables, so prog.bpf_func runs it.
 */
function bindVm(k: Kernel, vm: Vm): void {
  const wrap = (fn: (c: HelperCall, kk: Kernel) => bigint | number) => (call: HelperCall) => call.setRet(fn(call, k));
  k.vm = vm;
  k.jit = (prog: BpfProg) => {
    const helpers = new Map<number, (c: HelperCall) => void>();
    const kfuncs = new Map<number, (c: HelperCall) => void>();
    for (const [id, fn] of k.helpers) helpers.set(id, wrap(fn));
    for (const id of prog.aux.kfunc_btf_ids) {
      const fromModule = prog.aux.kfunc_btf_tab.find((b) => (b.module as Module).kfuncs.has(id));
      const kf = ((fromModule?.module as Module | undefined)?.kfuncs.get(id) ?? k.kfuncs.get(id)) as
        | (Kfunc & { bind?: ProgKernelFn })
        | undefined;
      if (kf) kfuncs.set(id, wrap(kf.bind ? kf.bind(prog) : kf.impl));
    }
    let P: ReturnType<Vm["load"]>;
    try {
      const proven = (prog.aux.verifier_result as { memProven?: Uint8Array } | undefined)?.memProven;
      P = vm.load(prog.insnsi, { helpers, kfuncs, name: prog.name, proven });
    } catch (e) {
      if (e instanceof BpfError) throw e;
      throw new BpfError(EINVAL, `program ${prog.name}: ${(e as Error).message}`);
    }
    prog.bpf_func = (ctx) => {
      if (Array.isArray(ctx)) {
        const a = ctx as readonly (number | bigint)[];
        return vm.run(P, { r1: a[0], r2: a[1], r3: a[2], r4: a[3], r5: a[4] }).r0;
      }
      return vm.run(P, ctx as number | bigint).r0;
    };
    prog.vmProg = P;
  };
}
