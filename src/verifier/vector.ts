/**
 * Programs as test vectors: the conformance `.data` format (`-- asm`, `-- mem`, ...), plus the
 * sections our bad-program corpus adds:
 *
 *   -- maps          one map per line: `array|hash|sk_storage key=4 value=8 entries=1 [rdonly] [wronly] [frozen]
 *                    [spin_lock=OFF]`
 *   -- unprivileged  load without bpf_capable / allow_ptr_leaks
 *   -- helpers       the program type may call bpf_base_func_proto's helpers
 *   -- nongpl        the program's licence is not GPL-compatible
 *   -- expect        `errno EACCES`, `insn 3`, `msg <the kernel's message>`, `log_level 0`
 *
 * `lddw %rN, map_fd(M)` refers to map M of the list, `map_value(M, OFF)` into its value, the way
 * the kernel resolves ld_imm64 pseudo sources before the verifier runs.
 */
import { assemble } from "../isa/asm.js";
import { type Insn, isLdImm64 } from "../isa/insn.js";
import {
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
  bpf_map_type,
} from "../uapi/bpf.js";
import { BpfError, EINVAL, errnoByName } from "../uapi/errno.js";
import { conformanceOps } from "./conformance_ops.js";
import type { LdImm64Aux, VerifierEnv, VerifierMap, VerifierOps } from "./env.js";
import { bpfBaseFuncProto } from "./helper_protos.js";

export interface VerifierVector {
  name: string;
  insns: Insn[];
  memSize: number;
  maps: VerifierMap[];
  privileged: boolean;
  helpers: boolean;
  gpl: boolean;
  expect?: { errno?: number; insn?: number; msg?: string; logLevel?: number };
}

const MAP_TYPES: Record<string, number> = {
  array: bpf_map_type.BPF_MAP_TYPE_ARRAY,
  hash: bpf_map_type.BPF_MAP_TYPE_HASH,
  sk_storage: bpf_map_type.BPF_MAP_TYPE_SK_STORAGE,
};

function sections(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let cur: string[] | undefined;
  for (const line of text.split(/\r?\n/)) {
    const m = /^--\s*(.*?)\s*$/.exec(line);
    if (m) {
      cur = [];
      out.set(m[1], cur);
    } else cur?.push(line);
  }
  return out;
}

function parseMap(line: string, name: string): VerifierMap {
  const [kind, ...kv] = line.trim().split(/\s+/);
  const type = MAP_TYPES[kind];
  if (type === undefined) throw new BpfError(EINVAL, `${name}: unknown map type '${kind}'`);
  const num = (k: string, d: number): number => {
    const f = kv.find((x) => x.startsWith(`${k}=`));
    return f ? Number(f.slice(k.length + 1)) : d;
  };
  return {
    type,
    keySize: num("key", 4),
    valueSize: num("value", 8),
    maxEntries: num("entries", 1),
    flags: 0,
    rdonlyProg: kv.includes("rdonly"),
    wronlyProg: kv.includes("wronly"),
    spinLockOff: kv.some((x) => x.startsWith("spin_lock=")) ? num("spin_lock", 0) : undefined,
    frozen: kv.includes("frozen"),
  };
}

export function parseVerifierVector(text: string, name = "vector"): VerifierVector {
  const s = sections(text);
  const asm = s.get("asm");
  if (!asm) throw new BpfError(EINVAL, `${name}: no '-- asm' section`);
  const hex = (s.get("mem") ?? [])
    .map((l) => l.replace(/#.*/, ""))
    .join(" ")
    .split(/\s+/)
    .filter((t) => t !== "");
  const maps = (s.get("maps") ?? []).filter((l) => l.trim() && !l.trim().startsWith("#")).map((l) => parseMap(l, name));
  let expect: VerifierVector["expect"];
  const ex = s.get("expect");
  if (ex) {
    expect = {};
    for (const raw of ex) {
      const line = raw.trim();
      const m = /^(errno|insn|msg|log_level)\s+(.*)$/.exec(line);
      if (!m) continue;
      if (m[1] === "errno") expect.errno = errnoByName(m[2].trim()) ?? Number(m[2]);
      else if (m[1] === "insn") expect.insn = Number(m[2]);
      else if (m[1] === "log_level") expect.logLevel = Number(m[2]);
      else expect.msg = m[2].trim();
    }
  }
  return {
    name,
    insns: assemble(asm.join("\n")),
    memSize: hex.length,
    maps,
    privileged: !s.has("unprivileged"),
    helpers: s.has("helpers") || maps.length > 0,
    gpl: !s.has("nongpl"),
    expect,
  };
}

/** What the kernel's resolve_pseudo_ldimm64 tells the verifier about each ld_imm64. */
export function resolveLdImm64(insns: readonly Insn[]): (LdImm64Aux | undefined)[] {
  const aux: (LdImm64Aux | undefined)[] = [];
  insns.forEach((i, t) => {
    if (!isLdImm64(i) || (t > 0 && isLdImm64(insns[t - 1]) && aux[t - 1] !== undefined)) return;
    if (i.src === BPF_PSEUDO_MAP_FD || i.src === BPF_PSEUDO_MAP_IDX) aux[t] = { kind: "map_ptr", map: i.imm };
    else if (i.src === BPF_PSEUDO_MAP_VALUE || i.src === BPF_PSEUDO_MAP_IDX_VALUE)
      aux[t] = { kind: "map_value", map: i.imm, off: insns[t + 1]?.imm ?? 0 };
    else aux[t] = { kind: "plain" };
  });
  return aux;
}

/** A VerifierEnv for a vector: r1 = context of the vector's memory size, r2 = its length. */
export function vectorEnv(v: VerifierVector, logLevel = 0): VerifierEnv {
  const base = conformanceOps(v.memSize);
  const ops: VerifierOps = v.helpers
    ? { ...base, name: "vector", getFuncProto: (id) => bpfBaseFuncProto(id, v.privileged) }
    : base;
  return {
    insns: v.insns,
    ldImm64Aux: resolveLdImm64(v.insns),
    progType: 1,
    privileged: v.privileged,
    gpl: v.gpl,
    logLevel,
    maps: v.maps,
    ops,
  };
}
