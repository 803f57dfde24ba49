import { BPF_LDX, BPF_ST, BPF_STX } from "../isa/opcodes.js";
import { MAX_CALL_FRAMES } from "../uapi/bpf.js";
import type { Region, VmMemory } from "./memory.js";
import type { VmProgram } from "./program.js";
import type { Runtime } from "./runtime.js";
import { type Code, I32, ModuleBuilder, Op } from "./wasm_encode.js";
import { SLOT_BYTES, SLOT_REFILLS } from "./wasm_insn.js";

/** The WebAssembly API as far as the tier uses it (the project's lib settings carry no WebAssembly types). */
export interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
  RuntimeError: new (...a: unknown[]) => Error;
}
export const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Shadow permission check: (addr, size, perm) -> 1 when every byte of the access has `perm`. */
export type ShadowCheck = (addr: number, size: number, perm: number) => number;

/**
 * Scratch words (byte offsets): a helper's r0 at 0 (lo, hi), a finished run's instruction count
 * at S_INSNS and its r0 at S_R0 (lo, hi): a run's results stay put while helpers of an enclosing
 * run are called, so the Vm reads them only when asked (Vm.lastR0Lo ...).
 */
export const S_INSNS = 8;
export const S_R0 = 16;
const SCRATCH_BYTES = 24;

/**
 * What compiled programs of one Vm share: the scratch words where helpers leave r0 and a run
 * leaves r0's high half and its instruction count, the table of frame stack tops (r10 per
 * frame), and the shadow-check function. Made on the first Wasm compile of a Vm.
 */
export class WasmHost {
  readonly scratch: Region;
  readonly tops: Region;
  readonly chk: ShadowCheck;
  private S: Int32Array;
  /** Frames whose stack top is in the table (filled up to the stacks the Vm has). */
  filled = 0;
  private readonly caches = new Map<VmProgram, Region>();
  private hooked = false;

  constructor(
    readonly rt: Runtime,
    maxFrames: number,
    /** The instruction budget of a run entered through a module's `tramp` export (the Vm's). */
    readonly budget = 10_000_000,
  ) {
    const mem = rt.M;
    this.scratch = mem.alloc(SCRATCH_BYTES, { perm: "r", kind: "kobj", name: "wasm_scratch", align: 8 });
    this.tops = mem.alloc(maxFrames * 4, { perm: "r", kind: "kobj", name: "wasm_stack_tops" });
    // Programs never address these: no permission bits.
    mem.shadow.fill(0, this.scratch.addr, this.scratch.addr + SCRATCH_BYTES);
    mem.shadow.fill(0, this.tops.addr, this.tops.addr + maxFrames * 4);
    this.chk = shadowChecker(mem);
    this.S = new Int32Array(mem.memory.buffer, this.scratch.addr, SCRATCH_BYTES / 4);
  }

  /** The scratch words, as a view over the current buffer. */
  get s(): Int32Array {
    let S = this.S;
    if (S.length === 0) {
      S = new Int32Array(this.rt.M.memory.buffer, this.scratch.addr, SCRATCH_BYTES / 4);
      this.S = S;
    }
    return S;
  }

  /** Copy stack tops of frames [filled, need) into the table the compiled code reads r10 from. */
  fillTops(need: number): void {
    const STK = this.rt.STK;
    const dv = this.rt.M.dv;
    for (let i = this.filled; i < need && i < STK.length; i++) dv.setInt32(this.tops.addr + i * 4, STK[i], true);
    this.filled = Math.min(need, STK.length);
  }

  /**
   * Region-cache slots for P's unproven access sites (see SLOT_BYTES): per instruction, its
   * slot's address, or undefined when every access is proven. Replaces P's earlier ones.
   */
  siteCaches(P: VmProgram): Int32Array | undefined {
    this.release(P);
    const proven = P.proven;
    let n = 0;
    for (let i = 0; i < P.len; i++) {
      const cls = P.code[i] & 7;
      if ((cls === BPF_LDX || cls === BPF_ST || cls === BPF_STX) && proven?.[i] !== 1) n++;
    }
    if (n === 0) return undefined;
    const mem = this.rt.M;
    const r = mem.alloc(n * SLOT_BYTES, { perm: "r", kind: "kobj", name: `wasm_sites ${P.name}`, align: 8 });
    // Programs never address it.
    mem.shadow.fill(0, r.addr, r.addr + r.size);
    this.caches.set(P, r);
    const slotOf = new Int32Array(P.len);
    const dv = mem.dv;
    let k = 0;
    for (let i = 0; i < P.len; i++) {
      const cls = P.code[i] & 7;
      if ((cls === BPF_LDX || cls === BPF_ST || cls === BPF_STX) && proven?.[i] !== 1) {
        const slot = r.addr + k++ * SLOT_BYTES;
        slotOf[i] = slot;
        dv.setInt32(slot + 8, SLOT_REFILLS, true);
      }
    }
    if (!this.hooked) {
      this.hooked = true;
      mem.freeHooks.push(() => this.forgetRegions());
    }
    return slotOf;
  }

  /** Free P's slots (P recompiled or unloaded). */
  release(P: VmProgram): void {
    const r = this.caches.get(P);
    if (!r) return;
    this.caches.delete(P);
    this.rt.M.free(r);
  }

  /** An access at `a` passed the shadow check: cache the region it fell in for its site. */
  fill(a: number, slot: number): void {
    const mem = this.rt.M;
    const dv = mem.dv;
    dv.setInt32(slot + 8, dv.getInt32(slot + 8, true) - 1, true);
    const r = mem.regionAt(a >>> 0);
    if (r === undefined || r.size < 8) return;
    dv.setInt32(slot, r.addr, true);
    dv.setInt32(slot + 4, r.size - 7, true);
  }

  /** A region was freed: no site may pass on a cached region any more. */
  private forgetRegions(): void {
    const dv = this.rt.M.dv;
    for (const r of this.caches.values())
      for (let s = r.addr; s < r.addr + r.size; s += SLOT_BYTES) dv.setInt32(s + 4, 0, true);
  }
}

/** Frames the stack-top table holds: every nesting level's MAX_CALL_FRAMES. */
export function framesFor(maxNesting: number): number {
  return maxNesting * MAX_CALL_FRAMES;
}

const checkers = new WeakMap<VmMemory, ShadowCheck>();

/**
 * A module over the shadow memory exporting chk(addr, size, perm): the first and last byte of
 * the access carry every bit of perm (regions are separated by guard gaps wider than any
 * access, so both ends in one mapped region means the whole access is). A call from compiled
 * programs into it is a Wasm-to-Wasm call, no JavaScript in between.
 */
function shadowChecker(mem: VmMemory): ShadowCheck {
  const have = checkers.get(mem);
  if (have) return have;
  const m = new ModuleBuilder();
  m.importMemory("env", "shadow");
  const { index, body } = m.func([I32, I32, I32], [I32]);
  const c: Code = body;
  // addr + size > memory size in bytes (64-bit sum: no wrap-around): not mapped.
  c.get(0).op(Op.i64_extend_i32_u).get(1).op(Op.i64_extend_i32_u).op(Op.i64_add);
  c.byte(Op.memory_size).byte(0).op(Op.i64_extend_i32_u).i64(16n).op(Op.i64_shl).op(Op.i64_gt_u);
  c.byte(Op.if).byte(0x40).i32(0).op(Op.return).op(Op.end);
  c.get(0).mem(Op.i32_load8_u, 0).get(2).op(Op.i32_and).get(2).op(Op.i32_eq);
  c.get(0)
    .get(1)
    .op(Op.i32_add)
    .i32(1)
    .op(Op.i32_sub)
    .mem(Op.i32_load8_u, 0)
    .get(2)
    .op(Op.i32_and)
    .get(2)
    .op(Op.i32_eq);
  c.op(Op.i32_and);
  m.exportFunc("chk", index);
  const inst = new WA.Instance(new WA.Module(m.build()), { env: { shadow: mem.shadowMemory } });
  const fn = inst.exports.chk as ShadowCheck;
  checkers.set(mem, fn);
  return fn;
}
