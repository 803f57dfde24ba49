/**
 * fentry/fexit on a BPF program (kernel/bpf/trampoline.c, bpf_check_attach_target in verifier.c,
 * bpf_tracing_prog_attach in syscall.c). A BPF_PROG_TYPE_TRACING program loaded with
 * attach_prog_fd and attach_btf_id naming a function of the target program's BTF attaches through
 * BPF_RAW_TRACEPOINT_OPEN or LINK_CREATE to a trampoline around the target: its entry is patched
 * (bpf_arch_text_poke) so that every run lays the target's arguments out as `u64 ctx[]` in VM
 * memory, runs the fentry programs (the last attached first), runs the target, stores its return
 * value after the arguments and runs the fexit programs.
 */
import type { Btf } from "../btf/btf.js";
import type { BtfFuncProto } from "../btf/types.js";
import { bpf_attach_type, bpf_link_type, bpf_prog_type } from "../uapi/bpf.js";
import { BTF_KIND_FUNC, BTF_KIND_FUNC_PROTO } from "../uapi/btf.js";
import { BpfError, E2BIG, EBUSY, EINVAL, ENOENT, EOPNOTSUPP } from "../uapi/errno.js";
import { tracingProgFuncProto } from "../verifier/helper_protos.js";
import type { BpfFunc, BpfLink, BpfLinkInfo, BpfLinkOps, BpfProg } from "./bpf.js";
import type { LinkCreateAttr } from "./bpf_attr.js";
import { num } from "./bpf_attr.js";
import {
  bpf_lsm_get_retval_range,
  bpf_lsm_is_sleepable_hook,
  bpf_lsm_is_trusted,
  bpf_lsm_verify_prog,
} from "./bpf_lsm.js";
import { raw_tp_check_attach } from "./bpf_trace.js";
import { bpf_prog_run } from "./core.js";
import type { Kernel } from "./kernel.js";
import type { Process } from "./process.js";
import { bpf_link_cleanup, bpf_link_init, bpf_link_prime, bpf_link_settle } from "./syscall_link.js";
import { bpf_prog_inc, bpf_prog_put } from "./syscall_prog.js";
import { trace_target_d_path_allowed, trace_target_modifiable, trace_target_sleepable } from "./trace_targets.js";

const A = bpf_attach_type;
/** BPF_MAX_TRAMP_LINKS on x86-64. */
export const BPF_MAX_TRAMP_LINKS = 38;
/** MAX_BPF_FUNC_ARGS: what a trampoline can save. */
const MAX_BPF_FUNC_ARGS = 12;

/** What bpf_check_attach_target found: the function, its prototype and where it is. */
export interface AttachTarget {
  readonly btf: Btf;
  readonly proto: BtfFuncProto;
  readonly name: string;
  /** Index of the subprogram in the target's func_info (0: the program itself). */
  readonly subprog: number;
  /** An LSM hook's return values (bpf_lsm_get_retval_range); none for a void hook. */
  readonly retvalRange?: [bigint, bigint];
  /** prog_args_trusted: the arguments are trusted pointers. */
  readonly trusted?: boolean;
  /** bpf_d_path_allowed(): bpf_d_path may run there. */
  readonly dPathAllowed?: boolean;
}

/** A tracing program's load-time target (prog->aux->dst_prog and dst_trampoline). */
interface TracingAux {
  dstProg: BpfProg | null;
  target: AttachTarget | null;
  /** The target program is itself a tracing program (attach_tracing_prog). */
  attachTracingProg: boolean;
  /** Attached once: the load-time target is spent. */
  used: boolean;
}
const tracingAux = new WeakMap<BpfProg, TracingAux>();

function func_info_type_ids(p: BpfProg): number[] {
  const a = p.aux;
  if (!a.func_info || !a.func_info_cnt) return [];
  const rec = a.func_info.length / a.func_info_cnt;
  const dv = new DataView(a.func_info.buffer, a.func_info.byteOffset, a.func_info.byteLength);
  return Array.from({ length: a.func_info_cnt }, (_, i) => dv.getUint32(i * rec + 4, true));
}

/**
 * bpf_check_attach_target() for a BPF program target (fentry/fexit): the target must carry BTF,
 * btf_id must be one of its subprograms' FUNCs, no nesting of tracing attachments. Messages go
 * to the verifier log as the kernel's bpf_log does.
 */
export function bpf_check_attach_target(log: string[], prog: BpfProg, tgt: BpfProg, btfId: number): AttachTarget {
  const fail = (msg: string): never => {
    log.push(msg);
    throw new BpfError(EINVAL, msg.trimEnd());
  };
  const btf = tgt.aux.btf?.btf;
  if (!btf) fail("FENTRY/FEXIT program can only be attached to another program annotated with BTF\n");
  let t: ReturnType<Btf["typeById"]> | undefined;
  try {
    t = btfId <= btf!.nrTypes ? btf!.typeById(btfId) : undefined;
  } catch {
    t = undefined;
  }
  if (!t) return fail(`attach_btf_id ${btfId} is invalid\n`);
  const tname = t.name;
  if (!tname) fail(`attach_btf_id ${btfId} doesn't have a name\n`);
  const subprog = func_info_type_ids(tgt).indexOf(btfId);
  if (subprog < 0) fail(`Subprog ${tname} doesn't exist\n`);
  if (!tgt.jited) fail("Can attach to only JITed progs\n");
  if (tracingAux.get(tgt)?.attachTracingProg) fail("Cannot nest tracing program attach more than once\n");
  const eat = prog.expected_attach_type;
  if (eat !== A.BPF_TRACE_FENTRY && eat !== A.BPF_TRACE_FEXIT) {
    if (eat === A.BPF_MODIFY_RETURN) fail("can't modify return codes of BPF programs\n");
    throw new BpfError(EINVAL, `expected_attach_type ${eat} cannot attach to a BPF program`);
  }
  if (t.kind !== BTF_KIND_FUNC) fail(`attach_btf_id ${btfId} is not a function\n`);
  const proto = btf!.typeById((t as { type: number }).type);
  if (proto.kind !== BTF_KIND_FUNC_PROTO) throw new BpfError(EINVAL, `${tname} has no FUNC_PROTO`);
  const p = proto as BtfFuncProto;
  // btf_distill_func_proto: at most MAX_BPF_FUNC_ARGS arguments.
  if (p.params.length > MAX_BPF_FUNC_ARGS) {
    fail(`The function ${tname} has ${p.params.length} arguments. Too many.\n`);
  }
  if (prog.aux.sleepable) fail(`${tname} is not sleepable\n`);
  return { btf: btf!, proto: p, name: tname, subprog };
}

/**
 * check_attach_btf_id() for a tracing program with attach_prog_fd: the target is checked and kept
 * (with the reference the load took) until the program is attached.
 */
export function tracing_check_attach(prog: BpfProg, log: string[]): AttachTarget | null {
  if (prog.type === bpf_prog_type.BPF_PROG_TYPE_TRACING && prog.expected_attach_type === A.BPF_TRACE_RAW_TP) {
    if (tracingAux.get(prog)?.dstProg) {
      log.push("Only FENTRY/FEXIT progs are attachable to another BPF prog\n");
      throw new BpfError(EINVAL, "Only FENTRY/FEXIT progs are attachable to another BPF prog");
    }
    const target = raw_tp_check_attach(prog.kernel, prog, log);
    tracingAux.set(prog, { dstProg: null, target, attachTracingProg: false, used: false });
    return target;
  }
  const aux = tracingAux.get(prog);
  if (prog.type === bpf_prog_type.BPF_PROG_TYPE_TRACING && aux?.dstProg) {
    aux.target = bpf_check_attach_target(log, prog, aux.dstProg, prog.aux.attach_btf_id);
    return aux.target;
  }
  const eat = prog.expected_attach_type;
  const kernelFunc =
    prog.type === bpf_prog_type.BPF_PROG_TYPE_LSM ||
    (prog.type === bpf_prog_type.BPF_PROG_TYPE_TRACING &&
      (eat === A.BPF_TRACE_FENTRY || eat === A.BPF_TRACE_FEXIT || eat === A.BPF_MODIFY_RETURN));
  if (!kernelFunc) return null;
  const target = kernel_check_attach_target(prog, log);
  tracingAux.set(prog, { dstProg: null, target, attachTracingProg: false, used: false });
  return target;
}

/**
 * bpf_check_attach_target() for a function of the kernel's BTF (fentry/fexit/fmod_ret, LSM), then
 * check_attach_btf_id's bpf_lsm_verify_prog: a FUNC with a FUNC_PROTO of at most 12 arguments,
 * with a kallsyms address; sleepable only where the function allows it, fmod_ret only on a
 * function whose return value may be changed.
 */
function kernel_check_attach_target(prog: BpfProg, log: string[]): AttachTarget {
  const fail = (msg: string, errno = EINVAL): never => {
    log.push(msg);
    throw new BpfError(errno, msg.trimEnd());
  };
  const btfId = prog.aux.attach_btf_id;
  const btf = prog.aux.attach_btf?.btf as Btf | undefined;
  if (!btf) return fail("FENTRY/FEXIT program can only be attached to another program annotated with BTF\n");
  let t: ReturnType<Btf["typeById"]> | undefined;
  try {
    t = btfId <= btf.nrTypes ? btf.typeById(btfId) : undefined;
  } catch {
    t = undefined;
  }
  if (!t) return fail(`attach_btf_id ${btfId} is invalid\n`);
  const tname = t.name;
  if (!tname) return fail(`attach_btf_id ${btfId} doesn't have a name\n`);
  if (t.kind !== BTF_KIND_FUNC) return fail(`attach_btf_id ${btfId} is not a function\n`);
  const proto = btf.typeById((t as { type: number }).type);
  if (proto.kind !== BTF_KIND_FUNC_PROTO) throw new BpfError(EINVAL, `${tname} has no FUNC_PROTO`);
  const p = proto as BtfFuncProto;
  if (p.params.length > MAX_BPF_FUNC_ARGS) fail(`The function ${tname} has ${p.params.length} arguments. Too many.\n`);
  if (!prog.kernel.ksyms.has(tname)) fail(`The address of function ${tname} cannot be found\n`, ENOENT);
  const lsm = prog.type === bpf_prog_type.BPF_PROG_TYPE_LSM;
  if (prog.aux.sleepable) {
    const ok = lsm ? bpf_lsm_is_sleepable_hook(tname) : trace_target_sleepable(tname);
    if (!ok) fail(`${tname} is not sleepable\n`);
  } else if (prog.expected_attach_type === A.BPF_MODIFY_RETURN && !trace_target_modifiable(tname)) {
    fail(`${tname}() is not modifiable\n`);
  }
  if (lsm) bpf_lsm_verify_prog(log, prog, tname);
  return {
    btf,
    proto: p,
    name: tname,
    subprog: 0,
    retvalRange: lsm ? bpf_lsm_get_retval_range(tname) : undefined,
    trusted: lsm && bpf_lsm_is_trusted(tname),
    dPathAllowed: lsm ? bpf_lsm_is_sleepable_hook(tname) : trace_target_d_path_allowed(tname),
  };
}

/** prog->aux->dst_prog: PROG_LOAD hands over its reference on the attach_prog_fd program. */
export function tracing_prog_set_dst(prog: BpfProg, dst: BpfProg): void {
  tracingAux.set(prog, {
    dstProg: dst,
    target: null,
    attachTracingProg:
      prog.type === bpf_prog_type.BPF_PROG_TYPE_TRACING && dst.type === bpf_prog_type.BPF_PROG_TYPE_TRACING,
    used: false,
  });
}

/** prog->aux->attach_func_proto and name, for the verifier's context checks. */
export function tracing_attach_target(prog: BpfProg): AttachTarget | null {
  return tracingAux.get(prog)?.target ?? null;
}

/** bpf_prog_free's part: a program never attached drops its target. */
export function tracing_prog_free(prog: BpfProg): void {
  const t = tracingAux.get(prog);
  if (t?.dstProg) {
    bpf_prog_put(t.dstProg);
    t.dstProg = null;
  }
}

/** The target's trampoline (struct bpf_trampoline), one per (target program, btf_id). */
export class BpfTrampoline {
  /** hlist heads: a new link goes first. */
  readonly fentry: BpfLink[] = [];
  readonly fexit: BpfLink[] = [];
  private orig: BpfFunc | null = null;
  private readonly nrArgs: number;

  constructor(
    readonly tgt: BpfProg,
    readonly btfId: number,
    readonly target: AttachTarget,
  ) {
    this.nrArgs = target.proto.params.length;
  }

  get count(): number {
    return this.fentry.length + this.fexit.length;
  }

  /** bpf_trampoline_update(): patch the target's entry while programs are attached, unpatch after. */
  update(): void {
    const tgt = this.tgt;
    if (this.count > 0 && !this.orig) {
      this.orig = tgt.bpf_func;
      tgt.bpf_func = (ctx) => this.run(ctx);
      tgt.poked = true;
    } else if (this.count === 0 && this.orig) {
      tgt.bpf_func = this.orig;
      this.orig = null;
      tgt.poked = false;
    }
  }

  /** The trampoline image: save the arguments, fentry, the target, its return value, fexit. */
  private run(ctx: number | bigint | readonly (number | bigint)[]): bigint {
    const k = this.tgt.kernel;
    const orig = this.orig!;
    const regs = Array.isArray(ctx) ? (ctx as readonly (number | bigint)[]) : [ctx as number | bigint];
    const n = this.nrArgs;
    const region = k.mem.alloc((n + 1) * 8, { perm: "r", kind: "ctx", name: `trampoline ${this.target.name}` });
    try {
      const b = k.mem.bytes(region.addr, (n + 1) * 8);
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      for (let i = 0; i < n; i++) dv.setBigUint64(i * 8, BigInt.asUintN(64, BigInt(regs[i] ?? 0)), true);
      for (const l of [...this.fentry]) runTracing(l.prog!, region.addr);
      const r = orig(ctx);
      k.mem.bytes(region.addr + n * 8, 8).set(u64le(r));
      for (const l of [...this.fexit]) runTracing(l.prog!, region.addr);
      return r;
    } finally {
      k.mem.free(region);
    }
  }
}

function u64le(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
  return b;
}

/** __bpf_prog_enter: a program already running on this CPU is not re-entered (a recursion miss). */
function runTracing(prog: BpfProg, ctx: number): void {
  if (prog.active > 0) {
    prog.recursion_misses++;
    return;
  }
  bpf_prog_run(prog, ctx);
}

const trampolines = new WeakMap<BpfProg, Map<number, BpfTrampoline>>();

function bpf_trampoline_get(tgt: BpfProg, btfId: number, target: AttachTarget): BpfTrampoline {
  let m = trampolines.get(tgt);
  if (!m) trampolines.set(tgt, (m = new Map()));
  let tr = m.get(btfId);
  if (!tr) m.set(btfId, (tr = new BpfTrampoline(tgt, btfId, target)));
  return tr;
}

/** __bpf_trampoline_link_prog: E2BIG past BPF_MAX_TRAMP_LINKS, EBUSY for a program already there. */
function bpf_trampoline_link_prog(link: BpfLink, tr: BpfTrampoline): void {
  const prog = link.prog!;
  const list = prog.expected_attach_type === A.BPF_TRACE_FEXIT ? tr.fexit : tr.fentry;
  if (tr.count >= BPF_MAX_TRAMP_LINKS) throw new BpfError(E2BIG, `trampoline of ${tr.target.name} is full`);
  if (list.some((l) => l.prog === prog)) throw new BpfError(EBUSY, `program ${prog.name} is already attached there`);
  list.unshift(link);
  tr.update();
}

function bpf_trampoline_unlink_prog(link: BpfLink, tr: BpfTrampoline): void {
  for (const list of [tr.fentry, tr.fexit]) {
    const i = list.indexOf(link);
    if (i >= 0) list.splice(i, 1);
  }
  tr.update();
}

interface TracingLink extends BpfLink {
  trampoline?: BpfTrampoline;
  tgtProg?: BpfProg;
  cookie?: bigint;
}

const bpf_tracing_link_lops: BpfLinkOps = {
  release(link) {
    const l = link as TracingLink;
    if (l.trampoline) bpf_trampoline_unlink_prog(l, l.trampoline);
  },
  dealloc(link) {
    const l = link as TracingLink;
    if (l.tgtProg) bpf_prog_put(l.tgtProg);
    l.tgtProg = undefined;
  },
  fill_link_info(link, info: BpfLinkInfo) {
    const l = link as TracingLink;
    info.tracing = {
      attach_type: link.prog?.expected_attach_type ?? 0,
      target_obj_id: l.tgtProg?.id ?? 0,
      target_btf_id: l.trampoline?.btfId ?? 0,
      cookie: l.cookie ?? 0n,
    };
  },
  show_fdinfo(link) {
    const l = link as TracingLink;
    return (
      `attach_type:\t${link.prog?.expected_attach_type ?? 0}\n` +
      `target_obj_id:\t${l.tgtProg?.id ?? 0}\n` +
      `target_btf_id:\t${l.trampoline?.btfId ?? 0}\n` +
      `cookie:\t${l.cookie ?? 0n}\n`
    );
  },
};

/**
 * bpf_tracing_prog_attach(): only fentry/fexit here; a new target (tgt_prog_fd) is for
 * BPF_PROG_TYPE_EXT; the load-time target is used once.
 */
export function bpf_tracing_prog_attach(
  proc: Process,
  prog: BpfProg,
  tgtProgFd: number,
  btfId: number,
  cookie: bigint,
): number {
  const eat = prog.expected_attach_type;
  if (prog.type !== bpf_prog_type.BPF_PROG_TYPE_TRACING || (eat !== A.BPF_TRACE_FENTRY && eat !== A.BPF_TRACE_FEXIT)) {
    throw new BpfError(EINVAL, `program ${prog.name} is not an fentry/fexit program`);
  }
  if (!!tgtProgFd !== !!btfId) throw new BpfError(EINVAL, "target_fd and target_btf_id go together");
  if (tgtProgFd) throw new BpfError(EINVAL, "only BPF_PROG_TYPE_EXT programs attach to a new target");
  const aux = tracingAux.get(prog);
  if (aux?.target && !aux.used && !aux.dstProg) {
    throw new BpfError(EOPNOTSUPP, `fentry/fexit on kernel function ${aux.target.name} is not modelled`);
  }
  // Attached before (and no vmlinux target to fall back to): nothing to attach to.
  if (!aux?.target || aux.used || !aux.dstProg) {
    throw new BpfError(EINVAL, `program ${prog.name} has no attach target left (it was attached before)`);
  }
  if (aux.target.subprog !== 0) {
    throw new BpfError(EOPNOTSUPP, `fentry/fexit on subprogram ${aux.target.name} is not modelled`);
  }
  const k = prog.kernel;
  const link = bpf_link_init(k, bpf_link_type.BPF_LINK_TYPE_TRACING, bpf_tracing_link_lops, prog, eat) as TracingLink;
  link.cookie = cookie;
  const tr = bpf_trampoline_get(aux.dstProg, prog.aux.attach_btf_id, aux.target);
  const primer = bpf_link_prime(link, proc);
  // The link holds the program reference the caller passes in.
  bpf_prog_inc(prog);
  try {
    bpf_trampoline_link_prog(link, tr);
  } catch (e) {
    bpf_prog_put(prog);
    bpf_link_cleanup(primer);
    throw e;
  }
  link.trampoline = tr;
  // The load-time reference on the target moves to the link.
  link.tgtProg = aux.dstProg;
  aux.dstProg = null;
  aux.used = true;
  return bpf_link_settle(primer);
}

/** LINK_CREATE for BPF_TRACE_FENTRY / BPF_TRACE_FEXIT. */
function tracingLinkCreate(attr: LinkCreateAttr, proc: Process, prog: BpfProg | null): number {
  if (!prog || prog.type !== bpf_prog_type.BPF_PROG_TYPE_TRACING) {
    throw new BpfError(EINVAL, "attach type does not match the program type");
  }
  const extra = attr as LinkCreateAttr & { cookie?: number | bigint };
  return bpf_tracing_prog_attach(proc, prog, num(attr.target_fd), num(attr.target_btf_id), BigInt(extra.cookie ?? 0));
}

export function registerTracing(k: Kernel): void {
  // tracing_prog_func_proto; check_return_code's ranges go by attach type (progRetvalRange).
  k.registerProgType(bpf_prog_type.BPF_PROG_TYPE_TRACING, {
    verifier_ops: {
      name: "tracing",
      getFuncProto: tracingProgFuncProto,
      isValidAccess: () => undefined,
    },
  });
  k.registerLinkCreate(A.BPF_TRACE_FENTRY, tracingLinkCreate);
  k.registerLinkCreate(A.BPF_TRACE_FEXIT, tracingLinkCreate);
}
