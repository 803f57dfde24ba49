/**
 * The BTF object (libbpf's struct btf / the kernel's struct btf): a raw blob, an index of type
 * record offsets built at parse time, and types decoded only when asked. Split BTF (a module on
 * top of vmlinux) continues the base's type ids and string offsets.
 */
import {
  BTF_HEADER_LEN,
  BTF_KIND_ARRAY,
  BTF_KIND_DATASEC,
  BTF_KIND_DECL_TAG,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FLOAT,
  BTF_KIND_FUNC,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_FWD,
  BTF_KIND_INT,
  BTF_KIND_MAX,
  BTF_KIND_NAMES,
  BTF_KIND_STRUCT,
  BTF_KIND_UNION,
  BTF_KIND_UNKN,
  BTF_KIND_VAR,
  BTF_MAGIC,
  BTF_VERSION,
} from "../uapi/btf.js";
import { BpfError, EINVAL } from "../uapi/errno.js";
import { encodeBtf } from "./encode.js";
import type { BtfMember, BtfType } from "./types.js";
import { btfTypeExtraSize } from "./types.js";
import { btfValidate } from "./validate.js";

export interface BtfParseOptions {
  /** The base BTF of a split BTF (e.g. vmlinux under a module's BTF). */
  base?: Btf;
  /** Also run the kernel's full checks (validate()) instead of only the structural ones. */
  validate?: boolean;
  /**
   * Memory for the type index, kept by the object if large enough (one entry per 12 bytes of type
   * section, plus one): a caller that parses again and again hands the same memory back each time
   * (src/cli/btf_file.ts) instead of a new array the first touch of which costs page faults.
   */
  index?: Uint32Array;
}

export interface BtfEncodeOptions {
  /** Byte order of the output; defaults to the order the BTF was read in. */
  byteOrder?: "little" | "big";
}

const VOID: BtfType = { id: 0, kind: BTF_KIND_UNKN, name: "", nameOff: 0, vlen: 0, kindFlag: false };

function einval(message: string, context: { typeId?: number; offset?: number } = {}): BpfError {
  return new BpfError(EINVAL, message, context);
}

/** Per-kind record layout (bytes after the 12-byte btf_type: fixed + per-vlen), -1 for invalid kinds; local tables keep the index walk free of cross-module calls. */
const FIXED_EXTRA = new Int8Array(32).fill(-1);
const PER_VLEN = new Uint8Array(32);
for (let k = 1; k <= BTF_KIND_MAX; k++) {
  FIXED_EXTRA[k] = btfTypeExtraSize(k, 0);
  PER_VLEN[k] = btfTypeExtraSize(k, 1) - FIXED_EXTRA[k];
}

export class Btf {
  readonly base?: Btf;
  /** First type id described by this object (1, or the base's last id + 1). */
  readonly startId: number;
  /** First string offset owned by this object (0, or the base's total string length). */
  readonly startStrOff: number;
  readonly littleEndian: boolean;
  /** The raw blob as given (empty once released). */
  get data(): Uint8Array {
    return this.bytes;
  }
  readonly hdrLen: number;

  private bytes: Uint8Array;
  private dv: DataView;
  /** Absolute offset of each own type record, indexed by id - startId. */
  private offsets: Uint32Array;
  private readonly strStart: number;
  private strLen: number;
  /** Decoded types by id - startId, in chunks of CACHE_CHUNK made on first use (a 126k-slot array costs a parse more than its walk). */
  private cache: ((BtfType | undefined)[] | undefined)[];
  private nameIndex?: { slots: Int32Array; hashes: Uint32Array; mask: number };

  private constructor(data: Uint8Array, opts: BtfParseOptions) {
    this.bytes = data;
    this.base = opts.base;
    this.dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (data.byteLength < 4) throw einval("hdr_len not found", { offset: 0 });
    const magicLe = this.dv.getUint16(0, true);
    if (magicLe === BTF_MAGIC) this.littleEndian = true;
    else if (this.dv.getUint16(0, false) === BTF_MAGIC) this.littleEndian = false;
    else throw einval(`Invalid magic 0x${magicLe.toString(16)}`, { offset: 0 });
    const le = this.littleEndian;
    const version = data[2];
    if (version !== BTF_VERSION) throw einval(`Unsupported version ${version}`, { offset: 2 });
    if (data[3] !== 0) throw einval(`Unsupported flags 0x${data[3].toString(16)}`, { offset: 3 });
    if (data.byteLength < 8) throw einval("hdr_len not found", { offset: 4 });
    const hdrLen = this.dv.getUint32(4, le);
    if (hdrLen < BTF_HEADER_LEN || hdrLen > data.byteLength)
      throw einval(`Invalid hdr_len ${hdrLen} (data size ${data.byteLength})`, { offset: 4 });
    for (let i = BTF_HEADER_LEN; i < hdrLen; i++)
      if (data[i] !== 0) throw einval("Unsupported btf_header", { offset: i });
    this.hdrLen = hdrLen;
    const typeOff = this.dv.getUint32(8, le);
    const typeLen = this.dv.getUint32(12, le);
    const strOff = this.dv.getUint32(16, le);
    const strLen = this.dv.getUint32(20, le);
    const avail = data.byteLength - hdrLen;
    if (typeOff > avail || typeLen > avail - typeOff)
      throw einval(`Type section (off ${typeOff} len ${typeLen}) past end of data (${avail} bytes)`, { offset: 8 });
    if (strOff > avail || strLen > avail - strOff)
      throw einval(`String section (off ${strOff} len ${strLen}) past end of data (${avail} bytes)`, { offset: 16 });
    if (typeOff & 3) throw einval("Unaligned type_off", { offset: 8 });
    if (typeOff < strOff ? typeOff + typeLen > strOff : strOff + strLen > typeOff)
      throw einval("Section overlap found", { offset: 8 });

    // Strings: NUL-terminated, and a base BTF starts with the empty string.
    this.strStart = hdrLen + strOff;
    this.strLen = strLen;
    if (this.base) {
      this.startId = this.base.nrTypes + 1;
      this.startStrOff = this.base.startStrOff + this.base.strLen;
      if (strLen > 0 && data[this.strStart + strLen - 1] !== 0)
        throw einval("Invalid string section: not NUL-terminated", { offset: this.strStart + strLen - 1 });
    } else {
      this.startId = 1;
      this.startStrOff = 0;
      if (strLen === 0 || data[this.strStart] !== 0 || data[this.strStart + strLen - 1] !== 0)
        throw einval("Invalid string section", { offset: this.strStart });
    }

    this.offsets = this.indexTypes(hdrLen + typeOff, typeLen, opts.index);
    this.cache = [];
  }

  static parse(data: Uint8Array, opts: BtfParseOptions = {}): Btf {
    const btf = new Btf(data, opts);
    if (opts.validate) btf.validate();
    return btf;
  }

  /**
   * Walk the type section once, recording where each record starts (libbpf's btf_parse_type_sec:
   * kinds and vlen are read, nothing is decoded).
   */
  private indexTypes(start: number, len: number, given: Uint32Array | undefined): Uint32Array {
    // Every record is at least 12 bytes: an index of len / 12 entries cannot overflow.
    const max = Math.floor(len / 12) + 1;
    const offs = given && given.length >= max ? given : new Uint32Array(max);
    const abs = this.bytes.byteOffset + start;
    // Aligned little-endian data (the common case) is read through a Uint32Array view: several
    // times faster than DataView for the 126k-record walk of vmlinux.
    const n =
      this.littleEndian && (abs & 3) === 0 && littleEndianHost
        ? indexWords(new Uint32Array(this.bytes.buffer, abs, len >>> 2), len, start, offs)
        : indexDataView(this.dv, this.littleEndian, start, len, offs);
    if (n < 0) throw indexError(this, start, len, offs, -n - 1);
    if (this.startId + n - 1 > 0x000fffff) throw einval(`Too many types (${n})`, { offset: start });
    // A copy of the used part, so the worst-case buffer is not kept alive with the object; the
    // caller's memory is the caller's to keep.
    return offs === given ? offs.subarray(0, n) : offs.slice(0, n);
  }

  /**
   * btf__free(): forget the blob, so that its owner may reuse the memory (src/cli/btf_file.ts
   * reads the next file into it). The object then holds no types: every later lookup is the
   * EINVAL of an id out of range, never a read of bytes that now belong to another file.
   */
  release(): Uint8Array {
    const data = this.bytes;
    this.bytes = new Uint8Array(0);
    this.dv = new DataView(this.bytes.buffer);
    this.offsets = new Uint32Array(0);
    this.strLen = 0;
    this.cache = [];
    this.nameIndex = undefined;
    return data;
  }

  /** Total number of types including the base's (ids 1..nrTypes are valid), like btf__type_cnt() - 1. */
  get nrTypes(): number {
    return this.startId - 1 + this.offsets.length;
  }

  /** Number of types this object itself holds (not counting the base). */
  get ownTypes(): number {
    return this.offsets.length;
  }

  /** Length of this object's own string section. */
  get stringsLen(): number {
    return this.strLen;
  }

  /** This object's own string section bytes. */
  get strings(): Uint8Array {
    return this.bytes.subarray(this.strStart, this.strStart + this.strLen);
  }

  /** Kind of a type without decoding it. */
  kindOf(id: number): number {
    if (id === 0) return BTF_KIND_UNKN;
    if (id < this.startId) return (this.base as Btf).kindOf(id);
    const off = this.recordOffset(id);
    return (this.dv.getUint32(off + 4, this.littleEndian) >>> 24) & 0x1f;
  }

  /** Name offset of a type without decoding it. */
  nameOffOf(id: number): number {
    if (id === 0) return 0;
    if (id < this.startId) return (this.base as Btf).nameOffOf(id);
    return this.dv.getUint32(this.recordOffset(id), this.littleEndian);
  }

  /** Byte offset of a type's record in this object's data (for error messages). */
  typeOffset(id: number): number {
    return this.recordOffset(id);
  }

  /** The raw info word of an own type (kind, vlen, kind_flag and any stray bits). */
  rawInfo(id: number): number {
    return this.dv.getUint32(this.recordOffset(id) + 4, this.littleEndian);
  }

  /** The raw size/type word of an own type. */
  rawSizeType(id: number): number {
    return this.dv.getUint32(this.recordOffset(id) + 8, this.littleEndian);
  }

  /** The `i`th u32 after an own type's btf_type (0: INT's int_data, VAR's linkage, ...). */
  rawExtra(id: number, i = 0): number {
    return this.dv.getUint32(this.recordOffset(id) + 12 + 4 * i, this.littleEndian);
  }

  /** btf_name_offset_valid: the offset falls inside the string sections (base and own). */
  nameOffsetValid(off: number): boolean {
    return off < this.startStrOff + this.strLen;
  }

  /** The kernel's BTF_LOAD checks (btf_check_all_metas + btf_resolve); throws an EINVAL BpfError. */
  validate(): this {
    btfValidate(this);
    return this;
  }

  private recordOffset(id: number): number {
    const i = id - this.startId;
    if (!Number.isInteger(id) || i < 0 || i >= this.offsets.length)
      throw einval(`Invalid type id ${id} (have ${this.nrTypes})`, { typeId: id });
    return this.offsets[i];
  }

  /** btf_type_by_id: id 0 is void; an id past the end is an EINVAL BpfError. */
  typeById(id: number): BtfType {
    if (id === 0) return VOID;
    if (id < this.startId && this.base && id > 0) return this.base.typeById(id);
    const off = this.recordOffset(id);
    const i = id - this.startId;
    const chunk = this.cache[i >>> CACHE_SHIFT];
    if (chunk) {
      const cached = chunk[i & CACHE_MASK];
      if (cached) return cached;
    }
    const t = this.decode(id, off);
    (chunk ?? this.newChunk(i >>> CACHE_SHIFT))[i & CACHE_MASK] = t;
    return t;
  }

  /**
   * The type decoded afresh without entering the cache: for one-pass walks over every type
   * (dumps, encode), where caching 100k+ objects only feeds the garbage collector.
   */
  peekType(id: number): BtfType {
    if (id === 0) return VOID;
    if (id < this.startId && this.base && id > 0) return this.base.peekType(id);
    const off = this.recordOffset(id);
    const i = id - this.startId;
    return this.cache[i >>> CACHE_SHIFT]?.[i & CACHE_MASK] ?? this.decode(id, off);
  }

  private newChunk(c: number): (BtfType | undefined)[] {
    // Filled up to c with undefined rather than left with holes, which would slow every lookup.
    for (let k = this.cache.length; k < c; k++) this.cache.push(undefined);
    const chunk = new Array<BtfType | undefined>(CACHE_CHUNK).fill(undefined);
    this.cache[c] = chunk;
    return chunk;
  }

  /** btf_type_by_id with the kernel's NULL for a bad id: undefined instead of an error. */
  tryTypeById(id: number): BtfType | undefined {
    if (!Number.isInteger(id) || id < 0 || id > this.nrTypes) return undefined;
    return this.typeById(id);
  }

  nameOf(id: number): string {
    return this.str(this.nameOffOf(id));
  }

  /** btf_name_by_offset: the NUL-terminated string at `off`; EINVAL if the offset is outside the table. */
  str(off: number): string {
    if (off < this.startStrOff) {
      if (this.base) return this.base.str(off);
    }
    const local = off - this.startStrOff;
    if (!Number.isInteger(off) || local < 0 || local >= this.strLen)
      throw einval(`Invalid string offset ${off} (string section is ${this.startStrOff + this.strLen} bytes)`, {
        offset: off,
      });
    const data = this.bytes;
    const begin = this.strStart + local;
    const end = data.indexOf(0, begin);
    const stop = end < 0 || end >= this.strStart + this.strLen ? -1 : end;
    if (stop < 0) throw einval(`Unterminated string at offset ${off}`, { offset: off });
    // Not cached: decoding a short ASCII name is cheaper than keeping a map of them all.
    return decodeString(data, begin, stop);
  }

  /** True if `off` names a string of this object or its base. */
  validStrOff(off: number): boolean {
    if (off < this.startStrOff) return this.base ? this.base.validStrOff(off) : false;
    return off - this.startStrOff < this.strLen;
  }

  private decode(id: number, off: number): BtfType {
    const dv = this.dv;
    const le = this.littleEndian;
    const nameOff = dv.getUint32(off, le);
    const info = dv.getUint32(off + 4, le);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const kindFlag = info >>> 31 === 1;
    const st = dv.getUint32(off + 8, le);
    const name = nameOff === 0 ? "" : this.str(nameOff);
    const p = off + 12;
    // Object literals with a fixed field order keep V8's shapes monomorphic per kind.
    switch (kind) {
      case BTF_KIND_INT: {
        const v = dv.getUint32(p, le);
        const encoding = (v >>> 24) & 0xf;
        return {
          id,
          kind,
          name,
          nameOff,
          vlen,
          kindFlag,
          size: st,
          encoding,
          offset: (v >>> 16) & 0xff,
          bits: v & 0xff,
        };
      }
      case BTF_KIND_ARRAY: {
        const type = dv.getUint32(p, le);
        const indexType = dv.getUint32(p + 4, le);
        const nelems = dv.getUint32(p + 8, le);
        return { id, kind, name, nameOff, vlen, kindFlag, type, indexType, nelems };
      }
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION: {
        const members: BtfMember[] = new Array(vlen);
        for (let i = 0, q = p; i < vlen; i++, q += 12) {
          const mNameOff = dv.getUint32(q, le);
          const o = dv.getUint32(q + 8, le);
          members[i] = {
            name: mNameOff === 0 ? "" : this.str(mNameOff),
            nameOff: mNameOff,
            type: dv.getUint32(q + 4, le),
            bitOffset: kindFlag ? o & 0xffffff : o,
            bitfieldSize: kindFlag ? o >>> 24 : 0,
          };
        }
        return { id, kind, name, nameOff, vlen, kindFlag, size: st, members };
      }
      case BTF_KIND_ENUM: {
        const values = new Array(vlen);
        for (let i = 0, q = p; i < vlen; i++, q += 8) {
          const vNameOff = dv.getUint32(q, le);
          const val = kindFlag ? dv.getInt32(q + 4, le) : dv.getUint32(q + 4, le);
          values[i] = { name: this.str(vNameOff), nameOff: vNameOff, val };
        }
        return { id, kind, name, nameOff, vlen, kindFlag, size: st, values, signed: kindFlag };
      }
      case BTF_KIND_ENUM64: {
        const values = new Array(vlen);
        for (let i = 0, q = p; i < vlen; i++, q += 12) {
          const vNameOff = dv.getUint32(q, le);
          const u = (BigInt(dv.getUint32(q + 8, le)) << 32n) | BigInt(dv.getUint32(q + 4, le));
          values[i] = { name: this.str(vNameOff), nameOff: vNameOff, val: kindFlag ? BigInt.asIntN(64, u) : u };
        }
        return { id, kind, name, nameOff, vlen, kindFlag, size: st, values, signed: kindFlag };
      }
      case BTF_KIND_FWD:
        return { id, kind, name, nameOff, vlen, kindFlag, isUnion: kindFlag };
      case BTF_KIND_FUNC:
        return { id, kind, name, nameOff, vlen, kindFlag, type: st, linkage: vlen };
      case BTF_KIND_FUNC_PROTO: {
        const params = new Array(vlen);
        for (let i = 0, q = p; i < vlen; i++, q += 8) {
          const aNameOff = dv.getUint32(q, le);
          params[i] = {
            name: aNameOff === 0 ? "" : this.str(aNameOff),
            nameOff: aNameOff,
            type: dv.getUint32(q + 4, le),
          };
        }
        return { id, kind, name, nameOff, vlen, kindFlag, type: st, params };
      }
      case BTF_KIND_VAR:
        return { id, kind, name, nameOff, vlen, kindFlag, type: st, linkage: dv.getUint32(p, le) };
      case BTF_KIND_DATASEC: {
        const vars = new Array(vlen);
        for (let i = 0, q = p; i < vlen; i++, q += 12)
          vars[i] = { type: dv.getUint32(q, le), offset: dv.getUint32(q + 4, le), size: dv.getUint32(q + 8, le) };
        return { id, kind, name, nameOff, vlen, kindFlag, size: st, vars };
      }
      case BTF_KIND_FLOAT:
        return { id, kind, name, nameOff, vlen, kindFlag, size: st };
      case BTF_KIND_DECL_TAG:
        return { id, kind, name, nameOff, vlen, kindFlag, type: st, componentIdx: dv.getInt32(p, le) };
      default:
        // PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG (the index rejected anything else).
        return { id, kind, name, nameOff, vlen, kindFlag, type: st } as BtfType;
    }
  }

  /** Own types in id order. */
  *types(): IterableIterator<BtfType> {
    for (let id = this.startId; id <= this.nrTypes; id++) yield this.typeById(id);
  }

  /**
   * Build the name index once: an open-addressing table of own type ids keyed by an FNV-1a hash
   * of the name bytes, read straight from the string section (no string is decoded).
   */
  private names(): { slots: Int32Array; hashes: Uint32Array; mask: number } {
    if (this.nameIndex) return this.nameIndex;
    const n = this.offsets.length;
    let cap = 16;
    while (cap < n * 2) cap <<= 1;
    const slots = new Int32Array(cap);
    const hashes = new Uint32Array(cap);
    const mask = cap - 1;
    const dv = this.dv;
    const le = this.littleEndian;
    const data = this.bytes;
    const strEnd = this.strStart + this.strLen;
    for (let i = 0; i < n; i++) {
      const nameOff = dv.getUint32(this.offsets[i], le);
      const local = nameOff - this.startStrOff;
      if (nameOff === 0 || local < 0 || local >= this.strLen) continue;
      let h = 0x811c9dc5;
      let q = this.strStart + local;
      while (q < strEnd && data[q] !== 0) h = Math.imul(h ^ data[q++], 0x01000193);
      if (q >= strEnd) continue; // unterminated: validate() reports it
      h >>>= 0;
      let slot = h & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = this.startId + i;
      hashes[slot] = h;
    }
    this.nameIndex = { slots, hashes, mask };
    return this.nameIndex;
  }

  /** Own ids named `name`, in id order. */
  private ownByName(name: string): number[] {
    const key = encoder.encode(name);
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i], 0x01000193);
    h >>>= 0;
    const { slots, hashes, mask } = this.names();
    const out: number[] = [];
    const data = this.bytes;
    for (let slot = h & mask; slots[slot] !== 0; slot = (slot + 1) & mask) {
      if (hashes[slot] !== h) continue;
      const id = slots[slot];
      const q = this.strStart + this.nameOffOf(id) - this.startStrOff;
      let k = 0;
      while (k < key.length && data[q + k] === key[k]) k++;
      if (k === key.length && data[q + k] === 0) out.push(id);
    }
    return out;
  }

  /** All ids with this name (base first), in id order. */
  findAllByName(name: string): number[] {
    if (name === "") return [];
    const own = this.ownByName(name);
    return this.base ? this.base.findAllByName(name).concat(own) : own;
  }

  /** btf__find_by_name / _kind: the first id with this name (and kind), or -1. */
  findByName(name: string, kind?: number): number {
    if (name === "void" && (kind === undefined || kind === BTF_KIND_UNKN)) return 0;
    if (name === "") return -1;
    if (this.base) {
      const id = this.base.findByName(name, kind);
      if (id >= 0) return id;
    }
    for (const id of this.ownByName(name)) if (kind === undefined || this.kindOf(id) === kind) return id;
    return -1;
  }

  /** btf__find_by_name_kind_own: like findByName but only among this object's own types (not the base's). */
  findByNameKindOwn(name: string, kind: number): number {
    if (name === "") return -1;
    for (const id of this.ownByName(name)) if (this.kindOf(id) === kind) return id;
    return -1;
  }

  /** btf_find_by_name_kind. */
  findByNameKind(name: string, kind: number): number {
    return this.findByName(name, kind);
  }

  /**
   * The raw .BTF of this object's own types and strings, re-encoded from the decoded types: a
   * change made to an object typeById() returned (libbpf-style fixups such as DATASEC sizes and
   * offsets) is part of the output.
   */
  encode(opts: BtfEncodeOptions = {}): Uint8Array {
    const le = opts.byteOrder ? opts.byteOrder === "little" : this.littleEndian;
    const self = this;
    function* own(): IterableIterator<BtfType> {
      for (let id = self.startId; id <= self.nrTypes; id++) yield self.peekType(id);
    }
    return encodeBtf([...own()], this.strings, le);
  }
}

const CACHE_SHIFT = 10;
const CACHE_CHUNK = 1 << CACHE_SHIFT;
const CACHE_MASK = CACHE_CHUNK - 1;

/**
 * The index walk over 32-bit words (aligned little-endian data): the offset of each record into
 * `offs`, returning the count, or -(count + 1) at the first record that is cut short or of an
 * invalid kind (indexError then says which, as the DataView walk would).
 */
function indexWords(u32: Uint32Array, len: number, start: number, offs: Uint32Array): number {
  let n = 0;
  let p = 0;
  while (p < len) {
    if (len - p < 12) return -n - 1;
    const info = u32[(p >>> 2) + 1];
    const kind = (info >>> 24) & 0x1f;
    const fixed = FIXED_EXTRA[kind];
    if (fixed < 0) return -n - 1;
    const need = 12 + fixed + PER_VLEN[kind] * (info & 0xffff);
    if (len - p < need) return -n - 1;
    offs[n++] = start + p;
    p += need;
  }
  return n;
}

/** The same walk through a DataView (big-endian or unaligned data). */
function indexDataView(dv: DataView, le: boolean, start: number, len: number, offs: Uint32Array): number {
  let n = 0;
  let p = 0;
  while (p < len) {
    if (len - p < 12) return -n - 1;
    const info = dv.getUint32(start + p + 4, le);
    const kind = (info >>> 24) & 0x1f;
    const fixed = FIXED_EXTRA[kind];
    if (fixed < 0) return -n - 1;
    const need = 12 + fixed + PER_VLEN[kind] * (info & 0xffff);
    if (len - p < need) return -n - 1;
    offs[n++] = start + p;
    p += need;
  }
  return n;
}

/** The error of the record the walk stopped at: the `n`th, just after offs[n - 1]'s. */
function indexError(btf: Btf, start: number, len: number, offs: Uint32Array, n: number): BpfError {
  const dv = new DataView(btf.data.buffer, btf.data.byteOffset, btf.data.byteLength);
  let p = start;
  if (n > 0) {
    const info = dv.getUint32(offs[n - 1] + 4, btf.littleEndian);
    const kind = (info >>> 24) & 0x1f;
    p = offs[n - 1] + 12 + FIXED_EXTRA[kind] + PER_VLEN[kind] * (info & 0xffff);
  }
  const end = start + len;
  const id = btf.startId + n;
  if (end - p < 12) return einval(`[${id}] meta_left:${end - p} meta_needed:12`, { typeId: id, offset: p });
  const info = dv.getUint32(p + 4, btf.littleEndian);
  const kind = (info >>> 24) & 0x1f;
  if (FIXED_EXTRA[kind] < 0) return einval(`[${id}] Invalid kind:${kind}`, { typeId: id, offset: p });
  const need = 12 + FIXED_EXTRA[kind] + PER_VLEN[kind] * (info & 0xffff);
  return einval(`[${id}] ${BTF_KIND_NAMES[kind]} meta_left:${end - p} meta_needed:${need}`, { typeId: id, offset: p });
}

const latin1 = new TextDecoder("latin1");
const encoder = new TextEncoder();
const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const utf8 = new TextDecoder("utf-8");

/** Decode bytes [begin, end) as UTF-8, with a fast path for the ASCII names BTF is made of. */
function decodeString(data: Uint8Array, begin: number, end: number): string {
  if (end - begin <= 64) {
    let ascii = true;
    for (let i = begin; i < end; i++)
      if (data[i] > 0x7f) {
        ascii = false;
        break;
      }
    if (ascii) return String.fromCharCode.apply(null, data.subarray(begin, end) as unknown as number[]);
    return utf8.decode(data.subarray(begin, end));
  }
  const sub = data.subarray(begin, end);
  for (let i = 0; i < sub.length; i++) if (sub[i] > 0x7f) return utf8.decode(sub);
  return latin1.decode(sub);
}
