/**
 * struct_ops type registration (kernel/bpf/bpf_struct_ops.c: bpf_struct_ops_desc_init,
 * prepare_arg_info, is_valid_value_type; kernel/bpf/btf.c: btf_add_struct_ops,
 * __register_bpf_struct_ops). A subsystem describes its ops struct with a `BpfStructOps` table;
 * registration validates the type against the BTF that holds it and stores a descriptor in that
 * BTF's struct_ops table, where map creation and program load look it up.
 */
import type { Btf } from "../btf/btf.js";
import type { BtfComposite, BtfFuncProto, BtfMember, BtfType } from "../btf/types.js";
import {
  BTF_INT_SIGNED,
  BTF_KIND_ENUM,
  BTF_KIND_FUNC,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_INT,
  BTF_KIND_STRUCT,
  BTF_KIND_TYPEDEF,
} from "../uapi/btf.js";
import { BpfError, EEXIST, EINVAL, ENOENT, EOPNOTSUPP } from "../uapi/errno.js";
import {
  type BtfFuncModel,
  distillFuncModel,
  isModuleMember,
  resolveFuncPtr,
  resolvePtr,
  skipModifiers,
} from "./struct_ops_btf.js";

export const BPF_STRUCT_OPS_MAX_NR_MEMBERS = 64;
export const VALUE_PREFIX = "bpf_struct_ops_";
/** sizeof(value_name) in bpf_struct_ops_desc_init. */
const VALUE_NAME_MAX = 128;
export const MAYBE_NULL_SUFFIX = "__nullable";
export const REFCOUNTED_SUFFIX = "__ref";

/** struct bpf_ctx_arg_aux: what the verifier learns about one pointer argument of a member. */
export interface BpfCtxArgAux {
  /** Byte offset of the argument in the u64 context array. */
  offset: number;
  btfId: number;
  mayBeNull: boolean;
  refcounted: boolean;
}

/** The program fields struct_ops callbacks look at (a structural view of the kernel's bpf_prog). */
export interface StructOpsProgView {
  readonly type: number;
  readonly expectedAttachType: number;
  readonly attachBtfId: number;
  readonly sleepable: boolean;
  readonly gplCompatible?: boolean;
}

/** struct bpf_verifier_ops, as far as struct_ops subsystems provide it. */
export interface StructOpsVerifierOps {
  /** Write access through a PTR_TO_BTF_ID: return 0 (or a scalar marker) or throw BpfError(EACCES). */
  btfStructAccess?(log: string[], btf: Btf, typeId: number, off: number, size: number): number;
  /** Promote an argument's BTF type (tcp: `sock` -> `tcp_sock`). */
  ctxArgBtfId?(btfId: number): number;
  /** is_valid_access typing argument `argIdx` of `member` as a pointer to struct (BTF id), or undefined. */
  ctxArgType?(member: string, argIdx: number, write: boolean): number | undefined;
  /** gen_prologue / gen_epilogue for a program of `member` (applied after verification); `progName` is prog->aux->name. */
  genCtx?(member: string, progName: string): import("./convert_ctx.js").CtxGen | undefined;
  /** Helper allow-list: true if `funcId` may be called by `prog`. */
  getFuncProto?(funcId: number, prog: StructOpsProgView): boolean | undefined;
}

/**
 * struct bpf_struct_ops. Callbacks that fail throw BpfError with the kernel's errno; callbacks the
 * kernel gives a "handled" return (init_member) return 1 for handled, 0 for "generic handling".
 */
export interface BpfStructOps<K = unknown> {
  /** The ops struct's name in BTF, e.g. "tcp_congestion_ops". */
  readonly name: string;
  readonly verifierOps?: StructOpsVerifierOps;
  /** Called once at registration with the BTF holding the type; non-zero refuses the type. */
  init?(btf: Btf): number;
  /** Verifier hook at PROG_LOAD: throw (or return a negative errno) to refuse `prog` on `member`. */
  checkMember?(t: BtfComposite, member: BtfMember, prog: StructOpsProgView): number;
  /** Fill kdata from udata for `member`; 1 = handled, 0 = generic handling; throw to fail. */
  initMember(t: BtfComposite, member: BtfMember, kdata: K, udata: Uint8Array): number;
  reg(kdata: K, link: object | null): void;
  unreg(kdata: K, link: object | null): void;
  update?(kdata: K, oldKdata: K, link: object): void;
  validate?(kdata: K): void;
  /**
   * cfi_stubs: member name -> name of the stub FUNC in BTF (its parameter names carry the
   * `__nullable` / `__ref` tags). A func-ptr member without a stub is unsupported.
   * `null` is the "no cfi_stubs at all" registration error.
   */
  readonly cfiStubs: Readonly<Record<string, string | null | undefined>> | null;
  /** Owning module, or null for built-ins (vmlinux). */
  readonly owner?: object | null;
}

/** struct bpf_struct_ops_desc: one registered type, stored in its BTF's struct_ops table. */
export interface BpfStructOpsDesc {
  readonly stOps: BpfStructOps<never>;
  readonly btf: Btf;
  readonly type: BtfComposite;
  readonly typeId: number;
  readonly valueType: BtfComposite;
  readonly valueId: number;
  /** Distilled func models, indexed by member index; undefined for non-func or unsupported members. */
  readonly funcModels: (BtfFuncModel | undefined)[];
  /** Per member index: the ctx_arg_info of programs attached to it. */
  readonly argInfo: BpfCtxArgAux[][];
  /** Byte offset of each member in the ops struct. */
  readonly memberOffsets: number[];
  /** Offset of `data` inside the value type. */
  readonly dataOffset: number;
  /** count_func_ptrs(): func-ptr members, supported or not. */
  readonly funcsCnt: number;
}

/** BTF object -> its struct_ops_tab. A WeakMap keeps the table's life tied to the BTF's. */
const structOpsTabs = new WeakMap<Btf, BpfStructOpsDesc[]>();

export function btfStructOpsTab(btf: Btf): readonly BpfStructOpsDesc[] {
  return structOpsTabs.get(btf) ?? [];
}

/** bpf_struct_ops_find_value(): look up by the value type id. */
export function bpfStructOpsFindValue(btf: Btf, valueId: number): BpfStructOpsDesc | undefined {
  return btfStructOpsTab(btf).find((d) => d.valueId === valueId);
}

/** bpf_struct_ops_find(): look up by the ops type id (the prog's attach_btf_id). */
export function bpfStructOpsFind(btf: Btf, typeId: number): BpfStructOpsDesc | undefined {
  return btfStructOpsTab(btf).find((d) => d.typeId === typeId);
}

/** bpf_struct_ops_supported(): a member whose cfi stub slot is empty is unsupported (-ENOTSUPP). */
export function bpfStructOpsSupported(stOps: BpfStructOps<never>, memberName: string): boolean {
  return !!stOps.cfiStubs?.[memberName];
}

function warn(errno: number, msg: string, ctx: Record<string, string | number> = {}): BpfError {
  return new BpfError(errno, msg, ctx);
}

/** btf_ctx_arg_offset(): each argument takes whole u64 slots (structs up to 16 bytes take two). */
export function btfCtxArgOffset(btf: Btf, proto: BtfFuncProto, argNo: number): number {
  let off = 0;
  for (let i = 0; i < argNo; i++) {
    const t = skipModifiers(btf, proto.params[i].type);
    const size = "size" in t && t.kind === BTF_KIND_STRUCT ? t.size : 8;
    off += Math.ceil(size / 8) * 8;
  }
  return off;
}

function prepareArgInfo(
  btf: Btf,
  stName: string,
  mname: string,
  proto: BtfFuncProto,
  stubName: string,
): BpfCtxArgAux[] {
  const stubId = btf.findByNameKind(stubName, BTF_KIND_FUNC);
  if (stubId < 0) throw warn(ENOENT, `Cannot find the stub function ${stubName} in btf`, { member: mname });
  const stubProto = btf.typeById((btf.typeById(stubId) as { type: number }).type) as BtfFuncProto;
  const nargs = proto.params.length;
  if (stubProto.kind !== BTF_KIND_FUNC_PROTO || stubProto.params.length !== nargs) {
    throw warn(
      EINVAL,
      `the number of arguments of the stub function ${stubName} does not match the number of arguments of the member ${mname} of struct ${stName}`,
      { member: mname },
    );
  }
  const out: BpfCtxArgAux[] = [];
  for (let i = 0; i < nargs; i++) {
    const pname = stubProto.params[i].name;
    const nullable = pname.endsWith(MAYBE_NULL_SUFFIX);
    const refcounted = pname.endsWith(REFCOUNTED_SUFFIX);
    if (!nullable && !refcounted) continue;
    const suffix = nullable ? MAYBE_NULL_SUFFIX : REFCOUNTED_SUFFIX;
    const target = resolvePtr(btf, proto.params[i].type);
    if (!target || target.kind !== BTF_KIND_STRUCT) {
      throw warn(EINVAL, `stub function ${stubName} has ${suffix} tagging to an unsupported type`, { member: mname });
    }
    if (proto.params[i].type !== stubProto.params[i].type) {
      throw warn(EINVAL, `arg#${i} type in stub function ${stubName} does not match with its original func_proto`, {
        member: mname,
      });
    }
    out.push({ offset: btfCtxArgOffset(btf, proto, i), btfId: target.id, mayBeNull: nullable, refcounted });
  }
  return out;
}

function isValidValueType(btf: Btf, valueId: number, t: BtfType, valueName: string): BtfComposite {
  const vt = btf.typeById(valueId) as BtfComposite;
  if (vt.members.length !== 2) {
    throw warn(EINVAL, `The number of ${valueName}'s members should be 2, but we get ${vt.members.length}`);
  }
  const common = btf.typeById(vt.members[0].type);
  if (common.kind !== BTF_KIND_STRUCT || common.name !== "bpf_struct_ops_common_value") {
    throw warn(EINVAL, `The first member of ${valueName} should be bpf_struct_ops_common_value`);
  }
  if (vt.members[1].type !== t.id) {
    throw warn(EINVAL, `The second member of ${valueName} should be ${t.name}`);
  }
  return vt;
}

/** bpf_struct_ops_desc_init(): every check in the kernel's order, each refusing with its errno. */
export function bpfStructOpsDescInit(stOps: BpfStructOps<never>, btf: Btf): BpfStructOpsDesc {
  const name = stOps.name;
  if (name.length + VALUE_PREFIX.length >= VALUE_NAME_MAX) throw warn(EINVAL, `struct_ops name ${name} is too long`);
  const valueName = VALUE_PREFIX + name;
  if (!stOps.cfiStubs) throw warn(EINVAL, `struct_ops for ${name} has no cfi_stubs`);
  const typeId = btf.findByNameKind(name, BTF_KIND_STRUCT);
  if (typeId < 0) throw warn(EINVAL, `Cannot find struct ${name} in BTF`);
  const t = btf.typeById(typeId) as BtfComposite;
  if (t.members.length > BPF_STRUCT_OPS_MAX_NR_MEMBERS) {
    throw warn(EINVAL, `Cannot support #${t.members.length} members in struct ${name}`);
  }
  const valueId = btf.findByNameKind(valueName, BTF_KIND_STRUCT);
  if (valueId < 0) throw warn(EINVAL, `Cannot find struct ${valueName} in BTF`);
  const vt = isValidValueType(btf, valueId, t, valueName);
  const hasModuleType = btf.findByNameKind("module", BTF_KIND_STRUCT) >= 0;

  const funcModels: (BtfFuncModel | undefined)[] = [];
  const argInfo: BpfCtxArgAux[][] = [];
  const memberOffsets: number[] = [];
  let funcsCnt = 0;
  t.members.forEach((m, i) => {
    const mname = m.name;
    memberOffsets.push(m.bitOffset / 8);
    argInfo.push([]);
    if (!mname) throw warn(EOPNOTSUPP, `anon member in struct ${name} is not supported`);
    if (m.bitfieldSize) throw warn(EOPNOTSUPP, `bit field member ${mname} in struct ${name} is not supported`, {});
    if (!hasModuleType && isModuleMember(btf, m.type)) {
      throw warn(
        EOPNOTSUPP,
        `'struct module' btf id not found. Is CONFIG_MODULES enabled? bpf_struct_ops '${name}' needs module support.`,
      );
    }
    const proto = resolveFuncPtr(btf, m.type);
    if (proto) funcsCnt++;
    if (!proto || !bpfStructOpsSupported(stOps, mname)) return;
    if (proto.type) {
      const ret = resolvePtr(btf, proto.type);
      if (ret && ret.kind !== BTF_KIND_STRUCT) {
        throw warn(
          EOPNOTSUPP,
          `func ptr ${mname} in struct ${name} returns non-struct pointer, which is not supported`,
        );
      }
    }
    try {
      funcModels[i] = distillFuncModel(btf, proto, mname);
    } catch (e) {
      const why = e instanceof BpfError ? `: ${e.message}` : "";
      throw warn(EINVAL, `Error in parsing func ptr ${mname} in struct ${name}${why}`, { member: mname });
    }
    argInfo[i] = prepareArgInfo(btf, name, mname, proto, stOps.cfiStubs?.[mname] as string);
  });

  if (stOps.init && stOps.init(btf) !== 0) throw warn(EINVAL, `Error in init bpf_struct_ops ${name}`);

  return {
    stOps,
    btf,
    type: t,
    typeId,
    valueType: vt,
    valueId,
    funcModels,
    argInfo,
    memberOffsets,
    dataOffset: vt.members[1].bitOffset / 8,
    funcsCnt,
  };
}

/**
 * btf_add_struct_ops() + __register_bpf_struct_ops(): validate and add `stOps` to `btf`'s
 * struct_ops table. `btf` null means no BTF for the owner: ENOENT for built-ins, a silent no-op for
 * modules (check_btf_kconfigs).
 */
export function registerBpfStructOps(btf: Btf | null, stOps: BpfStructOps<never>): BpfStructOpsDesc | undefined {
  if (!btf) {
    if (stOps.owner) return undefined;
    throw warn(ENOENT, `missing vmlinux BTF, cannot register struct_ops ${stOps.name}`);
  }
  let tab = structOpsTabs.get(btf);
  if (!tab) {
    tab = [];
    structOpsTabs.set(btf, tab);
  }
  if (tab.some((d) => d.stOps === stOps)) throw warn(EEXIST, `struct_ops ${stOps.name} is already registered`);
  const desc = bpfStructOpsDescInit(stOps, btf);
  tab.push(desc);
  return desc;
}

// ---- BTF_STRUCT_OPS_TYPE: emitting the value type while the kernel's BTF is built ----

type BuilderLike = import("../btf/builder.js").BtfBuilder;

/** The id of the type `name` of `kind` already in the builder (or its base), or -1. */
export function builderFind(b: BuilderLike, name: string, kind: number): number {
  if (b.base) {
    const id = b.base.findByNameKind(name, kind);
    if (id > 0) return id;
  }
  for (let id = b.nrTypes; id >= 1; id--) {
    const t = b.typeById(id);
    if (t.kind === kind && t.name === name) return id;
  }
  return -1;
}

function findOrAdd(b: BuilderLike, name: string, kind: number, add: () => number): number {
  const id = builderFind(b, name, kind);
  return id > 0 ? id : add();
}

/**
 * `struct bpf_struct_ops_common_value { refcount_t refcnt; enum bpf_struct_ops_state state; }`, as
 * include/linux/bpf.h has it (declared here unless the kernel core already did).
 */
export function declareStructOpsCommonValue(b: BuilderLike): number {
  return findOrAdd(b, "bpf_struct_ops_common_value", BTF_KIND_STRUCT, () => {
    const int = findOrAdd(b, "int", BTF_KIND_INT, () => b.addInt("int", 4, BTF_INT_SIGNED));
    const uint = findOrAdd(b, "unsigned int", BTF_KIND_INT, () => b.addInt("unsigned int", 4));
    const atomic = findOrAdd(b, "atomic_t", BTF_KIND_TYPEDEF, () =>
      b.addTypedef("atomic_t", b.addStructAuto("", [{ name: "counter", type: int }])),
    );
    const refcount = findOrAdd(b, "refcount_t", BTF_KIND_TYPEDEF, () =>
      b.addTypedef("refcount_t", b.addStructAuto("refcount_struct", [{ name: "refs", type: atomic }])),
    );
    const state = findOrAdd(b, "bpf_struct_ops_state", BTF_KIND_ENUM, () =>
      b.addEnum("bpf_struct_ops_state", 4, [
        { name: "BPF_STRUCT_OPS_STATE_INIT", val: 0 },
        { name: "BPF_STRUCT_OPS_STATE_INUSE", val: 1 },
        { name: "BPF_STRUCT_OPS_STATE_TOBEFREE", val: 2 },
        { name: "BPF_STRUCT_OPS_STATE_READY", val: 3 },
      ]),
    );
    void uint;
    return b.addStructAuto("bpf_struct_ops_common_value", [
      { name: "refcnt", type: refcount },
      { name: "state", type: state },
    ]);
  });
}

/** ____cacheline_aligned_in_smp on x86-64. */
export const SMP_CACHE_BYTES = 64;

/**
 * BTF_STRUCT_OPS_TYPE / register_bpf_struct_ops's type emission:
 * `struct bpf_struct_ops_<name> { struct bpf_struct_ops_common_value common; struct <name> data
 * ____cacheline_aligned_in_smp; }`. Call it from a subsystem's declareTypes after declaring
 * `struct <name>`. Returns the value type id.
 */
export function declareStructOpsValueType(b: BuilderLike, name: string): number {
  const typeId = builderFind(b, name, BTF_KIND_STRUCT);
  if (typeId < 0) throw new BpfError(EINVAL, `struct ${name} must be declared before its struct_ops value type`);
  const common = declareStructOpsCommonValue(b);
  const size = (b.typeById(typeId) as BtfComposite).size;
  const dataOff = SMP_CACHE_BYTES;
  const total = Math.ceil((dataOff + size) / SMP_CACHE_BYTES) * SMP_CACHE_BYTES;
  return b.addStruct(`${VALUE_PREFIX}${name}`, total, [
    { name: "common", type: common, bitOffset: 0 },
    { name: "data", type: typeId, bitOffset: dataOff * 8 },
  ]);
}
