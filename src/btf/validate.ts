/**
 * What the kernel checks before accepting BTF (BPF_BTF_LOAD): btf_check_all_metas (each record on
 * its own: names, vlen, kind_flag, sizes, type ids in range) then btf_check_all_types / btf_resolve
 * (references resolve without loops, members fit their struct, arrays index by int, funcs point
 * at protos, datasecs hold vars). Every failure is an EINVAL BpfError naming the type id and the
 * record's byte offset, like the kernel's verifier log line "[id] KIND name msg" (ENOTSUPP for an
 * INT encoding combining several bits, as the kernel answers).
 */
import {
  BTF_FUNC_GLOBAL,
  BTF_INT_BOOL,
  BTF_INT_CHAR,
  BTF_INT_SIGNED,
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
  BTF_KIND_NAMES,
  BTF_KIND_PTR,
  BTF_KIND_RESTRICT,
  BTF_KIND_STRUCT,
  BTF_KIND_TYPE_TAG,
  BTF_KIND_TYPEDEF,
  BTF_KIND_UNION,
  BTF_KIND_VAR,
  BTF_KIND_VOLATILE,
  BTF_MAX_TYPE,
  BTF_VAR_GLOBAL_ALLOCATED,
  BTF_VAR_STATIC,
} from "../uapi/btf.js";
import { BpfError, E2BIG, EEXIST, EINVAL, ENOTSUPP } from "../uapi/errno.js";
import type { Btf } from "./btf.js";
import { MAX_RESOLVE_DEPTH } from "./resolve.js";
import type { BtfFunc, BtfFuncProto, BtfType } from "./types.js";

const KSYM_NAME_LEN = 512;

/** btf_name_valid_identifier: C identifiers (the kernel also allows '.' after the first char for some). */
function validIdentifier(s: string): boolean {
  if (s.length === 0 || s.length >= KSYM_NAME_LEN) return false;
  if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(s)) return false;
  return true;
}

/** btf_name_valid_section: printable, no spaces. */
function validSection(s: string): boolean {
  return s.length > 0 && s.length < KSYM_NAME_LEN && /^[\x21-\x7e]+$/.test(s);
}

const isSized = (k: number): boolean =>
  k === BTF_KIND_INT ||
  k === BTF_KIND_PTR ||
  k === BTF_KIND_ARRAY ||
  k === BTF_KIND_STRUCT ||
  k === BTF_KIND_UNION ||
  k === BTF_KIND_ENUM ||
  k === BTF_KIND_ENUM64 ||
  k === BTF_KIND_FLOAT;

const isModifier = (k: number): boolean =>
  k === BTF_KIND_TYPEDEF ||
  k === BTF_KIND_VOLATILE ||
  k === BTF_KIND_CONST ||
  k === BTF_KIND_RESTRICT ||
  k === BTF_KIND_TYPE_TAG;

class Validator {
  /** 0 unvisited, 1 resolving, 2 resolved (own types only, indexed by id - startId). */
  private readonly state: Uint8Array;
  /** Resolved byte size of each own type (-1: has none). */
  private readonly size: Float64Array;
  /** The type btf_resolve started from: loops and depth are reported on it. */
  private root = 0;

  constructor(private readonly btf: Btf) {
    this.state = new Uint8Array(btf.ownTypes);
    this.size = new Float64Array(btf.ownTypes).fill(-1);
  }

  /**
   * `msg` is kernel/bpf/btf.c's own wording, which BTF_LOAD's log prints as it is; `item` is the
   * member or DATASEC variable at fault, by index, named in the message.
   */
  private fail(t: BtfType, msg: string, errno = EINVAL, item?: number): never {
    const off = this.btf.typeOffset(t.id);
    const kind = BTF_KIND_NAMES[t.kind] ?? "UNKNOWN";
    let at = "";
    if (item !== undefined && (t.kind === BTF_KIND_STRUCT || t.kind === BTF_KIND_UNION))
      at = `member ${t.members[item].name || `#${item}`}: `;
    else if (item !== undefined && t.kind === BTF_KIND_DATASEC) at = `var #${item}: `;
    throw new BpfError(
      errno,
      `[${t.id}] ${kind} ${t.name}${t.name ? " " : ""}${at}${msg} (type id ${t.id}, offset ${off})`,
      {
        typeId: t.id,
        offset: off,
        reason: msg,
        item,
      },
    );
  }

  /** A type id that exists (0 = void allowed when `voidOk`). */
  private checkId(t: BtfType, id: number, msg: string, voidOk = true): void {
    if (id > BTF_MAX_TYPE || (id === 0 && !voidOk)) this.fail(t, msg);
  }

  /** A type id this BTF (or its base) has: what resolve finds with btf_type_by_id. */
  private has(id: number): boolean {
    return id > 0 && id <= this.btf.nrTypes;
  }

  /** btf_check_all_metas: each record on its own, in order. */
  checkMetas(): void {
    const btf = this.btf;
    for (let id = btf.startId; id <= btf.nrTypes; id++) this.checkMeta(id);
  }

  run(): void {
    const btf = this.btf;
    this.checkMetas();
    // btf_check_all_types: each type resolved, then its own checks, before the next type
    for (let id = btf.startId; id <= btf.nrTypes; id++) {
      this.resolve(id, 0);
      const t = btf.typeById(id);
      if (t.kind === BTF_KIND_FUNC_PROTO) this.checkFuncProto(t);
      else if (t.kind === BTF_KIND_FUNC) this.checkFunc(t);
    }
  }

  /** btf_func_check: a non-extern function's arguments must be named. */
  private checkFunc(t: BtfFunc): void {
    const proto = this.btf.typeById(t.type);
    if (proto.kind !== BTF_KIND_FUNC_PROTO) this.fail(t, "Invalid type_id");
    for (const [i, p] of proto.params.entries())
      if (p.nameOff === 0 && p.type !== 0) this.fail(t, `Invalid arg#${i + 1}`);
  }

  /** btf_func_proto_check, after everything resolved: return and argument types must be usable. */
  private checkFuncProto(t: BtfFuncProto): void {
    const btf = this.btf;
    const usable = (id: number) => {
      if (!this.has(id)) return false;
      const k = btf.kindOf(id);
      return k === BTF_KIND_FWD || k === BTF_KIND_STRUCT || k === BTF_KIND_UNION || this.sizeOf(id, 0) >= 0;
    };
    if (t.type !== 0 && !usable(t.type)) this.fail(t, "Invalid return type");
    for (const [n, p] of t.params.entries()) {
      if (p.type === 0) {
        if (n !== t.params.length - 1) this.fail(t, `Invalid arg#${n + 1}`);
        continue;
      }
      if (!usable(p.type)) this.fail(t, `Invalid arg#${n + 1}`);
    }
  }

  /**
   * A struct whose own name is fine but a member's name offset is not: btf_struct_check_meta
   * reports it on the member, which has no name to print.
   */
  private checkMemberNameOffsets(id: number): void {
    const btf = this.btf;
    const kind = btf.kindOf(id);
    if ((kind !== BTF_KIND_STRUCT && kind !== BTF_KIND_UNION) || !btf.nameOffsetValid(btf.nameOffOf(id))) return;
    const info = btf.rawInfo(id);
    const vlen = info & 0xffff;
    const kflag = info >>> 31 === 1;
    for (let i = 0; i < vlen; i++) {
      const nameOff = btf.rawExtra(id, 3 * i);
      if (btf.nameOffsetValid(nameOff)) continue;
      const type = btf.rawExtra(id, 3 * i + 1);
      const bits = btf.rawExtra(id, 3 * i + 2);
      const own = btf.nameOffOf(id);
      const name = own === 0 ? "(anon)" : btf.str(own);
      const msg = `Invalid member name_offset:${nameOff}`;
      const off = btf.typeOffset(id);
      // The type cannot be decoded: the log's type and member lines come from these raw words.
      throw new BpfError(
        EINVAL,
        `[${id}] ${BTF_KIND_NAMES[kind]} ${name} member #${i}: ${msg} (type id ${id}, offset ${off})`,
        {
          typeId: id,
          offset: off,
          item: i,
          reason: msg,
          rawKind: kind,
          rawName: name,
          rawSize: btf.rawSizeType(id),
          rawVlen: vlen,
          rawKflag: kflag ? 1 : 0,
          rawMemberType: type,
          rawMemberOffset: bits,
        },
      );
    }
  }

  /** btf_check_meta: the record on its own. */
  private checkMeta(id: number): void {
    const btf = this.btf;
    let t: BtfType;
    try {
      t = btf.typeById(id);
    } catch (e) {
      if (e instanceof BpfError) {
        this.checkMemberNameOffsets(id);
        const off = btf.typeOffset(id);
        throw new BpfError(EINVAL, `[${id}] Invalid name_offset: ${e.message} (type id ${id}, offset ${off})`, {
          typeId: id,
          offset: off,
          nameOff: btf.nameOffOf(id),
        });
      }
      throw e;
    }
    const raw = btf.rawInfo(id);
    if (raw & 0x60ff0000) this.fail(t, `Invalid btf_info:${raw.toString(16)}`);
    const noVlen = () => t.vlen !== 0 && this.fail(t, "vlen != 0");
    const noKflag = () => t.kindFlag && this.fail(t, "Invalid btf_info kind_flag");
    const anonOnly = () => t.nameOff !== 0 && this.fail(t, "Invalid name");
    const named = () => !validIdentifier(t.name) && this.fail(t, "Invalid name");
    const optName = () => t.nameOff !== 0 && !validIdentifier(t.name) && this.fail(t, "Invalid name");
    switch (t.kind) {
      case BTF_KIND_INT: {
        noVlen();
        noKflag();
        const data = btf.rawExtra(id);
        if (data & ~0x0fff00ff) this.fail(t, `Invalid int_data:${data.toString(16)}`);
        if (t.offset + t.bits > 128) this.fail(t, "nr_bits exceeds 128");
        if (Math.ceil((t.offset + t.bits) / 8) > t.size) this.fail(t, "nr_bits exceeds type_size");
        // One encoding bit at most (the kernel has no meaning for "signed char" as SIGNED|CHAR).
        const enc = t.encoding;
        if (enc && enc !== BTF_INT_SIGNED && enc !== BTF_INT_CHAR && enc !== BTF_INT_BOOL)
          this.fail(t, "Unsupported encoding", ENOTSUPP);
        // Base type names are C spellings with spaces ("long unsigned int"): any name goes.
        break;
      }
      case BTF_KIND_PTR:
      case BTF_KIND_VOLATILE:
      case BTF_KIND_CONST:
      case BTF_KIND_RESTRICT:
      case BTF_KIND_TYPEDEF:
      case BTF_KIND_TYPE_TAG:
        noVlen();
        if (t.kind !== BTF_KIND_TYPE_TAG) noKflag();
        this.checkId(t, t.type, "Invalid type_id");
        if (t.kind === BTF_KIND_TYPEDEF) named();
        else if (t.kind === BTF_KIND_TYPE_TAG) t.name === "" && this.fail(t, "Invalid name");
        else anonOnly();
        break;
      case BTF_KIND_ARRAY:
        anonOnly();
        noVlen();
        noKflag();
        if (btf.rawSizeType(id) !== 0) this.fail(t, "size != 0");
        this.checkId(t, t.type, "Invalid elem", false);
        this.checkId(t, t.indexType, "Invalid index", false);
        break;
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION:
        optName();
        for (const [i, m] of t.members.entries()) {
          if (m.nameOff !== 0 && !validIdentifier(m.name)) this.fail(t, "Invalid name", EINVAL, i);
          if (m.type === 0 || m.type > BTF_MAX_TYPE) this.fail(t, "Invalid type_id", EINVAL, i);
          if (t.kind === BTF_KIND_UNION && m.bitOffset !== 0) this.fail(t, "Invalid member bits_offset", EINVAL, i);
          if (m.bitOffset > t.size * 8) this.fail(t, "Member bits_offset exceeds its struct size", EINVAL, i);
        }
        break;
      case BTF_KIND_ENUM:
      case BTF_KIND_ENUM64:
        if (t.kind === BTF_KIND_ENUM ? ![1, 2, 4, 8].includes(t.size) : ![1, 2, 4, 8].includes(t.size))
          this.fail(t, "Unexpected size");
        optName();
        for (const v of t.values) if (!validIdentifier(v.name)) this.fail(t, "Invalid name");
        break;
      case BTF_KIND_FWD:
        noVlen();
        if (btf.rawSizeType(id) !== 0) this.fail(t, "Invalid type_id");
        named();
        break;
      case BTF_KIND_FUNC:
        named();
        // the kernel takes static and global functions only (libbpf rewrites extern ones)
        if (t.linkage > BTF_FUNC_GLOBAL) this.fail(t, "Invalid func linkage");
        noKflag();
        this.checkId(t, t.type, "Invalid type_id", false);
        break;
      case BTF_KIND_FUNC_PROTO:
        anonOnly();
        noKflag();
        this.checkId(t, t.type, "Invalid return type");
        for (const [i, p] of t.params.entries()) {
          this.checkId(t, p.type, `Invalid arg#${i + 1}`);
          if (p.nameOff !== 0 && !validIdentifier(p.name)) this.fail(t, `Invalid arg#${i + 1}`);
        }
        break;
      case BTF_KIND_VAR:
        noVlen();
        noKflag();
        named();
        this.checkId(t, t.type, "Invalid type_id", false);
        if (t.linkage !== BTF_VAR_STATIC && t.linkage !== BTF_VAR_GLOBAL_ALLOCATED)
          this.fail(t, "Linkage not supported");
        break;
      case BTF_KIND_DATASEC: {
        noKflag();
        if (!t.size) this.fail(t, "size == 0");
        if (!validSection(t.name)) this.fail(t, "Invalid name");
        let end = 0;
        let sum = 0;
        for (const [i, v] of t.vars.entries()) {
          if (v.type === 0 || v.type > BTF_MAX_TYPE) this.fail(t, "Invalid type_id", EINVAL, i);
          if (v.offset < end || v.offset >= t.size) this.fail(t, "Invalid offset", EINVAL, i);
          if (v.size === 0 || v.size > t.size) this.fail(t, "Invalid size", EINVAL, i);
          end = v.offset + v.size;
          if (end > t.size) this.fail(t, "Invalid offset+size", EINVAL, i);
          sum += v.size;
        }
        if (t.size < sum) this.fail(t, "Invalid btf_info size");
        break;
      }
      case BTF_KIND_FLOAT:
        noVlen();
        noKflag();
        if (![2, 4, 8, 12, 16].includes(t.size)) this.fail(t, "Invalid type_size");
        break;
      case BTF_KIND_DECL_TAG:
        noVlen();
        noKflag();
        if (t.name === "") this.fail(t, "Invalid name");
        if (t.componentIdx < -1) this.fail(t, "Invalid component_idx");
        this.checkId(t, t.type, "Invalid type_id", false);
        break;
    }
  }

  /**
   * Byte size of a type, resolving it first if needed; -1 if it has none. Pointers and function
   * prototypes are resolve sinks (env_type_is_resolve_sink): their size needs nothing behind them.
   */
  private sizeOf(id: number, depth: number): number {
    const btf = this.btf;
    if (!this.has(id)) return -1;
    const k = btf.kindOf(id);
    if (k === BTF_KIND_PTR) return 8;
    if (k === BTF_KIND_FUNC_PROTO || k === BTF_KIND_FUNC || k === BTF_KIND_FWD) return -1;
    if (id < btf.startId) return baseSize(btf, id);
    this.resolve(id, depth + 1);
    return this.size[id - btf.startId];
  }

  /** btf_resolve: follow references depth-first; a type seen again while resolving is a loop. */
  private resolve(id: number, depth: number): void {
    const btf = this.btf;
    if (id < btf.startId) return;
    const i = id - btf.startId;
    if (this.state[i] === 2) return;
    const t = btf.typeById(id);
    if (depth === 0) this.root = id;
    const root = () => btf.typeById(this.root || id);
    if (this.state[i] === 1) this.fail(root(), "Loop detected", EEXIST);
    if (depth > MAX_RESOLVE_DEPTH) this.fail(root(), `Exceeded max resolving depth:${MAX_RESOLVE_DEPTH}`, E2BIG);
    this.state[i] = 1;
    let size = -1;
    switch (t.kind) {
      case BTF_KIND_INT:
      case BTF_KIND_ENUM:
      case BTF_KIND_ENUM64:
      case BTF_KIND_FLOAT:
        size = t.size;
        break;
      case BTF_KIND_PTR: {
        if (t.type !== 0 && !this.has(t.type)) this.fail(t, "Invalid type_id");
        // For a pointer everything but modifiers and pointers is a sink: only those chains can loop.
        const k = btf.kindOf(t.type);
        if (t.type !== 0 && (k === BTF_KIND_PTR || isModifier(k))) this.resolve(t.type, depth + 1);
        size = 8;
        break;
      }
      case BTF_KIND_TYPEDEF:
      case BTF_KIND_VOLATILE:
      case BTF_KIND_CONST:
      case BTF_KIND_RESTRICT:
      case BTF_KIND_TYPE_TAG:
        if (t.type !== 0 && !this.has(t.type)) this.fail(t, "Invalid type_id");
        // Follow pointers too: a modifier chain looping back through a pointer never resolves.
        if (t.type !== 0 && btf.kindOf(t.type) === BTF_KIND_PTR) this.resolve(t.type, depth + 1);
        size = t.type === 0 ? -1 : this.sizeOf(t.type, depth);
        break;
      case BTF_KIND_ARRAY: {
        // btf_array_resolve checks the index first, then the element
        let idx = t.indexType;
        for (let d = 0; this.has(idx) && isModifier(btf.kindOf(idx)) && d < MAX_RESOLVE_DEPTH; d++)
          idx = (btf.typeById(idx) as { type: number }).type;
        if (!this.has(idx) || btf.kindOf(idx) !== BTF_KIND_INT) this.fail(t, "Invalid index");
        const elem = this.sizeOf(t.type, depth);
        if (elem < 0) this.fail(t, "Invalid elem");
        if (elem * t.nelems > 0xffffffff) this.fail(t, "Array size overflows U32_MAX");
        size = elem * t.nelems;
        break;
      }
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION:
        for (const [i, m] of t.members.entries()) {
          // Members through pointers only need the pointer; by value they must be complete.
          const msize = this.sizeOf(m.type, depth);
          if (msize < 0) this.fail(t, "Invalid member", EINVAL, i);
          let base = m.type;
          for (let d = 0; isModifier(btf.kindOf(base)) && d < MAX_RESOLVE_DEPTH; d++)
            base = (btf.typeById(base) as { type: number }).type;
          if (m.bitfieldSize) {
            const bk = btf.kindOf(base);
            if (bk !== BTF_KIND_INT && bk !== BTF_KIND_ENUM && bk !== BTF_KIND_ENUM64)
              this.fail(t, "Invalid member base type", EINVAL, i);
            if (m.bitfieldSize > msize * 8) this.fail(t, "Invalid member bitfield_size", EINVAL, i);
            if (m.bitOffset + m.bitfieldSize > t.size * 8) this.fail(t, "Member exceeds struct_size", EINVAL, i);
          } else {
            const bt = btf.typeById(base);
            const byteOff = Math.floor(m.bitOffset / 8);
            if (bt.kind === BTF_KIND_INT) {
              // btf_int_check_member: an INT may be an old-style bitfield starting mid-byte (no kind_flag).
              if (t.kindFlag && m.bitOffset % 8) this.fail(t, "Member is not byte aligned", EINVAL, i);
              const copyBits = (m.bitOffset % 8) + bt.offset + bt.bits;
              if (copyBits > 128) this.fail(t, "nr_copy_bits exceeds 128", EINVAL, i);
              if (byteOff + Math.ceil(copyBits / 8) > t.size) this.fail(t, "Member exceeds struct_size", EINVAL, i);
            } else {
              if (m.bitOffset % 8) this.fail(t, "Member is not byte aligned", EINVAL, i);
              if (byteOff + msize > t.size) this.fail(t, "Member exceeds struct_size", EINVAL, i);
            }
          }
        }
        size = t.size;
        break;
      case BTF_KIND_FUNC:
        if (!this.has(t.type) || btf.kindOf(t.type) !== BTF_KIND_FUNC_PROTO) this.fail(t, "Invalid type_id");
        break;
      case BTF_KIND_VAR:
        if (this.sizeOf(t.type, depth) < 0) this.fail(t, "Invalid type_id");
        break;
      case BTF_KIND_DATASEC:
        for (const v of t.vars) {
          if (!this.has(v.type) || btf.kindOf(v.type) !== BTF_KIND_VAR)
            this.fail(t, "Not a VAR kind member", EINVAL, t.vars.indexOf(v));
          this.resolve(v.type, depth + 1);
          const vt = btf.typeById(v.type) as { type: number };
          if (v.size < this.sizeOf(vt.type, depth)) this.fail(t, "Invalid size");
        }
        break;
      case BTF_KIND_DECL_TAG: {
        if (!this.has(t.type)) this.fail(t, "Invalid type_id");
        const target = btf.typeById(t.type);
        const k = target.kind;
        if (
          k !== BTF_KIND_STRUCT &&
          k !== BTF_KIND_UNION &&
          k !== BTF_KIND_VAR &&
          k !== BTF_KIND_FUNC &&
          k !== BTF_KIND_TYPEDEF
        )
          this.fail(t, "Invalid type_id");
        if (t.componentIdx !== -1) {
          const n =
            k === BTF_KIND_STRUCT || k === BTF_KIND_UNION
              ? target.vlen
              : k === BTF_KIND_FUNC
                ? btf.typeById((target as { type: number }).type).vlen
                : 0;
          if (t.componentIdx >= n) this.fail(t, "Invalid component_idx");
        }
        break;
      }
    }
    this.size[i] = size;
    this.state[i] = 2;
  }
}

/** Size of a type in an already-validated base BTF. */
function baseSize(btf: Btf, id: number): number {
  try {
    let t = btf.typeById(id);
    let n = 1;
    for (let d = 0; d <= MAX_RESOLVE_DEPTH; d++) {
      if (t.kind === BTF_KIND_ARRAY) {
        n *= t.nelems;
        t = btf.typeById(t.type);
      } else if (isModifier(t.kind)) t = btf.typeById((t as { type: number }).type);
      else if (t.kind === BTF_KIND_PTR) return 8 * n;
      else if ("size" in t && isSized(t.kind)) return t.size * n;
      else return -1;
    }
  } catch {
    return -1;
  }
  return -1;
}

/** Run the kernel's BTF_LOAD checks over the object's own types; throws an EINVAL BpfError. */
export function btfValidate(btf: Btf): void {
  new Validator(btf).run();
}

/** Only the per-record checks (btf_check_all_metas), for records before one that cannot be read. */
export function btfCheckMetas(btf: Btf): void {
  new Validator(btf).checkMetas();
}
