/**
 * `btf dump ... format raw`: bpftool's dump_btf_type text and JSON forms (tools/bpf/bpftool/btf.c),
 * one type per record, byte for byte.
 */
import {
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
} from "../uapi/btf.js";
import type { Btf } from "./btf.js";
import { JsonWriter } from "./json_writer.js";
import type { BtfType } from "./types.js";

function intEncStr(enc: number): string {
  switch (enc) {
    case 0:
      return "(none)";
    case BTF_INT_SIGNED:
      return "SIGNED";
    case BTF_INT_CHAR:
      return "CHAR";
    case BTF_INT_BOOL:
      return "BOOL";
    default:
      return "UNKN";
  }
}

const LINKAGE = ["static", "global", "extern"];
const linkageStr = (l: number): string => LINKAGE[l] ?? "(unknown)";
const kindStr = (k: number): string => BTF_KIND_NAMES[k] ?? "UNKNOWN";
const anon = (s: string): string => (s === "" ? "(anon)" : s);

/** One type as bpftool prints it (possibly several lines, no trailing newline). */
export function dumpBtfTypeRaw(btf: Btf, t: BtfType): string {
  let s = `[${t.id}] ${kindStr(t.kind)} '${anon(t.name)}'`;
  switch (t.kind) {
    case BTF_KIND_INT:
      s += ` size=${t.size} bits_offset=${t.offset} nr_bits=${t.bits} encoding=${intEncStr(t.encoding)}`;
      break;
    case BTF_KIND_PTR:
    case BTF_KIND_CONST:
    case BTF_KIND_VOLATILE:
    case BTF_KIND_RESTRICT:
    case BTF_KIND_TYPEDEF:
    case BTF_KIND_TYPE_TAG:
      s += ` type_id=${t.type}`;
      break;
    case BTF_KIND_ARRAY:
      s += ` type_id=${t.type} index_type_id=${t.indexType} nr_elems=${t.nelems}`;
      break;
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
      s += ` size=${t.size} vlen=${t.vlen}`;
      for (const m of t.members) {
        s += `\n\t'${anon(m.name)}' type_id=${m.type} bits_offset=${m.bitOffset}`;
        if (m.bitfieldSize) s += ` bitfield_size=${m.bitfieldSize}`;
      }
      break;
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64: {
      s += ` encoding=${t.signed ? "SIGNED" : "UNSIGNED"} size=${t.size} vlen=${t.vlen}`;
      const suffix = t.kind === BTF_KIND_ENUM ? "" : t.signed ? "LL" : "ULL";
      for (const v of t.values) s += `\n\t'${anon(v.name)}' val=${v.val}${suffix}`;
      break;
    }
    case BTF_KIND_FWD:
      s += ` fwd_kind=${t.kindFlag ? "union" : "struct"}`;
      break;
    case BTF_KIND_FUNC:
      s += ` type_id=${t.type} linkage=${linkageStr(t.linkage)}`;
      break;
    case BTF_KIND_FUNC_PROTO:
      s += ` ret_type_id=${t.type} vlen=${t.vlen}`;
      for (const p of t.params) s += `\n\t'${anon(p.name)}' type_id=${p.type}`;
      break;
    case BTF_KIND_VAR:
      s += ` type_id=${t.type}, linkage=${linkageStr(t.linkage)}`;
      break;
    case BTF_KIND_DATASEC:
      s += ` size=${t.size} vlen=${t.vlen}`;
      for (const v of t.vars) {
        s += `\n\ttype_id=${v.type} offset=${v.offset} size=${v.size}`;
        if (v.type <= btf.nrTypes) {
          const vt = btf.peekType(v.type);
          s += ` (${kindStr(vt.kind)} '${anon(vt.name)}')`;
        }
      }
      break;
    case BTF_KIND_FLOAT:
      s += ` size=${t.size}`;
      break;
    case BTF_KIND_DECL_TAG:
      s += ` type_id=${t.type} component_idx=${t.componentIdx}`;
      break;
  }
  return s;
}

/** `"name": [{...}, ...]`: one JSON object per item, its fields written by `fields`. */
function objectArray<T>(w: JsonWriter, name: string, items: readonly T[], fields: (item: T) => void): void {
  w.name(name);
  w.startArray();
  for (const item of items) {
    w.startObject();
    fields(item);
    w.endObject();
  }
  w.endArray();
}

function dumpBtfTypeJson(w: JsonWriter, t: BtfType): void {
  w.startObject();
  w.uintField("id", t.id);
  w.stringField("kind", kindStr(t.kind));
  w.stringField("name", anon(t.name));
  switch (t.kind) {
    case BTF_KIND_INT:
      w.uintField("size", t.size);
      w.uintField("bits_offset", t.offset);
      w.uintField("nr_bits", t.bits);
      w.stringField("encoding", intEncStr(t.encoding));
      break;
    case BTF_KIND_PTR:
    case BTF_KIND_CONST:
    case BTF_KIND_VOLATILE:
    case BTF_KIND_RESTRICT:
    case BTF_KIND_TYPEDEF:
    case BTF_KIND_TYPE_TAG:
      w.uintField("type_id", t.type);
      break;
    case BTF_KIND_ARRAY:
      w.uintField("type_id", t.type);
      w.uintField("index_type_id", t.indexType);
      w.uintField("nr_elems", t.nelems);
      break;
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
      w.uintField("size", t.size);
      w.uintField("vlen", t.vlen);
      objectArray(w, "members", t.members, (m) => {
        w.stringField("name", anon(m.name));
        w.uintField("type_id", m.type);
        w.uintField("bits_offset", m.bitOffset);
        if (m.bitfieldSize) w.uintField("bitfield_size", m.bitfieldSize);
      });
      break;
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
      w.stringField("encoding", t.signed ? "SIGNED" : "UNSIGNED");
      w.uintField("size", t.size);
      w.uintField("vlen", t.vlen);
      objectArray<(typeof t.values)[number]>(w, "values", t.values, (v) => {
        w.stringField("name", anon(v.name));
        // bpftool passes btf_enum's __s32 val to jsonw_uint_field: unsigned values with bit 31
        // set come out sign-extended to 64 bits.
        const val = t.kind === BTF_KIND_ENUM && !t.signed ? BigInt.asUintN(64, BigInt((v.val as number) | 0)) : v.val;
        w.intField("val", val);
      });
      break;
    case BTF_KIND_FWD:
      w.stringField("fwd_kind", t.kindFlag ? "union" : "struct");
      break;
    // Unlike the text form (where VAR prints "type_id=N, linkage"), JSON spells FUNC and VAR alike.
    case BTF_KIND_FUNC:
    case BTF_KIND_VAR:
      w.uintField("type_id", t.type);
      w.stringField("linkage", linkageStr(t.linkage));
      break;
    case BTF_KIND_FUNC_PROTO:
      w.uintField("ret_type_id", t.type);
      w.uintField("vlen", t.vlen);
      objectArray(w, "params", t.params, (p) => {
        w.stringField("name", anon(p.name));
        w.uintField("type_id", p.type);
      });
      break;
    case BTF_KIND_DATASEC:
      w.uintField("size", t.size);
      w.uintField("vlen", t.vlen);
      objectArray(w, "vars", t.vars, (v) => {
        w.uintField("type_id", v.type);
        w.uintField("offset", v.offset);
        w.uintField("size", v.size);
      });
      break;
    case BTF_KIND_FLOAT:
      w.uintField("size", t.size);
      break;
    case BTF_KIND_DECL_TAG:
      w.uintField("type_id", t.type);
      w.intField("component_idx", t.componentIdx);
      break;
  }
  w.endObject();
}

export interface DumpRawOptions {
  /** Dump only these ids (bpftool's root types), else every own type. */
  ids?: number[];
}

function idsToDump(btf: Btf, opts: DumpRawOptions): Iterable<number> {
  if (opts.ids) return opts.ids;
  // A split BTF dumps only its own types, as bpftool does with -B.
  return (function* () {
    for (let id = btf.startId; id <= btf.nrTypes; id++) yield id;
  })();
}

/** The whole `format raw` text dump, newline-terminated. */
export function btfDumpRaw(btf: Btf, opts: DumpRawOptions = {}): string {
  const lines: string[] = [];
  for (const id of idsToDump(btf, opts)) lines.push(dumpBtfTypeRaw(btf, btf.peekType(id)));
  return lines.length ? `${lines.join("\n")}\n` : "";
}

/** bpftool -j (compact) or -j -p (pretty) `btf dump` output: {"types":[...]}. */
export function btfDumpRawJson(btf: Btf, opts: DumpRawOptions & { pretty?: boolean } = {}): string {
  const w = new JsonWriter(opts.pretty ?? false);
  w.startObject();
  w.name("types");
  w.startArray();
  for (const id of idsToDump(btf, opts)) dumpBtfTypeJson(w, btf.peekType(id));
  w.endArray();
  w.endObject();
  return w.toString();
}
