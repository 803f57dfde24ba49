/**
 * BTF-enabled raw tracepoints (kernel/trace/bpf_trace.c, the tp_btf side of verifier.c
 * bpf_check_attach_target): the raw_syscalls tracepoint `sys_enter(regs, id)`, fired at every
 * bpf() call a process makes. vmlinux's BTF has, per
 * tracepoint, `typedef void (*btf_trace_<name>)(void *__data, ...)` and the template function
 * `__bpf_trace_<template>` with the argument names; `struct pt_regs` is x86-64's.
 *
 * A BPF_PROG_TYPE_TRACING program with expected_attach_type BPF_TRACE_RAW_TP names the typedef in
 * attach_btf_id; its context is the tracepoint's arguments without `__data`, pointers to structs
 * trusted (prog_args_trusted). It attaches through LINK_CREATE (BPF_TRACE_RAW_TP) or
 * BPF_RAW_TRACEPOINT_OPEN without a name, to a BPF_LINK_TYPE_RAW_TRACEPOINT link.
 */
import type { Btf } from "../btf/btf.js";
import type { BtfBuilder } from "../btf/builder.js";
import type { BtfFuncProto } from "../btf/types.js";
import { bpf_attach_type, bpf_link_type, bpf_prog_type } from "../uapi/bpf.js";
import {
  BTF_FUNC_STATIC,
  BTF_KIND_FUNC,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_INT,
  BTF_KIND_PTR,
  BTF_KIND_TYPEDEF,
} from "../uapi/btf.js";
import { BpfError, EEXIST, EINVAL, ENOENT } from "../uapi/errno.js";
import {
  BPF_FUNC_copy_from_user,
  BPF_FUNC_copy_from_user_task,
  BPF_FUNC_d_path,
  BPF_FUNC_get_stack,
  bpfRawTpFuncProto,
} from "../verifier/helper_protos.js";
import type { BpfLink, BpfLinkInfo, BpfLinkOps, BpfProg } from "./bpf.js";
import type { LinkCreateAttr } from "./bpf_attr.js";
import { bpf_prog_run } from "./core.js";
import type { KernelBaseTypes } from "./init.js";
import type { HelperArgs, Kernel } from "./kernel.js";
import type { Process } from "./process.js";
import { builderFind } from "./struct_ops_desc.js";
import { bpf_link_cleanup, bpf_link_init, bpf_link_prime, bpf_link_settle } from "./syscall_link.js";
import { bpf_prog_inc, bpf_prog_put } from "./syscall_prog.js";
import type { AttachTarget } from "./trampoline.js";

const BTF_TRACE_PREFIX = "btf_trace_";
/** struct pt_regs on x86-64, in order. */
const PT_REGS = [
  "r15",
  "r14",
  "r13",
  "r12",
  "bp",
  "bx",
  "r11",
  "r10",
  "r9",
  "r8",
  "ax",
  "cx",
  "dx",
  "si",
  "di",
  "orig_ax",
  "ip",
  "cs",
  "flags",
  "sp",
  "ss",
] as const;
const PT_REGS_SIZE = PT_REGS.length * 8;
const regOff = (name: (typeof PT_REGS)[number]): number => PT_REGS.indexOf(name) * 8;

/** __NR_bpf on x86-64. */
export const __NR_bpf = 321;

/** The tracepoints modelled: name -> (template, argument names after `__data`). */
const TRACEPOINTS = [{ name: "sys_enter", template: "sys_enter", args: ["regs", "id"] }] as const;

/** The tracepoints' types in vmlinux BTF: struct pt_regs, the template functions, the typedefs. */
export function declareTracepointTypes(b: BtfBuilder, base: KernelBaseTypes): void {
  const long = builderFind(b, "long int", BTF_KIND_INT);
  const ptRegs = b.addStructAuto(
    "pt_regs",
    PT_REGS.map((name) => ({ name, type: base.ulong })),
  );
  const pRegs = b.addPtr(ptRegs);
  const pVoid = b.addPtr(0);
  for (const tp of TRACEPOINTS) {
    const params = [
      { name: "__data", type: pVoid },
      { name: tp.args[0], type: pRegs },
      { name: tp.args[1], type: long },
    ];
    b.addFunc(`__bpf_trace_${tp.template}`, b.addFuncProto(0, params), BTF_FUNC_STATIC);
    // The typedef's prototype is generated without argument names.
    const anon = b.addFuncProto(
      0,
      params.map((p) => ({ name: "", type: p.type })),
    );
    b.addTypedef(`${BTF_TRACE_PREFIX}${tp.name}`, b.addPtr(anon));
  }
}

/** struct bpf_raw_event_map and its attached links (bpf_probe_register). */
interface RawTracepoint {
  readonly name: string;
  readonly template: string;
  readonly links: RawTpLink[];
}

interface RawTpLink extends BpfLink {
  btp?: RawTracepoint;
  cookie?: bigint;
}

const tracepoints = new WeakMap<Kernel, Map<string, RawTracepoint>>();
/** A fired tracepoint's pt_regs (the registers on the task's kernel stack). */
const regsRegions = new WeakMap<Kernel, number>();

/** bpf_get_raw_tracepoint(). */
function bpf_get_raw_tracepoint(k: Kernel, name: string): RawTracepoint | undefined {
  return tracepoints.get(k)?.get(name);
}

/**
 * bpf_check_attach_target() for BPF_TRACE_RAW_TP: attach_btf_id names `btf_trace_<tp>` in the
 * kernel's BTF; the prototype is the template function's (argument names), without `__data`.
 */
export function raw_tp_check_attach(k: Kernel, prog: BpfProg, log: string[]): AttachTarget {
  const fail = (msg: string): never => {
    if (msg) log.push(msg);
    throw new BpfError(EINVAL, msg.trimEnd() || `attach_btf_id ${prog.aux.attach_btf_id} is not a tracepoint`);
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
  if (!t.name) return fail(`attach_btf_id ${btfId} doesn't have a name\n`);
  if (t.kind !== BTF_KIND_TYPEDEF) return fail(`attach_btf_id ${btfId} is not a typedef\n`);
  if (!t.name.startsWith(BTF_TRACE_PREFIX)) return fail(`attach_btf_id ${btfId} points to wrong type name ${t.name}\n`);
  const tname = t.name.slice(BTF_TRACE_PREFIX.length);
  const btp = bpf_get_raw_tracepoint(k, tname);
  if (!btp) return fail("");
  let protoId: number;
  const fid = btf.findByNameKind(`__bpf_trace_${btp.template}`, BTF_KIND_FUNC);
  if (fid > 0) {
    protoId = (btf.typeById(fid) as { type: number }).type;
  } else {
    log.push(`Cannot find btf of tracepoint template, fall back to ${BTF_TRACE_PREFIX}${tname}.\n`);
    const ptr = btf.typeById((t as { type: number }).type);
    if (ptr.kind !== BTF_KIND_PTR) return fail("");
    protoId = (ptr as { type: number }).type;
  }
  const proto = btf.typeById(protoId);
  if (proto.kind !== BTF_KIND_FUNC_PROTO) return fail("");
  const fp = proto as BtfFuncProto;
  // btf_ctx_access skips the first 'void *__data' argument of a raw tracepoint.
  return { btf, proto: { ...fp, params: fp.params.slice(1) } as BtfFuncProto, name: tname, subprog: 0 };
}

const raw_tp_lops: BpfLinkOps = {
  release(link) {
    const l = link as RawTpLink;
    if (!l.btp) return;
    const i = l.btp.links.indexOf(l);
    if (i >= 0) l.btp.links.splice(i, 1);
  },
  dealloc() {},
  fill_link_info(link, info: BpfLinkInfo) {
    const l = link as RawTpLink;
    info.raw_tracepoint = { tp_name: l.btp?.name ?? "", tp_name_len: (l.btp?.name.length ?? 0) + 1, cookie: l.cookie };
  },
  show_fdinfo(link) {
    const l = link as RawTpLink;
    return `tp_name:\t${l.btp?.name ?? ""}\ncookie:\t${l.cookie ?? 0n}\n`;
  },
};

/**
 * bpf_raw_tp_link_attach(): a tp_btf program takes its tracepoint from attach_btf_id (a name is
 * EINVAL); ENOENT for a tracepoint the kernel does not have; EEXIST for a program already there.
 */
export function bpf_raw_tp_link_attach(proc: Process, prog: BpfProg, userName: string | null, cookie: bigint): number {
  const k = prog.kernel;
  const tracing = prog.type === bpf_prog_type.BPF_PROG_TYPE_TRACING || prog.type === bpf_prog_type.BPF_PROG_TYPE_LSM;
  if (!tracing || prog.expected_attach_type !== bpf_attach_type.BPF_TRACE_RAW_TP) {
    throw new BpfError(EINVAL, `program ${prog.name} is not a tp_btf program`);
  }
  if (userName) throw new BpfError(EINVAL, "a tp_btf program's tracepoint comes from its attach_btf_id");
  const tname = raw_tp_attach_name(prog);
  const btp = tname === null ? undefined : bpf_get_raw_tracepoint(k, tname);
  if (!btp) throw new BpfError(ENOENT, `no raw tracepoint ${tname ?? ""}`);
  if (btp.links.some((l) => l.prog === prog)) throw new BpfError(EEXIST, `${prog.name} is already on ${btp.name}`);
  const link = bpf_link_init(k, bpf_link_type.BPF_LINK_TYPE_RAW_TRACEPOINT, raw_tp_lops, prog) as RawTpLink;
  link.cookie = cookie;
  const primer = bpf_link_prime(link, proc);
  bpf_prog_inc(prog);
  try {
    link.btp = btp;
    btp.links.push(link);
  } catch (e) {
    bpf_prog_put(prog);
    bpf_link_cleanup(primer);
    throw e;
  }
  return bpf_link_settle(primer);
}

/** prog->aux->attach_func_name for a tp_btf program: the typedef's name without its prefix. */
function raw_tp_attach_name(prog: BpfProg): string | null {
  const btf = prog.aux.attach_btf?.btf;
  const t = btf?.typeById(prog.aux.attach_btf_id);
  return t?.kind === BTF_KIND_TYPEDEF && t.name.startsWith(BTF_TRACE_PREFIX)
    ? t.name.slice(BTF_TRACE_PREFIX.length)
    : null;
}

function rawTpLinkCreate(attr: LinkCreateAttr, proc: Process, prog: BpfProg | null): number {
  if (!prog) throw new BpfError(EINVAL, "attach type does not match the program type");
  const extra = attr as LinkCreateAttr & { cookie?: number | bigint };
  return bpf_raw_tp_link_attach(proc, prog, null, BigInt(extra.cookie ?? 0));
}

/** The raw tracepoints of the core kernel, and LINK_CREATE for BPF_TRACE_RAW_TP. */
export function registerRawTracepoints(k: Kernel): void {
  const m = new Map<string, RawTracepoint>();
  for (const tp of TRACEPOINTS) m.set(tp.name, { name: tp.name, template: tp.template, links: [] });
  tracepoints.set(k, m);
  k.registerLinkCreate(bpf_attach_type.BPF_TRACE_RAW_TP, rawTpLinkCreate);
}

/** __bpf_trace_run(): each attached program on `args`, a program already running skipped. */
function trace_run(k: Kernel, btp: RawTracepoint | undefined, args: readonly bigint[]): void {
  if (!btp?.links.length) return;
  const region = k.mem.alloc(args.length * 8, { perm: "rw", kind: "raw_tp_args", align: 8 });
  try {
    const dv = new DataView(new ArrayBuffer(args.length * 8));
    args.forEach((a, i) => {
      dv.setBigUint64(i * 8, BigInt.asUintN(64, a), true);
    });
    k.mem.bytes(region.addr, args.length * 8).set(new Uint8Array(dv.buffer));
    for (const l of [...btp.links]) {
      const prog = l.prog!;
      if (prog.active > 0) {
        prog.recursion_misses++;
        continue;
      }
      bpf_prog_run(prog, region.addr);
    }
  } finally {
    k.mem.free(region);
  }
}

/** The pt_regs a syscall entry saved: the number in orig_ax and ax, the arguments in di, si, dx. */
function syscallRegs(k: Kernel, nr: number, args: readonly number[]): number {
  let addr = regsRegions.get(k);
  if (addr === undefined) {
    addr = k.mem.alloc(PT_REGS_SIZE, { perm: "rw", kind: "pt_regs", align: 8 }).addr;
    regsRegions.set(k, addr);
  }
  const dv = new DataView(new ArrayBuffer(PT_REGS_SIZE));
  dv.setBigUint64(regOff("orig_ax"), BigInt(nr), true);
  dv.setBigUint64(regOff("ax"), BigInt(nr), true);
  for (const [i, r] of (["di", "si", "dx"] as const).entries()) dv.setBigUint64(regOff(r), BigInt(args[i] ?? 0), true);
  k.mem.bytes(addr, PT_REGS_SIZE).set(new Uint8Array(dv.buffer));
  return addr;
}

/** trace_sys_enter() at a syscall's entry. */
export function trace_sys_enter(k: Kernel, nr: number, args: readonly number[] = []): void {
  const btp = bpf_get_raw_tracepoint(k, "sys_enter");
  if (!btp?.links.length) return;
  trace_run(k, btp, [BigInt(syscallRegs(k, nr, args)), BigInt(nr)]);
}

/** sizeof(struct bpf_perf_event_data): regs (x86-64's pt_regs), sample_period, addr. */
const PERF_EVENT_DATA_SIZE = PT_REGS_SIZE + 16;
/** PERF_MAX_TRACE_SIZE: a tracepoint's record. */
const PERF_MAX_TRACE_SIZE = 8192;
const EFAULT_RET = -14;

/**
 * The tracing program types' verifier ops (kernel/trace/bpf_trace.c): kprobe_prog_is_valid_access
 * (reads of pt_regs), tp_prog_is_valid_access (the record after its 8-byte common header),
 * pe_prog_is_valid_access (pt_regs as longs, sample_period and addr also narrower); their
 * helpers are raw_tp_prog_func_proto's (bpf_get_stack, then bpf_tracing_func_proto). And the
 * helpers only they call: with no unwinder, no user memory and no dentries in the simulated
 * kernel, bpf_get_stack, bpf_copy_from_user(_task) and bpf_d_path fault (zeroed buffer, -EFAULT),
 * as the kernel's do when the stack, page or path cannot be read.
 */
export function registerTraceProgTypes(k: Kernel): void {
  const P = bpf_prog_type;
  const aligned = (off: number, size: number, write: boolean) => !write && off % size === 0;
  k.registerProgType(P.BPF_PROG_TYPE_KPROBE, {
    verifier_ops: {
      name: "kprobe",
      getFuncProto: bpfRawTpFuncProto,
      isValidAccess: (off, size, write) =>
        off >= 0 && off + size <= PT_REGS_SIZE && aligned(off, size, write) ? {} : undefined,
    },
  });
  k.registerProgType(P.BPF_PROG_TYPE_TRACEPOINT, {
    verifier_ops: {
      name: "tracepoint",
      getFuncProto: bpfRawTpFuncProto,
      isValidAccess: (off, size, write) =>
        off >= 8 && off < PERF_MAX_TRACE_SIZE && aligned(off, size, write) ? {} : undefined,
    },
  });
  k.registerProgType(P.BPF_PROG_TYPE_PERF_EVENT, {
    verifier_ops: {
      name: "perf_event",
      getFuncProto: bpfRawTpFuncProto,
      isValidAccess: (off, size, write) => {
        if (off < 0 || off >= PERF_EVENT_DATA_SIZE || !aligned(off, size, write)) return undefined;
        // sample_period and addr may be read narrower (bpf_ctx_narrow_access_ok); regs as longs.
        return off >= PT_REGS_SIZE || size === 8 ? {} : undefined;
      },
    },
  });
  const fault = (c: HelperArgs, buf: number, size: number): number => {
    if (size > 0) k.mem.bytes(c.argNum(buf), size).fill(0);
    return EFAULT_RET;
  };
  k.registerHelper(BPF_FUNC_get_stack, (c) => fault(c, 2, c.argNum(3)));
  k.registerHelper(BPF_FUNC_copy_from_user, (c) => fault(c, 1, c.argNum(2)));
  k.registerHelper(BPF_FUNC_copy_from_user_task, (c) => fault(c, 1, c.argNum(2)));
  k.registerHelper(BPF_FUNC_d_path, (c) => fault(c, 2, c.argNum(3)));
}
