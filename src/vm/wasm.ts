import { isLdImm64 } from "../isa/insn.js";
import { BPF_JA, BPF_JMP, BPF_JMP32 } from "../isa/opcodes.js";
import { BPF_PSEUDO_CALL, bpf_func_id } from "../uapi/bpf.js";
import { BpfError, EFAULT } from "../uapi/errno.js";
import { W } from "./alu64.js";
import { CALL, CALLX, type EnterArgs, EXIT, type Executor, type VmProgram } from "./program.js";
import { type StructEmitter, structure } from "./wasm_cfg.js";
import { type Code, F64, I32, I64, ModuleBuilder, Op, VOID } from "./wasm_encode.js";
import { S_INSNS, S_R0, WA, type WasmHost } from "./wasm_host.js";
import { emitWasmInsn, type InsnCtx, L } from "./wasm_insn.js";

/**
 * The WebAssembly tier: each BPF function (entry 0, bpf-to-bpf call targets, callback
 * targets) becomes a Wasm function over i64 locals r0..r10, taking r0..r9 and its frame number
 * and returning r0; bpf-to-bpf calls are Wasm calls (r6-r9 and r10 are the callee's own
 * locals, so nothing is saved by hand), callx goes through a funcref table. The program's
 * memory is the VmMemory's own WebAssembly.Memory, imported: map values, stacks and kernel
 * objects are read and written in place.
 *
 * Memory accesses the verifier proved (LoadOpts.proven) run unchecked, as the kernel's JIT
 * trusts the verifier; Wasm's bounds still keep them inside the VM memory. Others compare the
 * address with the region their site last passed in (wasm_host.ts: siteCaches) and, outside
 * it, check the shadow through a Wasm-to-Wasm call, as the other tiers do.
 *
 * Helpers and kfuncs are imported JavaScript functions taking each argument as two i32
 * halves (no BigInt at the boundary: Node 20 would box every i64 as a BigInt) and leaving r0
 * in the host's scratch words. Instructions are counted per basic block as in the other
 * tiers; the budget is checked per block.
 */

// Imported function indices.
const F_FAULT = 0;
const F_HCALL = 1;
const F_HCALLX = 2;
const F_FTGT = 3;
const F_OVER = 4;
const F_DEEP = 5;
const F_CHK = 6;
const F_MAYGOTO = 7;
const F_FILL = 8;
const F_TC = 9;
const F_BSWAP32 = 10;
// Globals.
const G_N = 0;
const G_B = 1;
const G_TB = 2;

const REG_PARAMS = [I64, I64, I64, I64, I64, I64, I64, I64, I64, I64, I32];
// r10, n, B, t, t2, a, b, pc, r11 (BPF_REG_AX: the verifier's rewrites' scratch register)
const LOCALS = [I64, I64, I64, I64, I64, I32, I32, I32, I64];

/** Bytes of the module for P (exported for inspection and tests). */
export function wasmModule(host: WasmHost, P: VmProgram): { bytes: Uint8Array; entries: number[] } {
  const m = new ModuleBuilder();
  const HALVES = [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32];
  m.importFunc("env", "fault", [I32, I32, I32, I32, I32, I32], []);
  m.importFunc("env", "hcall", [I32, ...HALVES], []);
  m.importFunc("env", "hcallx", [I32, I32, I32, ...HALVES], []);
  m.importFunc("env", "ftgt", [I32, I32], [I32]);
  m.importFunc("env", "over", [I32, F64], []);
  m.importFunc("env", "deep", [I32], []);
  m.importFunc("env", "chk", [I32, I32, I32], [I32]);
  m.importFunc("env", "maygoto", [], [I32]);
  m.importFunc("env", "fill", [I32, I32], []);
  m.importFunc("env", "tc", [], [I32]);
  m.importMemory("env", "mem");
  const bs = m.func([I32], [I32]);
  if (bs.index !== F_BSWAP32) throw new Error("wasm tier: function index layout");
  // bswap32: ((x rotr 8) & 0xff00ff00) | ((x rotl 8) & 0x00ff00ff)
  bs.body
    .get(0)
    .i32(8)
    .op(Op.i32_rotr)
    .i32(0xff00ff00 | 0)
    .op(Op.i32_and);
  bs.body.get(0).i32(8).op(Op.i32_rotl).i32(0x00ff00ff).op(Op.i32_and).op(Op.i32_or);
  m.global(I64);
  m.global(I64);
  m.global(I32);

  const entries = [...P.funcEntries].sort((a, b) => a - b);
  const funcIndex = new Map<number, number>();
  const bodies: Code[] = [];
  for (const e of entries) {
    const f = m.func(REG_PARAMS, [I64], LOCALS);
    funcIndex.set(e, f.index);
    bodies.push(f.body);
  }
  const sig = m.type(REG_PARAMS, [I64]);
  m.setTable(entries.map((e) => funcIndex.get(e)!));

  const leaders = [...P.leaders].sort((a, b) => a - b);
  const blockAt = new Map<number, number>(leaders.map((l, i) => [l, i]));
  const n = P.len;
  const ctx: InsnCtx = {
    P,
    scratch: host.scratch.addr,
    fault: F_FAULT,
    chk: F_CHK,
    bswap32: F_BSWAP32,
    mayGoto: F_MAYGOTO,
    proven: P.proven,
    fill: F_FILL,
    slotOf: host.siteCaches(P),
  };
  entries.forEach((entry, k) => {
    const c = bodies[k];
    // Blocks of this function: reachable from the entry by jumps and fall-through.
    const local = new Map<number, number>();
    const globalOf: number[] = [];
    const succ: number[][] = [];
    const idOf = (gb: number): number => {
      let id = local.get(gb);
      if (id === undefined) {
        id = globalOf.length;
        local.set(gb, id);
        globalOf.push(gb);
        succ.push([]);
      }
      return id;
    };
    idOf(blockAt.get(entry)!);
    for (let w = 0; w < globalOf.length; w++) {
      const gb = globalOf[w];
      const start = leaders[gb];
      const end = gb + 1 < leaders.length ? leaders[gb + 1] : n;
      const last = lastInsn(P, start, end);
      const s = P.insns[last];
      const next = end < n ? [idOf(gb + 1)] : [];
      const cls = s.code & 7;
      let out: number[];
      if (s.code === EXIT) out = [];
      else if (cls === BPF_JMP32 && (s.code & 0xf0) === BPF_JA) out = [idOf(blockAt.get(last + s.imm + 1)!)];
      else if (cls === BPF_JMP && (s.code & 0xf0) === BPF_JA) out = [idOf(blockAt.get(last + s.off + 1)!)];
      else if ((cls === BPF_JMP || cls === BPF_JMP32) && s.code !== CALL && s.code !== CALLX)
        out = [idOf(blockAt.get(last + s.off + 1)!), ...next];
      else out = next;
      succ[w] = out;
    }
    // Prologue: r10 from the stack-top table, the count and budget from the globals.
    c.byte(Op.global_get).u32(G_TB).get(L.fp).i32(4).op(Op.i32_mul).op(Op.i32_add);
    c.mem(Op.i64_load32_u, 2).set(L.r10);
    c.byte(Op.global_get).u32(G_N).set(L.n);
    c.byte(Op.global_get).u32(G_B).set(L.B);
    const syncOut = () => c.get(L.n).byte(Op.global_set).u32(G_N);
    const syncIn = () => c.byte(Op.global_get).u32(G_N).set(L.n);
    const callLocal = (at: number, target: number | undefined) => {
      // at most MAX_CALL_FRAMES frames (fp 0..7)
      c.get(L.fp).i32(7).op(Op.i32_eq).byte(Op.if).byte(VOID).i32(at).call(F_DEEP).op(Op.unreachable).op(Op.end);
      syncOut();
      for (let r = 0; r <= 9; r++) c.get(r);
      c.get(L.fp).i32(1).op(Op.i32_add);
      if (target === undefined) c.get(L.b).byte(Op.call_indirect).u32(sig).byte(0);
      else c.call(funcIndex.get(target)!);
      c.set(0);
      syncIn();
    };
    const args = () => {
      for (let r = 1; r <= 5; r++) {
        c.get(r).op(Op.i32_wrap_i64);
        c.get(r).i64(32n).op(Op.i64_shr_u).op(Op.i32_wrap_i64);
      }
    };
    const r0FromScratch = () => c.i32(host.scratch.addr).mem(Op.i64_load, 3).set(0);
    const e: StructEmitter = {
      body(b) {
        const gb = globalOf[b];
        const start = leaders[gb];
        const end = gb + 1 < leaders.length ? leaders[gb + 1] : n;
        let count = 0;
        for (let j = start; j < end; j++) {
          count++;
          if (isLdImm64(P.insns[j])) j++;
        }
        // n += count; if (n > B) over(start)
        c.get(L.n).i64(BigInt(count)).op(Op.i64_add).tee(L.n).get(L.B).op(Op.i64_gt_u);
        c.byte(Op.if)
          .byte(VOID)
          .i32(start)
          .get(L.B)
          .op(Op.f64_convert_i64_u)
          .call(F_OVER)
          .op(Op.unreachable)
          .op(Op.end);
        const last = lastInsn(P, start, end);
        for (let i = start; i < end; i++) {
          const s = P.insns[i];
          if (isLdImm64(s)) {
            const v = (BigInt(P.imm2[i]) << 32n) | BigInt(P.imm[i] >>> 0);
            c.i64(BigInt.asIntN(64, v)).set(reg(s.dst));
            i++;
            continue;
          }
          const cls = s.code & 7;
          if (s.code === CALL) {
            if (s.src === BPF_PSEUDO_CALL) {
              callLocal(i, i + s.imm + 1);
            } else {
              c.i32(i);
              args();
              c.call(F_HCALL);
              r0FromScratch();
              // A taken tail call leaves the function as its exit would, with the callee's r0.
              if (s.src === 0 && s.imm === bpf_func_id.BPF_FUNC_tail_call) {
                c.call(F_TC).byte(Op.if).byte(VOID);
                syncOut();
                c.get(0).op(Op.return);
                c.op(Op.end);
              }
            }
            continue;
          }
          if (s.code === CALLX) {
            c.get(reg(s.dst)).op(Op.i32_wrap_i64).get(reg(s.dst)).i64(32n).op(Op.i64_shr_u).op(Op.i32_wrap_i64);
            c.call(F_FTGT).tee(L.b).i32(-1).op(Op.i32_ne).byte(Op.if).byte(VOID);
            callLocal(i, undefined);
            c.op(Op.else);
            c.i32(i).get(reg(s.dst)).op(Op.i32_wrap_i64).get(reg(s.dst)).i64(32n).op(Op.i64_shr_u).op(Op.i32_wrap_i64);
            args();
            c.call(F_HCALLX);
            r0FromScratch();
            c.op(Op.end);
            continue;
          }
          // The block's final jump or exit is the structurer's.
          if (i === last && (s.code === EXIT || cls === BPF_JMP || cls === BPF_JMP32)) continue;
          emitWasmInsn(c, ctx, i);
        }
      },
      cond(b) {
        const gb = globalOf[b];
        const end = gb + 1 < leaders.length ? leaders[gb + 1] : n;
        emitWasmInsn(c, ctx, lastInsn(P, leaders[gb], end));
      },
      exit() {
        syncOut();
        c.get(0).op(Op.return);
      },
      block: () => c.byte(Op.block).byte(VOID),
      loop: () => c.byte(Op.loop).byte(VOID),
      if: () => c.byte(Op.if).byte(VOID),
      else: () => c.op(Op.else),
      end: () => c.op(Op.end),
      br: (d) => c.br(d),
      setPc: (v) => c.i32(v).set(L.pc),
      brTable(depths) {
        c.get(L.pc).byte(Op.br_table).u32(depths.length);
        for (const d of depths) c.u32(d);
        c.u32(depths[depths.length - 1]);
      },
    };
    structure(globalOf.length, succ, e);
    c.op(Op.unreachable);
  });

  // run(fi, r1l, r1h, ..., r5l, r5h, tb, B) -> r0 low half; r0's high half and the count in scratch.
  const run = m.func([I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, F64], [I32], [I64, I64, I32, I64]);
  const c = run.body;
  const [sN, sB, sTB, r0] = [13, 14, 15, 16];
  c.byte(Op.global_get).u32(G_N).set(sN).byte(Op.global_get).u32(G_B).set(sB).byte(Op.global_get).u32(G_TB).set(sTB);
  c.i64(0n).byte(Op.global_set).u32(G_N);
  c.get(12).byte(0xfc).u32(7).byte(Op.global_set).u32(G_B);
  c.get(11).byte(Op.global_set).u32(G_TB);
  c.i64(0n);
  for (let r = 1; r <= 5; r++) {
    c.get(r * 2 - 1).op(Op.i64_extend_i32_u);
    c.get(r * 2)
      .op(Op.i64_extend_i32_u)
      .i64(32n)
      .op(Op.i64_shl)
      .op(Op.i64_or);
  }
  for (let r = 6; r <= 9; r++) c.i64(0n);
  c.i32(0).get(0).byte(Op.call_indirect).u32(sig).byte(0).set(r0);
  const sc = host.scratch.addr;
  c.i32(sc).get(r0).mem(Op.i64_store, 3, S_R0);
  c.i32(sc).byte(Op.global_get).u32(G_N).mem(Op.i64_store32, 2, S_INSNS);
  c.get(sN).byte(Op.global_set).u32(G_N).get(sB).byte(Op.global_set).u32(G_B).get(sTB).byte(Op.global_set).u32(G_TB);
  c.get(r0).op(Op.i32_wrap_i64);
  m.exportFunc("run", run.index);

  // tramp(ctx, n, a0l, a0h, a1l, a1h, a2l, a2h, base): prog->bpf_func as a struct_ops trampoline
  // calls it, with the trampoline's stores of its first n (<= 3) u64 argument slots at ctx,
  // ctx + 8, ctx + 16 fused in; r1 = ctx, the entry called directly (no table), on the frames
  // from `base`, with the Vm's budget. r0 and the count are left in scratch (S_R0, S_INSNS).
  const tr = m.func([I32, I32, I32, I32, I32, I32, I32, I32, I32], [I32], [I64, I64, I32, I64]);
  const t = tr.body;
  for (let i = 0; i < 3; i++) {
    t.get(1)
      .i32(i)
      .op(Op.i32_gt_s)
      .byte(Op.if)
      .byte(VOID)
      .get(0)
      .get(2 + 2 * i)
      .op(Op.i64_extend_i32_u)
      .get(3 + 2 * i)
      .op(Op.i64_extend_i32_u)
      .i64(32n)
      .op(Op.i64_shl)
      .op(Op.i64_or)
      .mem(Op.i64_store, 3, 8 * i)
      .op(Op.end);
  }
  const [tN, tB, tTB, t0] = [9, 10, 11, 12];
  t.byte(Op.global_get).u32(G_N).set(tN).byte(Op.global_get).u32(G_B).set(tB).byte(Op.global_get).u32(G_TB).set(tTB);
  t.i64(0n).byte(Op.global_set).u32(G_N);
  t.i64(BigInt(host.budget)).byte(Op.global_set).u32(G_B);
  t.get(8).i32(4).op(Op.i32_mul).i32(host.tops.addr).op(Op.i32_add).byte(Op.global_set).u32(G_TB);
  t.i64(0n).get(0).op(Op.i64_extend_i32_u);
  for (let r = 2; r <= 9; r++) t.i64(0n);
  t.i32(0).call(funcIndex.get(0)!).set(t0);
  t.i32(sc).get(t0).mem(Op.i64_store, 3, S_R0);
  t.i32(sc).byte(Op.global_get).u32(G_N).mem(Op.i64_store32, 2, S_INSNS);
  t.get(tN).byte(Op.global_set).u32(G_N).get(tB).byte(Op.global_set).u32(G_B).get(tTB).byte(Op.global_set).u32(G_TB);
  t.get(t0).op(Op.i32_wrap_i64);
  m.exportFunc("tramp", tr.index);
  return { bytes: m.build(), entries };
}

function reg(r: number): number {
  return r === 10 ? L.r10 : r === 11 ? L.r11 : r;
}

/** Index of the last instruction of [start, end) (the first slot of a trailing ld_imm64). */
function lastInsn(P: VmProgram, start: number, end: number): number {
  let last = start;
  for (let j = start; j < end; j++) {
    last = j;
    if (isLdImm64(P.insns[j])) j++;
  }
  return last;
}

type RunFn = (
  fi: number,
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
  tb: number,
  budget: number,
) => number;

/**
 * The module's `tramp` export (see wasmModule): VmProgram.enterArgs's arguments and the frame
 * base of the run.
 */
export type WasmTramp = (...args: [...Parameters<EnterArgs>, base: number]) => number;

/** Compile P to WebAssembly for the Vm whose shared state is `host`. Throws if the engine refuses (size limits). */
export function compileWasm(host: WasmHost, P: VmProgram, framesPerRun: number): { exec: Executor; tramp: WasmTramp } {
  const { bytes, entries } = wasmModule(host, P);
  const rt = host.rt;
  const X = rt.X;
  const FN = P.fns;
  const tableIndex = new Map(entries.map((e, i) => [e, i]));
  const imports = {
    env: {
      mem: rt.M.memory,
      fault: P.fault,
      hcall(
        at: number,
        a: number,
        b: number,
        c: number,
        d: number,
        e: number,
        f: number,
        g: number,
        h: number,
        i: number,
        j: number,
      ) {
        const lo = X.hcall(FN[at]!, P, at, P.imm[at], a, b, c, d, e, f, g, h, i, j);
        const S = host.s;
        S[0] = lo;
        S[1] = W[1];
      },
      hcallx(
        at: number,
        tl: number,
        th: number,
        a: number,
        b: number,
        c: number,
        d: number,
        e: number,
        f: number,
        g: number,
        h: number,
        i: number,
        j: number,
      ) {
        const lo = X.hcallx(P, at, tl, th, a, b, c, d, e, f, g, h, i, j);
        const S = host.s;
        S[0] = lo;
        S[1] = W[1];
      },
      ftgt(lo: number, hi: number): number {
        const entry = X.funcTarget(P, lo, hi);
        return entry < 0 ? -1 : (tableIndex.get(entry) ?? -1);
      },
      over(at: number, budget: number) {
        X.over(P, at, budget);
      },
      deep(at: number) {
        X.tooDeep(P, at);
      },
      chk: host.chk,
      maygoto: (): number => (X.mayGoto() ? 1 : 0),
      fill: (a: number, slot: number) => host.fill(a, slot),
      tc(): number {
        const t = X.tc;
        X.tc = 0;
        return t;
      },
    },
  };
  const inst = new WA.Instance(new WA.Module(bytes), imports);
  const run = inst.exports.run as RunFn;
  const IO = rt.IO;
  const topsAddr = host.tops.addr;
  const exec: Executor = (entry, budget, base) => {
    const fi = entry === 0 ? 0 : tableIndex.get(entry);
    if (fi === undefined) X.bad(P, entry);
    if (host.filled < base + framesPerRun) host.fillTops(base + framesPerRun);
    let lo: number;
    try {
      lo = run(
        fi as number,
        IO[2],
        IO[3],
        IO[4],
        IO[5],
        IO[6],
        IO[7],
        IO[8],
        IO[9],
        IO[10],
        IO[11],
        topsAddr + base * 4,
        budget,
      );
    } catch (e) {
      if (e instanceof WA.RuntimeError) throw new BpfError(EFAULT, `${P.name}: ${e.message}`, { prog: P.name });
      throw e;
    }
    const S = host.s;
    IO[0] = lo;
    IO[1] = S[S_R0 / 4 + 1];
    IO[12] = S[S_INSNS / 4];
  };
  return { exec, tramp: inst.exports.tramp as WasmTramp };
}
