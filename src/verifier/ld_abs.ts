/**
 * BPF_LD | BPF_ABS / BPF_IND (check_ld_abs in kernel/bpf/verifier.c): the legacy packet loads of
 * socket filters and tc programs. They read the skb whose context is in R6, clobber R1-R5 and
 * leave the value in R0; at run time a load outside the packet ends the function with R0 = 0
 * (bpf_gen_ld_abs's hidden exit), which a subprogram's caller then sees.
 */
import type { Insn } from "../isa/insn.js";
import { BPF_ABS, BPF_CLASS, BPF_DW, BPF_IND, BPF_LD, BPF_MODE, BPF_SIZE } from "../isa/opcodes.js";
import { bpf_prog_type } from "../uapi/bpf.js";
import { BTF_KIND_ENUM, BTF_KIND_ENUM64, BTF_KIND_FUNC, BTF_KIND_FUNC_PROTO, BTF_KIND_INT } from "../uapi/btf.js";
import { EACCES, EINVAL } from "../uapi/errno.js";
import { btfSkipModifiers } from "./btf_access.js";
import { processExit } from "./calls.js";
import { checkResourceLeak } from "./refs.js";
import { markRegKnown, markRegNotInit, markRegUnknown, PTR_TO_CTX } from "./reg_state.js";
import { copyState } from "./state.js";
import { tnumIsConst, tnumStr } from "./tnum.js";
import type { Verifier } from "./verifier.js";

/** may_access_skb: the program types whose context is an skb LD_ABS can read. */
const MAY_ACCESS_SKB: readonly number[] = [
  bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER,
  bpf_prog_type.BPF_PROG_TYPE_SCHED_CLS,
  bpf_prog_type.BPF_PROG_TYPE_SCHED_ACT,
];

export const isLdAbs = (insn: Insn): boolean =>
  BPF_CLASS(insn.code) === BPF_LD && (BPF_MODE(insn.code) === BPF_ABS || BPF_MODE(insn.code) === BPF_IND);

/** check_ld_abs. Returns true when the path ended (a subprogram's hidden exit was taken). */
export function checkLdAbs(v: Verifier, idx: number, insn: Insn): boolean {
  const mode = BPF_MODE(insn.code);
  if (!MAY_ACCESS_SKB.includes(v.env.progType))
    v.reject(EINVAL, "BPF_LD_[ABS|IND] instructions not allowed for this program type");
  if (insn.dst !== 0 || insn.off !== 0 || BPF_SIZE(insn.code) === BPF_DW || (mode === BPF_ABS && insn.src !== 0))
    v.reject(EINVAL, "BPF_LD_[ABS|IND] uses reserved fields");
  v.readReg(6);
  // gen_ld_abs may end the program at run time: nothing may be held across it.
  checkResourceLeak(v, false, true, "BPF_LD_[ABS|IND]");
  const ctx = v.regs[6];
  if (ctx.type !== PTR_TO_CTX) v.reject(EINVAL, "at the time of BPF_LD_ABS|IND R6 != pointer to skb");
  if (mode === BPF_IND) v.readReg(insn.src);
  // check_ptr_off_reg on R6.
  if (ctx.off < 0) v.reject(EACCES, `negative offset ctx ptr R6 off=${ctx.off} disallowed`);
  if (ctx.off !== 0) v.reject(EACCES, `dereference of modified ctx ptr R6 off=${ctx.off} disallowed`);
  if (!tnumIsConst(ctx.varOff) || ctx.varOff.value !== 0n)
    v.reject(EACCES, `variable ctx access var_off=${tnumStr(ctx.varOff)} disallowed`);
  for (let r = 0; r <= 5; r++) markRegNotInit(v.writeReg(r));
  const r0 = v.regs[0];
  markRegUnknown(r0);
  r0.written = true;
  if (v.cur.frames.length === 1) return false;
  // In a subprogram the hidden exit returns 0 to the caller: that path is walked too.
  v.pushState(copyState(v.cur), idx + 1);
  markRegKnown(r0, 0n);
  r0.written = true;
  processExit(v);
  return true;
}

/**
 * check_btf_func: a subprogram with LD_ABS/LD_IND must return a scalar, since the hidden exit
 * returns 0 to its caller.
 */
export function checkLdAbsSubprogs(v: Verifier, starts: readonly number[]): void {
  const btf = v.env.progBtf;
  const fi = v.env.funcInfo;
  if (!btf || !fi) return;
  const insns = v.env.insns;
  for (let i = 1; i < starts.length; i++) {
    const end = starts[i + 1] ?? insns.length;
    let has = false;
    for (let j = starts[i]!; j < end && !has; j++) has = isLdAbs(insns[j]!);
    if (!has) continue;
    const f = btf.tryTypeById(fi[i]?.typeId ?? 0);
    const proto = f?.kind === BTF_KIND_FUNC ? btf.tryTypeById(f.type) : undefined;
    if (proto?.kind !== BTF_KIND_FUNC_PROTO) continue;
    const ret = proto.type ? btfSkipModifiers(btf, proto.type)[1] : undefined;
    const scalar = ret?.kind === BTF_KIND_INT || ret?.kind === BTF_KIND_ENUM || ret?.kind === BTF_KIND_ENUM64;
    if (!scalar) v.reject(EINVAL, "LD_ABS is only allowed in functions that return 'int'.", 0);
  }
}
