/**
 * Typed ksyms and per-CPU pointers (kernel/bpf/verifier.c: check_pseudo_btf_id's register
 * types, the ARG_PTR_TO_PERCPU_BTF_ID and RET_PTR_TO_MEM_OR_BTF_ID cases of check_func_arg and
 * check_helper_call). A ksym of a variable in `.data..percpu` is a per-CPU BTF pointer no load
 * may go through; bpf_per_cpu_ptr (maybe NULL) and bpf_this_cpu_ptr turn it into a read-only
 * pointer to one CPU's copy: PTR_TO_MEM of the variable's size, or a PTR_TO_BTF_ID for a struct.
 */
import type { Btf } from "../btf/btf.js";
import { btfResolveSize } from "../btf/resolve.js";
import { BTF_KIND_DATASEC, BTF_KIND_FUNC, BTF_KIND_STRUCT, BTF_KIND_UNION } from "../uapi/btf.js";
import { EACCES, EFAULT, EINVAL } from "../uapi/errno.js";
import { btfSkipModifiers } from "./btf_access.js";
import {
  BTF_PROG,
  MEM_ALLOC,
  MEM_PERCPU,
  MEM_RCU,
  MEM_RDONLY,
  markPtr,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_MEM,
  PTR_TRUSTED,
  type RegState,
  regTypeStr,
} from "./reg_state.js";
import type { Verifier } from "./verifier.js";

/** The section vmlinux keeps per-CPU variables in (find_btf_percpu_datasec). */
const PERCPU_DATASEC = ".data..percpu";

/** Is VAR `id` of `btf` (vmlinux's or a module's) a per-CPU variable of that BTF's own? */
function isPercpuVar(btf: Btf, id: number): boolean {
  const sec = btf.findByNameKindOwn(PERCPU_DATASEC, BTF_KIND_DATASEC);
  if (sec <= 0) return false;
  const ds = btf.typeById(sec) as unknown as { vars: { type: number }[] };
  return ds.vars.some((x) => x.type === id);
}

/** The size of type `id` of `btf`, or undefined when it has none. */
function typeSize(btf: Btf | undefined, id: number): number | undefined {
  if (!btf) return undefined;
  try {
    return btfResolveSize(btf, id);
  } catch {
    return undefined;
  }
}

/**
 * check_ld_imm for BPF_PSEUDO_BTF_ID: the register a ksym (VAR or FUNC `id`) becomes. `modBtf`:
 * the module BTF the id is in (split over vmlinux, so the variable's type, `int` say, is
 * vmlinux's); vmlinux's when absent.
 */
export function markKsymReg(v: Verifier, dst: RegState, id: number, modBtf?: Btf): void {
  const btf = modBtf ?? v.env.btf;
  if (!btf) v.reject(EINVAL, "kernel is missing BTF, make sure CONFIG_DEBUG_INFO_BTF=y is specified in Kconfig.");
  const t = btf.typeById(id);
  if (t.kind === BTF_KIND_FUNC) {
    markPtr(dst, PTR_TO_MEM | MEM_RDONLY);
    dst.memSize = 0;
    return;
  }
  const type = (t as { type: number }).type;
  const [, st] = btfSkipModifiers(btf, type);
  if (isPercpuVar(btf, id)) {
    markPtr(dst, PTR_TO_BTF_ID | MEM_PERCPU);
    dst.btfId = type;
  } else if (st.kind !== BTF_KIND_STRUCT && st.kind !== BTF_KIND_UNION) {
    const size = typeSize(btf, type);
    if (size === undefined) v.reject(EINVAL, `ldimm64 unable to resolve the size of type '${st.name}': -22`);
    markPtr(dst, PTR_TO_MEM | MEM_RDONLY);
    dst.memSize = size;
  } else {
    markPtr(dst, PTR_TO_BTF_ID);
    dst.btfId = type;
  }
}

const PERCPU_BTF_PTR_TYPES = [
  PTR_TO_BTF_ID | MEM_PERCPU,
  PTR_TO_BTF_ID | MEM_PERCPU | MEM_RCU,
  PTR_TO_BTF_ID | MEM_PERCPU | PTR_TRUSTED,
];

/**
 * ARG_PTR_TO_PERCPU_BTF_ID: a per-CPU BTF pointer; its type is what the helper returns. An RCU
 * one is a per-CPU object of the program's (a `__percpu_kptr` read in an RCU section).
 */
export function checkPercpuBtfArg(v: Verifier, regno: number, reg: RegState): number {
  if (!PERCPU_BTF_PTR_TYPES.includes(reg.type & ~BTF_PROG))
    v.reject(
      EACCES,
      `R${regno} type=${regTypeStr(reg.type)} expected=${PERCPU_BTF_PTR_TYPES.map(regTypeStr).join(", ")}`,
    );
  if (!reg.btfId) v.reject(EACCES, `Helper has invalid btf_id in R${regno}`);
  return reg.btfId;
}

/**
 * RET_PTR_TO_MEM_OR_BTF_ID (| MEM_RDONLY, | PTR_MAYBE_NULL): one CPU's copy of the variable, or
 * of a per-CPU object (`alloc`: returns_cpu_specific_alloc_ptr), which the kernel types as a
 * non-NULL RCU pointer to the program's struct, writable until the RCU section ends.
 */
export function markPercpuRet(v: Verifier, r0: RegState, btfId: number, maybeNull: boolean, alloc = false): void {
  if (alloc) {
    const t = v.env.progBtf?.tryTypeById(btfId);
    if (!t || (t.kind !== BTF_KIND_STRUCT && t.kind !== BTF_KIND_UNION))
      v.reject(EFAULT, "Helper has invalid btf/btf_id in R1");
    markPtr(r0, PTR_TO_BTF_ID | MEM_ALLOC | MEM_RCU);
    r0.btfId = btfId;
    return;
  }
  const btf = v.env.btf;
  if (!btf) v.reject(EINVAL, "kernel is missing BTF");
  const [, t] = btfSkipModifiers(btf, btfId);
  const nul = maybeNull ? PTR_MAYBE_NULL : 0;
  if (t.kind !== BTF_KIND_STRUCT && t.kind !== BTF_KIND_UNION) {
    const size = typeSize(btf, btfId);
    if (size === undefined) v.reject(EINVAL, `unable to resolve the size of type '${t.name}': -22`);
    markPtr(r0, PTR_TO_MEM | MEM_RDONLY | nul);
    r0.memSize = size;
  } else {
    // MEM_RDONLY does not apply to a BTF pointer (its loads are checked by the BTF walk).
    markPtr(r0, PTR_TO_BTF_ID | nul);
    r0.btfId = btfId;
  }
  if (maybeNull) r0.id = v.newId();
}
