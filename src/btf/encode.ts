/**
 * Serialising decoded types back to the on-disk form (the inverse of Btf's decoder), shared by
 * Btf.encode() and BtfBuilder.build(). Mirrors libbpf's btf__raw_data / btf_bswap_type_rest.
 */

import {
  BTF_HEADER_LEN,
  BTF_KIND_ARRAY,
  BTF_KIND_DATASEC,
  BTF_KIND_DECL_TAG,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FUNC,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_INT,
  BTF_KIND_STRUCT,
  BTF_KIND_UNION,
  BTF_KIND_VAR,
  BTF_MAGIC,
  BTF_VERSION,
} from "../uapi/btf.js";
import { BpfError, EINVAL } from "../uapi/errno.js";
import { type BtfType, btfTypeExtraSize } from "./types.js";

/** The 12-byte header word layout: info = kind_flag<<31 | kind<<24 | vlen. */
export function btfInfo(kind: number, vlen: number, kindFlag: boolean): number {
  return ((kindFlag ? 0x80000000 : 0) | ((kind & 0x1f) << 24) | (vlen & 0xffff)) >>> 0;
}

/** Number of vlen-indexed records of a decoded type (what goes into info.vlen). */
function vlenOf(t: BtfType): number {
  switch (t.kind) {
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
      return t.members.length;
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
      return t.values.length;
    case BTF_KIND_FUNC_PROTO:
      return t.params.length;
    case BTF_KIND_DATASEC:
      return t.vars.length;
    case BTF_KIND_FUNC:
      return t.linkage;
    default:
      return t.vlen;
  }
}

export function encodedTypeSize(t: BtfType): number {
  const extra = btfTypeExtraSize(t.kind, vlenOf(t));
  if (extra < 0) throw new BpfError(EINVAL, `cannot encode type [${t.id}] of kind ${t.kind}`, { typeId: t.id });
  return 12 + extra;
}

// Every vlen record is two or three u32 words (btf_member, btf_enum, btf_enum64, btf_param,
// btf_var_secinfo, btf_array): these write one and return the offset after it.
function put2(dv: DataView, p: number, a: number, b: number, le: boolean): number {
  dv.setUint32(p, a, le);
  dv.setUint32(p + 4, b, le);
  return p + 8;
}

function put3(dv: DataView, p: number, a: number, b: number, c: number, le: boolean): number {
  dv.setUint32(p, a, le);
  dv.setUint32(p + 4, b, le);
  dv.setUint32(p + 8, c, le);
  return p + 12;
}

/** Write one type at `off`; returns the offset after it. */
export function writeType(dv: DataView, off: number, t: BtfType, le: boolean): number {
  const vlen = vlenOf(t);
  dv.setUint32(off, t.nameOff, le);
  dv.setUint32(off + 4, btfInfo(t.kind, vlen, t.kindFlag), le);
  let p = off + 12;
  switch (t.kind) {
    case BTF_KIND_INT:
      dv.setUint32(off + 8, t.size, le);
      dv.setUint32(p, ((t.encoding & 0xf) << 24) | ((t.offset & 0xff) << 16) | (t.bits & 0xff), le);
      p += 4;
      break;
    case BTF_KIND_ARRAY:
      dv.setUint32(off + 8, 0, le);
      p = put3(dv, p, t.type, t.indexType, t.nelems, le);
      break;
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
      dv.setUint32(off + 8, t.size, le);
      for (const m of t.members) {
        const o = t.kindFlag ? ((m.bitfieldSize & 0xff) << 24) | (m.bitOffset & 0xffffff) : m.bitOffset;
        p = put3(dv, p, m.nameOff, m.type, o >>> 0, le);
      }
      break;
    case BTF_KIND_ENUM:
      dv.setUint32(off + 8, t.size, le);
      for (const v of t.values) p = put2(dv, p, v.nameOff, v.val >>> 0, le);
      break;
    case BTF_KIND_ENUM64:
      dv.setUint32(off + 8, t.size, le);
      for (const v of t.values) {
        const u = BigInt.asUintN(64, v.val);
        p = put3(dv, p, v.nameOff, Number(u & 0xffffffffn), Number(u >> 32n), le);
      }
      break;
    case BTF_KIND_FUNC_PROTO:
      dv.setUint32(off + 8, t.type, le);
      for (const a of t.params) p = put2(dv, p, a.nameOff, a.type, le);
      break;
    case BTF_KIND_VAR:
      dv.setUint32(off + 8, t.type, le);
      dv.setUint32(p, t.linkage, le);
      p += 4;
      break;
    case BTF_KIND_DATASEC:
      dv.setUint32(off + 8, t.size, le);
      for (const v of t.vars) p = put3(dv, p, v.type, v.offset, v.size, le);
      break;
    case BTF_KIND_DECL_TAG:
      dv.setUint32(off + 8, t.type, le);
      dv.setInt32(p, t.componentIdx, le);
      p += 4;
      break;
    default:
      // PTR, FWD, TYPEDEF, modifiers, FUNC, FLOAT, TYPE_TAG: only the size/type word.
      dv.setUint32(off + 8, "size" in t ? t.size : "type" in t ? t.type : 0, le);
  }
  return p;
}

/** Header + types + strings, as a raw .BTF blob. */
export function encodeBtf(types: Iterable<BtfType>, strings: Uint8Array, littleEndian = true): Uint8Array {
  const list = Array.isArray(types) ? (types as BtfType[]) : [...types];
  let typeLen = 0;
  for (const t of list) typeLen += encodedTypeSize(t);
  const out = new Uint8Array(BTF_HEADER_LEN + typeLen + strings.length);
  const dv = new DataView(out.buffer);
  const le = littleEndian;
  dv.setUint16(0, BTF_MAGIC, le);
  dv.setUint8(2, BTF_VERSION);
  dv.setUint8(3, 0);
  dv.setUint32(4, BTF_HEADER_LEN, le);
  dv.setUint32(8, 0, le);
  dv.setUint32(12, typeLen, le);
  dv.setUint32(16, typeLen, le);
  dv.setUint32(20, strings.length, le);
  let p = BTF_HEADER_LEN;
  for (const t of list) p = writeType(dv, p, t, le);
  out.set(strings, p);
  return out;
}
