import { BpfError, EINVAL } from "../uapi/errno.js";
import { u64Of } from "./fault.js";
import type { VmMemory } from "./memory.js";
import type { VmProgram } from "./program.js";

/** What a helper may ask of the VM beyond its arguments. */
export interface CallbackHost {
  /** Run the BPF function at `fnAddr` (a BPF_PSEUDO_FUNC value) with r1.. = args; returns r0. */
  invokeCallback(fnAddr: bigint | number, args: readonly (bigint | number)[]): bigint;
  /** Tail calls taken by the current run, and where the next one is counted. */
  tailCallCnt: number;
  /** Run `target` in place of the calling function (bpf_tail_call); returns its r0. */
  tailCall(target: VmProgram, ctx: bigint | number): bigint;
}

/**
 * One helper or kfunc invocation. Arguments are r1..r5, numbered as the registers:
 * `arg(1)` is r1. The object is reused for later calls at the same nesting depth: read what
 * you need during the call, do not keep it.
 */
export class HelperCall {
  /** r1..r5 as (lo, hi) int32 pairs: a[0], a[1] = r1. */
  readonly a = new Int32Array(10);
  /** The helper id or kfunc BTF id being called. */
  id = 0;
  insnIdx = 0;
  prog!: VmProgram;
  retLo = 0;
  retHi = 0;

  constructor(
    readonly mem: VmMemory,
    private readonly host: CallbackHost,
  ) {}

  private ix(i: number): number {
    if (!(i >= 1 && i <= 5)) throw new BpfError(EINVAL, `helper argument r${i} does not exist: arguments are r1..r5`);
    return (i - 1) * 2;
  }

  /** r`i` as an unsigned 64-bit value. */
  arg(i: number): bigint {
    const k = this.ix(i);
    return u64Of(this.a[k], this.a[k + 1]);
  }
  /** Low 32 bits of r`i`, unsigned. */
  argLo(i: number): number {
    return this.a[this.ix(i)] >>> 0;
  }
  /** High 32 bits of r`i`, unsigned. */
  argHi(i: number): number {
    return this.a[this.ix(i) + 1] >>> 0;
  }
  /** r`i` as a signed number (exact when |value| < 2^53; pointers always are). */
  argNum(i: number): number {
    const k = this.ix(i);
    return this.a[k + 1] * 4294967296 + (this.a[k] >>> 0);
  }
  /** Set r0. Numbers are taken as signed integers (-22 is -EINVAL). */
  setRet(v: bigint | number): void {
    if (typeof v === "bigint") {
      this.retLo = Number(BigInt.asIntN(32, v));
      this.retHi = Number(BigInt.asIntN(32, v >> 32n));
    } else {
      this.retLo = v | 0;
      this.retHi = Math.floor(v / 4294967296) | 0;
    }
  }
  /** Call a BPF callback (bpf_loop and friends) given its function address. */
  invokeCallback(fnAddr: bigint | number, args: readonly (bigint | number)[]): bigint {
    return this.host.invokeCallback(fnAddr, args);
  }
  /**
   * bpf_tail_call's count (the interpreter's `tail_call_cnt >= MAX_TAIL_CALL_CNT`, the JIT's
   * `(*tcc_ptr)++`): false once `limit` tail calls were taken in this run, else counts one more.
   */
  tailCallCount(limit: number): boolean {
    if (this.host.tailCallCnt >= limit) return false;
    this.host.tailCallCnt++;
    return true;
  }
  /**
   * Leave the calling BPF function for `target` with r1 = ctx: the callee runs now and the
   * caller exits with its r0 (returned, and to be the helper's return value) when the helper
   * returns.
   */
  tailCall(target: VmProgram, ctx: bigint | number): bigint {
    return this.host.tailCall(target, ctx);
  }
}
