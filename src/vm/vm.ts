import { BPF_JCOND } from "../isa/decode.js";
import type { Insn } from "../isa/insn.js";
import { BPF_JMP } from "../isa/opcodes.js";
import { bpf_func_id, MAX_BPF_STACK, MAX_CALL_FRAMES, MAX_TAIL_CALL_CNT } from "../uapi/bpf.js";
import { BpfError, E2BIG, EFAULT, EINVAL } from "../uapi/errno.js";
import { W } from "./alu64.js";
import { u64Of, VmBudgetExceeded, VmFault } from "./fault.js";
import { HelperCall } from "./helper.js";
import { interpExecutor, makeInterpreter } from "./interp.js";
import { compile } from "./jit.js";
import type { Region, VmMemory } from "./memory.js";
import {
  CALL,
  CALLX,
  type EnterArgs,
  EXIT,
  type Executor,
  type HelperFn,
  type LoadOpts,
  lookupFn,
  type RawEntry,
  type Tier,
  type TierChoice,
  VmProgram,
} from "./program.js";
import { monomorphic, type Runtime, type SlowPaths } from "./runtime.js";
import { compileWasm, type WasmTramp } from "./wasm.js";
import { framesFor, S_INSNS, S_R0, WA, WasmHost } from "./wasm_host.js";
import { WasmUnsupported } from "./wasm_insn.js";

export interface VmOpts {
  /** Default execution tier (default "auto": see Vm.setTier). */
  tier?: TierChoice;
  /** Default instruction budget of one run (default 10,000,000). */
  budget?: number;
  /** How deeply runs may nest (a helper running a callback or another program); default 8. */
  maxNesting?: number;
  /**
   * Programs longer than this (slots) run in the interpreter even when "jit" is asked for:
   * V8 stops optimizing very large functions, and then the compiled form is the slower one.
   * Default 8192.
   */
  jitMaxInsns?: number;
}

export interface RunArgs {
  r1?: bigint | number;
  r2?: bigint | number;
  r3?: bigint | number;
  r4?: bigint | number;
  r5?: bigint | number;
}

export interface RunOpts {
  budget?: number;
}

export interface RunResult {
  r0: bigint;
  insnsExecuted: number;
}

/**
 * Function addresses (BPF_PSEUDO_FUNC constants, callx targets, bpf_loop callbacks) live in
 * their own range that no load or store can reach (high half 0xffffffff):
 * 0xffffffff_a0000000 + 16 * id.
 */
const FUNC_HI = -1;
const FUNC_LO_BASE = 0xa0000000;
const FUNC_LIMIT = 0x1000000;

/**
 * The eBPF virtual machine: loads programs for one of three tiers sharing one memory model
 * (the interpreter and the compiling tier that turns a program into a JavaScript function,
 * both built from one set of instruction templates, and the WebAssembly tier), and runs them.
 *
 * Each run gets MAX_CALL_FRAMES stacks of MAX_BPF_STACK bytes, separate regions with guard
 * gaps; r10 is the top of the current frame's stack. r1-r5 are passed to bpf-to-bpf calls,
 * r6-r9 and r10 are restored on return. An instruction budget stops runaway programs.
 */
/** BPF_MAX_LOOPS: may_goto's budget of one run (8M), as the kernel's. */
export const BPF_MAX_LOOPS = 8 * 1024 * 1024;

/** The Vm's fields a Wasm entry keeps (the Vm itself, seen through its run bookkeeping). */
interface WasmEntryState {
  frameTop: number;
  mayGotoLeft: number;
  tailCallCnt: number;
  lastWasm: boolean;
}

/**
 * Vm.wasmEntryArgs's closure, self-contained for monomorphic(): the frames of the run, the
 * may_goto budget and tail call count only for a program that uses them, a trap turned into
 * EFAULT; the budget, r10 and the results are the module's `tramp` export's own.
 */
const makeWasmEntryArgs =
  (
    vm: WasmEntryState,
    host: WasmHost,
    tramp: WasmTramp,
    X: SlowPaths,
    /** Stacks and stack-top table entries for frames below `top` (E2BIG past the nesting limit). */
    grow: (top: number) => void,
    frames: number,
    maxLoops: number,
    loops: boolean,
    tails: boolean,
    err: (e: unknown) => unknown,
  ): EnterArgs =>
  (ctx, n, a0l, a0h, a1l, a1h, a2l, a2h) => {
    const base = vm.frameTop;
    const top = base + frames;
    if (top > host.filled) grow(top);
    const prevLoops = loops ? vm.mayGotoLeft : 0;
    const prevTcc = tails ? vm.tailCallCnt : 0;
    if (loops) vm.mayGotoLeft = maxLoops;
    if (tails) {
      vm.tailCallCnt = 0;
      X.tc = 0;
    }
    vm.frameTop = top;
    let lo: number;
    try {
      lo = tramp(ctx, n, a0l, a0h, a1l, a1h, a2l, a2h, base);
    } catch (e) {
      throw err(e);
    } finally {
      vm.frameTop = base;
      if (loops) vm.mayGotoLeft = prevLoops;
      if (tails) vm.tailCallCnt = prevTcc;
    }
    vm.lastWasm = true;
    return lo;
  };

export class Vm {
  /** may_goto passes left in the current run before it jumps (the loop budget ran out). */
  mayGotoLeft = BPF_MAX_LOOPS;
  readonly mem: VmMemory;
  private readonly rt: Runtime;
  private interpFn: ReturnType<typeof makeInterpreter> | undefined;
  private readonly tier: TierChoice;
  private readonly budget: number;
  private readonly maxNesting: number;
  private readonly jitMaxInsns: number;
  private readonly stacks: Region[] = [];
  private frameTop = 0;
  private callDepth = 0;
  private readonly calls: HelperCall[] = [];
  /** Function addresses by id; an unloaded program's entries become undefined (ids are never reused). */
  private readonly funcs: ({ prog: VmProgram; entry: number } | undefined)[] = [];
  /** Instructions executed by the last completed run that left its results in IO. */
  private insns = 0;
  /** The last completed run was entered through a Wasm module's `tramp` export: its results are in scratch. */
  private lastWasm = false;
  /**
   * Tail calls taken by the current run (the kernel's tail_call_cnt): carried into the callee
   * of each tail call and into callbacks, started afresh by every other run.
   */
  tailCallCnt = 0;
  private wasmHost: WasmHost | undefined;

  constructor(mem: VmMemory, opts: VmOpts = {}) {
    this.mem = mem;
    this.tier = opts.tier ?? "auto";
    this.budget = opts.budget ?? 10_000_000;
    this.maxNesting = opts.maxNesting ?? 8;
    this.jitMaxInsns = opts.jitMaxInsns ?? 8192;
    const vm = this;
    const X: SlowPaths = {
      hcall(fn, P, at, id, a1l, a1h, a2l, a2h, a3l, a3h, a4l, a4h, a5l, a5h) {
        return vm.callOut(fn, P, at, id, a1l, a1h, a2l, a2h, a3l, a3h, a4l, a4h, a5l, a5h);
      },
      hcallx(P, at, lo, hi, a1l, a1h, a2l, a2h, a3l, a3h, a4l, a4h, a5l, a5h) {
        const fn = hi === 0 ? lookupFn(P.helpers, lo) : undefined;
        if (!fn) {
          throw new BpfError(
            EFAULT,
            `${P.name}: insn ${at}: callx to 0x${u64Of(lo, hi).toString(16)}: not a helper or function of this program`,
            {
              insn: at,
              prog: P.name,
            },
          );
        }
        return vm.callOut(fn, P, at, lo, a1l, a1h, a2l, a2h, a3l, a3h, a4l, a4h, a5l, a5h);
      },
      funcTarget(P, lo, hi) {
        const f = vm.funcAt(lo, hi);
        return f !== undefined && f.prog === P ? f.entry : -1;
      },
      over(P, at, budget): never {
        throw new VmBudgetExceeded(budget, at, P.name);
      },
      mayGoto(): boolean {
        if (vm.mayGotoLeft === 0) return true;
        vm.mayGotoLeft--;
        return false;
      },
      tc: 0,
      tooDeep(P, at): never {
        throw new BpfError(
          E2BIG,
          `${P.name}: insn ${at}: the call stack of ${MAX_CALL_FRAMES + 1} frames is too deep`,
          {
            insn: at,
            prog: P.name,
          },
        );
      },
      bad(P, at): never {
        throw new BpfError(EINVAL, `${P.name}: invalid instruction or jump target at insn ${at}`, {
          insn: at,
          prog: P.name,
        });
      },
    };
    this.rt = { M: mem, IO: new Int32Array(16), STK: [], X };
  }

  /** The interpreter, generated when a program first needs it (a run that only lists programs never does). */
  private get interp(): ReturnType<typeof makeInterpreter> {
    this.interpFn ??= makeInterpreter(this.rt);
    return this.interpFn;
  }

  /** Check and prepare a program. Pseudo ld_imm64 other than BPF_PSEUDO_FUNC must already be constants. */
  load(insns: readonly Insn[], opts: LoadOpts = {}): VmProgram {
    const pending: number[] = [];
    const P: VmProgram = new VmProgram(insns, opts, (entry) => {
      pending.push(entry);
      const id = this.funcs.length + pending.length - 1;
      if (id >= FUNC_LIMIT) throw new BpfError(E2BIG, "too many BPF function addresses");
      return [(FUNC_LO_BASE + id * 16) | 0, FUNC_HI];
    });
    for (const entry of pending) this.funcs.push({ prog: P, entry });
    this.setTier(P, opts.tier ?? this.tier);
    return P;
  }

  /** Function addresses of loaded programs that still resolve (0 once every program is unloaded). */
  liveFunctionAddresses(): number {
    let n = 0;
    for (const f of this.funcs) if (f) n++;
    return n;
  }

  /** Forget P: its function addresses stop resolving and it can no longer run. */
  unload(P: VmProgram): void {
    this.wasmHost?.release(P);
    for (let i = 0; i < this.funcs.length; i++) if (this.funcs[i]?.prog === P) this.funcs[i] = undefined;
    P.exec = () => {
      throw new BpfError(EINVAL, `${P.name}: program was unloaded`);
    };
    P.enter = () => {
      throw new BpfError(EINVAL, `${P.name}: program was unloaded`);
    };
    P.enterArgs = () => {
      throw new BpfError(EINVAL, `${P.name}: program was unloaded`);
    };
  }

  /**
   * Switch a loaded program to another tier (P.tier tells which one it got). "auto" picks
   * WebAssembly for programs with a loop or of AUTO_WASM_INSNS slots or more, where its speed
   * per instruction (3-10x the JavaScript tier's) outweighs the dearer call into Wasm, and the
   * JavaScript tier for short straight-line programs (most struct_ops callbacks run 10-30
   * instructions per call).
   */
  setTier(P: VmProgram, want: TierChoice): void {
    if (want === "auto") want = P.len >= AUTO_WASM_INSNS || hasLoop(P) ? "wasm" : "jit";
    const tier = want === "jit" && P.len > this.jitMaxInsns ? "interp" : want;
    P.tier = tier;
    // Compiled on first run: a program that is loaded and never run (a registration replayed to
    // list it, a struct_ops member the subsystem never calls) costs no code generation.
    const lazy: Executor = (entry, budget, frameBase) => {
      if (P.exec === lazy) this.compileTier(P, tier);
      P.exec(entry, budget, frameBase);
    };
    P.exec = lazy;
    // compileTier replaces both.
    P.enter = (ctx) => {
      this.compileTier(P, tier);
      return P.enter(ctx);
    };
    P.enterArgs = (ctx, n, a0l, a0h, a1l, a1h, a2l, a2h) => {
      this.compileTier(P, tier);
      return P.enterArgs(ctx, n, a0l, a0h, a1l, a1h, a2l, a2h);
    };
  }

  private compileTier(P: VmProgram, want: Tier): void {
    this.wasmHost?.release(P);
    let tier = want;
    if (tier === "wasm") {
      try {
        this.wasmHost ??= new WasmHost(this.rt, framesFor(this.maxNesting), this.budget);
        const w = compileWasm(this.wasmHost, P, MAX_CALL_FRAMES);
        P.exec = w.exec;
        const enterArgs = this.wasmEntryArgs(P, w.tramp);
        P.enterArgs = enterArgs;
        P.enter = (ctx) => enterArgs(ctx, 0, 0, 0, 0, 0, 0, 0);
        return;
      } catch (e) {
        // An engine that refuses the module (a browser's synchronous compile limit), or an
        // instruction the Wasm tier does not translate: the JavaScript tier runs it.
        if (!(e instanceof RangeError) && !(e instanceof WasmUnsupported)) throw e;
        tier = P.len > this.jitMaxInsns ? "interp" : "jit";
      }
    }
    P.tier = tier;
    const exec = tier === "jit" ? compile(this.rt, P) : interpExecutor(this.interp, P);
    P.exec = exec;
    const IO = this.rt.IO;
    P.enter = this.entry((r1, budget, base) => {
      IO[2] = r1;
      IO[3] = 0;
      IO[4] = 0;
      IO[5] = 0;
      IO[6] = 0;
      IO[7] = 0;
      IO[8] = 0;
      IO[9] = 0;
      IO[10] = 0;
      IO[11] = 0;
      exec(0, budget, base);
      return IO[0];
    });
    const enter = P.enter;
    const M = this.mem;
    P.enterArgs = (ctx, n, a0l, a0h, a1l, a1h, a2l, a2h) => {
      const dv = M.dv;
      if (n > 0) {
        dv.setInt32(ctx, a0l, true);
        dv.setInt32(ctx + 4, a0h, true);
      }
      if (n > 1) {
        dv.setInt32(ctx + 8, a1l, true);
        dv.setInt32(ctx + 12, a1h, true);
      }
      if (n > 2) {
        dv.setInt32(ctx + 16, a2l, true);
        dv.setInt32(ctx + 20, a2h, true);
      }
      return enter(ctx);
    };
  }

  /**
   * enterArgs of a Wasm program: entry()'s bookkeeping and the tier's entry in one closure, the
   * argument stores done by the module's `tramp` export (one JavaScript-to-Wasm call a run), a
   * copy of the closure's code per program (see monomorphic).
   */
  private wasmEntryArgs(P: VmProgram, tramp: WasmTramp): EnterArgs {
    const host = this.wasmHost as WasmHost;
    const st: WasmEntryState = this as unknown as WasmEntryState;
    const err = (e: unknown): unknown =>
      e instanceof WA.RuntimeError ? new BpfError(EFAULT, `${P.name}: ${e.message}`, { prog: P.name }) : e;
    // A run's may_goto budget and tail call count are only read by the program's own may_goto
    // and tail calls (a nested run starts its own): a program with neither leaves them alone.
    let loops = false;
    let tails = false;
    for (let i = 0; i < P.len; i++) {
      const code = P.code[i];
      if (code === (BPF_JMP | BPF_JCOND)) loops = true;
      else if (code === CALLX)
        tails = true; // a helper by id: bpf_tail_call may be one
      else if (code === CALL && P.src[i] === 0 && P.imm[i] === bpf_func_id.BPF_FUNC_tail_call) tails = true;
    }
    return monomorphic(makeWasmEntryArgs)(
      st,
      host,
      tramp,
      this.rt.X,
      (top) => {
        if (top > this.stacks.length) this.growStacks(top);
        host.fillTops(top);
      },
      MAX_CALL_FRAMES,
      BPF_MAX_LOOPS,
      loops,
      tails,
      err,
    );
  }

  /** VmProgram.enter over a tier's raw entry: exec()'s bookkeeping, with no argument array. */
  private entry(raw: RawEntry): (ctx: number) => number {
    const IO = this.rt.IO;
    return (ctx) => {
      const loops = this.mayGotoLeft;
      this.mayGotoLeft = BPF_MAX_LOOPS;
      const tcc = this.tailCallCnt;
      this.tailCallCnt = 0;
      const base = this.frameTop;
      if (base + MAX_CALL_FRAMES > this.stacks.length) this.growStacks(base + MAX_CALL_FRAMES);
      this.frameTop = base + MAX_CALL_FRAMES;
      this.rt.X.tc = 0;
      let lo: number;
      try {
        lo = raw(ctx, this.budget, base);
      } finally {
        this.frameTop = base;
        this.mayGotoLeft = loops;
        this.tailCallCnt = tcc;
      }
      this.insns = IO[12];
      this.lastWasm = false;
      return lo;
    };
  }

  /** The address a helper passes to invokeCallback for function `entry` of P (as a BPF_PSEUDO_FUNC load would). */
  funcAddress(P: VmProgram, entry: number): bigint {
    let id = this.funcs.findIndex((f) => f?.prog === P && f.entry === entry);
    if (id < 0) {
      if (!P.funcEntries.has(entry)) throw new BpfError(EINVAL, `${P.name}: insn ${entry} is not a function entry`);
      id = this.funcs.push({ prog: P, entry }) - 1;
    }
    return u64Of((FUNC_LO_BASE + id * 16) | 0, FUNC_HI);
  }

  private funcAt(lo: number, hi: number): { prog: VmProgram; entry: number } | undefined {
    if (hi !== FUNC_HI) return undefined;
    const d = (lo >>> 0) - FUNC_LO_BASE;
    if (d < 0 || d % 16 !== 0) return undefined;
    return this.funcs[d / 16];
  }

  /** Run P from instruction 0. `args` is r1..r5, or just r1 (a ctx address). */
  run(P: VmProgram, args: RunArgs | number | bigint = {}, opts: RunOpts = {}): RunResult {
    const IO = this.rt.IO;
    if (typeof args === "object") {
      setReg(IO, 1, args.r1);
      setReg(IO, 2, args.r2);
      setReg(IO, 3, args.r3);
      setReg(IO, 4, args.r4);
      setReg(IO, 5, args.r5);
    } else {
      setReg(IO, 1, args);
      for (let r = 2; r <= 5; r++) setReg(IO, r, 0);
    }
    this.exec(P, 0, opts.budget ?? this.budget);
    return { r0: u64Of(IO[0], IO[1]), insnsExecuted: IO[12] };
  }

  /** Fast path: r1..r5 as numbers, r0 as a signed number (exact below 2^53 in magnitude). */
  runNumber(P: VmProgram, r1 = 0, r2 = 0, r3 = 0, r4 = 0, r5 = 0): number {
    this.setArgs(r1, r2, r3, r4, r5);
    this.exec(P, 0, this.budget);
    const IO = this.rt.IO;
    return IO[1] * 4294967296 + (IO[0] >>> 0);
  }

  /** Fast path for a program taking only a context: r1 = ctx (an address below 4 GiB), r2..r5 = 0. */
  runCtx(P: VmProgram, ctx: number): void {
    P.enter(ctx);
  }

  /** Fast path: r0's low 32 bits, unsigned. */
  runU32(P: VmProgram, r1 = 0, r2 = 0, r3 = 0, r4 = 0, r5 = 0): number {
    this.setArgs(r1, r2, r3, r4, r5);
    this.exec(P, 0, this.budget);
    return this.rt.IO[0] >>> 0;
  }

  /** r0 of the last completed run as int32 halves, for callers that avoid BigInt. */
  get lastR0Lo(): number {
    return this.lastWasm ? (this.wasmHost as WasmHost).s[S_R0 / 4] : this.rt.IO[0];
  }
  get lastR0Hi(): number {
    return this.lastWasm ? (this.wasmHost as WasmHost).s[S_R0 / 4 + 1] : this.rt.IO[1];
  }
  /** Instructions executed by the last completed run. */
  get lastInsns(): number {
    return this.lastWasm ? (this.wasmHost as WasmHost).s[S_INSNS / 4] : this.insns;
  }

  /** Run the BPF function at `fnAddr` (from a BPF_PSEUDO_FUNC constant) with r1.. = args; returns r0. */
  invokeCallback(fnAddr: bigint | number, args: readonly (bigint | number)[]): bigint {
    const v = BigInt.asUintN(64, BigInt(fnAddr));
    const f = this.funcAt(Number(BigInt.asIntN(32, v)), Number(BigInt.asIntN(32, v >> 32n)));
    if (f === undefined) throw new BpfError(EFAULT, `callback address 0x${v.toString(16)} is not a BPF function`);
    const IO = this.rt.IO;
    for (let r = 1; r <= 5; r++) setReg(IO, r, args[r - 1] ?? 0);
    this.exec(f.prog, f.entry, this.budget, true);
    return u64Of(IO[0], IO[1]);
  }

  /**
   * A tail call from a helper (bpf_tail_call): run `target` with r1 = ctx in place of the
   * calling function, which exits with the callee's r0 as soon as the helper returns (the
   * generated code after `call bpf_tail_call` checks X.tc). Returns that r0. The callee runs
   * on its own stacks rather than over the caller's frame: nothing observable differs, since
   * the verifier forbids reading stack a program has not written.
   */
  tailCall(target: VmProgram, ctx: bigint | number): bigint {
    const IO = this.rt.IO;
    setReg(IO, 1, ctx);
    for (let r = 2; r <= 5; r++) setReg(IO, r, 0);
    this.exec(target, 0, this.budget, true, true);
    this.rt.X.tc = 1;
    return u64Of(IO[0], IO[1]);
  }

  private setArgs(r1: number, r2: number, r3: number, r4: number, r5: number): void {
    const IO = this.rt.IO;
    IO[2] = r1;
    IO[3] = Math.floor(r1 / 4294967296);
    IO[4] = r2;
    IO[5] = Math.floor(r2 / 4294967296);
    IO[6] = r3;
    IO[7] = Math.floor(r3 / 4294967296);
    IO[8] = r4;
    IO[9] = Math.floor(r4 / 4294967296);
    IO[10] = r5;
    IO[11] = Math.floor(r5 / 4294967296);
  }

  private exec(P: VmProgram, entry: number, budget: number, keepTailCalls = false, tail = false): void {
    // may_goto's budget: BPF_MAX_LOOPS passes for each run, a callback's run its own (the
    // kernel keeps the count in a stack slot each function that uses may_goto sets on entry).
    const loops = this.mayGotoLeft;
    this.mayGotoLeft = BPF_MAX_LOOPS;
    const tcc = this.tailCallCnt;
    if (!keepTailCalls) this.tailCallCnt = 0;
    const base = this.frameTop;
    if (base + MAX_CALL_FRAMES > this.stacks.length) this.growStacks(base + MAX_CALL_FRAMES, tail);
    this.frameTop = base + MAX_CALL_FRAMES;
    this.rt.X.tc = 0;
    try {
      P.exec(entry, budget, base);
    } finally {
      this.frameTop = base;
      this.mayGotoLeft = loops;
      if (!keepTailCalls) this.tailCallCnt = tcc;
    }
    this.insns = this.rt.IO[12];
    this.lastWasm = false;
  }

  private growStacks(need: number, tail = false): void {
    // A chain of tail calls nests runs too, bounded by MAX_TAIL_CALL_CNT rather than maxNesting.
    const limit = this.maxNesting + (tail ? MAX_TAIL_CALL_CNT + 1 : 0);
    if (need > limit * MAX_CALL_FRAMES) {
      throw new BpfError(E2BIG, `BPF runs nested more than ${this.maxNesting} deep`);
    }
    while (this.stacks.length < need) {
      const r = this.mem.alloc(MAX_BPF_STACK, { perm: "rw", kind: "stack", name: `stack${this.stacks.length}` });
      this.stacks.push(r);
      this.rt.STK.push(r.addr + MAX_BPF_STACK);
    }
  }

  private callOut(
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
  ): number {
    const depth = this.callDepth;
    let c = this.calls[depth];
    if (c === undefined) {
      c = new HelperCall(this.mem, this);
      this.calls[depth] = c;
    }
    const a = c.a;
    a[0] = a1l;
    a[1] = a1h;
    a[2] = a2l;
    a[3] = a2h;
    a[4] = a3l;
    a[5] = a3h;
    a[6] = a4l;
    a[7] = a4h;
    a[8] = a5l;
    a[9] = a5h;
    c.id = id;
    c.insnIdx = at;
    c.prog = P;
    c.retLo = 0;
    c.retHi = 0;
    this.callDepth = depth + 1;
    try {
      fn(c);
    } catch (e) {
      // A helper's bad access through VmMemory names no instruction: it is the call's.
      if (e instanceof VmFault && e.insn < 0) throw new VmFault(at, e.addr, e.size, e.kind, P.name);
      throw e;
    } finally {
      this.callDepth = depth;
    }
    W[1] = c.retHi;
    return c.retLo;
  }
}

/** Programs at least this long go to the Wasm tier under "auto". */
const AUTO_WASM_INSNS = 64;

/** Whether some jump goes backwards (a loop, bounded or not). */
function hasLoop(P: VmProgram): boolean {
  for (let i = 0; i < P.len; i++) {
    const cls = P.code[i] & 7;
    if (cls !== 5 && cls !== 6) continue;
    if (P.code[i] === CALL || P.code[i] === CALLX || P.code[i] === EXIT) continue;
    const gotol = cls === 6 && (P.code[i] & 0xf0) === 0;
    if ((gotol ? P.imm[i] : P.off[i]) < 0) return true;
  }
  return false;
}

function setReg(IO: Int32Array, r: number, v: bigint | number | undefined): void {
  if (v === undefined) {
    IO[r * 2] = 0;
    IO[r * 2 + 1] = 0;
  } else if (typeof v === "bigint") {
    IO[r * 2] = Number(BigInt.asIntN(32, v));
    IO[r * 2 + 1] = Number(BigInt.asIntN(32, v >> 32n));
  } else {
    IO[r * 2] = v;
    IO[r * 2 + 1] = Math.floor(v / 4294967296);
  }
}
