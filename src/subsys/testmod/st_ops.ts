/**
 * bpf_testmod's `bpf_testmod_st_ops` and `bpf_testmod_multi_st_ops` (test_kmods/bpf_testmod.c,
 * 6.18) and the kfuncs through which programs call them.
 *
 * bpf_testmod_st_ops: one map registered at a time (EEXIST); its verifier ops wrap programs of
 * test_prologue / test_pro_epilogue in a prologue adding 1000 to `args->a`, and programs of
 * test_epilogue / test_pro_epilogue in an epilogue adding 10000 and returning twice the result;
 * for a program whose name starts with `test_kfunc_` both first call bpf_cgroup_from_id(0) and
 * only add when it returns NULL (releasing the cgroup otherwise), so the generated code itself calls
 * kfuncs (their ids are vmlinux's, looked up when the type registers: EINVAL without them);
 * programs may write `struct st_ops_args` within its size. bpf_kfunc_st_ops_test_*(args) call the
 * registered map's member (-1 when none), bpf_kfunc_st_ops_inc10 adds 10.
 *
 * bpf_testmod_multi_st_ops: any number of maps, each filed under its map id (test_1 required,
 * EINVAL; the same id twice, EEXIST); bpf_kfunc_multi_st_ops_test_1(args, id) calls the test_1 of
 * the map with that id, -1 when there is none.
 */

import type { Btf } from "../../btf/btf.js";
import type { BtfComposite, BtfMember } from "../../btf/types.js";
import { type Insn, insn } from "../../isa/insn.js";
import {
  BPF_ADD,
  BPF_ALU64,
  BPF_CALL,
  BPF_DW,
  BPF_EXIT,
  BPF_JA,
  BPF_JMP,
  BPF_JNE,
  BPF_K,
  BPF_LDX,
  BPF_MEM,
  BPF_MOV,
  BPF_MUL,
  BPF_STX,
  BPF_X,
} from "../../isa/opcodes.js";
import type { CtxGen } from "../../kernel/convert_ctx.js";
import type { HelperArgs, Kernel } from "../../kernel/kernel.js";
import { type Module, register_module_kfunc } from "../../kernel/module.js";
import type { BpfStructOps, BpfStructOpsKdata } from "../../kernel/struct_ops.js";
import { BTF_KIND_FUNC } from "../../uapi/btf.js";
import { BpfError, EACCES, EEXIST, EINVAL } from "../../uapi/errno.js";
import { KF_SLEEPABLE } from "../../verifier/env.js";
import {
  BPF_TESTMOD_MULTI_ST_OPS,
  BPF_TESTMOD_MULTI_ST_OPS_STUBS,
  BPF_TESTMOD_ST_OPS,
  BPF_TESTMOD_ST_OPS_STUBS,
} from "./btf.js";

/** sizeof(struct st_ops_args). */
const ST_OPS_ARGS_SIZE = 8;
const PROLOGUE_A = 1000;
const EPILOGUE_A = 10000;

/** prog->aux->name prefix that selects the prologue and epilogue calling kfuncs. */
const KFUNC_PRO_EPI_PREFIX = "test_kfunc_";

/** The module's st_ops state: the registered st_ops map and the multi_st_ops list by map id. */
export interface StOpsState {
  stOps: BpfStructOpsKdata | null;
  /** vmlinux BTF ids of bpf_cgroup_from_id and bpf_cgroup_release (st_ops_init). */
  cgroupFromId?: number;
  cgroupRelease?: number;
  readonly multi: Map<number, BpfStructOpsKdata>;
}

const LDX_DW = BPF_LDX | BPF_MEM | BPF_DW;
const STX_DW = BPF_STX | BPF_MEM | BPF_DW;
const MOV_X = BPF_ALU64 | BPF_MOV | BPF_X;
const BPF_PSEUDO_KFUNC_CALL = 2;
const kfuncCall = (id: number) => insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, id);

/**
 * The `test_kfunc_` prologue: r8 keeps the context; a cgroup of id 0 (there is none) is looked
 * up and, if found, released instead of adding PROLOGUE_A.
 */
function kfuncPrologue(fromId: number, release: number): Insn[] {
  return [
    insn(MOV_X, 8, 1, 0, 0),
    insn(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 0),
    kfuncCall(fromId),
    insn(BPF_JMP | BPF_JNE | BPF_K, 0, 0, 5, 0),
    insn(LDX_DW, 6, 8, 0, 0),
    insn(LDX_DW, 7, 6, 0, 0),
    insn(BPF_ALU64 | BPF_ADD | BPF_K, 7, 0, 0, PROLOGUE_A),
    insn(STX_DW, 6, 7, 0, 0),
    insn(BPF_JMP | BPF_JA, 0, 0, 2, 0),
    insn(MOV_X, 1, 0, 0, 0),
    kfuncCall(release),
    insn(MOV_X, 1, 8, 0, 0),
    insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  ];
}

/** The `test_kfunc_` epilogue: as the plain one, behind the same cgroup lookup (r6 = 0 if found). */
function kfuncEpilogue(fromId: number, release: number, ctxStackOff: number): Insn[] {
  return [
    insn(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 0),
    insn(BPF_ALU64 | BPF_MOV | BPF_K, 6, 0, 0, 0),
    kfuncCall(fromId),
    insn(BPF_JMP | BPF_JNE | BPF_K, 0, 0, 6, 0),
    insn(LDX_DW, 1, 10, ctxStackOff, 0),
    insn(LDX_DW, 1, 1, 0, 0),
    insn(LDX_DW, 6, 1, 0, 0),
    insn(BPF_ALU64 | BPF_ADD | BPF_K, 6, 0, 0, EPILOGUE_A),
    insn(STX_DW, 1, 6, 0, 0),
    insn(BPF_JMP | BPF_JA, 0, 0, 2, 0),
    insn(MOV_X, 1, 0, 0, 0),
    kfuncCall(release),
    insn(MOV_X, 0, 6, 0, 0),
    insn(BPF_ALU64 | BPF_MUL | BPF_K, 0, 0, 0, 2),
    insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  ];
}

/** st_ops_gen_prologue() / st_ops_gen_epilogue(). */
export function stOpsGenCtx(member: string, progName = "", state?: StOpsState): CtxGen | undefined {
  const pro = member === "test_prologue" || member === "test_pro_epilogue";
  const epi = member === "test_epilogue" || member === "test_pro_epilogue";
  if (!pro && !epi) return undefined;
  if (progName.startsWith(KFUNC_PRO_EPI_PREFIX) && state?.cgroupFromId && state.cgroupRelease) {
    const { cgroupFromId: f, cgroupRelease: r } = state;
    return {
      prologue: pro ? kfuncPrologue(f, r) : undefined,
      epilogue: epi ? (off) => kfuncEpilogue(f, r, off) : undefined,
    };
  }
  const gen: CtxGen = {};
  if (pro) {
    gen.prologue = [
      // r6 = ctx[0] (struct st_ops_args *); r6->a += 1000
      insn(LDX_DW, 6, 1, 0, 0),
      insn(LDX_DW, 7, 6, 0, 0),
      insn(BPF_ALU64 | BPF_ADD | BPF_K, 7, 0, 0, PROLOGUE_A),
      insn(STX_DW, 6, 7, 0, 0),
      // Stands for the program's first instruction (the kernel copies it here).
      insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ];
  }
  if (epi) {
    gen.epilogue = (ctxStackOff) => [
      insn(LDX_DW, 1, 10, ctxStackOff, 0),
      insn(LDX_DW, 1, 1, 0, 0),
      insn(LDX_DW, 6, 1, 0, 0),
      insn(BPF_ALU64 | BPF_ADD | BPF_K, 6, 0, 0, EPILOGUE_A),
      insn(STX_DW, 1, 6, 0, 0),
      insn(BPF_ALU64 | BPF_MOV | BPF_X, 0, 6, 0, 0),
      insn(BPF_ALU64 | BPF_MUL | BPF_K, 0, 0, 0, 2),
      insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    ];
  }
  return gen;
}

/** st_ops_btf_struct_access(): writes anywhere inside a struct st_ops_args's size. */
function stOpsBtfStructAccess(_log: string[], _btf: unknown, _typeId: number, off: number, size: number): number {
  if (off < 0 || off + size > ST_OPS_ARGS_SIZE)
    throw new BpfError(EACCES, `write at off=${off} size=${size} is outside st_ops_args`);
  return 0;
}

export function testmodStOps(mod: Module, state: StOpsState): BpfStructOps<BpfStructOpsKdata> {
  return {
    name: BPF_TESTMOD_ST_OPS,
    cfiStubs: BPF_TESTMOD_ST_OPS_STUBS,
    owner: mod,
    verifierOps: {
      btfStructAccess: stOpsBtfStructAccess,
      genCtx: (member, progName) => stOpsGenCtx(member, progName, state),
    },
    /** st_ops_init(): the kfuncs the `test_kfunc_` prologue and epilogue call, in vmlinux. */
    init(_btf: Btf): number {
      const vmlinux = mod.kernel.btfVmlinux;
      state.cgroupFromId = vmlinux?.findByNameKind("bpf_cgroup_from_id", BTF_KIND_FUNC) ?? -1;
      state.cgroupRelease = vmlinux?.findByNameKind("bpf_cgroup_release", BTF_KIND_FUNC) ?? -1;
      return state.cgroupFromId < 0 || state.cgroupRelease < 0 ? -EINVAL : 0;
    },
    initMember: () => 0,
    reg(kdata) {
      if (state.stOps) throw new BpfError(EEXIST, "st_ops has already been registered");
      state.stOps = kdata;
    },
    unreg() {
      state.stOps = null;
    },
  };
}

export function testmodMultiStOps(mod: Module, state: StOpsState): BpfStructOps<BpfStructOpsKdata> {
  return {
    name: BPF_TESTMOD_MULTI_ST_OPS,
    cfiStubs: BPF_TESTMOD_MULTI_ST_OPS_STUBS,
    owner: mod,
    init: () => 0,
    initMember: (_t: BtfComposite, _m: BtfMember) => 0,
    reg(kdata) {
      if (!kdata.func("test_1")) throw new BpfError(EINVAL, "bpf_testmod_multi_st_ops.test_1 is required");
      const id = kdata.owner.id();
      if (state.multi.has(id)) throw new BpfError(EEXIST, `multi_st_ops(id:${id}) has already been registered`);
      const i = kdata.memberIndex("id");
      kdata.view.setInt32(kdata.desc.memberOffsets[i], id, true);
      state.multi.set(id, kdata);
    },
    unreg(kdata) {
      state.multi.delete(kdata.owner.id());
    },
  };
}

/** The kfuncs of the module's set (SCHED_CLS, TRACING, SYSCALL, STRUCT_OPS programs). */
export function registerStOpsKfuncs(mod: Module, k: Kernel, state: StOpsState, progTypes: readonly number[]): void {
  const call = (member: string) => (c: HelperArgs) => {
    const fn = state.stOps?.func(member);
    return fn ? fn.call(c.arg(1)) : -1;
  };
  register_module_kfunc(mod, "bpf_kfunc_st_ops_test_prologue", call("test_prologue"), KF_SLEEPABLE, progTypes);
  register_module_kfunc(mod, "bpf_kfunc_st_ops_test_epilogue", call("test_epilogue"), KF_SLEEPABLE, progTypes);
  register_module_kfunc(mod, "bpf_kfunc_st_ops_test_pro_epilogue", call("test_pro_epilogue"), KF_SLEEPABLE, progTypes);
  const inc10 = (c: HelperArgs) => {
    const v = new DataView(k.mem.bytes(c.argNum(1), ST_OPS_ARGS_SIZE).slice().buffer);
    const a = BigInt.asUintN(64, v.getBigUint64(0, true) + 10n);
    v.setBigUint64(0, a, true);
    k.mem.bytes(c.argNum(1), ST_OPS_ARGS_SIZE).set(new Uint8Array(v.buffer));
    return Number(BigInt.asIntN(32, a));
  };
  register_module_kfunc(mod, "bpf_kfunc_st_ops_inc10", inc10, 0, progTypes);
  const multi = (c: HelperArgs) => {
    const fn = state.multi.get(Number(BigInt.asUintN(32, c.arg(2))))?.func("test_1");
    return fn ? fn.call(c.arg(1)) : -1;
  };
  register_module_kfunc(mod, "bpf_kfunc_multi_st_ops_test_1", multi, 0, progTypes);
}
