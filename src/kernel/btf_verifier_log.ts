/**
 * kernel/bpf/btf.c's verifier log lines for a BTF_LOAD that fails on a type: btf_verifier_log_type
 * ("[id] KIND name <details> <msg>", the details from the kind's log_details), and for a problem in
 * one of its members or variables the type line followed by btf_verifier_log_member ("\tname
 * type_id=.. bits_offset=.. <msg>") or btf_verifier_log_vsi ("\t type_id=.. offset=.. size=..
 * <msg>"). The checks and their words are the BTF validator's; this lays them out as the kernel
 * prints them.
 */
import type { Btf } from "../btf/btf.js";
import type { BtfType } from "../btf/types.js";
import { BTF_KIND_NAMES } from "../uapi/btf.js";
import type { BpfError } from "../uapi/errno.js";

const INT_ENCODING: Record<number, string> = { 0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL" };

/** __btf_name_by_offset. */
function nameOf(t: BtfType): string {
  return t.nameOff === 0 ? "(anon)" : t.name;
}

/** The kind's log_details. */
function details(t: BtfType): string {
  switch (t.kind) {
    case 1:
      return `size=${t.size} bits_offset=${t.offset} nr_bits=${t.bits} encoding=${INT_ENCODING[t.encoding] ?? "UNKN"}`;
    case 3:
      return `type_id=${t.type} index_type_id=${t.indexType} nr_elems=${t.nelems}`;
    case 4:
    case 5:
      return `size=${t.size} vlen=${t.members.length}`;
    case 6:
    case 19:
      return `size=${t.size} vlen=${t.values.length}`;
    case 7:
      return t.isUnion ? "union" : "struct";
    case 12:
      return `type_id=${t.type}`;
    case 13: {
      const p = t.params;
      const arg = (x: { type: number; name: string }) => `${x.type} ${x.name}`;
      let args: string;
      if (!p.length) args = "void";
      else if (p.length === 1 && !p[0].type) args = "vararg";
      else {
        const last = p[p.length - 1];
        args = [arg(p[0]), ...p.slice(1, -1).map(arg)].join(", ");
        if (p.length > 1) args += last.type ? `, ${arg(last)}` : ", vararg";
      }
      return `return=${t.type} args=(${args})`;
    }
    case 14:
      return `type_id=${t.type} linkage=${t.linkage}`;
    case 15:
      return `size=${t.size} vlen=${t.vars.length}`;
    case 16:
      return `size=${t.size}`;
    case 17:
      return `type=${t.type} component_idx=${t.componentIdx}`;
    case 2:
    case 8:
    case 9:
    case 10:
    case 11:
    case 18:
      return `type_id=${t.type}`;
    default:
      return "";
  }
}

function typeLine(t: BtfType, msg: string): string {
  const d = details(t);
  return `[${t.id}] ${BTF_KIND_NAMES[t.kind] ?? "UNKNOWN"} ${nameOf(t)}${d ? ` ${d}` : ""}${msg ? ` ${msg}` : ""}`;
}

/**
 * btf_verifier_log_member's line: "\tname type_id=.. bits_offset=.. msg", with the bitfield size
 * under kind_flag (`offset`: the member's raw offset word).
 */
function memberLine(name: string, kflag: boolean, type: number, offset: number, msg: string): string {
  const where = kflag
    ? `type_id=${type} bitfield_size=${offset >>> 24} bits_offset=${offset & 0xffffff}`
    : `type_id=${type} bits_offset=${offset}`;
  return `\t${name} ${where} ${msg}`;
}

/** The log line(s) for a BTF the validator refused (the message as it is when no type is named). */
export function btfVerifierLine(e: BpfError, btf?: Btf): string {
  if (e.context.rendered) return e.message;
  if (typeof e.context.log === "string") return e.context.log;
  const reason = e.context.reason;
  const id = e.context.typeId;
  const c = e.context;
  if (typeof c.rawMemberType === "number" && typeof c.rawMemberOffset === "number") {
    // A struct whose member's name offset is bad does not decode: its raw words, and the name
    // __btf_name_by_offset gives such an offset.
    const kind = BTF_KIND_NAMES[Number(c.rawKind)] ?? "UNKNOWN";
    const head = `[${id}] ${kind} ${c.rawName} size=${c.rawSize} vlen=${c.rawVlen}`;
    return `${head}\n${memberLine("(invalid-name-offset)", c.rawKflag === 1, c.rawMemberType, c.rawMemberOffset, String(reason))}`;
  }
  if (typeof id === "number" && typeof e.context.nameOff === "number")
    return `[${id}] Invalid name_offset:${e.context.nameOff}`;
  if (!btf || typeof reason !== "string" || typeof id !== "number")
    return e.message.replace(/ \(type id \d+, offset \d+\)$/, "");
  let t: BtfType;
  try {
    t = btf.typeById(id);
  } catch {
    return e.message;
  }
  const item = e.context.item;
  if (typeof item === "number" && (t.kind === 4 || t.kind === 5)) {
    const member = t.members[item];
    const offset = t.kindFlag ? (member.bitfieldSize << 24) | member.bitOffset : member.bitOffset;
    const name = member.nameOff === 0 ? "(anon)" : member.name;
    return `${typeLine(t, "")}\n${memberLine(name, t.kindFlag, member.type, offset, reason)}`;
  }
  if (typeof item === "number" && t.kind === 15) {
    const v = t.vars[item];
    return `${typeLine(t, "")}\n\t type_id=${v.type} offset=${v.offset} size=${v.size} ${reason}`;
  }
  // btf_check_meta's own checks name the id only
  if (reason.startsWith("Invalid btf_info:")) return `[${id}] ${reason}`;
  return typeLine(t, reason);
}
