/**
 * BTF to compilable C (libbpf's btf_dump.c, as `bpftool btf dump ... format c` uses it).
 *
 * Two passes per requested type: a topological ordering in which a definition that embeds another
 * type by value ("strong" link) comes after it, while a pointer to a named record ("weak" link)
 * is satisfied by a forward declaration; then emission in C syntax, anonymous records and enums
 * inlined where used, names that C would see twice suffixed ___2, ___3...
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
  BTF_KIND_VAR,
  BTF_KIND_VOLATILE,
} from "../uapi/btf.js";
import { BpfError, E2BIG, EINVAL, ELOOP } from "../uapi/errno.js";
import type { Btf } from "./btf.js";
import { btfResolveSize } from "./resolve.js";
import type { BtfComposite, BtfEnum, BtfEnum64, BtfType } from "./types.js";

/** Order states (NOT_ORDERED is 0, the initial value). */
const ORDERING = 1;
const ORDERED = 2;
const NOT_EMITTED = 0;
const EMITTING = 1;
const EMITTED = 2;

const TABS = "\t".repeat(13);
const pfx = (lvl: number): string => (lvl >= TABS.length ? TABS : TABS.slice(0, lvl));

/** GCC-internal typedef targets that need an alias to compile with clang. */
const MISSING_BASE_TYPES: Record<string, string> = {
  __Poly8_t: "unsigned char",
  __Poly16_t: "unsigned short",
  __Poly64_t: "unsigned long long",
  __Poly128_t: "unsigned __int128",
};

/** A view into a chain of type ids being declared (btf_dump's id_stack). */
interface DeclStack {
  ids: number[];
  cnt: number;
}

function isMod(t: BtfType): boolean {
  return (
    t.kind === BTF_KIND_VOLATILE ||
    t.kind === BTF_KIND_CONST ||
    t.kind === BTF_KIND_RESTRICT ||
    t.kind === BTF_KIND_TYPE_TAG
  );
}

export interface BtfDumpOptions {
  /** Pointer size of the target (8 for BPF and x86-64). */
  ptrSize?: number;
  /**
   * Stop with E2BIG once the output passes this many characters (default 256 MiB, half a V8
   * string). Corrupt member offsets can ask for 2^31 bits of padding per struct: bpftool prints
   * all of it to its stream; a string cannot hold it.
   */
  maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 256 << 20;

/** struct btf_dump: per-type ordering/emission state kept across dumpType() calls. */
export class BtfDump {
  private readonly btf: Btf;
  private readonly ptrSize: number;
  private readonly out: string[] = [];
  private outBytes = 0;
  private readonly maxBytes: number;
  private readonly orderState: Uint8Array;
  private readonly emitState: Uint8Array;
  private readonly fwdEmitted: Uint8Array;
  private readonly referenced: Uint8Array;
  private referencedReady = false;
  private readonly nameResolved: Uint8Array;
  /**
   * Modifiers, arrays and prototypes are never marked ORDERED, so every path through them is
   * walked again (exponentially often through prototypes whose parameters share types). Their
   * answer 1 is final (it comes from ORDERED types below), so it is remembered per through_ptr.
   */
  private readonly strongVia: Uint8Array;
  /**
   * For types other than records on the current ordering path, 1 + the records entered above
   * them. A loop back to one with no record in between (a prototype taking itself, a typedef of
   * itself) has no C spelling and would recurse forever; a loop through a record ends there.
   */
  private readonly onPath: Int32Array;
  private recordDepth = 0;
  private readonly cachedNames: (string | undefined)[] = [];
  private readonly alignCache: Int32Array;
  private readonly typeNames = new Map<string, number>();
  private readonly identNames = new Map<string, number>();
  private emitQueue: number[] = [];

  constructor(btf: Btf, opts: BtfDumpOptions = {}) {
    this.btf = btf;
    this.ptrSize = opts.ptrSize ?? 8;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    const n = btf.nrTypes + 1;
    this.orderState = new Uint8Array(n);
    this.emitState = new Uint8Array(n);
    this.fwdEmitted = new Uint8Array(n);
    this.referenced = new Uint8Array(n);
    this.nameResolved = new Uint8Array(n);
    this.strongVia = new Uint8Array(n);
    this.onPath = new Int32Array(n);
    this.alignCache = new Int32Array(n).fill(-1);
    this.orderState[0] = ORDERED;
    this.emitState[0] = EMITTED;
  }

  /** Whether any type refers to `id`; computed over all types on first use (declarations alone never ask). */
  private isReferenced(id: number): boolean {
    if (!this.referencedReady) {
      for (let i = 1; i < this.referenced.length; i++) this.markReferenced(this.btf.peekType(i));
      this.referencedReady = true;
    }
    return this.referenced[id] === 1;
  }

  /** Everything printed so far. */
  toString(): string {
    return this.out.join("");
  }

  private printf(s: string): void {
    this.outBytes += s.length;
    if (this.outBytes > this.maxBytes) throw new BpfError(E2BIG, `btf_dump: C output exceeds ${this.maxBytes} bytes`);
    this.out.push(s);
  }

  private t(id: number): BtfType {
    return this.btf.typeById(id);
  }

  private ref(id: number): void {
    if (id < this.referenced.length) this.referenced[id] = 1;
  }

  /** Types nothing refers to: a top-level anonymous enum is a block of constants, emitted on its own. */
  private markReferenced(t: BtfType): void {
    switch (t.kind) {
      case BTF_KIND_VOLATILE:
      case BTF_KIND_CONST:
      case BTF_KIND_RESTRICT:
      case BTF_KIND_PTR:
      case BTF_KIND_TYPEDEF:
      case BTF_KIND_FUNC:
      case BTF_KIND_VAR:
      case BTF_KIND_DECL_TAG:
      case BTF_KIND_TYPE_TAG:
        this.ref(t.type);
        break;
      case BTF_KIND_ARRAY:
        this.ref(t.indexType);
        this.ref(t.type);
        break;
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION:
        for (const m of t.members) this.ref(m.type);
        break;
      case BTF_KIND_FUNC_PROTO:
        for (const p of t.params) this.ref(p.type);
        break;
      case BTF_KIND_DATASEC:
        for (const v of t.vars) this.ref(v.type);
        break;
    }
  }

  /** btf_dump__dump_type: emit `id` and whatever it needs that was not emitted yet. */
  dumpType(id: number): void {
    if (id < 0 || id > this.btf.nrTypes) throw new BpfError(EINVAL, `btf_dump: invalid type id ${id}`, { typeId: id });
    this.emitQueue = [];
    this.orderType(id, false);
    for (const qid of this.emitQueue) this.emitType(qid, 0);
  }

  /**
   * Returns 1 if `id` is reached through a strong link (must be fully defined first), 0 if a
   * forward declaration suffices.
   */
  private orderType(id: number, throughPtr: boolean): number {
    if (this.orderState[id] === ORDERED) return 1;
    const via = throughPtr ? 2 : 1;
    if (this.strongVia[id] & via) return 1;
    if (this.onPath[id] === this.recordDepth + 1)
      throw new BpfError(ELOOP, `unsatisfiable type cycle, id:[${id}]`, { typeId: id });
    const t = this.t(id);
    const record = t.kind === BTF_KIND_STRUCT || t.kind === BTF_KIND_UNION;
    const saved = this.onPath[id];
    if (record) this.recordDepth++;
    else this.onPath[id] = this.recordDepth + 1;
    let r: number;
    try {
      r = this.orderTypeOnce(id, t, throughPtr);
    } finally {
      if (record) this.recordDepth--;
      else this.onPath[id] = saved;
    }
    if (r === 1) this.strongVia[id] |= via;
    return r;
  }

  private orderTypeOnce(id: number, t: BtfType, throughPtr: boolean): number {
    if (this.orderState[id] === ORDERING) {
      // A loop is fine when it goes through a pointer to a named record: a fwd decl breaks it.
      if ((t.kind === BTF_KIND_STRUCT || t.kind === BTF_KIND_UNION) && throughPtr && t.nameOff !== 0) return 0;
      throw new BpfError(ELOOP, `unsatisfiable type cycle, id:[${id}]`, { typeId: id });
    }
    switch (t.kind) {
      case BTF_KIND_INT:
      case BTF_KIND_FLOAT:
        this.orderState[id] = ORDERED;
        return 0;
      case BTF_KIND_PTR: {
        const r = this.orderType(t.type, true);
        this.orderState[id] = ORDERED;
        return r;
      }
      case BTF_KIND_ARRAY:
        return this.orderType(t.type, false);
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION:
        if (throughPtr && t.nameOff !== 0) return 0;
        this.orderState[id] = ORDERING;
        for (const m of t.members) this.orderType(m.type, false);
        if (t.nameOff !== 0) this.emitQueue.push(id);
        this.orderState[id] = ORDERED;
        return 1;
      case BTF_KIND_ENUM:
      case BTF_KIND_ENUM64:
      case BTF_KIND_FWD:
        if (t.nameOff !== 0 || !this.isReferenced(id)) this.emitQueue.push(id);
        this.orderState[id] = ORDERED;
        return 1;
      case BTF_KIND_TYPEDEF: {
        const strong = this.orderType(t.type, throughPtr);
        if (throughPtr && !strong) return 0;
        this.emitQueue.push(id);
        this.orderState[id] = ORDERED;
        return 1;
      }
      case BTF_KIND_VOLATILE:
      case BTF_KIND_CONST:
      case BTF_KIND_RESTRICT:
      case BTF_KIND_TYPE_TAG:
        return this.orderType(t.type, throughPtr);
      case BTF_KIND_FUNC_PROTO: {
        let strong = this.orderType(t.type, throughPtr) > 0;
        for (const p of t.params) if (this.orderType(p.type, throughPtr) > 0) strong = true;
        return strong ? 1 : 0;
      }
      case BTF_KIND_FUNC:
      case BTF_KIND_VAR:
      case BTF_KIND_DATASEC:
      case BTF_KIND_DECL_TAG:
        this.orderState[id] = ORDERED;
        return 0;
      default:
        throw new BpfError(EINVAL, `btf_dump: unexpected kind ${t.kind}, id:[${id}]`, { typeId: id });
    }
  }

  private isBlacklisted(id: number): boolean {
    const t = this.t(id);
    return t.nameOff !== 0 && t.name === "__builtin_va_list";
  }

  /** Emit the definition of `id` (top level when contId is 0), with any fwd decls it needs first. */
  private emitType(id: number, contId: number): void {
    if (this.emitState[id] === EMITTED) return;
    const t = this.t(id);
    const topLevel = contId === 0;
    if (this.emitState[id] === EMITTING) {
      if (this.fwdEmitted[id]) return;
      if (t.kind === BTF_KIND_STRUCT || t.kind === BTF_KIND_UNION) {
        // Referring to the record we are inside of needs no forward declaration.
        if (id === contId || t.nameOff === 0) return;
        this.emitStructFwd(id, t);
        this.printf(";\n\n");
        this.fwdEmitted[id] = 1;
      } else if (t.kind === BTF_KIND_TYPEDEF) {
        // The typedef is needed as a forward declaration (through a pointer) while its target is emitted.
        if (!this.isBlacklisted(id)) {
          this.emitTypedefDef(id, t, 0);
          this.printf(";\n\n");
        }
        this.fwdEmitted[id] = 1;
      }
      return;
    }
    switch (t.kind) {
      case BTF_KIND_INT: {
        const alias = MISSING_BASE_TYPES[this.typeName(id)];
        if (alias) this.printf(`typedef ${alias} ${this.typeName(id)};\n\n`);
        this.emitState[id] = EMITTED;
        break;
      }
      case BTF_KIND_ENUM:
      case BTF_KIND_ENUM64:
        if (topLevel) {
          this.emitEnumDef(id, t, 0);
          this.printf(";\n\n");
        }
        this.emitState[id] = EMITTED;
        break;
      case BTF_KIND_PTR:
      case BTF_KIND_VOLATILE:
      case BTF_KIND_CONST:
      case BTF_KIND_RESTRICT:
      case BTF_KIND_TYPE_TAG:
        this.emitType(t.type, contId);
        break;
      case BTF_KIND_ARRAY:
        this.emitType(t.type, contId);
        break;
      case BTF_KIND_FWD:
        this.emitFwdDef(id, t);
        this.printf(";\n\n");
        this.emitState[id] = EMITTED;
        break;
      case BTF_KIND_TYPEDEF:
        this.emitState[id] = EMITTING;
        this.emitType(t.type, id);
        if (!this.fwdEmitted[id] && !this.isBlacklisted(id)) {
          this.emitTypedefDef(id, t, 0);
          this.printf(";\n\n");
        }
        this.emitState[id] = EMITTED;
        break;
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION:
        this.emitState[id] = EMITTING;
        // A definition (top level or inlined anonymous) spells out its members' types: make sure
        // each has what it needs declared.
        if (topLevel || t.nameOff === 0) {
          const newCont = t.nameOff === 0 ? contId : id;
          for (const m of t.members) this.emitType(m.type, newCont);
        } else if (!this.fwdEmitted[id] && id !== contId) {
          this.emitStructFwd(id, t);
          this.printf(";\n\n");
          this.fwdEmitted[id] = 1;
        }
        if (topLevel) {
          this.emitStructDef(id, t, 0);
          this.printf(";\n\n");
          this.emitState[id] = EMITTED;
        } else {
          this.emitState[id] = NOT_EMITTED;
        }
        break;
      case BTF_KIND_FUNC_PROTO:
        this.emitType(t.type, contId);
        for (const p of t.params) this.emitType(p.type, contId);
        break;
    }
  }

  /** btf__align_of, 0 when the type has no alignment (void, func, fwd). */
  private alignOf(id: number): number {
    const cached = this.alignCache[id];
    if (cached >= 0) return cached;
    const t = this.t(id);
    let a = 0;
    switch (t.kind) {
      case BTF_KIND_INT:
      case BTF_KIND_ENUM:
      case BTF_KIND_ENUM64:
      case BTF_KIND_FLOAT:
        a = Math.min(this.ptrSize, t.size);
        break;
      case BTF_KIND_PTR:
        a = this.ptrSize;
        break;
      case BTF_KIND_TYPEDEF:
      case BTF_KIND_VOLATILE:
      case BTF_KIND_CONST:
      case BTF_KIND_RESTRICT:
      case BTF_KIND_TYPE_TAG:
        a = this.alignOf(t.type);
        break;
      case BTF_KIND_ARRAY:
        a = this.alignOf(t.type);
        break;
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION: {
        let max = 1;
        a = -1;
        for (const m of t.members) {
          const ma = this.alignOf(m.type);
          if (ma <= 0) {
            a = 0;
            break;
          }
          max = Math.max(max, ma);
          // A member off its natural alignment: the record must be packed.
          if (m.bitfieldSize === 0 && m.bitOffset % (8 * ma) !== 0) {
            a = 1;
            break;
          }
        }
        if (a < 0) a = t.size % max !== 0 ? 1 : max;
        break;
      }
    }
    this.alignCache[id] = a;
    return a;
  }

  private resolveSize(id: number): number {
    try {
      return btfResolveSize(this.btf, id);
    } catch {
      return 0;
    }
  }

  private isStructPacked(t: BtfComposite): boolean {
    let maxAlign = 1;
    for (const m of t.members) {
      const align = this.alignOf(m.type);
      if (align && m.bitfieldSize === 0 && m.bitOffset % (8 * align) !== 0) return true;
      maxAlign = Math.max(align, maxAlign);
    }
    return t.size % maxAlign !== 0;
  }

  /**
   * Fill the gap between two member bit offsets with anonymous bitfields (`long: 64;`), using
   * the widest type that keeps the next member where BTF says it is.
   */
  private emitBitPadding(curOff: number, nextOff: number, nextAlign: number, inBitfield: boolean, lvl: number): void {
    const pads: [string, number][] = [
      ["long", this.ptrSize * 8],
      ["int", 32],
      ["short", 16],
      ["char", 8],
    ];
    if (curOff >= nextOff) return;
    let newOff = 0;
    let padBits = 0;
    let padType = "";
    for (const [name, bits] of pads) {
      padBits = bits;
      padType = name;
      newOff = roundUpInt(curOff, padBits);
      if (newOff <= nextOff) break;
    }
    if (newOff > curOff && newOff <= nextOff) {
      if (
        inBitfield ||
        (newOff === nextOff && roundUpInt(curOff, Math.imul(nextAlign, 8)) !== newOff) ||
        (newOff !== nextOff && ((nextOff - newOff) | 0) <= ((newOff - curOff) | 0))
      )
        this.printf(`\n${pfx(lvl)}${padType}: ${inBitfield ? (newOff - curOff) | 0 : 0};`);
      curOff = newOff;
    }
    // Each step either fills a whole pad or lands exactly on nextOff (mod 2^32): it ends.
    while (curOff !== nextOff) {
      const bits = Math.min((nextOff - curOff) | 0, padBits);
      if (bits === padBits) {
        this.printf(`\n${pfx(lvl)}${padType}: ${padBits};`);
        curOff = (curOff + bits) | 0;
        continue;
      }
      // The last piece: the smallest type that holds it.
      for (let i = pads.length - 1; i >= 0; i--) {
        if (pads[i][1] < bits) continue;
        this.printf(`\n${pfx(lvl)}${pads[i][0]}: ${bits};`);
        curOff = (curOff + bits) | 0;
        break;
      }
    }
  }

  private emitStructFwd(id: number, t: BtfType): void {
    const name = this.typeName(id);
    this.printf(`${t.kind === BTF_KIND_STRUCT ? "struct" : "union"}${t.nameOff ? " " : ""}${name}`);
  }

  private emitStructDef(id: number, t: BtfComposite, lvl: number): void {
    const isStruct = t.kind === BTF_KIND_STRUCT;
    const align = this.alignOf(id);
    const packed = isStruct ? this.isStructPacked(t) : false;
    this.printf(`${isStruct ? "struct" : "union"}${t.nameOff ? " " : ""}${this.typeName(id)} {`);
    // Offsets are C ints, as btf_dump computes them: a corrupt offset past 2^31 bits wraps
    // there, and so it does here, for the same output.
    let off = 0;
    let prevBitfield = false;
    for (const m of t.members) {
      const mAlign = packed ? 1 : this.alignOf(m.type);
      const mOff = m.bitOffset | 0;
      let mSz = m.bitfieldSize;
      const inBitfield = prevBitfield && mSz !== 0;
      this.emitBitPadding(off, mOff, mAlign, inBitfield, lvl + 1);
      this.printf(`\n${pfx(lvl + 1)}`);
      this.emitTypeDecl(m.type, m.name, lvl + 1);
      if (mSz) {
        this.printf(`: ${mSz}`);
        off = (mOff + mSz) | 0;
        prevBitfield = true;
      } else {
        mSz = Math.max(0, this.resolveSize(m.type)) | 0;
        off = (mOff + Math.imul(mSz, 8)) | 0;
        prevBitfield = false;
      }
      this.printf(";");
    }
    if (isStruct) this.emitBitPadding(off, Math.imul(t.size, 8), align, false, lvl + 1);
    if (t.members.length || t.size) this.printf(`\n${pfx(lvl)}}`);
    else this.printf("}");
    if (packed) this.printf(" __attribute__((packed))");
  }

  private emitEnumDef(id: number, t: BtfEnum | BtfEnum64, lvl: number): void {
    this.printf(`enum${t.nameOff ? " " : ""}${this.typeName(id)}`);
    if (!t.values.length) return;
    this.printf(" {");
    const suffix = t.kind === BTF_KIND_ENUM64 ? (t.signed ? "LL" : "ULL") : "";
    for (const v of t.values) {
      // Enumerators share the ordinary identifier namespace with typedefs.
      const dups = this.nameDups(this.identNames, v.name);
      const name = dups > 1 ? `${v.name}___${dups}` : v.name;
      this.printf(`\n${pfx(lvl + 1)}${name} = ${v.val}${suffix},`);
    }
    this.printf(`\n${pfx(lvl)}}`);
    // Sizes C would not pick by itself are forced with mode attributes.
    if (t.size === 1) this.printf(" __attribute__((mode(byte)))");
    else if (t.size === 8 && this.ptrSize === 8) {
      const needsWord =
        t.kind === BTF_KIND_ENUM ||
        (t.values as { val: bigint }[]).every((v) => BigInt.asUintN(64, v.val) >> 32n === 0n);
      if (needsWord) this.printf(" __attribute__((mode(word)))");
    }
  }

  private emitFwdDef(id: number, t: BtfType): void {
    this.printf(`${t.kindFlag ? "union" : "struct"} ${this.typeName(id)}`);
  }

  private emitTypedefDef(id: number, t: BtfType & { type: number }, lvl: number): void {
    const name = this.identName(id);
    // Old GCC describes __gnuc_va_list as a typedef of void.
    if (t.type === 0 && name === "__gnuc_va_list") {
      this.printf("typedef __builtin_va_list __gnuc_va_list");
      return;
    }
    this.printf("typedef ");
    this.emitTypeDecl(t.type, name, lvl);
  }

  /** btf_dump__emit_type_decl: `type fname` in C declarator syntax. */
  emitTypeDecl(id: number, fname: string, lvl: number): void {
    const ids: number[] = [];
    for (let depth = 0; ; depth++) {
      if (depth > 1000) throw new BpfError(ELOOP, `type declaration chain loops at [${id}]`, { typeId: id });
      ids.push(id);
      if (id === 0) break;
      const t = this.t(id);
      if (
        t.kind === BTF_KIND_PTR ||
        t.kind === BTF_KIND_VOLATILE ||
        t.kind === BTF_KIND_CONST ||
        t.kind === BTF_KIND_RESTRICT ||
        t.kind === BTF_KIND_FUNC_PROTO ||
        t.kind === BTF_KIND_TYPE_TAG
      )
        id = t.type;
      else if (t.kind === BTF_KIND_ARRAY) id = t.type;
      else break;
    }
    this.emitTypeChain({ ids, cnt: ids.length }, fname, lvl);
  }

  private emitMods(decls: DeclStack): void {
    while (decls.cnt) {
      const t = this.t(decls.ids[decls.cnt - 1]);
      if (t.kind === BTF_KIND_VOLATILE) this.printf("volatile ");
      else if (t.kind === BTF_KIND_CONST) this.printf("const ");
      else if (t.kind === BTF_KIND_RESTRICT) this.printf("restrict ");
      else return;
      decls.cnt--;
    }
  }

  private dropMods(decls: DeclStack): void {
    while (decls.cnt && isMod(this.t(decls.ids[decls.cnt - 1]))) decls.cnt--;
  }

  private emitName(name: string, lastWasPtr: boolean): void {
    this.printf(`${name && !lastWasPtr ? " " : ""}${name}`);
  }

  /**
   * Print a chain popped from the innermost type outwards: base type first, then pointers and
   * qualifiers, with parentheses where arrays and function prototypes bind tighter.
   */
  private emitTypeChain(decls: DeclStack, fname: string, lvl: number): void {
    let lastWasPtr = true;
    while (decls.cnt) {
      const id = decls.ids[--decls.cnt];
      if (id === 0) {
        this.emitMods(decls);
        this.printf("void");
        lastWasPtr = false;
        continue;
      }
      const t = this.t(id);
      switch (t.kind) {
        case BTF_KIND_INT:
        case BTF_KIND_FLOAT:
          this.emitMods(decls);
          this.printf(t.name);
          break;
        case BTF_KIND_STRUCT:
        case BTF_KIND_UNION:
          this.emitMods(decls);
          if (t.nameOff === 0) this.emitStructDef(id, t, lvl);
          else this.emitStructFwd(id, t);
          break;
        case BTF_KIND_ENUM:
        case BTF_KIND_ENUM64:
          this.emitMods(decls);
          if (t.nameOff === 0) this.emitEnumDef(id, t, lvl);
          else this.printf(`enum ${this.typeName(id)}`);
          break;
        case BTF_KIND_FWD:
          this.emitMods(decls);
          this.emitFwdDef(id, t);
          break;
        case BTF_KIND_TYPEDEF:
          this.emitMods(decls);
          this.printf(this.identName(id));
          break;
        case BTF_KIND_PTR:
          this.printf(lastWasPtr ? "*" : " *");
          break;
        case BTF_KIND_VOLATILE:
          this.printf(" volatile");
          break;
        case BTF_KIND_CONST:
          this.printf(" const");
          break;
        case BTF_KIND_RESTRICT:
          this.printf(" restrict");
          break;
        case BTF_KIND_TYPE_TAG:
          this.emitMods(decls);
          this.printf(t.kindFlag ? ` __attribute__((${t.name}))` : ` __attribute__((btf_type_tag("${t.name}")))`);
          break;
        case BTF_KIND_ARRAY: {
          // Qualifiers on an array (a GCC quirk) mean nothing in C: drop them.
          this.dropMods(decls);
          if (decls.cnt === 0) {
            this.emitName(fname, lastWasPtr);
            this.printf(`[${t.nelems}]`);
            return;
          }
          const multidim = this.t(decls.ids[decls.cnt - 1]).kind === BTF_KIND_ARRAY;
          if (fname && !lastWasPtr) this.printf(" ");
          if (!multidim) this.printf("(");
          this.emitTypeChain(decls, fname, lvl);
          if (!multidim) this.printf(")");
          this.printf(`[${t.nelems}]`);
          return;
        }
        case BTF_KIND_FUNC_PROTO: {
          this.dropMods(decls);
          if (decls.cnt) {
            this.printf(" (");
            this.emitTypeChain(decls, fname, lvl);
            this.printf(")");
          } else {
            this.emitName(fname, lastWasPtr);
          }
          this.printf("(");
          const ps = t.params;
          // No parameters, or clang's single void one: `(void)`.
          if (ps.length === 0 || (ps.length === 1 && ps[0].type === 0)) {
            this.printf("void)");
            return;
          }
          for (let i = 0; i < ps.length; i++) {
            if (i > 0) this.printf(", ");
            if (i === ps.length - 1 && ps[i].type === 0) {
              this.printf("...");
              break;
            }
            this.emitTypeDecl(ps[i].type, ps[i].name, lvl);
          }
          this.printf(")");
          return;
        }
        default:
          return;
      }
      lastWasPtr = t.kind === BTF_KIND_PTR;
    }
    this.emitName(fname, lastWasPtr);
  }

  private nameDups(map: Map<string, number>, name: string): number {
    const n = (map.get(name) ?? 0) + 1;
    map.set(name, n);
    return n;
  }

  private resolveName(id: number, map: Map<string, number>): string {
    const t = this.t(id);
    if (t.nameOff === 0) return "";
    if (this.nameResolved[id]) return this.cachedNames[id] ?? t.name;
    this.nameResolved[id] = 1;
    // Forward declarations and empty enums may repeat a name harmlessly.
    if (t.kind === BTF_KIND_FWD || (t.kind === BTF_KIND_ENUM && t.vlen === 0)) return t.name;
    const dups = this.nameDups(map, t.name);
    if (dups > 1) this.cachedNames[id] = `${t.name}___${dups}`;
    return this.cachedNames[id] ?? t.name;
  }

  private typeName(id: number): string {
    return this.resolveName(id, this.typeNames);
  }

  private identName(id: number): string {
    return this.resolveName(id, this.identNames);
  }
}

/** The kernel's roundup() on C ints: the division truncates toward zero and sums wrap. */
function roundUpInt(v: number, a: number): number {
  return Math.imul(Math.trunc(((v + a - 1) | 0) / a) | 0, a);
}

/** A C declaration of type `id` named `name` (btf_dump__emit_type_decl): "u32 (*)(struct sock *, u32)". */
export function btfTypeDeclString(btf: Btf, id: number, name = ""): string {
  const d = new BtfDump(btf);
  guardDepth(() => d.emitTypeDecl(id, name, 0));
  return d.toString();
}

/** Records nested through pointers to anonymous records can be arbitrarily deep: report, don't crash. */
function guardDepth(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof RangeError) throw new BpfError(E2BIG, `btf_dump: type graph too deep to emit as C (${e.message})`);
    throw e;
  }
}

export interface BtfDumpCOptions extends BtfDumpOptions {
  /** Dump only these types (and what they need); default: every type. */
  ids?: number[];
  /** Wrap in bpftool's vmlinux.h guard and preserve_access_index pragma (default true). */
  header?: boolean;
}

/** `bpftool btf dump ... format c`: a header clang compiles, records marked preserve_access_index. */
export function btfDumpC(btf: Btf, opts: BtfDumpCOptions = {}): string {
  const d = new BtfDump(btf, opts);
  guardDepth(() => {
    if (opts.ids) for (const id of opts.ids) d.dumpType(id);
    else for (let id = 1; id <= btf.nrTypes; id++) d.dumpType(id);
  });
  const body = d.toString();
  if (opts.header === false) return body;
  return (
    "#ifndef __VMLINUX_H__\n" +
    "#define __VMLINUX_H__\n\n" +
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n" +
    "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n" +
    "#endif\n\n" +
    body +
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n" +
    "#pragma clang attribute pop\n" +
    "#endif\n\n" +
    "#endif /* __VMLINUX_H__ */\n"
  );
}
