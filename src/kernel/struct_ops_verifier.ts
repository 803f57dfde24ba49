/**
 * What the verifier (src/verifier) learns about struct_ops types: the registered descriptors seen
 * through the verifier's StructOpsTable interface (bpf_struct_ops_find, st_ops->check_member,
 * ctx_arg_info, verifier_ops->btf_struct_access / get_func_proto).
 */
import type { Btf } from "../btf/btf.js";
import { BpfError, EACCES, EINVAL } from "../uapi/errno.js";
import type { StructOpsInfo, StructOpsTable } from "../verifier/env.js";
import type { FuncProto } from "../verifier/helper_protos.js";
import { ALL_HELPER_PROTOS, bpfBaseFuncProto } from "../verifier/helper_protos.js";
import type { Kernel } from "./kernel.js";
import { type BpfStructOpsDesc, bpfStructOpsFind, bpfStructOpsSupported } from "./struct_ops_desc.js";

function infoOf(desc: BpfStructOpsDesc, helperProtos: ReadonlyMap<number, FuncProto>): StructOpsInfo {
  const st = desc.stOps;
  const t = desc.type;
  const vops = st.verifierOps;
  const unsupported = (idx: number): string =>
    `attach to unsupported member ${t.members[idx].name} of struct ${t.name}`;
  return {
    name: t.name,
    typeId: desc.typeId,
    type: t,
    members: t.members,
    isSupported: (idx: number) => bpfStructOpsSupported(st, t.members[idx]?.name ?? ""),
    checkMember: st.checkMember
      ? (idx: number, prog: { sleepable: boolean }): BpfError | undefined => {
          const view = { type: 27, expectedAttachType: idx, attachBtfId: desc.typeId, sleepable: prog.sleepable };
          try {
            const err = st.checkMember?.(t, t.members[idx], view) ?? 0;
            return err ? new BpfError(-err, unsupported(idx)) : undefined;
          } catch (e) {
            if (e instanceof BpfError) return new BpfError(e.errno, unsupported(idx));
            throw e;
          }
        }
      : undefined,
    argMayBeNull: (idx: number, argIdx: number) =>
      desc.argInfo[idx]?.some((a) => a.offset === argIdx * 8 && a.mayBeNull) ?? false,
    argRefcounted: (idx: number, argIdx: number) =>
      desc.argInfo[idx]?.some((a) => a.offset === argIdx * 8 && a.refcounted) ?? false,
    ctxArgBtfId: vops?.ctxArgBtfId ? (id: number) => vops.ctxArgBtfId!(id) : undefined,
    ctxArgType: vops?.ctxArgType
      ? (idx: number, arg: number, write: boolean) => vops.ctxArgType!(t.members[idx]?.name ?? "", arg, write)
      : undefined,
    btfStructAccess(btfId: number, off: number, size: number): string | undefined {
      if (!vops?.btfStructAccess) return "only read is supported";
      const log: string[] = [];
      try {
        vops.btfStructAccess(log, desc.btf as Btf, btfId, off, size);
        return undefined;
      } catch (e) {
        if (e instanceof BpfError && (e.errno === EACCES || e.errno === EINVAL)) return log[0] ?? e.message;
        throw e;
      }
    },
    getFuncProto(funcId: number, memberIdx: number): FuncProto | undefined {
      const view = { type: 27, expectedAttachType: memberIdx, attachBtfId: desc.typeId, sleepable: false };
      const verdict = vops?.getFuncProto?.(funcId, view);
      // A helper the kernel registered with its own prototype extends the known set (and, when
      // the ops do not decide, the base set every program type gets).
      const known = ALL_HELPER_PROTOS.get(funcId) ?? helperProtos.get(funcId);
      if (verdict === true) return known;
      if (verdict === false) return undefined;
      return bpfBaseFuncProto(funcId, true) ?? helperProtos.get(funcId);
    },
  };
}

/**
 * The StructOpsTable a VerifierEnv needs for STRUCT_OPS programs of kernel `k`. A lookup searches
 * the attach BTF it is given (a module's types live in the module's BTF), else `btf`, else vmlinux.
 */
export function bpfStructOpsVerifierTable(k: Kernel, btf?: Btf | null): StructOpsTable {
  const cache = new Map<BpfStructOpsDesc, StructOpsInfo>();
  return {
    findStructOps(attachBtfId: number, attachBtf?: Btf | null): StructOpsInfo | undefined {
      const b = attachBtf ?? btf ?? k.btfVmlinux;
      const desc = b ? bpfStructOpsFind(b, attachBtfId) : undefined;
      if (!desc) return undefined;
      let info = cache.get(desc);
      if (!info) cache.set(desc, (info = infoOf(desc, k.helperProtos)));
      return info;
    },
  };
}
