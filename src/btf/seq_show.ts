/**
 * Showing a value of a BTF type (the kernel's btf_type_seq_show, as bpftool's btf_dumper.c
 * prints map values, e.g. `bpftool map dump` of a struct_ops map): nested structs as objects,
 * char arrays as strings, enums by name, pointers in hex, bitfields extracted, and function
 * pointers through a caller-supplied resolver (struct_ops shows the attached program there).
 *
 * Two forms, as bpftool has: plain text (`map dump`: pretty JSON-like, pointers as %p) and
 * JSON (`-j`: pointers as numbers, 128-bit values as strings).
 */
import {
  BTF_INT_BOOL,
  BTF_INT_CHAR,
  BTF_INT_SIGNED,
  BTF_KIND_ARRAY,
  BTF_KIND_CONST,
  BTF_KIND_DATASEC,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FLOAT,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_FWD,
  BTF_KIND_INT,
  BTF_KIND_PTR,
  BTF_KIND_RESTRICT,
  BTF_KIND_STRUCT,
  BTF_KIND_TYPE_TAG,
  BTF_KIND_TYPEDEF,
  BTF_KIND_UNION,
  BTF_KIND_UNKN,
  BTF_KIND_VAR,
  BTF_KIND_VOLATILE,
} from "../uapi/btf.js";
import { BpfError, E2BIG, EINVAL } from "../uapi/errno.js";
import type { Btf } from "./btf.js";
import { JsonWriter } from "./json_writer.js";
import { btfResolveSize, btfTypeSkipModifiers, MAX_RESOLVE_DEPTH } from "./resolve.js";
import type { BtfArray, BtfInt, BtfType } from "./types.js";

export interface SeqShowOptions {
  /** bpftool -j form (pointers as decimal numbers) instead of the plain-text form. */
  json?: boolean;
  /** Indent like `-p`; the plain-text form is always pretty. */
  pretty?: boolean;
  /**
   * How to show a function pointer's value (struct_ops stores program ids there); return
   * undefined to fall back to the plain pointer value.
   */
  funcPtr?: (value: bigint, protoId: number) => string | undefined;
  /** Byte order of the value (default little-endian, as on x86-64 and bpfel). */
  bigEndian?: boolean;
  /** Offset of the value within `bytes`. */
  offset?: number;
  /**
   * Stop with E2BIG once the text passes this many characters (default 16 MiB). Valid BTF can
   * describe billions of zero-sized elements (`int x[0xffffffff][0]`): the work is bounded by
   * what is printed, as the kernel's btf_show is by its buffer.
   */
  maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 16 << 20;

/** Nesting guard: BTF validated by the kernel never nests deeper than this. */
const MAX_NESTING = 64;

class Dumper {
  private readonly w: JsonWriter;
  private readonly plain: boolean;
  private readonly le: boolean;
  private readonly maxBytes: number;

  constructor(
    private readonly btf: Btf,
    private readonly bytes: Uint8Array,
    private readonly opts: SeqShowOptions,
  ) {
    this.plain = !opts.json;
    this.w = new JsonWriter(this.plain || (opts.pretty ?? false));
    this.le = !opts.bigEndian;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  }

  result(): string {
    return this.w.toString().replace(/\n$/, "");
  }

  private need(off: number, len: number, id: number): void {
    if (off < 0 || off + len > this.bytes.length)
      throw new BpfError(
        EINVAL,
        `value of type [${id}] needs bytes ${off}..${off + len} but only ${this.bytes.length} are given`,
        { typeId: id, offset: off },
      );
  }

  /** Unsigned little/big-endian integer of `len` bytes at `off`. */
  private uint(off: number, len: number): bigint {
    let v = 0n;
    for (let i = 0; i < len; i++) {
      const b = BigInt(this.bytes[off + (this.le ? len - 1 - i : i)]);
      v = (v << 8n) | b;
    }
    return v;
  }

  /** A bitfield of `nrBits` starting `bitOff` bits into the bytes at `off`, printed in hex as bpftool does. */
  private bitfield(off: number, bitOff: number, nrBits: number, id: number): void {
    const nbytes = Math.ceil((bitOff + nrBits) / 8);
    this.need(off, nbytes, id);
    const raw = this.uint(off, nbytes);
    const v = this.le
      ? (raw >> BigInt(bitOff)) & ((1n << BigInt(nrBits)) - 1n)
      : (raw >> BigInt(nbytes * 8 - bitOff - nrBits)) & ((1n << BigInt(nrBits)) - 1n);
    this.hex(v);
  }

  private hex(v: bigint): void {
    const s = `0x${v.toString(16)}`;
    this.w.raw(this.plain ? s : `"${s}"`);
  }

  private int(t: BtfInt, off: number, bitOff: number): void {
    const bits = t.bits;
    if (bitOff || t.offset || bits % 8) {
      const total = bitOff + t.offset;
      this.bitfield(off + (total >> 3), total & 7, bits, t.id);
      return;
    }
    this.need(off, bits / 8, t.id);
    const u = this.uint(off, bits / 8);
    if (bits === 128) {
      this.hex(u);
      return;
    }
    switch (t.encoding) {
      case 0:
        if (bits > 64) {
          this.hex(u);
          return;
        }
        {
          this.w.raw(String(u));
          return;
        }
      case BTF_INT_SIGNED:
        if (bits > 64) {
          this.hex(u);
          return;
        }
        {
          this.w.raw(String(BigInt.asIntN(bits, u)));
          return;
        }
      case BTF_INT_CHAR: {
        const c = Number(u & 0xffn);
        if (c >= 0x20 && c < 0x7f) {
          this.w.string(String.fromCharCode(c));
          return;
        }
        this.w.raw(this.plain ? `0x${c.toString(16)}` : `"\\u00${c.toString(16).padStart(2, "0")}"`);
        return;
      }
      case BTF_INT_BOOL: {
        this.w.raw(u !== 0n ? "true" : "false");
        return;
      }
      default:
        throw new BpfError(EINVAL, `int [${t.id}] has unsupported encoding ${t.encoding}`, { typeId: t.id });
    }
  }

  /** is_str_array: a char array holding a printable NUL-terminated string. */
  private strArray(t: BtfArray, off: number): string | undefined {
    if (!t.nelems) return undefined;
    let e = this.btf.typeById(t.type);
    for (
      let d = 0;
      d < MAX_RESOLVE_DEPTH &&
      (e.kind === BTF_KIND_CONST ||
        e.kind === BTF_KIND_VOLATILE ||
        e.kind === BTF_KIND_RESTRICT ||
        e.kind === BTF_KIND_TYPE_TAG);
      d++
    )
      e = this.btf.typeById(e.type);
    if (e.kind !== BTF_KIND_INT || e.size !== 1) return undefined;
    if (e.encoding !== BTF_INT_CHAR && e.name !== "char") return undefined;
    this.need(off, t.nelems, t.id);
    let s = "";
    for (let i = 0; i < t.nelems; i++) {
      const c = this.bytes[off + i];
      if (c === 0) return s;
      if (c <= 0x1f || c >= 0x7f) return undefined;
      s += String.fromCharCode(c);
    }
    return undefined;
  }

  private ptr(t: BtfType & { type: number }, off: number): void {
    this.need(off, 8, t.id);
    const v = this.uint(off, 8);
    if (this.opts.funcPtr) {
      const target = btfTypeSkipModifiers(this.btf, t.type);
      if (target.type.kind === BTF_KIND_FUNC_PROTO) {
        const s = this.opts.funcPtr(v, target.id);
        if (s !== undefined) {
          this.w.string(s);
          return;
        }
      }
    }
    // glibc's %p: "(nil)" for NULL, else 0x-prefixed hex.
    if (this.plain) this.w.raw(v === 0n ? "(nil)" : `0x${v.toString(16)}`);
    else this.w.raw(String(v));
  }

  show(id: number, off: number, bitOff: number, depth: number): void {
    if (depth > MAX_NESTING) throw new BpfError(EINVAL, `type [${id}] nests too deep`, { typeId: id });
    // Every call prints something, so this bounds the calls too.
    if (this.w.length > this.maxBytes)
      throw new BpfError(E2BIG, `value of type [${id}] prints more than ${this.maxBytes} bytes`, { typeId: id });
    const t = this.btf.typeById(id);
    switch (t.kind) {
      case BTF_KIND_INT: {
        this.int(t, off, bitOff);
        return;
      }
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION:
        this.w.startObject();
        for (const m of t.members) {
          this.w.name(m.name);
          const moff = off + (m.bitOffset >> 3);
          if (m.bitfieldSize) this.bitfield(moff, m.bitOffset & 7, m.bitfieldSize, t.id);
          else this.show(m.type, moff, m.bitOffset & 7, depth + 1);
        }
        this.w.endObject();
        return;
      case BTF_KIND_ARRAY: {
        const s = this.strArray(t, off);
        if (s !== undefined) {
          this.w.string(s);
          return;
        }
        const esize = btfResolveSize(this.btf, t.type);
        this.need(off, esize * t.nelems, t.id);
        this.w.startArray();
        for (let i = 0; i < t.nelems; i++) this.show(t.type, off + i * esize, 0, depth + 1);
        this.w.endArray();
        return;
      }
      case BTF_KIND_ENUM: {
        this.need(off, t.size, t.id);
        const v = BigInt.asIntN(t.size * 8, this.uint(off, t.size));
        for (const e of t.values)
          if (BigInt(e.val | 0) === v || BigInt(e.val) === v) {
            this.w.string(e.name);
            return;
          }
        this.w.raw(String(t.signed ? v : BigInt.asUintN(t.size * 8, v)));
        return;
      }
      case BTF_KIND_ENUM64: {
        this.need(off, 8, t.id);
        const u = this.uint(off, 8);
        for (const e of t.values)
          if (BigInt.asUintN(64, e.val) === u) {
            this.w.string(e.name);
            return;
          }
        this.w.raw(String(t.signed ? BigInt.asIntN(64, u) : u));
        return;
      }
      case BTF_KIND_PTR: {
        this.ptr(t, off);
        return;
      }
      case BTF_KIND_FLOAT: {
        this.need(off, t.size, t.id);
        const dv = new DataView(this.bytes.buffer, this.bytes.byteOffset + off, t.size);
        if (t.size === 4) {
          this.w.raw(String(dv.getFloat32(0, this.le)));
          return;
        }
        if (t.size === 8) {
          this.w.raw(String(dv.getFloat64(0, this.le)));
          return;
        }
        this.hex(this.uint(off, t.size));
        return;
      }
      case BTF_KIND_TYPEDEF:
      case BTF_KIND_VOLATILE:
      case BTF_KIND_CONST:
      case BTF_KIND_RESTRICT:
      case BTF_KIND_TYPE_TAG: {
        this.show(btfTypeSkipModifiers(this.btf, id).id, off, bitOff, depth + 1);
        return;
      }
      case BTF_KIND_VAR:
        this.w.startObject();
        this.w.name(t.name);
        this.show(t.type, off, bitOff, depth + 1);
        this.w.endObject();
        return;
      case BTF_KIND_DATASEC:
        this.w.startObject();
        this.w.name(t.name);
        this.w.startArray();
        for (const v of t.vars) this.show(v.type, off + v.offset, 0, depth + 1);
        this.w.endArray();
        this.w.endObject();
        return;
      case BTF_KIND_UNKN: {
        this.w.raw("(unknown)");
        return;
      }
      case BTF_KIND_FWD:
        throw new BpfError(EINVAL, `type [${id}] is a forward declaration: no value to show`, { typeId: id });
      default:
        throw new BpfError(EINVAL, `type [${id}] kind ${t.kind} has no value to show`, { typeId: id });
    }
  }
}

/**
 * Show `bytes` (starting at opts.offset) as a value of type `typeId`. Bytes missing for the
 * type are an EINVAL BpfError naming the type and offset.
 */
export function btfTypeSeqShow(btf: Btf, typeId: number, bytes: Uint8Array, opts: SeqShowOptions = {}): string {
  const d = new Dumper(btf, bytes, opts);
  d.show(typeId, opts.offset ?? 0, 0, 0);
  return d.result();
}

/** The JSON form parsed into a JS value (numbers beyond 2^53 lose precision; use the string form for those). */
export function btfTypeSeqShowJson(btf: Btf, typeId: number, bytes: Uint8Array, opts: SeqShowOptions = {}): unknown {
  return JSON.parse(btfTypeSeqShow(btf, typeId, bytes, { ...opts, json: true, pretty: false }));
}
