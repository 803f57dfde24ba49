import { type Insn, isLdImm64 } from "../isa/insn.js";
import { BPF_CALL, BPF_EXIT, BPF_JA, BPF_JMP, BPF_JMP32, BPF_K, BPF_X } from "../isa/opcodes.js";
import { BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC, BPF_PSEUDO_KFUNC_CALL } from "../uapi/bpf.js";
import { BpfError, EINVAL } from "../uapi/errno.js";
import { ACCESS_KINDS, emitInsn, type Operands } from "./codegen.js";
import { u64Of, VmFault } from "./fault.js";
import type { HelperCall } from "./helper.js";

/** A helper or kfunc: reads its arguments from `call`, sets r0 with `call.setRet`, may throw a BpfError. */
export type HelperFn = (call: HelperCall) => void;
/** Helpers by id / kfuncs by BTF id. */
export type FnTable = ReadonlyMap<number, HelperFn> | Readonly<Record<number, HelperFn>>;

export type Tier = "interp" | "jit" | "wasm";
/** A tier, or "auto": the Vm picks one per program (Vm.setTier). */
export type TierChoice = Tier | "auto";

export interface LoadOpts {
  helpers?: FnTable;
  kfuncs?: FnTable;
  name?: string;
  /** Execution tier; default: the Vm's. */
  tier?: TierChoice;
  /**
   * Per instruction slot, 1 where the verifier proved every memory access the instruction
   * makes (the Wasm tier then runs it unchecked). Absent for unverified programs.
   */
  proven?: Uint8Array;
}

/** Runs the program from `entry` with r1-r5 taken from the runtime's IO array (see vm.ts). */
export type Executor = (entry: number, budget: number, frameBase: number) => void;

/**
 * A tier's direct entry: run from instruction 0 with r1 = `r1` (an address below 4 GiB), r2-r5
 * = 0, r0's halves left in IO[0..1] and the count in IO[12]; returns r0's low half.
 */
export type RawEntry = (r1: number, budget: number, frameBase: number) => number;
/**
 * VmProgram.enterArgs: store the first n (<= 3) u64 context slots (int32 halves) at ctx, then
 * enter(ctx); returns r0's low half. A struct_ops trampoline's argument stores and
 * prog->bpf_func in one call. The one shape of that entry at every layer: the kernel's
 * trampoline (TrampolineVm.enter) hands out the same function type around the program's, and
 * the Wasm tier's `tramp` export takes these arguments and the run's frame base.
 */
export type EnterArgs = (
  ctx: number,
  n: number,
  a0l: number,
  a0h: number,
  a1l: number,
  a1h: number,
  a2l: number,
  a2h: number,
) => number;

export const CALLX = BPF_JMP | BPF_CALL | BPF_X;
export const CALL = BPF_JMP | BPF_CALL | BPF_K;
export const EXIT = BPF_JMP | BPF_EXIT;

export function lookupFn(table: FnTable | undefined, id: number): HelperFn | undefined {
  if (table === undefined) return undefined;
  if (table instanceof Map) return table.get(id);
  return Object.hasOwn(table, id) ? (table as Record<number, HelperFn>)[id] : undefined;
}

const PROBE: Operands = {
  dl: "a",
  dh: "a",
  sl: "a",
  sh: "a",
  imm: "0",
  immHi: "0",
  off: "0",
  at: "0",
  r0l: "a",
  r0h: "a",
  jump: () => "",
};

/**
 * A loaded program: the slots, their decoded columns for the interpreter, resolved call
 * targets, and the executor of its tier. Loading checks structure the tiers rely on (valid
 * encodings, jump and call targets inside the program and not into an ld_imm64's second
 * slot, no falling off the end, helpers and kfuncs known) and reports what it rejects as a
 * BpfError(EINVAL) naming the instruction, as the kernel does.
 */
export class VmProgram {
  readonly name: string;
  readonly insns: readonly Insn[];
  readonly len: number;
  readonly code: Uint8Array;
  readonly dst: Uint8Array;
  readonly src: Uint8Array;
  readonly off: Int16Array;
  readonly imm: Int32Array;
  /** Upper half of an ld_imm64 constant, at the first slot's index. */
  readonly imm2: Int32Array;
  /** Resolved helper/kfunc per call instruction index. */
  readonly fns: (HelperFn | undefined)[];
  readonly helpers: FnTable | undefined;
  /** LoadOpts.proven, when it covers every slot. */
  readonly proven: Uint8Array | undefined;
  /** Instruction indices that start a function: 0, local call targets, BPF_PSEUDO_FUNC targets. */
  readonly funcEntries = new Set<number>();
  /** Slots a control transfer may land on (block leaders). */
  readonly leaders = new Set<number>();
  tier: Tier = "jit";
  /** Stop the program at `at` for a bad access of base (lo, hi) + off (called by generated code). */
  readonly fault = (at: number, lo: number, hi: number, off: number, size: number, kind: number): never => {
    throw new VmFault(
      at,
      BigInt.asUintN(64, u64Of(lo, hi) + BigInt(off)),
      size,
      ACCESS_KINDS[kind] ?? "read",
      this.name,
    );
  };
  exec: Executor = () => {
    throw new BpfError(EINVAL, "program not loaded");
  };
  /**
   * Run with r1 = ctx (below 4 GiB) and r2-r5 = 0, as a trampoline calls prog->bpf_func: r0's
   * low half returned (Vm.lastR0Hi has the high one). Set by the Vm with the tier.
   */
  enter: (ctx: number) => number = () => {
    throw new BpfError(EINVAL, "program not loaded");
  };
  /** enter() with the trampoline's context stores fused in (see EnterArgs). Set by the Vm with the tier. */
  enterArgs: EnterArgs = () => {
    throw new BpfError(EINVAL, "program not loaded");
  };

  constructor(insns: readonly Insn[], opts: LoadOpts, funcAddr: (entry: number) => [number, number]) {
    this.name = opts.name ?? "prog";
    this.insns = insns;
    const n = insns.length;
    this.len = n;
    this.code = new Uint8Array(n);
    this.dst = new Uint8Array(n);
    this.src = new Uint8Array(n);
    this.off = new Int16Array(n);
    this.imm = new Int32Array(n);
    this.imm2 = new Int32Array(n);
    this.fns = new Array(n).fill(undefined);
    this.helpers = opts.helpers;
    this.proven = opts.proven?.length === n ? opts.proven : undefined;
    if (n === 0) throw this.err(0, "program is empty");
    const second = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const s = insns[i];
      this.code[i] = s.code;
      this.dst[i] = s.dst;
      this.src[i] = s.src;
      this.off[i] = s.off;
      this.imm[i] = s.imm;
      if (isLdImm64(s)) {
        if (i + 1 >= n || insns[i + 1].code !== 0) throw this.err(i, "invalid bpf_ld_imm64 insn");
        second[i + 1] = 1;
        this.imm2[i] = insns[i + 1].imm;
        i++;
        this.code[i] = 0;
      }
    }
    this.leaders.add(0);
    this.funcEntries.add(0);
    const target = (i: number, t: number, what: string) => {
      if (t < 0 || t >= n || second[t]) throw this.err(i, `${what} out of range from insn ${i} to ${t}`);
      this.leaders.add(t);
      return t;
    };
    for (let i = 0; i < n; i++) {
      if (second[i]) continue;
      const s = insns[i];
      // r11 is the kernel's BPF_REG_AX, which only the verifier's rewrites (may_goto) use.
      if (s.dst > 11 || s.src > 11) throw this.err(i, `invalid register in insn ${i}`);
      if (isLdImm64(s)) {
        if (s.src === BPF_PSEUDO_FUNC) {
          const t = target(i, i + s.imm + 1, "func");
          this.funcEntries.add(t);
          const [lo, hi] = funcAddr(t);
          this.imm[i] = lo;
          this.imm2[i] = hi;
        }
        continue;
      }
      const cls = s.code & 7;
      const jmpClass = cls === BPF_JMP || cls === BPF_JMP32;
      if (s.code === CALL) {
        if (s.src === BPF_PSEUDO_CALL) {
          this.funcEntries.add(target(i, i + s.imm + 1, "call"));
        } else if (s.src === BPF_PSEUDO_KFUNC_CALL) {
          const fn = lookupFn(opts.kfuncs, s.imm);
          if (!fn) throw this.err(i, `kernel function btf_id ${s.imm} is not known (insn ${i})`);
          this.fns[i] = fn;
        } else if (s.src === 0) {
          const fn = lookupFn(opts.helpers, s.imm);
          if (!fn) throw this.err(i, `invalid func unknown#${s.imm}`);
          this.fns[i] = fn;
        } else {
          throw this.err(i, `invalid call src ${s.src} at insn ${i}`);
        }
        if (i + 1 < n) this.leaders.add(i + 1);
      } else if (s.code === CALLX) {
        if (i + 1 < n) this.leaders.add(i + 1);
      } else if (s.code === EXIT) {
        if (i + 1 < n) this.leaders.add(i + 1);
      } else {
        if (emitInsn(s.code, s.off, s.imm, PROBE) === null) {
          throw this.err(i, `invalid insn code 0x${s.code.toString(16)} (off ${s.off}, imm ${s.imm}) at insn ${i}`);
        }
        if (jmpClass) {
          const gotol = cls === BPF_JMP32 && (s.code & 0xf0) === BPF_JA;
          target(i, i + (gotol ? s.imm : s.off) + 1, "jump");
          if (i + 1 < n) this.leaders.add(i + 1);
        }
      }
    }
    for (const t of this.funcEntries) this.leaders.add(t);
    const last = this.code[second[n - 1] ? n - 2 : n - 1];
    const lastOp = last & 0xf0;
    const lastCls = last & 7;
    if (
      !(
        (lastCls === BPF_JMP && (lastOp === BPF_EXIT || lastOp === BPF_JA)) ||
        (lastCls === BPF_JMP32 && lastOp === BPF_JA)
      )
    ) {
      throw this.err(n - 1, "last insn is not an exit or jmp");
    }
  }

  private err(i: number, msg: string): BpfError {
    return new BpfError(EINVAL, `${this.name}: ${msg}`, { insn: i, prog: this.name });
  }
}
