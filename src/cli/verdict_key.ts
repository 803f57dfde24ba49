/**
 * The identity of one verifier run: a sha256 over everything the verifier reads (src/verifier/env.ts
 * says it is a pure function of its VerifierEnv) and the code that reads it. Two runs with the
 * same key give the same verdict, log, statistics and per-instruction facts, so a record of the
 * first can stand in for the second (src/cli/verdict_cache.ts).
 *
 * Every field of the VerifierEnv is named here. An input this file does not know (a field added
 * to VerifierEnv later, an object of a class it cannot print) makes the run uncacheable rather
 * than keyed without it.
 */
import { createHash } from "node:crypto";
import { Btf } from "../btf/btf.js";
import type { VerifierEnv } from "../verifier/env.js";

/** Thrown inside the key's printer: this input cannot be keyed, verify for real. */
class Unkeyable extends Error {}

const btfHashes = new WeakMap<Btf, string>();

/** A BTF object by its bytes and its base's (a module's split BTF over vmlinux). */
function btfHash(b: Btf): string {
  let h = btfHashes.get(b);
  if (h === undefined) {
    const sha = createHash("sha256");
    sha.update(`btf ${b.startId} ${b.startStrOff} ${b.base ? btfHash(b.base) : "-"}\n`);
    sha.update(b.data);
    h = sha.digest("hex");
    btfHashes.set(b, h);
  }
  return h;
}

/**
 * A canonical text of a value: plain objects with sorted keys, arrays, maps, byte arrays, BTF by
 * hash. A function is code, which the code fingerprint covers; anything else is refused.
 */
function canon(v: unknown, out: string[], depth = 0): void {
  if (depth > 24) throw new Unkeyable("nested too deep");
  if (v === undefined) out.push("u");
  else if (v === null) out.push("n");
  else if (typeof v === "number") out.push(`${v}`);
  else if (typeof v === "bigint") out.push(`${v}n`);
  else if (typeof v === "boolean") out.push(v ? "T" : "F");
  else if (typeof v === "string") out.push(JSON.stringify(v));
  else if (typeof v === "function") out.push("f");
  else if (v instanceof Btf) out.push(`btf:${btfHash(v)}`);
  else if (v instanceof Uint8Array) out.push(`b:${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex")}`);
  else if (Array.isArray(v)) {
    out.push("[");
    for (const x of v) {
      canon(x, out, depth + 1);
      out.push(",");
    }
    out.push("]");
  } else if (v instanceof Map) {
    out.push("M{");
    for (const [k, x] of v) {
      canon(k, out, depth + 1);
      out.push(":");
      canon(x, out, depth + 1);
      out.push(",");
    }
    out.push("}");
  } else if (typeof v === "object") {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      throw new Unkeyable(`an input of class ${proto?.constructor?.name ?? "?"}`);
    }
    out.push("{");
    for (const k of Object.keys(v).sort()) {
      out.push(JSON.stringify(k), ":");
      canon((v as Record<string, unknown>)[k], out, depth + 1);
      out.push(",");
    }
    out.push("}");
  } else throw new Unkeyable(`an input of type ${typeof v}`);
}

/** A table that stays the same object for a whole run (the kernel's kfuncs, helper protos): printed once. */
const tableTexts = new WeakMap<object, { size: number; text: string }>();
function tableText(t: ReadonlyMap<unknown, unknown>): string {
  const seen = tableTexts.get(t);
  if (seen && seen.size === t.size) return seen.text;
  const out: string[] = [];
  canon(t, out);
  const text = out.join("");
  tableTexts.set(t, { size: t.size, text });
  return text;
}

/** How each field of the VerifierEnv goes into the key. */
const FIELDS: Record<keyof VerifierEnv, (env: VerifierEnv, out: string[]) => void> = {
  insns: (e, out) => {
    for (const i of e.insns) out.push(`${i.code} ${i.dst} ${i.src} ${i.off} ${i.imm};`);
  },
  ldImm64Aux: (e, out) => canon(e.ldImm64Aux, out),
  progType: (e, out) => canon(e.progType, out),
  expectedAttachType: (e, out) => canon(e.expectedAttachType, out),
  attachBtfId: (e, out) => canon(e.attachBtfId, out),
  sleepable: (e, out) => canon(e.sleepable, out),
  gpl: (e, out) => canon(e.gpl, out),
  privileged: (e, out) => canon(e.privileged, out),
  capSysBoot: (e, out) => canon(e.capSysBoot, out),
  allowPtrLeaks: (e, out) => canon(e.allowPtrLeaks, out),
  strictAlignment: (e, out) => canon(e.strictAlignment, out),
  logLevel: (e, out) => canon(e.logLevel, out),
  btf: (e, out) => canon(e.btf, out),
  progBtf: (e, out) => canon(e.progBtf, out),
  progStructMetas: (e, out) => canon(e.progStructMetas, out),
  maps: (e, out) => canon(e.maps, out),
  helperProtos: (e, out) => out.push(e.helperProtos ? tableText(e.helperProtos) : "u"),
  kfuncs: (e, out) => out.push(e.kfuncs ? tableText(e.kfuncs) : "u"),
  kfuncBtfs: (e, out) => {
    if (!e.kfuncBtfs) return void out.push("u");
    for (const [off, { btf, kfuncs }] of e.kfuncBtfs) out.push(`${off}:btf:${btfHash(btf)}:${tableText(kfuncs)},`);
  },
  ksymBtfs: (e, out) => {
    for (const btf of e.ksymBtfs ?? []) out.push(`btf:${btfHash(btf)},`);
  },
  funcInfo: (e, out) => canon(e.funcInfo, out),
  // What the table answers for (attachBtfId, btf) is the code's (the struct_ops types it
  // registers, their stubs and checks) over the attach BTF, a module's when the type is one's:
  // all of it already in the key.
  structOps: (e, out) => out.push(e.structOps ? "table" : "u"),
  attachTarget: (e, out) =>
    canon(e.attachTarget && { btf: e.attachTarget.btf, name: e.attachTarget.name, proto: e.attachTarget.proto }, out),
  ops: (e, out) => canon(e.ops && { name: e.ops.name, returnRange: e.ops.returnRange }, out),
  testStateFreq: (e, out) => canon(e.testStateFreq, out),
  insnLimit: (e, out) => canon(e.insnLimit, out),
  jitSubprogTailcalls: (e, out) => canon(e.jitSubprogTailcalls, out),
  privStackRequested: (e, out) => canon(e.privStackRequested, out),
  // A progress callback: it reads nothing the verdict depends on.
  condResched: (_e, out) => out.push("f"),
};

/**
 * The key of a verifier run of `env` by the code identified by `code`, or undefined when some input
 * cannot be keyed (then the run is not cached).
 */
export function verdictKey(env: VerifierEnv, code: string): string | undefined {
  const out: string[] = [`structops verdict 1\n${code}\n`];
  try {
    for (const k of (Object.keys(env) as (keyof VerifierEnv)[]).sort()) {
      if (env[k] === undefined) continue;
      const f = FIELDS[k];
      if (!f) return undefined;
      out.push(`\n${k}=`);
      f(env, out);
    }
  } catch (e) {
    if (e instanceof Unkeyable) return undefined;
    throw e;
  }
  return createHash("sha256").update(out.join("")).digest("hex");
}
