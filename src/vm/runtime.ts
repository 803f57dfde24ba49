import { arsh64, bswap16, bswap32, lsh64, mul64, rsh64, sdiv64, smod64, udiv64, umod64, W } from "./alu64.js";
import type { VmMemory } from "./memory.js";
import type { HelperFn, VmProgram } from "./program.js";

/**
 * What generated code of both tiers sees besides the program: the memory, the argument /
 * result array, the stack tops, and the slow paths (calls out, faults). One per Vm.
 *
 * IO layout: [0, 1] r0 (out), [2..11] r1..r5 (in), [12] instructions executed (out).
 * Inputs are read into registers when a run starts and outputs written at its final exit, so
 * a nested run (a helper invoking a callback) may reuse the array.
 */
export interface Runtime {
  M: VmMemory;
  IO: Int32Array;
  /** Top address of each frame's stack (r10), indexed by frame base + call depth. */
  STK: number[];
  X: SlowPaths;
}

export interface SlowPaths {
  hcall(
    fn: HelperFn,
    P: VmProgram,
    at: number,
    id: number,
    a1l: number,
    a1h: number,
    a2l: number,
    a2h: number,
    a3l: number,
    a3h: number,
    a4l: number,
    a4h: number,
    a5l: number,
    a5h: number,
  ): number;
  /** callx to a value that is not a function of this program: a helper by id. */
  hcallx(
    P: VmProgram,
    at: number,
    lo: number,
    hi: number,
    a1l: number,
    a1h: number,
    a2l: number,
    a2h: number,
    a3l: number,
    a3h: number,
    a4l: number,
    a4h: number,
    a5l: number,
    a5h: number,
  ): number;
  /** Entry index if (lo, hi) is the address of a function of P, else -1. */
  funcTarget(P: VmProgram, lo: number, hi: number): number;
  over(P: VmProgram, at: number, budget: number): never;
  /** may_goto: true when the run's loop budget is spent (take the jump), else one pass is used. */
  mayGoto(): boolean;
  tooDeep(P: VmProgram, at: number): never;
  /**
   * 1 after a helper took a tail call (HelperCall.tailCall): r0 is the callee's and the calling
   * BPF function exits at once. The code after a `call bpf_tail_call` reads and clears it.
   */
  tc: number;
  bad(P: VmProgram, at: number): never;
}

export const RT_PARAMS = [
  "W",
  "mul64",
  "udiv64",
  "umod64",
  "sdiv64",
  "smod64",
  "lsh64",
  "rsh64",
  "arsh64",
  "bswap16",
  "bswap32",
  "M",
  "IO",
  "STK",
  "X",
];

export function rtArgs(rt: Runtime): unknown[] {
  return [W, mul64, udiv64, umod64, sdiv64, smod64, lsh64, rsh64, arsh64, bswap16, bswap32, rt.M, rt.IO, rt.STK, rt.X];
}

/**
 * A copy of `make` with its own code object. V8 keeps type feedback per function literal, so
 * closures one literal makes for every program share it: a call inside them to each program's
 * Wasm export or next layer turns megamorphic and is neither inlined nor given the fast
 * JavaScript-to-Wasm wrapper. A copy per program keeps each such call monomorphic. `make` must
 * use nothing but its parameters and globals (the copy is evaluated in the global scope).
 */
export function monomorphic<F extends (...args: never[]) => unknown>(make: F): F {
  return new Function(`return (${make.toString()});`)() as F;
}
