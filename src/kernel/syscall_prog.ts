import { decodeInsns, type Insn, isLdImm64 } from "../isa/insn.js";
import {
  BPF_COMPLEXITY_LIMIT_INSNS,
  BPF_F_ANY_ALIGNMENT,
  BPF_F_SLEEPABLE,
  BPF_F_STRICT_ALIGNMENT,
  BPF_F_TEST_REG_INVARIANTS,
  BPF_F_TEST_RND_HI32,
  BPF_F_TEST_STATE_FREQ,
  BPF_F_TOKEN_FD,
  BPF_F_XDP_DEV_BOUND_ONLY,
  BPF_F_XDP_HAS_FRAGS,
  BPF_MAXINSNS,
  bpf_attach_type,
  bpf_prog_type,
} from "../uapi/bpf.js";
import { BTF_MAX_TYPE } from "../uapi/btf.js";
import { BpfError, E2BIG, EFAULT, EINVAL, ENOENT, ENOTSUPP, EPERM } from "../uapi/errno.js";
import { optHardWireDeadCodeBranches, sanitizeDeadCode } from "../verifier/dead_code.js";
import type { VerifierResult } from "../verifier/env.js";
import { type FixupProg, fixupMayGoto, patchInsnData } from "../verifier/fixups.js";
import { isMayGoto } from "../verifier/iter.js";
import { BpfProg, type BtfObject } from "./bpf.js";
import type { ProgLoadAttr, ProgTestRunAttr } from "./bpf_attr.js";
import { num } from "./bpf_attr.js";
import { btf_get, btf_get_by_fd, btf_put } from "./btf_obj.js";
import { CAP_SYS_ADMIN } from "./capability.js";
import { bpf_check_tail_call, bpf_prog_calc_tag, license_is_gpl_compatible } from "./core.js";
import { File, type FileOps, O_CLOEXEC, O_RDWR } from "./file.js";
import type { Kernel } from "./kernel.js";
import { PAGE_SIZE } from "./kernel.js";
import { genLdAbs, isLdAbs } from "./ld_abs.js";
import { type Module, module_put } from "./module.js";
import type { Process } from "./process.js";
import { BpfLog, bpf_obj_name_cpy, cString, fdinfoHeader, hex } from "./syscall_common.js";
import {
  bindCalls,
  check_btf_info,
  type LdImm64Aux,
  logErr,
  resolve_pseudo_ldimm64,
  type VerifierEnv,
} from "./verifier_bind.js";

export { type LdImm64Aux, MAX_USED_MAPS, type VerifierEnv } from "./verifier_bind.js";

import type { Vm } from "../vm/vm.js";
import { bpf_map_put } from "./syscall_map.js";
import { tracing_check_attach, tracing_prog_free, tracing_prog_set_dst } from "./trampoline.js";

const P = bpf_prog_type;
// ---- lifetime ----

export function bpf_prog_inc(prog: BpfProg): void {
  prog.refcnt++;
}

export function bpf_prog_inc_not_zero(prog: BpfProg): BpfProg {
  if (prog.refcnt <= 0) throw new BpfError(ENOENT, `program ${prog.id} is being freed`);
  prog.refcnt++;
  return prog;
}

function bpf_prog_free(prog: BpfProg): void {
  prog.freed = true;
  bpf_prog_uncharge_memlock(prog);
  prog.bpf_func = null;
  // bpf_jit_free: the VM forgets the image (its function addresses, its compiled tiers), which
  // would otherwise keep the program and all it references for the kernel's lifetime.
  if (prog.vmProg) prog.kernel.vm?.unload(prog.vmProg as Parameters<Vm["unload"]>[0]);
  prog.vmProg = null;
  for (const m of prog.aux.used_maps) bpf_map_put(m);
  prog.aux.used_maps = [];
  for (const b of prog.aux.used_btfs) btf_put(b);
  // bpf_free_kfunc_btf_tab(): the module BTFs of kfunc calls and their modules.
  for (const b of prog.aux.kfunc_btf_tab) {
    btf_put(b.btf);
    module_put(b.module as Module);
  }
  prog.aux.kfunc_btf_tab = [];
  if (prog.aux.attach_btf) btf_put(prog.aux.attach_btf);
  if (prog.aux.btf) btf_put(prog.aux.btf);
  tracing_prog_free(prog);
}

/**
 * bpf_prog_put(): the last reference frees the id at once, the program after a grace period of
 * the flavour it runs under (tasks-trace for sleepable programs), so a running invocation finishes.
 */
export function bpf_prog_put(prog: BpfProg): void {
  if (prog.refcnt <= 0) throw new Error(`bpf_prog_put: program ${prog.id} refcnt underflow`);
  if (--prog.refcnt > 0) return;
  const k = prog.kernel;
  if (prog.id) k.prog_idr.remove(prog.id);
  if (prog.aux.sleepable) k.rcu.callRcuTasksTrace(() => k.rcu.callRcu(() => bpf_prog_free(prog)));
  else k.rcu.callRcu(() => bpf_prog_free(prog));
}

/** sizeof(struct bpf_prog) up to insns[] on x86-64. */
const SIZEOF_BPF_PROG = 72;

function progPages(insnCnt: number): number {
  // bpf_prog_size(): the struct plus its instructions, in whole pages.
  return Math.ceil(Math.max(SIZEOF_BPF_PROG, SIZEOF_BPF_PROG + 8 * insnCnt) / PAGE_SIZE);
}

function progMemlock(prog: BpfProg): number {
  return progPages(prog.len) * PAGE_SIZE;
}

const progCharge = new WeakMap<BpfProg, { user: Process["user"]; pages: number }>();

/** v5.8 bpf_prog_charge_memlock(): a program's pages count against RLIMIT_MEMLOCK too (EPERM). */
function bpf_prog_charge_memlock(prog: BpfProg, proc: Process, insnCnt: number): void {
  const pages = progPages(insnCnt);
  const limit = Math.floor(proc.rlimitMemlock / PAGE_SIZE);
  if (proc.user.locked_vm + pages > limit) {
    throw new BpfError(EPERM, `program needs ${pages} page(s) of locked memory over RLIMIT_MEMLOCK`);
  }
  proc.user.locked_vm += pages;
  progCharge.set(prog, { user: proc.user, pages });
}

function bpf_prog_uncharge_memlock(prog: BpfProg): void {
  const c = progCharge.get(prog);
  if (!c) return;
  c.user.locked_vm -= c.pages;
  progCharge.delete(prog);
}

export const bpf_prog_fops: FileOps<BpfProg> = {
  kind: "prog",
  release: (f) => bpf_prog_put(f.private_data),
  show_fdinfo: (f) => {
    const p = f.private_data;
    return (
      fdinfoHeader(f) +
      `prog_type:\t${p.type}\n` +
      `prog_jited:\t${p.jited ? 1 : 0}\n` +
      `prog_tag:\t${hex(p.tag)}\n` +
      `memlock:\t${progMemlock(p)}\n` +
      `prog_id:\t${p.id}\n` +
      `run_time_ns:\t${p.run_time_ns}\n` +
      `run_cnt:\t${p.run_cnt}\n` +
      `recursion_misses:\t${p.recursion_misses}\n` +
      `verified_insns:\t${p.verified_insns}\n`
    );
  },
};

export function bpf_prog_new_fd(proc: Process, prog: BpfProg): number {
  return proc.files.install(new File(bpf_prog_fops, prog, O_RDWR | O_CLOEXEC));
}

/** fdget + the prog behind it, no new reference. EBADF / EINVAL. */
export function progFromFd(proc: Process, fd: number): BpfProg {
  const f = proc.files.get(fd);
  if (f.f_op !== bpf_prog_fops) throw new BpfError(EINVAL, `fd ${fd} is not a BPF program`, { fd });
  return f.private_data as BpfProg;
}

/** bpf_prog_get(): a new reference on the prog behind fd. */
export function bpf_prog_get(proc: Process, fd: number): BpfProg {
  const p = progFromFd(proc, fd);
  bpf_prog_inc(p);
  return p;
}

// ---- BPF_PROG_LOAD ----

const PROG_FLAGS =
  BPF_F_STRICT_ALIGNMENT |
  BPF_F_ANY_ALIGNMENT |
  BPF_F_TEST_STATE_FREQ |
  BPF_F_SLEEPABLE |
  BPF_F_TEST_RND_HI32 |
  BPF_F_XDP_HAS_FRAGS |
  BPF_F_XDP_DEV_BOUND_ONLY |
  BPF_F_TEST_REG_INVARIANTS |
  BPF_F_TOKEN_FD;

const NET_ADMIN_PROG_TYPES = new Set<number>([
  P.BPF_PROG_TYPE_SCHED_CLS,
  P.BPF_PROG_TYPE_SCHED_ACT,
  P.BPF_PROG_TYPE_XDP,
  P.BPF_PROG_TYPE_LWT_IN,
  P.BPF_PROG_TYPE_LWT_OUT,
  P.BPF_PROG_TYPE_LWT_XMIT,
  P.BPF_PROG_TYPE_LWT_SEG6LOCAL,
  P.BPF_PROG_TYPE_SK_SKB,
  P.BPF_PROG_TYPE_SK_MSG,
  P.BPF_PROG_TYPE_FLOW_DISSECTOR,
  P.BPF_PROG_TYPE_CGROUP_DEVICE,
  P.BPF_PROG_TYPE_CGROUP_SOCK,
  P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
  P.BPF_PROG_TYPE_CGROUP_SOCKOPT,
  P.BPF_PROG_TYPE_CGROUP_SYSCTL,
  P.BPF_PROG_TYPE_SOCK_OPS,
  P.BPF_PROG_TYPE_EXT,
]);
/** is_perfmon_prog_type(): struct_ops is here (it can read kernel memory through BTF pointers). */
const PERFMON_PROG_TYPES = new Set<number>([
  P.BPF_PROG_TYPE_KPROBE,
  P.BPF_PROG_TYPE_TRACEPOINT,
  P.BPF_PROG_TYPE_PERF_EVENT,
  P.BPF_PROG_TYPE_RAW_TRACEPOINT,
  P.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE,
  P.BPF_PROG_TYPE_TRACING,
  P.BPF_PROG_TYPE_LSM,
  P.BPF_PROG_TYPE_STRUCT_OPS,
  P.BPF_PROG_TYPE_EXT,
]);

function insnsOf(attr: ProgLoadAttr): Insn[] {
  const src = attr.insns;
  const cnt = num(attr.insn_cnt);
  if (!src) throw new BpfError(EINVAL, "insns is NULL");
  const all = src instanceof Uint8Array ? decodeInsns(src.subarray(0, cnt * 8)) : src.slice(0, cnt);
  // Copying insn_cnt instructions from a shorter buffer faults.
  if (all.length < cnt) throw new BpfError(EFAULT, `insns holds ${all.length} instructions, insn_cnt is ${cnt}`);
  return all.map((i) => ({ ...i }));
}

export function bpf_prog_load(k: Kernel, proc: Process, attr: ProgLoadAttr): number {
  const prog_flags = num(attr.prog_flags);
  if (prog_flags & ~PROG_FLAGS) throw new BpfError(EINVAL, `unknown prog_flags 0x${prog_flags.toString(16)}`);
  if (prog_flags & BPF_F_TOKEN_FD || num(attr.prog_token_fd))
    throw new BpfError(EINVAL, "BPF tokens are not supported");
  const bpfCap = proc.cred.bpfCapable();
  if (k.sysctl.unprivilegedBpfDisabled && !bpfCap) {
    throw new BpfError(EPERM, "unprivileged BPF is disabled (kernel.unprivileged_bpf_disabled)");
  }
  const cnt = num(attr.insn_cnt);
  if (cnt === 0 || cnt > (bpfCap ? BPF_COMPLEXITY_LIMIT_INSNS : BPF_MAXINSNS)) {
    throw new BpfError(E2BIG, `insn_cnt ${cnt} is out of range`);
  }
  const type = num(attr.prog_type);
  if (type !== P.BPF_PROG_TYPE_SOCKET_FILTER && type !== P.BPF_PROG_TYPE_CGROUP_SKB && !bpfCap) {
    throw new BpfError(EPERM, `program type ${type} needs CAP_BPF`);
  }
  if (NET_ADMIN_PROG_TYPES.has(type) && !proc.cred.netAdminCapable()) {
    throw new BpfError(EPERM, `program type ${type} needs CAP_NET_ADMIN`);
  }
  if (PERFMON_PROG_TYPES.has(type) && !proc.cred.perfmonCapable()) {
    throw new BpfError(EPERM, `program type ${type} needs CAP_PERFMON`);
  }

  // attach_prog_fd / attach_btf_obj_fd (one field): a program to trace, else a kernel BTF by fd,
  // else vmlinux when attach_btf_id is given.
  let attach_btf: BtfObject | null = null;
  let dst_prog: BpfProg | null = null;
  const attachBtfId = num(attr.attach_btf_id);
  const attachFd = num(attr.attach_prog_fd) || num(attr.attach_btf_obj_fd);
  if (attachFd) {
    try {
      dst_prog = bpf_prog_get(proc, attachFd);
    } catch {
      // not a program: must be a kernel BTF
    }
    if (!dst_prog) {
      try {
        attach_btf = btf_get_by_fd(proc, attachFd);
      } catch {
        throw new BpfError(EINVAL, `attach_btf_obj_fd ${attachFd} is not a BTF object`);
      }
      if (!attach_btf.kernelBtf) {
        btf_put(attach_btf);
        throw new BpfError(ENOTSUPP, `attach_btf_obj_fd ${attachFd} is not a kernel BTF`);
      }
    }
  } else if (attachBtfId) {
    attach_btf = k.btfVmlinuxObj;
    if (!attach_btf) throw new BpfError(EINVAL, "attach_btf_id given but the kernel has no BTF");
    btf_get(attach_btf);
  }
  const release = (): void => {
    if (attach_btf) btf_put(attach_btf);
    if (dst_prog) bpf_prog_put(dst_prog);
  };
  // bpf_prog_load_check_attach()
  const btfTypes = [P.BPF_PROG_TYPE_TRACING, P.BPF_PROG_TYPE_LSM, P.BPF_PROG_TYPE_STRUCT_OPS, P.BPF_PROG_TYPE_EXT];
  if (
    (attachBtfId && (attachBtfId > BTF_MAX_TYPE || !btfTypes.includes(type as 26))) ||
    (attach_btf && (!attachBtfId || dst_prog)) ||
    (dst_prog && type !== P.BPF_PROG_TYPE_TRACING && type !== P.BPF_PROG_TYPE_EXT)
  ) {
    release();
    throw new BpfError(EINVAL, `attach_btf_id ${attachBtfId} is not valid for program type ${type}`);
  }
  if (!k.progTypes.has(type)) {
    release();
    throw new BpfError(EINVAL, `program type ${type} is not supported`);
  }

  const prog = new BpfProg(k, type, num(attr.expected_attach_type));
  prog.aux.attach_btf = attach_btf;
  if (dst_prog) tracing_prog_set_dst(prog, dst_prog);
  prog.aux.attach_btf_id = attachBtfId;
  prog.aux.sleepable = (prog_flags & BPF_F_SLEEPABLE) !== 0;
  prog.aux.created_by_uid = proc.uid;
  prog.aux.load_time = k.ktimeGetNs();
  try {
    prog.orig_insns = insnsOf(attr);
    bpf_prog_charge_memlock(prog, proc, prog.orig_insns.length);
    // The licence is copied from user memory: a NULL pointer faults.
    if (attr.license === undefined || attr.license === null) throw new BpfError(EFAULT, "license is NULL");
    prog.gpl_compatible = license_is_gpl_compatible(cString(attr.license, 127));
    prog.name = bpf_obj_name_cpy(attr.prog_name);
    bpf_check(k, proc, prog, attr);
    prog.id = k.prog_idr.allocCyclic(prog);
    return bpf_prog_new_fd(proc, prog);
  } catch (e) {
    bpf_prog_put(prog);
    throw e;
  }
}

/** can_be_sleepable(): the hooks where a program may sleep. */
function can_be_sleepable(prog: BpfProg): boolean {
  if (prog.type === P.BPF_PROG_TYPE_TRACING) {
    const A = bpf_attach_type;
    const sleepableTypes: number[] = [A.BPF_TRACE_FENTRY, A.BPF_TRACE_FEXIT, A.BPF_MODIFY_RETURN, A.BPF_TRACE_ITER];
    return sleepableTypes.includes(prog.expected_attach_type);
  }
  return (
    prog.type === P.BPF_PROG_TYPE_LSM ||
    prog.type === P.BPF_PROG_TYPE_KPROBE ||
    prog.type === P.BPF_PROG_TYPE_STRUCT_OPS
  );
}

/**
 * bpf_check() after do_check: a CAP_SYS_ADMIN load first hard-wires one-sided branches; then every
 * slot no verified path reached becomes `ja -1` (sanitize_dead_code), before helpers are bound,
 * so a call the verifier never walked (libbpf's poisoned unresolved __weak kfunc) is gone. The
 * kernel removes a privileged program's dead code (opt_remove_dead_code) instead of trapping it;
 * here the slots stay, so instruction indices (func_info, line_info, subprogs) need no fixing up.
 */
function rewriteDeadCode(insns: Insn[], seen: Uint8Array, isPriv: boolean): void {
  if (isPriv) optHardWireDeadCodeBranches(insns, seen);
  sanitizeDeadCode(insns, seen);
}

/**
 * do_misc_fixups(), after convert_ctx_accesses: each LD_ABS/LD_IND becomes bpf_gen_ld_abs's
 * call of a load helper (src/kernel/ld_abs.ts) and may_goto the counted loop over a hidden stack
 * slot per function (src/verifier/fixups.ts), both patched in by bpf_patch_insn_data, so what the
 * VM runs and what the xlated dump shows is the rewritten program.
 */
function do_misc_fixups(k: Kernel, prog: BpfProg): void {
  const vr = prog.aux.verifier_result as VerifierResult | undefined;
  const ldAbs = prog.insnsi.some(isLdAbs);
  const mayGoto = vr !== undefined && prog.insnsi.some(isMayGoto);
  if (!ldAbs && !mayGoto) return;
  const p: FixupProg = {
    insns: prog.insnsi,
    subprogStarts: vr?.subprogStarts ?? [0],
    stackDepth: vr?.stackDepth ?? [0],
    lineInfo: prog.aux.line_info,
    funcInfo: prog.aux.func_info,
    seen: vr?.seen,
    memProven: vr?.memProven,
  };
  for (let i = 0; ldAbs && i < p.insns.length; i++) {
    const insn = p.insns[i]!;
    if (isLdImm64(insn)) i++;
    else if (isLdAbs(insn)) {
      const patch = genLdAbs(insn);
      patchInsnData(p, i, patch);
      i += patch.length - 1;
    }
  }
  if (mayGoto) fixupMayGoto(p, k.timedMayGoto);
  prog.insnsi = p.insns;
  if (vr) {
    vr.subprogStarts = p.subprogStarts;
    vr.seen = p.seen;
    vr.memProven = p.memProven;
  }
}

/** The load-time binding and checks done in bpf_check() before and after the verifier proper. */
function bpf_check(k: Kernel, proc: Process, prog: BpfProg, attr: ProgLoadAttr): void {
  const log = new BpfLog(num(attr.log_level), attr.log_buf, num(attr.log_size));
  const env: VerifierEnv = {
    kernel: k,
    prog,
    insns: prog.orig_insns,
    ldImm64Aux: new Map(),
    log,
    logLines: log.lines,
    privileged: proc.cred.bpfCapable(),
    attr,
  };
  try {
    prog.tag = bpf_prog_calc_tag(prog.orig_insns, k.progTagHash);
    // bpf_check() order: kfunc calls (add_subprog_and_kfunc), the attach target
    // (check_attach_btf_id), ld_imm64 (resolve_pseudo_ldimm64), then do_check.
    bindCalls(env, prog.orig_insns, !k.verifier, proc, attr);
    check_btf_info(env, proc, attr);
    // check_attach_btf_id(): syscall programs run in a context that may sleep; other programs
    // may sleep only where their hook can; tracing programs name their target.
    if (prog.type === P.BPF_PROG_TYPE_SYSCALL) {
      if (!prog.aux.sleepable) throw logErr(log, EINVAL, "Syscall programs can only be sleepable");
    } else if (prog.aux.sleepable && !can_be_sleepable(prog)) {
      throw logErr(
        log,
        EINVAL,
        "Only fentry/fexit/fmod_ret, lsm, iter, uprobe, and struct_ops programs can be sleepable",
      );
    }
    if (
      (prog.type === P.BPF_PROG_TYPE_TRACING ||
        prog.type === P.BPF_PROG_TYPE_LSM ||
        prog.type === P.BPF_PROG_TYPE_EXT) &&
      !prog.aux.attach_btf_id
    ) {
      throw logErr(log, EINVAL, "Tracing programs must provide btf_id");
    }
    tracing_check_attach(prog, log.lines);
    if (prog.type === P.BPF_PROG_TYPE_STRUCT_OPS) {
      if (!k.structOps) throw logErr(log, ENOTSUPP, "struct_ops is not supported by this kernel");
      k.structOps.checkAttach(prog, log.lines);
    }
    prog.insnsi = resolve_pseudo_ldimm64(env, proc, attr, env.ldImm64Aux as Map<number, LdImm64Aux>);
    const vr = k.verifier?.(env) as VerifierResult | undefined;
    prog.aux.verifier_result = vr;
    prog.aux.jits_use_priv_stack = vr?.privStack === true;
    if (vr?.seen) rewriteDeadCode(prog.insnsi, vr.seen, proc.cred.capable(CAP_SYS_ADMIN));
    if (prog.type === P.BPF_PROG_TYPE_STRUCT_OPS) k.structOps?.convertCtx?.(prog);
    do_misc_fixups(k, prog);
    k.jit?.(prog);
    bpf_check_tail_call(prog);
  } catch (e) {
    attr.log_true_size = log.finalize();
    throw e;
  }
  attr.log_true_size = log.finalizeOk();
}

// ---- BPF_PROG_TEST_RUN ----

export function bpf_prog_test_run(k: Kernel, proc: Process, attr: ProgTestRunAttr): number {
  const prog = progFromFd(proc, num(attr.prog_fd));
  const ops = k.progTypes.get(prog.type);
  if (!ops?.test_run) throw new BpfError(ENOTSUPP, `program type ${prog.type} has no test_run`);
  if ((num(attr.ctx_size_in) && !attr.ctx_in) || (!num(attr.ctx_size_in) && attr.ctx_in)) {
    throw new BpfError(EINVAL, "ctx_size_in and ctx_in must be given together");
  }
  if ((num(attr.ctx_size_out) && !attr.ctx_out) || (!num(attr.ctx_size_out) && attr.ctx_out)) {
    throw new BpfError(EINVAL, "ctx_size_out and ctx_out must be given together");
  }
  // flags and cpu are each test_run's own business (struct_ops ignores them, skb refuses any).
  bpf_prog_inc(prog);
  try {
    ops.test_run(prog, attr, proc);
  } finally {
    bpf_prog_put(prog);
  }
  return 0;
}

export { BpfProg };
