/**
 * The selftests' test module (tools/testing/selftests/bpf/test_kmods/bpf_testmod.c, 6.18) as a
 * loadable module of the simulated kernel: its split BTF (btf.ts) and, from module_init, the
 * struct_ops types `bpf_testmod_ops`, `bpf_testmod_ops2`, `bpf_testmod_ops3` and (st_ops.ts)
 * `bpf_testmod_st_ops`, `bpf_testmod_multi_st_ops`, owned by the module.
 *
 * What the struct_ops selftests observe:
 * - registering a bpf_testmod_ops calls test_1() and then test_2(4, data), where `data` is the
 *   value's `data` member, which init_member copies (every other non-pointer member must be zero);
 * - registering a bpf_testmod_ops2 calls test_1();
 * - bpf_testmod_ops3 may be registered once at a time (EEXIST for a second), and its programs get
 *   no helpers (its verifier ops have no get_func_proto);
 * - `unsupported_ops` has no cfi stub: programs cannot attach to it.
 */
import type { BtfComposite, BtfMember } from "../../btf/types.js";
import type { BpfProgAux } from "../../kernel/bpf.js";
import type { HelperArgs, Kernel } from "../../kernel/kernel.js";
import {
  delete_module,
  find_module,
  load_module,
  type Module,
  type ModuleDef,
  module_refcount,
  register_module_kfunc,
} from "../../kernel/module.js";
import { perCpuPtr } from "../../kernel/percpu.js";
import {
  type BpfStructOps,
  type BpfStructOpsDesc,
  type BpfStructOpsKdata,
  registerBpfStructOps,
} from "../../kernel/struct_ops.js";
import type { StructOpsProgView } from "../../kernel/struct_ops_desc.js";
import { bpf_prog_type } from "../../uapi/bpf.js";
import { BpfError, EEXIST } from "../../uapi/errno.js";
import {
  BPF_TESTMOD,
  BPF_TESTMOD_OPS,
  BPF_TESTMOD_OPS_STUBS,
  BPF_TESTMOD_OPS2,
  BPF_TESTMOD_OPS2_STUBS,
  BPF_TESTMOD_OPS3,
  BPF_TESTMOD_OPS3_STUBS,
  declareTestmodTypes,
} from "./btf.js";
import { registerStOpsKfuncs, type StOpsState, testmodMultiStOps, testmodStOps } from "./st_ops.js";

const KFUNC_PROG_TYPES = [
  bpf_prog_type.BPF_PROG_TYPE_SCHED_CLS,
  bpf_prog_type.BPF_PROG_TYPE_TRACING,
  bpf_prog_type.BPF_PROG_TYPE_SYSCALL,
  bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS,
];

/** The module's globals. */
export interface BpfTestmodState {
  /** bpf_testmod_ksym_percpu on the current CPU (bpf_testmod_test_mod_kfunc(i) stores i there). */
  readonly ksymPercpu: number;
  /** The registered bpf_testmod_ops3 (st_ops3), at most one. */
  stOps3: BpfStructOpsKdata | null;
  /** bpf_testmod_st_ops and bpf_testmod_multi_st_ops registrations. */
  readonly st: StOpsState;
  /** The descriptors registered by module_init, by type name. */
  readonly descs: Map<string, BpfStructOpsDesc>;
}

/** bpf_testmod_ops_init_member(): `data` is copied and handled; everything else is generic. */
function initMember(_t: BtfComposite, member: BtfMember, kdata: BpfStructOpsKdata, udata: Uint8Array): number {
  if (member.name !== "data") return 0;
  const off = member.bitOffset / 8;
  kdata.bytes.set(udata.subarray(off, off + 4), off);
  return 1;
}

function dataOf(kdata: BpfStructOpsKdata): number {
  const i = kdata.memberIndex("data");
  return i < 0 ? 0 : kdata.view.getInt32(kdata.desc.memberOffsets[i], true);
}

function testmodOps(mod: Module): BpfStructOps<BpfStructOpsKdata> {
  return {
    name: BPF_TESTMOD_OPS,
    cfiStubs: BPF_TESTMOD_OPS_STUBS,
    owner: mod,
    init: () => 0,
    initMember,
    /** bpf_dummy_reg(). */
    reg(kdata) {
      kdata.func("test_1")?.call();
      // Some maps (struct_ops_maybe_null) leave test_2 unset.
      kdata.func("test_2")?.call(4, dataOf(kdata));
    },
    unreg() {},
  };
}

function testmodOps2(mod: Module): BpfStructOps<BpfStructOpsKdata> {
  return {
    name: BPF_TESTMOD_OPS2,
    cfiStubs: BPF_TESTMOD_OPS2_STUBS,
    owner: mod,
    init: () => 0,
    initMember,
    /** bpf_dummy_reg2(): test_1 must be there (the kernel calls it unconditionally). */
    reg(kdata) {
      kdata.func("test_1")?.call();
    },
    unreg() {},
  };
}

function testmodOps3(mod: Module, state: BpfTestmodState): BpfStructOps<BpfStructOpsKdata> {
  return {
    name: BPF_TESTMOD_OPS3,
    cfiStubs: BPF_TESTMOD_OPS3_STUBS,
    owner: mod,
    verifierOps: { getFuncProto: () => false },
    init: () => 0,
    initMember,
    /** bpf_testmod_ops3_check_member(): test_1's programs ask for private stacks. */
    checkMember(_t, member, prog) {
      // The verifier's own view of the program (struct_ops_verifier.ts) has no aux to mark.
      const aux = (prog as StructOpsProgView & { aux?: BpfProgAux }).aux;
      if (member.name === "test_1" && aux) aux.priv_stack_requested = true;
      return 0;
    },
    reg(kdata) {
      if (state.stOps3) throw new BpfError(EEXIST, "st_ops has already been registered");
      state.stOps3 = kdata;
    },
    unreg() {
      state.stOps3 = null;
    },
  };
}

export const bpfTestmodModule: ModuleDef = {
  name: BPF_TESTMOD,
  declareTypes(b) {
    declareTestmodTypes(b);
  },
  /** bpf_testmod_init(). */
  init(mod: Module, k: Kernel) {
    // DEFINE_PER_CPU(int, bpf_testmod_ksym_percpu) = 123: every CPU's copy.
    const ksym = k.ksyms.get(KSYM_PERCPU) ?? 0;
    for (let cpu = 0; cpu < k.nrCpus; cpu++) k.mem.bytes(perCpuPtr(k, ksym, cpu), 4).set(int32(123));
    const state: BpfTestmodState = {
      get ksymPercpu() {
        const b = k.mem.bytes(perCpuPtr(k, ksym, k.cpu), 4);
        return new DataView(b.buffer, b.byteOffset, 4).getInt32(0, true);
      },
      stOps3: null,
      st: { stOps: null, multi: new Map() },
      descs: new Map(),
    };
    mod.priv = state;
    const btf = mod.btfObj?.btf ?? null;
    // register_btf_kfunc_id_set(SCHED_CLS, TRACING, SYSCALL, STRUCT_OPS, &bpf_testmod_kfunc_set)
    // *(int *)this_cpu_ptr(&bpf_testmod_ksym_percpu) = i
    const store = (c: HelperArgs) => {
      k.mem.bytes(perCpuPtr(k, ksym, k.cpu), 4).set(int32(Number(BigInt.asIntN(32, c.arg(1)))));
      return 0;
    };
    register_module_kfunc(mod, "bpf_testmod_test_mod_kfunc", store, 0, KFUNC_PROG_TYPES);
    // bpf_testmod_ops3_call_test_1/2: the registered bpf_testmod_ops3's member (none: nothing).
    const ops3Call = (member: string) => () => {
      state.stOps3?.func(member)?.call();
      return 0;
    };
    register_module_kfunc(mod, "bpf_testmod_ops3_call_test_1", ops3Call("test_1"), 0, KFUNC_PROG_TYPES);
    register_module_kfunc(mod, "bpf_testmod_ops3_call_test_2", ops3Call("test_2"), 0, KFUNC_PROG_TYPES);
    registerStOpsKfuncs(mod, k, state.st, KFUNC_PROG_TYPES);
    const all = [
      testmodOps(mod),
      testmodOps2(mod),
      testmodOps3(mod, state),
      testmodStOps(mod, state.st),
      testmodMultiStOps(mod, state.st),
    ];
    for (const ops of all) {
      state.descs.set(ops.name, registerBpfStructOps(k, ops, btf));
    }
  },
};

const KSYM_PERCPU = "bpf_testmod_ksym_percpu";
const int32 = (v: number): Uint8Array => new Uint8Array(new Int32Array([v]).buffer);

/** The module's state while it is loaded. */
export function bpfTestmodState(k: Kernel): BpfTestmodState | undefined {
  return find_module(k, BPF_TESTMOD)?.priv as BpfTestmodState | undefined;
}

/**
 * What a read of /sys/kernel/bpf_testmod does for the struct_ops selftests
 * (bpf_testmod_test_read's bpf_testmod_test_struct_ops3): the registered bpf_testmod_ops3's test_1.
 */
export function bpfTestmodTestRead(k: Kernel): void {
  bpfTestmodState(k)?.stOps3?.func("test_1")?.call();
}

/** insmod bpf_testmod.ko. */
export function loadBpfTestmod(k: Kernel): Module {
  return load_module(k, bpfTestmodModule);
}

/** rmmod bpf_testmod. */
export function unloadBpfTestmod(k: Kernel): void {
  delete_module(k, BPF_TESTMOD);
}

/** Holders of the module (lsmod's "Used by" count). */
export function bpfTestmodRefcount(k: Kernel): number {
  const mod = find_module(k, BPF_TESTMOD);
  return mod ? module_refcount(mod) : -1;
}
