/**
 * What a fuzz target is: a deterministic input generator and a runner. An input is bytes (an
 * object file, a BTF blob, an encoded instruction stream or an encoded bpf() sequence), so every
 * target shares one minimiser and one reproducer format.
 */
import { Prng } from "../src/sim/prng.js";
import { BpfError } from "../src/uapi/errno.js";

export interface FuzzTarget {
  readonly name: string;
  /** What an input is, for the README and the reproducer's header. */
  readonly describe: string;
  /** Bytes the minimiser removes together (an instruction, a bpf() call record). */
  readonly unit: number;
  /** Input `index` of a run: a pure function of the PRNG it is given. */
  generate(rng: Prng, index: number): Uint8Array;
  /** Runs one input; returns an outcome label for the counts. Throws on a defect. */
  run(input: Uint8Array): string;
  /** Once per worker, before the first input (booting a kernel is not an input's time). */
  setup?(): void;
  /** CPU milliseconds without a heartbeat that make a hang, where one input's bounded work
   * needs more than the default 2 s. */
  readonly hangMs?: number;
}

/** A broken rule the target checks (refcounts, tiers disagreeing, a fault in a verified program). */
export class FuzzInvariant extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FuzzInvariant";
  }
}

/**
 * Whether an exception is the expected refusal of bad input: a typed BpfError, except the
 * verifier's own "verifier bug" (an internal exception it turned into EFAULT).
 */
export function isRefusal(e: unknown): e is BpfError {
  return e instanceof BpfError && !e.message.startsWith("verifier bug");
}

/** The PRNG of input `index` of the run seeded `seed`: inputs can be regenerated one by one. */
export function inputRng(seed: number, index: number): Prng {
  return new Prng((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
}

/** Helpers over a Prng for generators. */
export function int(rng: Prng, n: number): number {
  return Math.floor(rng.next() * n);
}

export function pick<T>(rng: Prng, xs: readonly T[]): T {
  return xs[int(rng, xs.length)] as T;
}

export function chance(rng: Prng, p: number): boolean {
  return rng.next() < p;
}

/** Label for an outcome: the errno name of a refusal, "ok" otherwise. */
export function refusalLabel(e: BpfError): string {
  return e.code;
}

/** Run f; a refusal is fine, anything else is returned. */
export function quietly(f: () => void): unknown {
  try {
    f();
  } catch (e) {
    if (!isRefusal(e)) return e;
  }
  return undefined;
}
