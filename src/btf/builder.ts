/**
 * Building BTF from TypeScript (libbpf's btf__add_* API): the simulated kernel describes its own
 * types with it, tests build fixtures with it. Strings are deduplicated; with a base the new types
 * form a split BTF whose ids and string offsets continue the base's.
 */
import {
  BTF_KIND_ARRAY,
  BTF_KIND_CONST,
  BTF_KIND_DATASEC,
  BTF_KIND_DECL_TAG,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FLOAT,
  BTF_KIND_FUNC,
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
  BTF_MAX_TYPE,
} from "../uapi/btf.js";
import { BpfError, EINVAL } from "../uapi/errno.js";
import { Btf } from "./btf.js";
import { encodeBtf } from "./encode.js";
import { btfAlignOf, btfResolveSize } from "./resolve.js";
import type { BtfMember, BtfType, BtfVarSecinfo } from "./types.js";

export interface BtfBuilderMember {
  name: string;
  type: number;
  bitOffset: number;
  bitfieldSize?: number;
}

export interface BtfBuilderAutoMember {
  name: string;
  type: number;
  /** Bitfield width; omit or 0 for an ordinary member. */
  bitfieldSize?: number;
}

export interface BtfBuilderOptions {
  base?: Btf;
}

const utf8 = new TextEncoder();

export class BtfBuilder {
  readonly base?: Btf;
  private readonly startId: number;
  private readonly startStrOff: number;
  private readonly types: BtfType[] = [];
  private readonly strOffsets = new Map<string, number>();
  /** The string section so far, in [0, strLen) of a buffer grown by doubling. */
  private strBuf = new Uint8Array(4096);
  private strLen = 0;

  constructor(opts: BtfBuilderOptions = {}) {
    this.base = opts.base;
    this.startId = this.base ? this.base.nrTypes + 1 : 1;
    this.startStrOff = this.base ? this.base.startStrOff + this.base.stringsLen : 0;
    // A base BTF's string section starts with "" at offset 0; a split one refers to the base's.
    if (!this.base) this.addString("");
    else this.strOffsets.set("", 0);
  }

  /** Id the next added type will get (for self-referencing declarations). */
  get nextId(): number {
    return this.startId + this.types.length;
  }

  get nrTypes(): number {
    return this.nextId - 1;
  }

  /** btf__add_str: the offset of `s`, adding it once. */
  addString(s: string): number {
    const have = this.strOffsets.get(s);
    if (have !== undefined) return have;
    // BTF names are ASCII: copied char by char, with no encoder call per string.
    let ascii = true;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 0 || c > 0x7f) {
        ascii = false;
        break;
      }
    }
    const bytes = ascii ? undefined : utf8.encode(s);
    if (bytes?.includes(0)) throw new BpfError(EINVAL, `BTF string ${JSON.stringify(s)} contains NUL`);
    const len = bytes ? bytes.length : s.length;
    const off = this.startStrOff + this.strLen;
    if (this.strLen + len + 1 > this.strBuf.length) {
      const grown = new Uint8Array(Math.max(this.strBuf.length * 2, this.strLen + len + 1));
      grown.set(this.strBuf.subarray(0, this.strLen));
      this.strBuf = grown;
    }
    const buf = this.strBuf;
    if (bytes) buf.set(bytes, this.strLen);
    else for (let i = 0; i < len; i++) buf[this.strLen + i] = s.charCodeAt(i);
    buf[this.strLen + len] = 0;
    this.strLen += len + 1;
    this.strOffsets.set(s, off);
    return off;
  }

  typeById(id: number): BtfType {
    if (id === 0) return { id: 0, kind: BTF_KIND_UNKN, name: "", nameOff: 0, vlen: 0, kindFlag: false };
    if (id < this.startId && this.base) return this.base.typeById(id);
    const t = this.types[id - this.startId];
    if (!t) throw new BpfError(EINVAL, `Invalid type id ${id} (have ${this.nrTypes})`, { typeId: id });
    return t;
  }

  private push(t: Omit<BtfType, "id" | "nameOff" | "vlen" | "kindFlag"> & Partial<BtfType>): number {
    const id = this.nextId;
    if (id > BTF_MAX_TYPE) throw new BpfError(EINVAL, "Too many BTF types");
    const name = t.name ?? "";
    const full = { vlen: 0, kindFlag: false, ...t, id, name, nameOff: this.addString(name) } as BtfType;
    this.types.push(full);
    return id;
  }

  addInt(name: string, size: number, encoding = 0, bits = size * 8, offset = 0): number {
    if (![1, 2, 4, 8, 16].includes(size)) throw new BpfError(EINVAL, `int ${name}: invalid size ${size}`);
    return this.push({ kind: BTF_KIND_INT, name, size, encoding, offset, bits });
  }

  addFloat(name: string, size: number): number {
    return this.push({ kind: BTF_KIND_FLOAT, name, size });
  }

  addPtr(type: number): number {
    return this.push({ kind: BTF_KIND_PTR, name: "", type });
  }

  addTypedef(name: string, type: number): number {
    return this.push({ kind: BTF_KIND_TYPEDEF, name, type });
  }

  addVolatile(type: number): number {
    return this.push({ kind: BTF_KIND_VOLATILE, name: "", type });
  }

  addConst(type: number): number {
    return this.push({ kind: BTF_KIND_CONST, name: "", type });
  }

  addRestrict(type: number): number {
    return this.push({ kind: BTF_KIND_RESTRICT, name: "", type });
  }

  addTypeTag(value: string, type: number): number {
    return this.push({ kind: BTF_KIND_TYPE_TAG, name: value, type });
  }

  addArray(elem: number, index: number, nelems: number): number {
    return this.push({ kind: BTF_KIND_ARRAY, name: "", type: elem, indexType: index, nelems });
  }

  private addComposite(kind: 4 | 5, name: string, size: number, members: BtfBuilderMember[]): number {
    // kind_flag is set as soon as one member is a bitfield, as libbpf's btf__add_field does.
    const kindFlag = members.some((m) => (m.bitfieldSize ?? 0) > 0);
    const ms: BtfMember[] = members.map((m) => ({
      name: m.name,
      nameOff: this.addString(m.name),
      type: m.type,
      bitOffset: m.bitOffset,
      bitfieldSize: m.bitfieldSize ?? 0,
    }));
    for (const m of ms)
      if (kindFlag && (m.bitOffset > 0xffffff || m.bitfieldSize > 0xff))
        throw new BpfError(EINVAL, `${name}.${m.name}: bit offset/size too large for kind_flag encoding`);
    return this.push({ kind, name, size, members: ms, vlen: ms.length, kindFlag });
  }

  /** The own struct/union `id`, for filling in members after declaring it. */
  private composite(id: number): BtfType & { members: BtfMember[] } {
    const t = id >= this.startId ? this.types[id - this.startId] : undefined;
    if (!t || (t.kind !== BTF_KIND_STRUCT && t.kind !== BTF_KIND_UNION))
      throw new BpfError(EINVAL, `type [${id}] is not a struct or union of this builder`, { typeId: id });
    return t;
  }

  /**
   * btf__add_field: append a member to a struct/union added earlier (so records can be declared
   * first and refer to each other). A bitfield switches the record to the kind_flag encoding.
   */
  addField(structId: number, name: string, type: number, bitOffset: number, bitfieldSize = 0): void {
    const t = this.composite(structId);
    if (t.kind === BTF_KIND_UNION && bitOffset !== 0)
      throw new BpfError(EINVAL, `union member ${name} must be at offset 0`, { typeId: structId });
    if (bitfieldSize > 0xff || (bitfieldSize > 0 && bitOffset > 0xffffff))
      throw new BpfError(EINVAL, `${t.name}.${name}: bit offset/size too large for kind_flag encoding`);
    t.members.push({ name, nameOff: this.addString(name), type, bitOffset, bitfieldSize });
    t.vlen = t.members.length;
    if (bitfieldSize > 0) t.kindFlag = true;
  }

  /** Replace the members of a struct/union added earlier. */
  setMembers(structId: number, members: BtfBuilderMember[]): void {
    const t = this.composite(structId);
    t.members.length = 0;
    t.vlen = 0;
    t.kindFlag = false;
    for (const m of members) this.addField(structId, m.name, m.type, m.bitOffset, m.bitfieldSize ?? 0);
  }

  addStruct(name: string, size: number, members: BtfBuilderMember[]): number {
    return this.addComposite(BTF_KIND_STRUCT, name, size, members);
  }

  addUnion(name: string, size: number, members: BtfBuilderMember[]): number {
    return this.addComposite(BTF_KIND_UNION, name, size, members);
  }

  /**
   * A struct laid out as a C compiler would on x86-64/BPF: each member at its natural alignment,
   * bitfields packed into storage units of their type unless they would straddle one, the size
   * rounded up to the largest alignment (1 throughout when `packed`).
   */
  addStructAuto(name: string, members: BtfBuilderAutoMember[], opts: { packed?: boolean } = {}): number {
    let bit = 0;
    let align = 1;
    const laid: BtfBuilderMember[] = [];
    for (const m of members) {
      const size = btfResolveSize(this, m.type);
      const a = opts.packed ? 1 : btfAlignOf(this, m.type);
      const w = m.bitfieldSize ?? 0;
      if (w > 0) {
        const unit = size * 8;
        if (w > unit) throw new BpfError(EINVAL, `${name}.${m.name}: bitfield wider than its type`);
        if (!opts.packed && Math.floor(bit / unit) !== Math.floor((bit + w - 1) / unit)) bit = roundUp(bit, a * 8);
        laid.push({ name: m.name, type: m.type, bitOffset: bit, bitfieldSize: w });
        bit += w;
      } else {
        bit = roundUp(bit, a * 8);
        laid.push({ name: m.name, type: m.type, bitOffset: bit });
        bit += size * 8;
      }
      align = Math.max(align, a);
    }
    return this.addStruct(name, roundUp(Math.ceil(bit / 8), align), laid);
  }

  /** A union laid out as C does: every member at 0, size the largest rounded to the alignment. */
  addUnionAuto(name: string, members: BtfBuilderAutoMember[]): number {
    let size = 0;
    let align = 1;
    for (const m of members) {
      size = Math.max(size, btfResolveSize(this, m.type));
      align = Math.max(align, btfAlignOf(this, m.type));
    }
    return this.addUnion(
      name,
      roundUp(size, align),
      members.map((m) => ({ name: m.name, type: m.type, bitOffset: 0, bitfieldSize: m.bitfieldSize })),
    );
  }

  addEnum(name: string, size: number, values: { name: string; val: number }[], signed = false): number {
    const vs = values.map((v) => ({ name: v.name, nameOff: this.addString(v.name), val: v.val }));
    return this.push({ kind: BTF_KIND_ENUM, name, size, values: vs, vlen: vs.length, kindFlag: signed, signed });
  }

  addEnum64(name: string, size: number, values: { name: string; val: bigint | number }[], signed = false): number {
    const vs = values.map((v) => ({ name: v.name, nameOff: this.addString(v.name), val: BigInt(v.val) }));
    return this.push({ kind: BTF_KIND_ENUM64, name, size, values: vs, vlen: vs.length, kindFlag: signed, signed });
  }

  addFwd(name: string, isUnion = false): number {
    return this.push({ kind: BTF_KIND_FWD, name, isUnion, kindFlag: isUnion });
  }

  addFuncProto(ret: number, params: { name: string; type: number }[]): number {
    const ps = params.map((p) => ({ name: p.name, nameOff: this.addString(p.name), type: p.type }));
    return this.push({ kind: BTF_KIND_FUNC_PROTO, name: "", type: ret, params: ps, vlen: ps.length });
  }

  addFunc(name: string, protoId: number, linkage = 0): number {
    return this.push({ kind: BTF_KIND_FUNC, name, type: protoId, linkage, vlen: linkage });
  }

  addVar(name: string, type: number, linkage = 0): number {
    return this.push({ kind: BTF_KIND_VAR, name, type, linkage });
  }

  addDatasec(name: string, size: number, vars: BtfVarSecinfo[]): number {
    const vs = vars.map((v) => ({ ...v }));
    return this.push({ kind: BTF_KIND_DATASEC, name, size, vars: vs, vlen: vs.length });
  }

  addDeclTag(value: string, type: number, componentIdx = -1): number {
    return this.push({ kind: BTF_KIND_DECL_TAG, name: value, type, componentIdx });
  }

  /** The string section as built so far. */
  private strings(): Uint8Array {
    return this.strBuf.slice(0, this.strLen);
  }

  /** The raw .BTF blob. */
  build(opts: { byteOrder?: "little" | "big" } = {}): Uint8Array {
    return encodeBtf(this.types, this.strings(), (opts.byteOrder ?? "little") === "little");
  }

  /** Build and parse back (on top of the base, if any). */
  toBtf(): Btf {
    return Btf.parse(this.build(), { base: this.base });
  }
}

function roundUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}
