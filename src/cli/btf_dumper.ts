/**
 * bpftool's btf_dumper.c pieces the CLI prints with: a type written as C for a signature
 * (btf_dumper_type_only: `u32 (struct sock *)`, `void so_dctcp_init(unsigned long long * ctx)`), and
 * a struct_ops function pointer shown as the program in that slot
 * (`u32 (struct sock *) so_reno_ssthresh/prog_id:101`, or `... 0` when empty).
 */
import type { Btf } from "../btf/btf.js";
import type { BtfFunc, BtfFuncProto } from "../btf/types.js";
import { bpf_cmd } from "../uapi/bpf.js";
import {
  BTF_KIND_ARRAY,
  BTF_KIND_CONST,
  BTF_KIND_DATASEC,
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
  BTF_KIND_TYPEDEF,
  BTF_KIND_UNION,
  BTF_KIND_VAR,
  BTF_KIND_VOLATILE,
} from "../uapi/btf.js";
import { BpfError } from "../uapi/errno.js";
import { btfById, funcInfos, type Handle } from "./bpf_info.js";

/** A loop guard: a valid BTF never nests a signature this deep. */
const MAX_DEPTH = 32;

/** __btf_dumper_type_only(); undefined where bpftool gives up (an unknown kind). */
export function btfTypeOnly(btf: Btf, id: number, depth = 0): string | undefined {
  if (id === 0) return "void ";
  if (depth > MAX_DEPTH) return undefined;
  const t = btf.typeById(id);
  const sub = (x: number) => btfTypeOnly(btf, x, depth + 1);
  switch (t.kind) {
    case BTF_KIND_INT:
    case BTF_KIND_TYPEDEF:
    case BTF_KIND_FLOAT:
      return `${t.name} `;
    case BTF_KIND_STRUCT:
      return `struct ${t.name} `;
    case BTF_KIND_UNION:
      return `union ${t.name} `;
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
      return `enum ${t.name} `;
    case BTF_KIND_ARRAY: {
      const e = sub(t.type);
      return e === undefined ? undefined : `${e}[${t.nelems}]`;
    }
    case BTF_KIND_PTR: {
      const e = sub(t.type);
      return e === undefined ? undefined : `${e}* `;
    }
    case BTF_KIND_FWD:
      return `${t.isUnion ? "union" : "struct"} ${t.name} `;
    case BTF_KIND_VOLATILE:
    case BTF_KIND_CONST:
    case BTF_KIND_RESTRICT: {
      const e = sub(t.type);
      const q = t.kind === BTF_KIND_VOLATILE ? "volatile" : t.kind === BTF_KIND_CONST ? "const" : "restrict";
      return e === undefined ? undefined : `${q} ${e}`;
    }
    case BTF_KIND_FUNC_PROTO:
      return btfDumpFunc(btf, t, undefined, depth + 1);
    case BTF_KIND_FUNC: {
      const proto = btf.typeById(t.type);
      return proto.kind === BTF_KIND_FUNC_PROTO ? btfDumpFunc(btf, proto, t, depth + 1) : undefined;
    }
    case BTF_KIND_VAR: {
      const e = sub(t.type);
      return e === undefined ? undefined : `${t.linkage === 0 ? "static " : ""}${e} ${t.name}`;
    }
    case BTF_KIND_DATASEC:
      return `section ("${t.name}") `;
    default:
      return undefined;
  }
}

/** btf_dump_func(): `RET NAME(ARG, ...)`; an unnamed argument loses its trailing space. */
export function btfDumpFunc(btf: Btf, proto: BtfFuncProto, func?: BtfFunc, depth = 0): string | undefined {
  let s = btfTypeOnly(btf, proto.type, depth + 1);
  if (s === undefined) return undefined;
  s += func ? `${func.name}(` : "(";
  proto.params.forEach((p, i) => {
    if (s === undefined) return;
    if (i) s += ", ";
    if (p.type) {
      const a = btfTypeOnly(btf, p.type, depth + 1);
      if (a === undefined) {
        s = undefined;
        return;
      }
      s += a;
      if (p.name) s += p.name;
      else if (s.endsWith(" ")) s = s.slice(0, -1);
    } else s += "...";
  });
  return s === undefined ? undefined : `${s})`;
}

/** The name of the program with this id as its BTF func_info names it (dump_prog_id_as_func_ptr). */
export function progBtfName(h: Handle, progId: number): string | undefined {
  let fd: number;
  try {
    fd = h.bpf(bpf_cmd.BPF_PROG_GET_FD_BY_ID, { prog_id: progId });
  } catch (e) {
    if (e instanceof BpfError) return undefined;
    throw e;
  }
  try {
    const attr: Record<string, unknown> = { bpf_fd: fd };
    h.bpf(bpf_cmd.BPF_OBJ_GET_INFO_BY_FD, attr);
    const info = attr.info as Record<string, unknown>;
    const [fi] = funcInfos(info);
    if (!Number(info.btf_id) || !fi) return undefined;
    const t = btfById(h, Number(info.btf_id))?.typeById(fi.typeId);
    return t?.kind === BTF_KIND_FUNC ? t.name : undefined;
  } finally {
    h.close(fd);
  }
}

/** A struct_ops function pointer slot holding a program id, as bpftool's struct_ops dump shows it. */
export function funcPtrAsProg(h: Handle, btf: Btf, value: bigint, protoId: number): string | undefined {
  if (value > 0xffffffffn) return undefined;
  const proto = btf.typeById(protoId);
  if (proto.kind !== BTF_KIND_FUNC_PROTO) return undefined;
  const sig = btfDumpFunc(btf, proto);
  if (sig === undefined) return undefined;
  if (value === 0n) return `${sig} 0`;
  const name = progBtfName(h, Number(value));
  return `${sig} ${name ?? "<unknown_prog_name>"}/prog_id:${value}`;
}
