/**
 * BPF struct_ops (kernel/bpf/bpf_struct_ops.c): the entry points the kernel core and subsystems
 * call. The pieces live by concept: struct_ops_desc.ts (type registration), struct_ops_map.ts
 * (BPF_MAP_TYPE_STRUCT_OPS), struct_ops_link.ts (BPF_LINK_TYPE_STRUCT_OPS),
 * struct_ops_trampoline.ts (native -> BPF calls), struct_ops_kdata.ts (the subsystem's view).
 */
import type { Btf } from "../btf/btf.js";
import type { BtfComposite } from "../btf/types.js";
import { BPF_CALL, BPF_JMP } from "../isa/opcodes.js";
import { bpf_attach_type, bpf_func_id, bpf_map_type } from "../uapi/bpf.js";
import { BpfError, EINVAL, ENOTSUPP } from "../uapi/errno.js";
import type { BpfProg } from "./bpf.js";
import { convertCtxAccesses } from "./convert_ctx.js";
import type { Kernel } from "./kernel.js";
import { resolveFuncPtr } from "./struct_ops_btf.js";
import {
  type BpfCtxArgAux,
  type BpfStructOps,
  type BpfStructOpsDesc,
  bpfStructOpsFind,
  bpfStructOpsSupported,
  registerBpfStructOps as registerInBtf,
} from "./struct_ops_desc.js";
import { bpfStructOpsLinkCreate } from "./struct_ops_link.js";
import { bpfStructOpsMapOps } from "./struct_ops_map.js";
import { bpfStructOpsVerifierTable } from "./struct_ops_verifier.js";

export * from "./struct_ops_desc.js";
export { BPF_MODULE_OWNER, BpfStructOpsKdata } from "./struct_ops_kdata.js";
export {
  BpfStructOpsLink,
  bpfStructOpsLinkCreate,
  bpfStructOpsMapLops,
  bpfStructOpsValidToReg,
  EPOLLHUP,
} from "./struct_ops_link.js";
export {
  BpfStructOpsMap,
  bpfStructOpsGet,
  bpfStructOpsMapOps,
  bpfStructOpsMapSysLookupElem,
  bpfStructOpsPut,
  isStructOpsMap,
} from "./struct_ops_map.js";
export { BpfStructOpsTrampoline, type TrampArg } from "./struct_ops_trampoline.js";
export { bpfStructOpsVerifierTable } from "./struct_ops_verifier.js";

/** What check_struct_ops_btf_id() records on a STRUCT_OPS program (prog->aux->st_ops & co). */
export interface StructOpsProgAux {
  readonly desc: BpfStructOpsDesc;
  readonly memberIdx: number;
  /** attach_st_ops_member_off. */
  readonly memberOff: number;
  /** attach_func_name. */
  readonly funcName: string;
  /** attach_func_proto's BTF id. */
  readonly funcProtoId: number;
  /** ctx_arg_info: __nullable / __ref arguments. */
  readonly ctxArgInfo: readonly BpfCtxArgAux[];
}

export function structOpsProgAux(prog: BpfProg): StructOpsProgAux | undefined {
  return prog.aux.st_ops as StructOpsProgAux | undefined;
}

/** The BTF an attach_btf_id refers to: the prog's attach BTF (a module) or vmlinux. */
function attachBtf(k: Kernel, prog: BpfProg): Btf | null {
  return prog.aux.attach_btf?.btf ?? k.btfVmlinux;
}

/** Any subprog's has_tail_call (check_subprogs): a bpf_tail_call helper call anywhere. */
function hasTailCall(prog: BpfProg): boolean {
  return prog.orig_insns.some(
    (i) => i.code === (BPF_JMP | BPF_CALL) && i.src === 0 && i.imm === bpf_func_id.BPF_FUNC_tail_call,
  );
}

/** check_struct_ops_btf_id(): PROG_LOAD checks of a BPF_PROG_TYPE_STRUCT_OPS program, in order. */
export function checkStructOpsBtfId(k: Kernel, prog: BpfProg, log: string[]): void {
  const fail = (errno: number, msg: string): BpfError => {
    log.push(msg);
    return new BpfError(errno, msg, { prog: prog.name });
  };
  if (!prog.gpl_compatible) throw fail(EINVAL, "struct ops programs must have a GPL compatible license");
  const btfId = prog.aux.attach_btf_id;
  if (!btfId) throw fail(ENOTSUPP, "struct_ops prog needs attach_btf_id");
  const mod = prog.aux.attach_btf?.module;
  if (mod && !mod.live) throw fail(ENOTSUPP, `struct_ops module ${mod.name} is not found`);
  const btf = attachBtf(k, prog);
  const desc = btf ? bpfStructOpsFind(btf, btfId) : undefined;
  if (!btf || !desc) throw fail(ENOTSUPP, `attach_btf_id ${btfId} is not a supported struct`);
  const t: BtfComposite = desc.type;
  const idx = prog.expected_attach_type;
  if (idx >= t.members.length) throw fail(EINVAL, `attach to invalid member idx ${idx} of struct ${t.name}`);
  const member = t.members[idx];
  const proto = resolveFuncPtr(btf, member.type);
  if (!proto) throw fail(EINVAL, `attach to invalid member ${member.name}(@idx ${idx}) of struct ${t.name}`);
  const unsupported = `attach to unsupported member ${member.name} of struct ${t.name}`;
  if (!bpfStructOpsSupported(desc.stOps, member.name)) throw fail(ENOTSUPP, unsupported);
  if (desc.stOps.checkMember) {
    let err = 0;
    try {
      err = desc.stOps.checkMember(t, member, prog);
    } catch (e) {
      if (e instanceof BpfError) throw fail(e.errno, unsupported);
      throw e;
    }
    if (err) throw fail(-err, unsupported);
  }
  // A callee reached by tail call cannot be guaranteed the referenced kptr the caller was handed.
  if (desc.argInfo[idx].some((a) => a.refcounted) && hasTailCall(prog)) {
    throw fail(EINVAL, "program with __ref argument cannot tail call");
  }
  const aux: StructOpsProgAux = {
    desc,
    memberIdx: idx,
    memberOff: desc.memberOffsets[idx],
    funcName: member.name,
    funcProtoId: proto.id,
    ctxArgInfo: desc.argInfo[idx],
  };
  prog.aux.st_ops = aux;
}

/**
 * Plug struct_ops into the kernel core: the map type, the link attach type, and the PROG_LOAD
 * hook. Idempotent, so each struct_ops subsystem may call it from its register().
 */
export function bpfStructOpsInit(k: Kernel): void {
  if (k.mapTypes.get(bpf_map_type.BPF_MAP_TYPE_STRUCT_OPS) === bpfStructOpsMapOps) return;
  k.registerMapType(bpf_map_type.BPF_MAP_TYPE_STRUCT_OPS, bpfStructOpsMapOps);
  k.registerLinkCreate(bpf_attach_type.BPF_STRUCT_OPS, (attr, proc) => bpfStructOpsLinkCreate(k, attr, proc));
  // The verifier's view of the registered types rides along for whoever builds the VerifierEnv.
  const hooks = {
    checkAttach: (prog: BpfProg, log: string[]) => checkStructOpsBtfId(k, prog, log),
    convertCtx: (prog: BpfProg) => {
      const aux = structOpsProgAux(prog);
      const gen = aux?.desc.stOps.verifierOps?.genCtx?.(aux.funcName, prog.name);
      if (gen) convertCtxAccesses(prog, gen);
    },
  };
  k.structOps = Object.assign(hooks, { verifierTable: bpfStructOpsVerifierTable(k) });
}

/**
 * register_bpf_struct_ops(): built-ins register into vmlinux BTF; a module passes its BTF.
 * The value type `struct bpf_struct_ops_<name>` must already be in that BTF (declare it with
 * declareStructOpsValueType while the BTF is built, as BTF_STRUCT_OPS_TYPE does).
 */
export function registerBpfStructOps<K>(k: Kernel, stOps: BpfStructOps<K>, btf?: Btf | null): BpfStructOpsDesc {
  bpfStructOpsInit(k);
  const desc = registerInBtf(btf === undefined ? k.btfVmlinux : btf, stOps as unknown as BpfStructOps<never>);
  if (!desc) throw new BpfError(EINVAL, `struct_ops ${stOps.name} was not registered`);
  return desc;
}
