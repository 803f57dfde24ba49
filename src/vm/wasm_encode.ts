/**
 * A minimal WebAssembly binary encoder: the sections and instructions the Wasm tier emits
 * (types, imported functions and memory, functions, one funcref table, globals, exports,
 * element and code sections). Written by hand because what is needed is ~200 lines and the
 * npm encoders are either text-format toolchains (wabt, binaryen: megabytes) or unmaintained.
 */

export const I32 = 0x7f;
export const I64 = 0x7e;
export const F64 = 0x7c;
export const FUNCREF = 0x70;
export const VOID = 0x40;

/** Instruction opcodes used by the tier. */
export const Op = {
  unreachable: 0x00,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  br_if: 0x0d,
  br_table: 0x0e,
  return: 0x0f,
  call: 0x10,
  call_indirect: 0x11,
  drop: 0x1a,
  select: 0x1b,
  local_get: 0x20,
  local_set: 0x21,
  local_tee: 0x22,
  global_get: 0x23,
  global_set: 0x24,
  i32_load: 0x28,
  i64_load: 0x29,
  i32_load8_u: 0x2d,
  i64_load8_s: 0x30,
  i64_load8_u: 0x31,
  i64_load16_s: 0x32,
  i64_load16_u: 0x33,
  i64_load32_s: 0x34,
  i64_load32_u: 0x35,
  i32_store: 0x36,
  i64_store: 0x37,
  i64_store8: 0x3c,
  i64_store16: 0x3d,
  i64_store32: 0x3e,
  memory_size: 0x3f,
  i32_const: 0x41,
  i64_const: 0x42,
  i32_eqz: 0x45,
  i32_eq: 0x46,
  i32_ne: 0x47,
  i32_lt_s: 0x48,
  i32_lt_u: 0x49,
  i32_gt_s: 0x4a,
  i32_gt_u: 0x4b,
  i32_le_s: 0x4c,
  i32_le_u: 0x4d,
  i32_ge_s: 0x4e,
  i32_ge_u: 0x4f,
  i64_eqz: 0x50,
  i64_eq: 0x51,
  i64_ne: 0x52,
  i64_lt_s: 0x53,
  i64_lt_u: 0x54,
  i64_gt_s: 0x55,
  i64_gt_u: 0x56,
  i64_le_s: 0x57,
  i64_le_u: 0x58,
  i64_ge_s: 0x59,
  i64_ge_u: 0x5a,
  i32_add: 0x6a,
  i32_sub: 0x6b,
  i32_mul: 0x6c,
  i32_div_s: 0x6d,
  i32_div_u: 0x6e,
  i32_rem_s: 0x6f,
  i32_rem_u: 0x70,
  i32_and: 0x71,
  i32_or: 0x72,
  i32_xor: 0x73,
  i32_shl: 0x74,
  i32_shr_s: 0x75,
  i32_shr_u: 0x76,
  i32_rotl: 0x77,
  i32_rotr: 0x78,
  i64_add: 0x7c,
  i64_sub: 0x7d,
  i64_mul: 0x7e,
  i64_div_s: 0x7f,
  i64_div_u: 0x80,
  i64_rem_s: 0x81,
  i64_rem_u: 0x82,
  i64_and: 0x83,
  i64_or: 0x84,
  i64_xor: 0x85,
  i64_shl: 0x86,
  i64_shr_s: 0x87,
  i64_shr_u: 0x88,
  i32_wrap_i64: 0xa7,
  i64_extend_i32_s: 0xac,
  i64_extend_i32_u: 0xad,
  i64_trunc_f64_u: 0xb1,
  f64_convert_i64_u: 0xba,
  i32_extend8_s: 0xc0,
  i32_extend16_s: 0xc1,
  i64_extend8_s: 0xc2,
  i64_extend16_s: 0xc3,
  i64_extend32_s: 0xc4,
} as const;

/** A growable byte buffer with the LEB128 forms WebAssembly uses. */
export class Bytes {
  buf = new Uint8Array(32);
  len = 0;

  byte(b: number): this {
    if (this.len === this.buf.length) {
      const n = new Uint8Array(this.buf.length * 2);
      n.set(this.buf);
      this.buf = n;
    }
    this.buf[this.len++] = b;
    return this;
  }
  bytes(bs: ArrayLike<number>): this {
    for (let i = 0; i < bs.length; i++) this.byte(bs[i]);
    return this;
  }
  u32(v: number): this {
    let x = v >>> 0;
    do {
      const b = x & 0x7f;
      x >>>= 7;
      this.byte(x === 0 ? b : b | 0x80);
    } while (x !== 0);
    return this;
  }
  s32(v: number): this {
    let x = v | 0;
    for (;;) {
      const b = x & 0x7f;
      x >>= 7;
      if ((x === 0 && (b & 0x40) === 0) || (x === -1 && (b & 0x40) !== 0)) return this.byte(b);
      this.byte(b | 0x80);
    }
  }
  s64(v: bigint): this {
    let x = BigInt.asIntN(64, v);
    for (;;) {
      const b = Number(x & 0x7fn);
      x >>= 7n;
      if ((x === 0n && (b & 0x40) === 0) || (x === -1n && (b & 0x40) !== 0)) return this.byte(b);
      this.byte(b | 0x80);
    }
  }
  name(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.u32(b.length).bytes(b);
  }
  /** A length-prefixed copy of `b`. */
  vec(b: Bytes): this {
    this.u32(b.len);
    for (let i = 0; i < b.len; i++) this.byte(b.buf[i]);
    return this;
  }
  get out(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/** Code of one function body: instructions, with helpers for the common immediates. */
export class Code extends Bytes {
  op(o: number): this {
    return this.byte(o);
  }
  get(l: number): this {
    return this.byte(Op.local_get).u32(l);
  }
  set(l: number): this {
    return this.byte(Op.local_set).u32(l);
  }
  tee(l: number): this {
    return this.byte(Op.local_tee).u32(l);
  }
  i32(v: number): this {
    return this.byte(Op.i32_const).s32(v);
  }
  i64(v: bigint): this {
    return this.byte(Op.i64_const).s64(v);
  }
  /** A load or store with its alignment hint (log2) and offset. */
  mem(o: number, align: number, offset = 0): this {
    return this.byte(o).u32(align).u32(offset);
  }
  call(f: number): this {
    return this.byte(Op.call).u32(f);
  }
  br(depth: number): this {
    return this.byte(Op.br).u32(depth);
  }
}

export interface FuncType {
  params: number[];
  results: number[];
}

interface FuncDef {
  type: number;
  locals: number[];
  body: Code;
}

/** Builds one module. Imported functions come first in the function index space. */
export class ModuleBuilder {
  private readonly types: FuncType[] = [];
  private readonly imports: Bytes[] = [];
  private importedFuncs = 0;
  private readonly funcs: FuncDef[] = [];
  private readonly globals: Bytes[] = [];
  private readonly exports: Bytes[] = [];
  private table: number[] | undefined;

  type(params: number[], results: number[]): number {
    const i = this.types.findIndex((t) => t.params.join() === params.join() && t.results.join() === results.join());
    if (i >= 0) return i;
    return this.types.push({ params, results }) - 1;
  }

  /** Import a function; returns its index. All imports must be declared before any function. */
  importFunc(module: string, name: string, params: number[], results: number[]): number {
    if (this.funcs.length > 0) throw new Error("imports must precede functions");
    const t = this.type(params, results);
    this.imports.push(new Bytes().name(module).name(name).byte(0).u32(t));
    return this.importedFuncs++;
  }

  /** Import a memory with no maximum (matches any memory with at least `min` pages). */
  importMemory(module: string, name: string, min = 0): void {
    this.imports.push(new Bytes().name(module).name(name).byte(2).byte(0).u32(min));
  }

  /** Declare a function (body filled later); returns its index. */
  func(params: number[], results: number[], locals: number[] = []): { index: number; body: Code } {
    const body = new Code();
    this.funcs.push({ type: this.type(params, results), locals, body });
    return { index: this.importedFuncs + this.funcs.length - 1, body };
  }

  /** A mutable global initialised to zero; returns its index. */
  global(type: number): number {
    const g = new Bytes().byte(type).byte(1);
    if (type === I32) g.byte(Op.i32_const).s32(0);
    else if (type === I64) g.byte(Op.i64_const).s64(0n);
    else g.byte(0x44).bytes(new Uint8Array(8));
    g.byte(Op.end);
    return this.globals.push(g) - 1;
  }

  exportFunc(name: string, index: number): void {
    this.exports.push(new Bytes().name(name).byte(0).u32(index));
  }

  /** One funcref table holding these functions at indices 0.. (for call_indirect). */
  setTable(funcs: number[]): void {
    this.table = funcs;
  }

  build(): Uint8Array {
    const out = new Bytes().bytes([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    const section = (id: number, items: Bytes[] | Bytes) => {
      const body = Array.isArray(items) ? vecOf(items) : items;
      out.byte(id).vec(body);
    };
    const types = this.types.map((t) => {
      const b = new Bytes().byte(0x60).u32(t.params.length).bytes(t.params);
      return b.u32(t.results.length).bytes(t.results);
    });
    section(1, types);
    if (this.imports.length > 0) section(2, this.imports);
    section(
      3,
      this.funcs.map((f) => new Bytes().u32(f.type)),
    );
    if (this.table) section(4, [new Bytes().byte(FUNCREF).byte(0).u32(this.table.length)]);
    if (this.globals.length > 0) section(6, this.globals);
    if (this.exports.length > 0) section(7, this.exports);
    if (this.table) {
      const e = new Bytes().byte(0).byte(Op.i32_const).s32(0).byte(Op.end).u32(this.table.length);
      for (const f of this.table) e.u32(f);
      section(9, [e]);
    }
    section(
      10,
      this.funcs.map((f) => {
        const b = new Bytes();
        // Locals as runs of one type.
        const runs: [number, number][] = [];
        for (const t of f.locals) {
          const last = runs[runs.length - 1];
          if (last && last[1] === t) last[0]++;
          else runs.push([1, t]);
        }
        b.u32(runs.length);
        for (const [n, t] of runs) b.u32(n).byte(t);
        for (let i = 0; i < f.body.len; i++) b.byte(f.body.buf[i]);
        b.byte(Op.end);
        return new Bytes().vec(b);
      }),
    );
    return out.out;
  }
}

function vecOf(items: Bytes[]): Bytes {
  const b = new Bytes().u32(items.length);
  for (const it of items) for (let i = 0; i < it.len; i++) b.byte(it.buf[i]);
  return b;
}
