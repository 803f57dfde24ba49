/**
 * kernel/bpf/btf.c's verifier log lines for a BTF_LOAD that fails on a type: btf_verifier_log_type
 * ("[id] KIND name <details> <msg>", the details from the kind's log_details), and for a problem in
 * one of its members or variables the type line followed by btf_verifier_log_member ("\tname
 * type_id=.. bits_offset=.. <msg>") or btf_verifier_log_vsi ("\t type_id=.. offset=.. size=..
 * <msg>"). The checks themselves are the BTF validator's; this gives their findings the kernel's
 * words, which is what a BTF_LOAD log is read for.
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

/** A struct or union member's problem, as btf_verifier_log_member words it. */
const MEMBER: [RegExp, string][] = [
  [/^Invalid member name \(member (\d+)\)$/, "Invalid name"],
  [/^member (.*) type_id \d+ invalid$/, "Invalid type_id"],
  [/^Invalid member bits_offset \((.*)\)$/, "Invalid member bits_offset"],
  [/^Member (.*) bits_offset exceeds its struct size$/, "Member bits_offset exceeds its struct size"],
  [/^Invalid member (.*) \(type \d+ \w+\)$/, "Invalid member"],
  [/^Invalid member base type \((.*)\)$/, "Invalid member base type"],
  [/^Invalid member bitfield_size \((.*)\)$/, "Invalid member bitfield_size"],
  [/^Member (.*) exceeds struct_size$/, "Member exceeds struct_size"],
  [/^Member (.*) is not byte aligned$/, "Member is not byte aligned"],
  [/^Member (.*) nr_copy_bits exceeds 128$/, "nr_copy_bits exceeds 128"],
];

/** A type's own problem: the validator's words that differ from the kernel's. */
const TYPE: [RegExp, string][] = [
  [/^type_id \d+ invalid$/, "Invalid type_id"],
  [/^elem type_id \d+ invalid$/, "Invalid elem"],
  [/^index type_id \d+ invalid$/, "Invalid index"],
  [/^return type_id \d+ invalid$/, "Invalid return type"],
  [/^arg#(\d+) type_id \d+ invalid$/, "Invalid arg#$1"],
  [/^Unexpected size \d+$/, "Unexpected size"],
  [/^Invalid name \(enumerator .*\)$/, "Invalid name"],
];

/** A variable of a DATASEC: btf_verifier_log_vsi. */
const VSI: [RegExp, string][] = [
  [/^var type_id (\d+) invalid$/, "Invalid type_id"],
  [/^Invalid offset \d+$/, "Invalid offset"],
  [/^Invalid offset\+size$/, "Invalid offset+size"],
  [/^Not a VAR kind member \(type (\d+)\)$/, "Not a VAR kind member"],
  [/^Invalid size$/, "Invalid size"],
];

/** The log line(s) for a BTF the validator refused (the message as it is when no type is named). */
export function btfVerifierLine(e: BpfError, btf?: Btf): string {
  if (e.context.rendered) return e.message;
  const reason = e.context.reason;
  const id = e.context.typeId;
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
    const msg = MEMBER.find(([re]) => re.test(reason))?.[1] ?? reason;
    const where = t.kindFlag
      ? `type_id=${member.type} bitfield_size=${member.bitfieldSize} bits_offset=${member.bitOffset}`
      : `type_id=${member.type} bits_offset=${member.bitOffset}`;
    const name = member.nameOff === 0 ? "(anon)" : member.name;
    return `${typeLine(t, "")}\n\t${name} ${where} ${msg}`;
  }
  if (typeof item === "number" && t.kind === 15) {
    const v = t.vars[item];
    const msg = VSI.find(([re]) => re.test(reason))?.[1] ?? reason;
    return `${typeLine(t, "")}\n\t type_id=${v.type} offset=${v.offset} size=${v.size} ${msg}`;
  }
  // btf_check_meta's own checks name the id only
  if (reason.startsWith("Invalid btf_info:")) return `[${id}] ${reason}`;
  for (const [re, msg] of TYPE) if (re.test(reason)) return typeLine(t, reason.replace(re, msg));
  return typeLine(t, reason);
}
