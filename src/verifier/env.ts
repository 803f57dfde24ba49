/**
 * What the verifier needs from the kernel (struct bpf_verifier_env's inputs), and what it gives
 * back. The verifier is a pure function of this: the simulated kernel fills a VerifierEnv on
 * PROG_LOAD, tests fill one by hand.
 */
import type { Btf } from "../btf/btf.js";
import type { BtfRecord, BtfStructMeta } from "../btf/record.js";
import type { BtfComposite, BtfMember } from "../btf/types.js";
import type { Insn } from "../isa/insn.js";
import type { BpfError } from "../uapi/errno.js";
import type { FuncProto } from "./helper_protos.js";
import type { RegState } from "./reg_state.js";

/** A map as the verifier sees it (struct bpf_map's fields that matter to access checks). */
export interface VerifierMap {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** BPF_F_RDONLY_PROG: the program may not write values. */
  rdonlyProg?: boolean;
  /** BPF_F_WRONLY_PROG: the program may not read values. */
  wronlyProg?: boolean;
  /** Frozen and read-only to programs: loads from its value are known constants. */
  frozen?: boolean;
  /** The value's bytes, for constant loads from frozen read-only maps (.rodata). */
  valueBytes?: Uint8Array;
  name?: string;
  /** The map type's struct in vmlinux BTF (map->ops->map_btf_id): what a map pointer reads. */
  btfStructName?: string;
  /** Offset of the value's `struct bpf_spin_lock` (from the map's BTF), if it has one. */
  spinLockOff?: number;
  /** map->record: the value's special fields (btf_parse_fields), when it has any. */
  record?: BtfRecord | null;
  /** The map was created with BTF (bpf_spin_lock needs it); default true. */
  hasBtf?: boolean;
  /** A map of maps: the template of its inner maps (inner_map_meta). */
  innerMeta?: VerifierMap;
  /** Set by the verifier on an outer map: the index of its template among the maps. */
  innerIndex?: number;
  /** The map's id and kernel address, for the log (a privileged log prints the address). */
  id?: number;
  kaddr?: bigint;
}

/**
 * What the kernel resolved a ld_imm64 to (the pseudo source already turned into an object):
 * a map pointer, a pointer into a map's value (global data), a typed kernel pointer, or a plain
 * 64-bit constant.
 */
export type LdImm64Aux =
  | { kind: "map_ptr"; map: number }
  | { kind: "map_value"; map: number; off: number }
  /** `btf`: the module BTF (an index into VerifierEnv.ksymBtfs) the id is in; vmlinux's when absent. */
  | { kind: "btf_id"; btfId: number; btf?: number }
  | { kind: "plain" };

/** A subprogram's BTF (func_info record). */
export interface FuncInfo {
  insnOff: number;
  typeId: number;
}

/** Context access of a program type (bpf_verifier_ops.is_valid_access). */
export interface CtxAccessResult {
  /** Register type of the loaded value (default: scalar). */
  regType?: number;
  btfId?: number;
}

/** struct bpf_verifier_ops for a non-struct_ops program type. */
export interface VerifierOps {
  /** Name for messages. */
  readonly name: string;
  /** Helper allowed for this program type, or undefined ("program of this type cannot use helper"). */
  getFuncProto?(funcId: number, env: VerifierEnv): FuncProto | undefined;
  /** Return the loaded register's type, or undefined when the access is invalid. */
  isValidAccess(off: number, size: number, write: boolean, env?: VerifierEnv): CtxAccessResult | undefined;
  /** Return value range required at exit, or undefined for any scalar. */
  returnRange?: [bigint, bigint];
  /** Registers at entry besides r1 = ctx, r10 = fp (the conformance runner's r2 = length). */
  initRegs?(regs: RegState[]): void;
}

/** The struct_ops type a program attaches to (struct bpf_struct_ops_desc as the verifier needs it). */
export interface StructOpsInfo {
  readonly name: string;
  readonly typeId: number;
  readonly type: BtfComposite;
  readonly members: readonly BtfMember[];
  /** NULL cfi stub check (bpf_struct_ops_supported). */
  isSupported(memberIdx: number): boolean;
  /** st_ops->check_member: a BpfError to refuse (e.g. sleepable where not allowed). */
  checkMember?(memberIdx: number, prog: { sleepable: boolean }): BpfError | undefined;
  /** Argument i of member idx: nullable pointer? (stub parameter named __nullable). */
  argMayBeNull?(memberIdx: number, argIdx: number): boolean;
  /** Argument i of member idx: a reference the program owns (stub parameter named __ref)? */
  argRefcounted?(memberIdx: number, argIdx: number): boolean;
  /** Promote an argument's BTF id (tcp: sock -> tcp_sock). */
  ctxArgBtfId?(btfId: number): number;
  /**
   * verifier_ops->is_valid_access typing an argument itself (Qdisc_ops.enqueue's `to_free` is a
   * trusted `struct bpf_sk_buff_ptr *`): the BTF id of the struct, or undefined for the default.
   */
  ctxArgType?(memberIdx: number, argIdx: number, write: boolean): number | undefined;
  /**
   * verifier_ops->btf_struct_access for writes: undefined to allow, or the message to refuse
   * with (EACCES), e.g. "no write support to tcp_sock at off 24".
   */
  btfStructAccess(btfId: number, off: number, size: number): string | undefined;
  /** verifier_ops->get_func_proto for member `memberIdx`; undefined means not allowed. */
  getFuncProto?(funcId: number, memberIdx: number): FuncProto | undefined;
}

export interface StructOpsTable {
  /**
   * bpf_struct_ops_find(btf, attach_btf_id): `btf` is the program's attach BTF (a module's BTF
   * when it came with attach_btf_obj_fd, else vmlinux), as check_struct_ops_btf_id looks it up.
   */
  findStructOps(attachBtfId: number, btf?: Btf | null): StructOpsInfo | undefined;
}

/** Kfunc flags, as BTF_ID_FLAGS declares them per kfunc (include/linux/btf.h). */
export const KF_ACQUIRE = 1 << 0;
export const KF_RELEASE = 1 << 1;
export const KF_RET_NULL = 1 << 2;
export const KF_TRUSTED_ARGS = 1 << 4;
export const KF_SLEEPABLE = 1 << 5;
export const KF_DESTRUCTIVE = 1 << 6;
export const KF_RCU = 1 << 7;
export const KF_ITER_NEW = 1 << 8;
export const KF_ITER_NEXT = 1 << 9;
export const KF_ITER_DESTROY = 1 << 10;
export const KF_RCU_PROTECTED = 1 << 11;
export const KF_FASTCALL = 1 << 12;

/** A kfunc the program type may call (btf_kfunc_id_set), by its FUNC id in the kernel BTF. */
export interface KfuncInfo {
  readonly name: string;
  readonly btfId: number;
  /** KF_* flags. */
  readonly flags?: number;
  /** Program types it is registered for (register_btf_kfunc_id_set); undefined: every type. */
  readonly progTypes?: readonly number[];
  /** btf_kfunc_id_set.filter: false hides the kfunc from this program ("is not allowed"). */
  readonly filter?: (prog: KfuncFilterProg) => boolean;
}

/** What a kfunc set's filter sees of the program being verified. */
export interface KfuncFilterProg {
  readonly progType: number;
  readonly attachBtfId?: number;
  /** For struct_ops: the member index (attach_st_ops_member_off / sizeof(void *)). */
  readonly expectedAttachType?: number;
}

export interface VerifierEnv {
  insns: readonly Insn[];
  /** Per instruction index: what each ld_imm64 was resolved to (missing = plain constant). */
  ldImm64Aux?: readonly (LdImm64Aux | undefined)[];
  progType: number;
  expectedAttachType?: number;
  attachBtfId?: number;
  sleepable?: boolean;
  gpl?: boolean;
  /** bpf_capable(): bounded loops, subprogram calls, more helpers. */
  privileged?: boolean;
  /** capable(CAP_SYS_BOOT): KF_DESTRUCTIVE kfuncs. */
  capSysBoot?: boolean;
  /** allow_ptr_leaks (perfmon_capable); default: privileged. */
  allowPtrLeaks?: boolean;
  /** BPF_F_STRICT_ALIGNMENT (env->strict_alignment): packet accesses aligned as with NET_IP_ALIGN. */
  strictAlignment?: boolean;
  logLevel?: number;
  btf?: Btf | null;
  /** The program's own BTF (prog->aux->btf): bpf_obj_new's types. */
  progBtf?: Btf | null;
  /** Its struct metas (btf->struct_meta_tab): records of program-allocatable types, by id. */
  progStructMetas?: ReadonlyMap<number, BtfStructMeta>;
  maps?: readonly VerifierMap[];
  /** Overrides of the helper prototype table (by func id). */
  helperProtos?: ReadonlyMap<number, FuncProto>;
  /**
   * bpf_jit_supports_subprog_tailcalls() with the JIT on (x86-64's: the default). false: a
   * program with bpf-to-bpf calls may not tail call.
   */
  jitSubprogTailcalls?: boolean;
  /** aux->priv_stack_requested: the struct_ops member's check_member asked for private stacks. */
  privStackRequested?: boolean;
  /** Kfuncs allowed for this program type, by BTF id. */
  kfuncs?: ReadonlyMap<number, KfuncInfo>;
  /** Module kfuncs, by the call's insn->off: the module's BTF and its kfuncs by BTF id. */
  kfuncBtfs?: ReadonlyMap<number, { btf: Btf; kfuncs: ReadonlyMap<number, KfuncInfo> }>;
  /** Module BTFs of ksyms (check_pseudo_btf_id with a BTF fd), as LdImm64Aux.btf numbers them. */
  ksymBtfs?: readonly Btf[];
  funcInfo?: readonly FuncInfo[];
  structOps?: StructOpsTable;
  /**
   * A tracing program's attach target (prog->aux->attach_func_proto and name): the function of
   * the target program's BTF whose arguments (and, for fexit, return value) make up the context.
   */
  attachTarget?: {
    btf: Btf;
    proto: import("../btf/types.js").BtfFuncProto;
    name: string;
    /** An LSM hook's return values; none for a void hook. */
    retvalRange?: [bigint, bigint];
    /** prog_args_trusted (an LSM hook's arguments, unless set up or torn down there). */
    trusted?: boolean;
    /** bpf_d_path_allowed: a sleepable LSM hook or a function of btf_allowlist_d_path. */
    dPathAllowed?: boolean;
  };
  /** Verifier ops of the program type (struct_ops programs get theirs from the struct_ops table). */
  ops?: VerifierOps;
  /** BPF_F_TEST_STATE_FREQ: store a state at every prune point (tests of pruning). */
  testStateFreq?: boolean;
  /** Processed-instruction limit (BPF_COMPLEXITY_LIMIT_INSNS). */
  insnLimit?: number;
  /**
   * Called every few thousand processed instructions, as do_check calls cond_resched(): a long
   * walk (up to the limit: a second or more) tells its embedder it is making progress. It does not
   * change the verdict.
   */
  condResched?: () => void;
}

export interface VerifierStats {
  processed: number;
  maxStatesPerInsn: number;
  totalStates: number;
  peakStates: number;
  markRead: number;
}

export interface VerifierResult {
  ok: boolean;
  /** The rejection, with context.insn = the offending instruction. */
  error?: BpfError;
  log: string;
  stats: VerifierStats;
  /** Stack depth of each subprogram, rounded up to 8. */
  stackDepth: number[];
  /** First instruction of each subprogram. */
  subprogStarts: number[];
  /** struct_ops: the attached member's name (attach_func_name). */
  attachFuncName?: string;
  /** jits_use_priv_stack: some function runs on a private stack; its trampoline checks recursion. */
  privStack?: boolean;
  /**
   * insn_aux_data[].seen per instruction slot: 1 where a verified path went. Instructions left 0
   * are dead; PROG_LOAD rewrites them (sanitize_dead_code) before binding helpers.
   */
  seen?: Uint8Array;
  /**
   * Per slot, 1 where every verified path accessed memory through a pointer the verifier
   * bounds exactly (stack, map key/value, mem, ctx), so a JIT may skip run-time checks there.
   * PTR_TO_BTF_ID loads stay checked: the kernel turns them into fault-tolerant PROBE_MEM.
   */
  memProven?: Uint8Array;
}
