/**
 * struct_ops map values built and read by member name, against one target's BTF: the host
 * kernel's `struct bpf_struct_ops_tcp_congestion_ops` and structops' simulated one have the same
 * members but may differ in size, padding and type ids, so a value is never copied between
 * targets as bytes: each target builds its own from the scenario's member assignments, and
 * lookups are decoded back into members (prog ids mapped to the scenario's names) to compare.
 */
import type { Btf } from "../btf/btf.js";
import { btfResolveSize, btfTypeSkipModifiers } from "../btf/resolve.js";
import type { BtfComposite, BtfType } from "../btf/types.js";
import { BTF_KIND_ARRAY, BTF_KIND_ENUM, BTF_KIND_INT, BTF_KIND_PTR, BTF_KIND_STRUCT } from "../uapi/btf.js";

/** A struct_ops type's layout on one target. */
export interface StructOpsLayout {
  /** The ops struct (`tcp_congestion_ops`) and its value type (`bpf_struct_ops_tcp_congestion_ops`). */
  type: BtfComposite;
  typeId: number;
  valueType: BtfComposite;
  valueTypeId: number;
  /** Byte offset of `data` inside the value. */
  dataOff: number;
}

export function structOpsLayout(btf: Btf, name: string): StructOpsLayout | null {
  const typeId = btf.findByNameKind(name, BTF_KIND_STRUCT);
  const valueTypeId = btf.findByNameKind(`bpf_struct_ops_${name}`, BTF_KIND_STRUCT);
  if (typeId < 0 || valueTypeId < 0) return null;
  const valueType = btf.typeById(valueTypeId) as BtfComposite;
  const data = valueType.members[1];
  if (!data) return null;
  return { type: btf.typeById(typeId) as BtfComposite, typeId, valueType, valueTypeId, dataOff: data.bitOffset / 8 };
}

/** The first byte not covered by any member of `t` in [from, to), or -1. */
export function firstHole(btf: Btf, t: BtfComposite, from = 0, to = t.size): number {
  const covered = new Uint8Array(t.size);
  for (const m of t.members) {
    const off = Math.floor(m.bitOffset / 8);
    const size = m.bitfieldSize ? Math.ceil(m.bitfieldSize / 8) : btfResolveSize(btf, m.type);
    covered.fill(1, off, Math.min(off + size, t.size));
  }
  for (let i = from; i < to; i++) if (!covered[i]) return i;
  return -1;
}

/** How a member value token is turned into a number: prog names to fds, `$uniq` to the run's name. */
export type Resolve = (token: string) => bigint | string;

/**
 * Build a value. Member names are those of the ops struct; special names address the rest:
 * `@refcnt`, `@state` (common), `@hole` (a byte of the padding between common and data),
 * `@data_hole` (a byte of padding inside the ops struct), `@tail` (the last byte of the value).
 */
export function buildValue(btf: Btf, lay: StructOpsLayout, members: [string, string][], resolve: Resolve): Uint8Array {
  const v = new Uint8Array(lay.valueType.size);
  const dv = new DataView(v.buffer);
  for (const [name, tok] of members) {
    const val = resolve(tok);
    const num = (): bigint => {
      if (typeof val !== "bigint") throw new Error(`${name}: '${tok}' is not a number`);
      return val;
    };
    switch (name) {
      case "@refcnt":
        dv.setUint32(0, Number(num()), true);
        continue;
      case "@state":
        dv.setUint32(4, Number(num()), true);
        continue;
      case "@hole": {
        const h = firstHole(btf, lay.valueType);
        if (h < 0) throw new Error("the value type has no padding");
        v[h] = Number(num());
        continue;
      }
      case "@data_hole": {
        const h = firstHole(btf, lay.type);
        if (h < 0) throw new Error(`${lay.type.name} has no padding`);
        v[lay.dataOff + h] = Number(num());
        continue;
      }
      case "@tail":
        v[v.length - 1] = Number(num());
        continue;
    }
    const m = lay.type.members.find((x) => x.name === name);
    if (!m) throw new Error(`${lay.type.name} has no member ${name}`);
    const off = lay.dataOff + m.bitOffset / 8;
    const t = btfTypeSkipModifiers(btf, m.type).type;
    if (t.kind === BTF_KIND_ARRAY) {
      const size = btfResolveSize(btf, m.type);
      if (typeof val === "string") v.set(new TextEncoder().encode(val).subarray(0, size), off);
      else v[off] = Number(val);
      continue;
    }
    const size = btfResolveSize(btf, m.type);
    writeUint(dv, off, size, num());
  }
  return v;
}

function writeUint(dv: DataView, off: number, size: number, x: bigint): void {
  for (let i = 0; i < size; i++) dv.setUint8(off + i, Number((x >> BigInt(8 * i)) & 0xffn));
}

function readUint(b: Uint8Array, off: number, size: number): bigint {
  let x = 0n;
  for (let i = size - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[off + i] ?? 0);
  return x;
}

function isFuncPtr(btf: Btf, t: BtfType): boolean {
  if (t.kind !== BTF_KIND_PTR) return false;
  return btf.typeById(t.type).kind === 13; // BTF_KIND_FUNC_PROTO
}

/**
 * Decode a value into "path -> text" for comparison: common.refcnt, common.state, every data
 * member by name (func-ptr slots through `progName`, char arrays as strings, other members as
 * numbers or hex), and `padding` when any byte outside the members is non-zero.
 */
export function decodeValue(
  btf: Btf,
  lay: StructOpsLayout,
  bytes: Uint8Array,
  progName: (id: number) => string,
): Map<string, string> {
  const out = new Map<string, string>();
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  out.set("common.refcnt", String(dv.getUint32(0, true)));
  out.set("common.state", String(dv.getUint32(4, true)));
  for (const m of lay.type.members) {
    const off = lay.dataOff + m.bitOffset / 8;
    const t = btfTypeSkipModifiers(btf, m.type).type;
    const size = btfResolveSize(btf, m.type);
    let text: string;
    if (isFuncPtr(btf, t)) {
      const id = Number(readUint(bytes, off, 8));
      text = id === 0 ? "0" : progName(id);
    } else if (t.kind === BTF_KIND_ARRAY && btfResolveSize(btf, (t as { type: number }).type) === 1) {
      const raw = bytes.subarray(off, off + size);
      const nul = raw.indexOf(0);
      const s = new TextDecoder().decode(raw.subarray(0, nul < 0 ? raw.length : nul));
      const rest = nul < 0 ? [] : Array.from(raw.subarray(nul));
      text = JSON.stringify(s) + (rest.some((x) => x !== 0) ? " (bytes after NUL)" : "");
    } else if ((t.kind === BTF_KIND_INT || t.kind === BTF_KIND_ENUM || t.kind === BTF_KIND_PTR) && size <= 8) {
      text = readUint(bytes, off, size).toString();
    } else {
      text = Buffer.from(bytes.subarray(off, off + size)).toString("hex");
      if (/^0*$/.test(text)) text = "0";
    }
    out.set(`data.${m.name}`, text);
  }
  const dataHole = (() => {
    const covered = new Uint8Array(bytes.length);
    covered.fill(1, 0, 8);
    for (const m of lay.type.members) {
      const off = lay.dataOff + m.bitOffset / 8;
      covered.fill(1, off, off + btfResolveSize(btf, m.type));
    }
    for (let i = 0; i < bytes.length; i++) if (!covered[i] && bytes[i]) return i;
    return -1;
  })();
  out.set("padding", dataHole < 0 ? "zero" : "non-zero");
  return out;
}

/** Member-aware diff: "path: kernel X, structops Y" for every path whose text differs. */
export function diffDecoded(a: Map<string, string>, b: Map<string, string>, an = "kernel", bn = "structops"): string[] {
  const out: string[] = [];
  const keys = new Set([...a.keys(), ...b.keys()]);
  for (const k of keys) {
    const x = a.get(k);
    const y = b.get(k);
    if (x === y) continue;
    out.push(`${k}: ${an} ${x ?? "(absent)"}, ${bn} ${y ?? "(absent)"}`);
  }
  return out;
}
