/**
 * struct_ops trampolines (bpf_struct_ops_prepare_trampoline + arch_prepare_bpf_trampoline, as a
 * native function). A trampoline takes the subsystem's arguments, lays them out as the program's
 * `u64 ctx[]` per the member's func model in VM memory, runs the program inside an RCU read-side
 * section (see TrampolineVm.run) and returns r0 truncated to the return size.
 *
 * Hot path: subsystems call these on every ACK, so the context buffer is allocated once per
 * trampoline (one per nesting depth: an op may re-enter itself, e.g. init -> setsockopt -> init)
 * and arguments are written as two 32-bit halves, without BigInt for number arguments.
 */

import { BpfError, E2BIG } from "../uapi/errno.js";
import type { EnterArgs } from "../vm/program.js";
import { monomorphic } from "../vm/runtime.js";
import type { Rcu } from "./rcu.js";
import type { BtfFuncModel } from "./struct_ops_btf.js";

export const BTF_FMODEL_STRUCT_ARG = 1 << 0;
export const BTF_FMODEL_SIGNED_ARG = 1 << 1;
export const PAGE_SIZE = 4096;
export const MAX_TRAMP_IMAGE_PAGES = 8;
/** Base of the (fake) executable area trampoline images live in, like the kernel's module area. */
const IMAGE_BASE = 0xffffffffa0000000n;

/** A trampoline argument: a number (exact up to 2^53), a bigint, or the bytes of a by-value struct. */
export type TrampArg = number | bigint | Uint8Array;

/** A context area in VM memory (read-only to the program: it is the trampoline's stack frame). */
export interface TrampolineCtx {
  readonly addr: number;
  /** Write one u64 slot as two 32-bit halves. */
  write(off: number, lo: number, hi: number): void;
  writeBytes(off: number, bytes: Uint8Array): void;
  free(): void;
}

/** The VM services a trampoline needs; the kernel wires them to its VM memory and program runner. */
export interface TrampolineVm {
  allocCtx(size: number, name: string): TrampolineCtx;
  /** Store one u64 context slot at `addr` as two 32-bit halves (the hot path's write). */
  write64(addr: number, lo: number, hi: number): void;
  /**
   * Run the program with r1 = ctx inside the read-side sections that keep the map (and so the
   * image) alive: RCU for non-sleepable programs, RCU-tasks-trace plus RCU-tasks (the image) for
   * sleepable ones. r0's two 32-bit halves go to out[0] (low) and out[1] (high).
   */
  run(prog: unknown, ctx: number, out: Int32Array): void;
  /**
   * run() made once per program, taking the first n (<= 3) u64 context slots as int32 halves
   * to store at ctx before the program runs: returns r0's low half.
   */
  enter(prog: unknown): EnterArgs;
  /** r0's high half of the last run. */
  r0Hi(): number;
  readonly rcu: Rcu;
}

/** An image page set, shared by the trampolines of one map (MAX_TRAMP_IMAGE_PAGES at most). */
export class TrampolineImage {
  pages: bigint[] = [];
  off = PAGE_SIZE;
  private static nextPage = 0n;

  constructor(readonly allowPages = MAX_TRAMP_IMAGE_PAGES) {}

  /** Reserve `size` bytes in the current page or a new one; E2BIG past the page budget. */
  reserve(size: number): bigint {
    if (this.off + size > PAGE_SIZE) {
      if (this.pages.length >= this.allowPages) {
        throw new BpfError(E2BIG, `struct_ops trampolines need more than ${this.allowPages} image pages`);
      }
      this.pages.push(IMAGE_BASE + TrampolineImage.nextPage++ * BigInt(PAGE_SIZE));
      this.off = 0;
    }
    const addr = this.pages[this.pages.length - 1] + BigInt(this.off);
    this.off += size;
    return addr;
  }

  free(): void {
    this.pages = [];
    this.off = PAGE_SIZE;
  }
}

/** arch_bpf_trampoline_size(), modelled on x86-64: a prologue, a save/restore per argument slot. */
export function trampolineSize(model: BtfFuncModel): number {
  let slots = 0;
  for (let i = 0; i < model.nr_args; i++) slots += model.arg_size[i] > 8 ? 2 : 1;
  return 96 + 16 * slots + (model.ret_size > 0 ? 8 : 0);
}

const TWO32 = 4294967296;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The trampoline's fields callNum uses. */
interface CallNumState {
  calls: number;
  depth: number;
  readonly ctxAddr: number[];
  ctxAt(d: number): number;
  entry: EnterArgs | undefined;
  readonly vm: TrampolineVm;
  readonly prog: unknown;
}

/**
 * BpfStructOpsTrampoline.callNum, self-contained for monomorphic(). The member's func model
 * comes as constants (one closure per copy: V8 folds them): n arguments, each of kind 0 (a u64
 * slot), 1 (zero-extended from 32 - sh bits) or 2 (sign-extended), and the return's kind
 * (0: void, 1/2 as the arguments, 3: u64 as a number) and shift.
 */
const makeCallNum =
  (
    t: CallNumState,
    n: number,
    k0: number,
    s0: number,
    k1: number,
    s1: number,
    k2: number,
    s2: number,
    rk: number,
    rs: number,
  ) =>
  (a0: number, a1: number, a2: number): number => {
    t.calls++;
    const d = t.depth;
    const ctx = d < t.ctxAddr.length ? t.ctxAddr[d] : t.ctxAt(d);
    let a0l = 0;
    let a0h = 0;
    let a1l = 0;
    let a1h = 0;
    let a2l = 0;
    let a2h = 0;
    // A u64 slot's high half: 0 without a division for the usual pointer or count below 2^32
    // (a float division was most of what converting an argument cost).
    if (n > 0) {
      a0l = k0 === 0 ? a0 >>> 0 : k0 === 1 ? (a0 << s0) >>> s0 : (a0 << s0) >> s0;
      a0h = k0 !== 0 ? (k0 === 1 ? 0 : a0l >> 31) : a0 >= 0 && a0 <= 4294967295 ? 0 : Math.floor(a0 / 4294967296) | 0;
    }
    if (n > 1) {
      a1l = k1 === 0 ? a1 >>> 0 : k1 === 1 ? (a1 << s1) >>> s1 : (a1 << s1) >> s1;
      a1h = k1 !== 0 ? (k1 === 1 ? 0 : a1l >> 31) : a1 >= 0 && a1 <= 4294967295 ? 0 : Math.floor(a1 / 4294967296) | 0;
    }
    if (n > 2) {
      a2l = k2 === 0 ? a2 >>> 0 : k2 === 1 ? (a2 << s2) >>> s2 : (a2 << s2) >> s2;
      a2h = k2 !== 0 ? (k2 === 1 ? 0 : a2l >> 31) : a2 >= 0 && a2 <= 4294967295 ? 0 : Math.floor(a2 / 4294967296) | 0;
    }
    let e = t.entry;
    if (e === undefined) {
      e = t.vm.enter(t.prog);
      t.entry = e;
    }
    t.depth = d + 1;
    let lo: number;
    try {
      lo = e(ctx, n, a0l, a0h, a1l, a1h, a2l, a2h);
    } finally {
      t.depth = d;
    }
    if (rk === 0) return 0;
    if (rk === 3) return t.vm.r0Hi() * 4294967296 + (lo >>> 0);
    return rk === 1 ? (lo << rs) >>> rs : (lo << rs) >> rs;
  };

export class BpfStructOpsTrampoline {
  /** Context slots (u64) the program sees. */
  readonly nrSlots: number;
  private readonly slotOf: number[];
  private readonly ctxs: TrampolineCtx[] = [];
  private depth = 0;
  private readonly r0 = new Int32Array(2);
  private readonly argv: TrampArg[] = [0, 0, 0];
  private readonly retShift: number;
  private readonly retSigned: boolean;
  /** Context addresses by depth (ctxs[d].addr), for the number-argument path. */
  private readonly ctxAddr: number[] = [];
  /** Per argument (the first three): 8 (a u64 slot), 4 or less (narrowed by argShift), 0 (a struct by value). */
  private readonly argSize: number[];
  private readonly argShift: number[];
  private readonly argSigned: boolean[];
  /** The program's entry from the VM (TrampolineVm.enter), resolved on the first call. */
  entry: EnterArgs | undefined;
  /** At most three arguments, none a struct by value: callNum may be used. */
  readonly numeric: boolean;
  /** Calls made through this trampoline (for tests and stats). */
  calls = 0;
  /**
   * The hot path (the TCP stack's ops on every ACK), for a member whose arguments (at most
   * three) are all numbers: each written into its context slot by the program's entry, r0
   * narrowed. Nothing allocated per call; its code is this trampoline's own (monomorphic).
   * Only for a `numeric` member.
   */
  readonly callNum: (a0: number, a1: number, a2: number) => number;

  constructor(
    private readonly vm: TrampolineVm,
    readonly prog: unknown,
    readonly model: BtfFuncModel,
    /** ksym name, `bpf__<struct>_<member>`. */
    readonly name: string,
    readonly addr: bigint,
    readonly size: number,
  ) {
    this.slotOf = [];
    let s = 0;
    for (let i = 0; i < model.nr_args; i++) {
      this.slotOf.push(s);
      s += model.arg_size[i] > 8 ? 2 : 1;
    }
    this.nrSlots = s;
    this.argSize = [];
    this.argShift = [];
    this.argSigned = [];
    for (let i = 0; i < 3; i++) {
      const size = i < model.nr_args ? model.arg_size[i] : 8;
      const struct = i < model.nr_args && ((model.arg_flags[i] & BTF_FMODEL_STRUCT_ARG) !== 0 || size > 8);
      this.argSize.push(struct ? 0 : size);
      this.argShift.push(32 - Math.min(size, 4) * 8);
      this.argSigned.push(i < model.nr_args && (model.arg_flags[i] & BTF_FMODEL_SIGNED_ARG) !== 0);
    }
    this.numeric = model.nr_args <= 3 && this.argSize.every((z) => z > 0);
    this.retShift = 32 - Math.min(model.ret_size, 4) * 8;
    this.retSigned = (model.ret_flags & BTF_FMODEL_SIGNED_ARG) !== 0;
    const kind = (i: number): number => (this.argSize[i] === 8 ? 0 : this.argSigned[i] ? 2 : 1);
    const rk = model.ret_size === 0 ? 0 : model.ret_size >= 8 ? 3 : this.retSigned ? 2 : 1;
    this.callNum = monomorphic(makeCallNum)(
      this as unknown as CallNumState,
      Math.min(model.nr_args, 3),
      kind(0),
      this.argShift[0],
      kind(1),
      this.argShift[1],
      kind(2),
      this.argShift[2],
      rk,
      this.retShift,
    );
  }

  /** Write argument i into its slot(s), extended to 64 bits per its size and signedness. */
  private put(ctx: TrampolineCtx, i: number, v: TrampArg): void {
    const off = this.slotOf[i] * 8;
    const size = this.model.arg_size[i];
    const signed = (this.model.arg_flags[i] & BTF_FMODEL_SIGNED_ARG) !== 0;
    if (typeof v === "object") {
      ctx.writeBytes(off, v.subarray(0, size));
      return;
    }
    let lo: number;
    let hi: number;
    // A bigint of at most 53 bits (flags, small counts) converts without allocating.
    if (typeof v === "bigint" && v >= 0n && v <= MAX_SAFE) v = Number(v);
    if (typeof v === "number") {
      lo = v >>> 0;
      hi = Math.floor(v / TWO32) | 0;
    } else {
      lo = Number(v & 0xffffffffn) >>> 0;
      hi = Number((v >> 32n) & 0xffffffffn) | 0;
    }
    if (size < 8) {
      // A narrower C argument arrives extended to the full register.
      const sh = 32 - Math.min(size, 4) * 8;
      if (size < 4) lo = signed ? (lo << sh) >> sh : (lo << sh) >>> sh;
      hi = signed ? (lo | 0) >> 31 : 0;
    }
    ctx.write(off, lo, hi);
  }

  /**
   * Call the program as the kernel calls the trampoline: `fn(a0, a1, ...)`. Returns r0 truncated
   * to the member's return size (sign-extended when the return type is signed), as a number;
   * 8-byte returns come back as the low 53 bits exact (use callU64 for full precision).
   */
  call(...args: TrampArg[]): number {
    this.invoke(args);
    return this.ret();
  }

  /** As call(), with the full 64-bit r0 as a bigint. */
  callU64(...args: TrampArg[]): bigint {
    this.invoke(args);
    return (BigInt(this.r0[1] >>> 0) << 32n) | BigInt(this.r0[0] >>> 0);
  }

  /** As call() for up to three arguments, without an argument array per call. */
  callx3(a0: TrampArg = 0, a1: TrampArg = 0, a2: TrampArg = 0): number {
    if (this.numeric && typeof a0 === "number" && typeof a1 === "number" && typeof a2 === "number") {
      return this.callNum(a0, a1, a2);
    }
    const v = this.argv;
    v[0] = a0;
    v[1] = a1;
    v[2] = a2;
    this.invoke(v);
    return this.ret();
  }

  /**
   * As callU64() for up to three arguments (extra ones are ignored past the member's), without
   * an argument array per call: a scheduler's ops run several times per scheduling event.
   */
  callU64x3(a0: TrampArg = 0, a1: TrampArg = 0, a2: TrampArg = 0): bigint {
    const v = this.argv;
    v[0] = a0;
    v[1] = a1;
    v[2] = a2;
    // The arguments are in the context before the program runs: a nested call may reuse argv.
    this.invoke(v);
    const lo = this.r0[0];
    const hi = this.r0[1];
    return hi === 0 && lo >= 0 ? BigInt(lo) : (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  }

  /**
   * Call with raw 64-bit register values, no narrowing to the argument types (a variadic caller,
   * like bpf_dummy_ops' test_run, leaves the full registers in place). Returns r0 as call() does.
   */
  callRaw(args: readonly bigint[]): number {
    this.invoke(args, true);
    return this.ret();
  }

  /**
   * The hot path (the TCP stack's ops on every ACK): number arguments written straight into the
   * context slots, the program entered with r1 = ctx, r0 narrowed. Nothing allocated per call.
   */
  /** The context of depth d, allocated on first use. */
  private ctxAt(d: number): number {
    for (let i = this.ctxAddr.length; i <= d; i++) {
      let ctx = this.ctxs[i];
      if (!ctx) {
        ctx = this.vm.allocCtx(Math.max(8, this.nrSlots * 8), `${this.name} ctx`);
        this.ctxs[i] = ctx;
      }
      this.ctxAddr.push(ctx.addr);
    }
    return this.ctxAddr[d];
  }

  private ret(): number {
    const lo = this.r0[0];
    const size = this.model.ret_size;
    if (size === 0) return 0;
    if (size >= 8) return this.r0[1] * TWO32 + (lo >>> 0);
    if (this.retShift === 0) return this.retSigned ? lo : lo >>> 0;
    return this.retSigned ? (lo << this.retShift) >> this.retShift : (lo << this.retShift) >>> this.retShift;
  }

  private invoke(args: readonly TrampArg[], raw = false): void {
    this.calls++;
    const d = this.depth;
    this.ctxAt(d);
    const ctx = this.ctxs[d];
    const n = this.model.nr_args;
    if (raw) {
      for (let i = 0; i < this.nrSlots; i++) {
        const v = BigInt.asUintN(64, BigInt((args[i] as bigint | number | undefined) ?? 0));
        ctx.write(i * 8, Number(v & 0xffffffffn), Number(v >> 32n));
      }
    } else {
      for (let i = 0; i < n; i++) this.put(ctx, i, args[i] ?? 0);
    }
    this.depth = d + 1;
    try {
      this.vm.run(this.prog, ctx.addr, this.r0);
    } finally {
      this.depth = d;
    }
  }

  /** Free the context buffers (image teardown). */
  free(): void {
    for (const c of this.ctxs) c?.free();
    this.ctxs.length = 0;
    this.ctxAddr.length = 0;
  }
}
