/**
 * Run a scenario on one target, turning each step into an Observation that no longer mentions
 * target-specific numbers: fds become "fd", prog/map ids become the scenario's `$names`, type ids
 * become type names, value sizes become "value-type size", and lookup values are decoded member
 * by member. Two targets' observation lists can then be compared step by step (compare.ts).
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Btf } from "../btf/btf.js";
import { BtfBuilder } from "../btf/builder.js";
import { btfMemberByName } from "../btf/resolve.js";
import { assemble } from "../isa/asm.js";
import { encodeInsns } from "../isa/insn.js";
import { BpfObject } from "../loader/object.js";
import {
  BPF_EXIST,
  BPF_F_LINK,
  BPF_F_LOCK,
  BPF_F_RDONLY,
  BPF_F_REPLACE,
  BPF_F_SLEEPABLE,
  BPF_F_TEST_RUN_ON_CPU,
  BPF_F_VTYPE_BTF_OBJ_FD,
  BPF_F_WRONLY,
  BPF_NOEXIST,
  bpf_attach_type,
  bpf_map_type,
  bpf_prog_type,
} from "../uapi/bpf.js";
import { BTF_INT_SIGNED, BTF_KIND_STRUCT } from "../uapi/btf.js";
import { errnoName } from "../uapi/errno.js";
import { repoRoot } from "./host.js";
import type { Scenario, Step } from "./scenario.js";
import { unquote } from "./scenario.js";
import type { Outcome, ProgLoadArgs, Target } from "./target.js";
import { buildValue, decodeValue, type StructOpsLayout, structOpsLayout } from "./value.js";

export interface Observation {
  step: Step;
  /** "ok", "ok <value>" for calls whose return value is not an fd, or the errno name. */
  result: string;
  /** Decoded results to compare when the call succeeded (lookup members, info fields, retval...). */
  detail?: Map<string, string>;
  /** Why this target cannot run the scenario (then the whole scenario is skipped). */
  unsupported?: string;
}

interface Var {
  kind: "btf" | "map" | "prog" | "link";
  fd: number;
  /** struct_ops layout of a struct_ops map. */
  layout?: StructOpsLayout;
  valueSize?: number;
  keySize?: number;
  id?: number;
}

/** `prog_asm TYPE "asm"` for these program types: no struct_ops member to attach to. */
const PLAIN_PROG_TYPES: Record<string, number> = {
  raw_tp: bpf_prog_type.BPF_PROG_TYPE_RAW_TRACEPOINT,
  syscall: bpf_prog_type.BPF_PROG_TYPE_SYSCALL,
};

/** Flag words scenario files may use, or-ed with `|`. */
const FLAG_WORDS: Record<string, number> = {
  LINK: BPF_F_LINK,
  VTYPE_BTF_OBJ_FD: BPF_F_VTYPE_BTF_OBJ_FD,
  RDONLY: BPF_F_RDONLY,
  WRONLY: BPF_F_WRONLY,
  NOEXIST: BPF_NOEXIST,
  EXIST: BPF_EXIST,
  LOCK: BPF_F_LOCK,
  REPLACE: BPF_F_REPLACE,
  TEST_RUN_ON_CPU: BPF_F_TEST_RUN_ON_CPU,
  ANY: 0,
};

export function parseFlags(s: string | undefined): number {
  if (s === undefined || s === "") return 0;
  let v = 0;
  for (const w of s.split("|")) {
    // The uapi spelling (BPF_F_LINK, BPF_NOEXIST) is accepted as well as the short one.
    const f = FLAG_WORDS[w.replace(/^BPF_(F_)?/, "")] ?? Number(w);
    if (!Number.isFinite(f)) throw new Error(`unknown flag '${w}'`);
    v |= f;
  }
  return v >>> 0;
}

function u32le(n: number, size = 4): Uint8Array {
  const b = new Uint8Array(size);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

/** A minimal user BTF (libbpf passes the object's BTF as btf_fd; any non-kernel BTF will do). */
export function userBtfBlob(): Uint8Array {
  const b = new BtfBuilder();
  b.addInt("int", 4, BTF_INT_SIGNED);
  return b.build();
}

/** Byte offset of `struct.member` in this target's BTF (for {off:...} in assembly). */
function memberOffset(btf: Btf, path: string): number {
  const [sname, ...rest] = path.split(".");
  let id = btf.findByNameKind(sname!, BTF_KIND_STRUCT);
  if (id < 0) throw new Error(`no struct ${sname}`);
  let off = 0;
  for (const mname of rest) {
    const m = btfMemberByName(btf, id, mname);
    if (!m) throw new Error(`no member ${mname} in ${btf.nameOf(id)}`);
    off += m.bitOffset / 8;
    id = m.type;
  }
  return off;
}

export class ScenarioRun {
  readonly vars = new Map<string, Var>();
  private readonly progNames = new Map<number, string>();
  private readonly mapNames = new Map<number, string>();
  private hiddenBtf = -1;

  constructor(
    readonly target: Target,
    readonly uniq: string,
  ) {}

  /** A bound `$name`, or a literal fd number (bad-fd scenarios). */
  private v(name: string): Var {
    if (/^-?\d+$/.test(name)) return { kind: "map", fd: Number(name) };
    const x = this.vars.get(name);
    if (!x) throw new Error(`${name} is not bound (an earlier step failed?)`);
    return x;
  }

  /** A member value: `$prog` -> its fd, `$uniq` -> the run's unique name, "text", numbers. */
  private resolveToken = (tok: string): bigint | string => {
    if (tok === "$uniq") return this.uniq;
    if (tok.startsWith('"')) return unquote(tok).replaceAll("$uniq", this.uniq);
    if (tok.startsWith("$")) return BigInt(this.v(tok).fd);
    return BigInt(tok);
  };

  private async userBtf(): Promise<number> {
    if (this.hiddenBtf < 0) {
      const o = await this.target.btfLoad(userBtfBlob());
      if (!o.ok) throw new Error(`cannot load a user BTF: ${errnoName(o.errno ?? 0)}`);
      this.hiddenBtf = o.ret!;
    }
    return this.hiddenBtf;
  }

  private async idOf(kind: "map" | "prog" | "link", fd: number): Promise<number> {
    const o = await this.target.info(kind, fd);
    return o.ok ? Number(o.fields?.id ?? 0) : 0;
  }

  private nameOfProg = (id: number): string => this.progNames.get(id) ?? `prog id ${id} (not the scenario's)`;
  private nameOfMap = (id: number): string => (id === 0 ? "0" : (this.mapNames.get(id) ?? `map id ${id}`));

  private key(step: Step, size = 4): Uint8Array {
    const k = step.opts.key;
    if (k === "none") return new Uint8Array(0);
    return u32le(Number(k ?? 0), size);
  }

  async run(sc: Scenario): Promise<Observation[]> {
    const out: Observation[] = [];
    for (const step of sc.steps) {
      let obs: Observation;
      try {
        obs = await this.exec(step);
      } catch (e) {
        obs = { step, result: `scenario error: ${(e as Error).message}` };
      }
      out.push(obs);
      if (obs.unsupported) break;
    }
    return out;
  }

  private async exec(step: Step): Promise<Observation> {
    const t = this.target;
    const o = step.opts;
    const res = (r: Outcome, fdResult: boolean, detail?: Map<string, string>): Observation => {
      if (r.unsupported) return { step, result: "unsupported", unsupported: r.unsupported };
      if (!r.ok) return { step, result: errnoName(r.errno ?? 0) };
      return { step, result: fdResult || !r.ret ? "ok" : `ok ${r.ret}`, detail };
    };
    const bind = (r: Outcome, v: Var): void => {
      if (step.bind && r.ok && !r.unsupported) this.vars.set(step.bind, { ...v, fd: r.ret! });
    };
    switch (step.op) {
      case "btf_load": {
        // obj=FILE: the object's .BTF as libbpf sends it (DATASEC sizes and offsets fixed up at open).
        const blob = o.obj ? objectBtf(o.obj) : userBtfBlob();
        const r = await t.btfLoad(blob);
        bind(r, { kind: "btf", fd: 0 });
        return res(r, true);
      }
      case "vmlinux_btf": {
        const r = await t.btfFdById(1);
        bind(r, { kind: "btf", fd: 0 });
        return res(r, true);
      }
      case "map_create": {
        const what = step.args[0]!;
        const plain = what === "array" || what === "hash";
        const lay = plain ? null : structOpsLayout(t.btf, what);
        if (!plain && !lay)
          return { step, result: "unsupported", unsupported: `${t.name}: no struct_ops type ${what}` };
        const vs = o.value_size;
        const base = lay ? lay.valueType.size : 8;
        const valueSize = vs === undefined ? base : /^[+-]/.test(vs) ? base + Number(vs) : Number(vs);
        const keySize = Number(o.key_size ?? 4);
        let btfFd = 0;
        if (o.btf === undefined) btfFd = lay ? await this.userBtf() : 0;
        else if (o.btf !== "none") btfFd = this.resolveFd(o.btf);
        let vtype = lay ? lay.valueTypeId : 0;
        if (o.vtype === "ops" && lay) vtype = lay.typeId;
        else if (o.vtype !== undefined && o.vtype !== "ops") vtype = Number(o.vtype);
        const r = await t.mapCreate({
          map_type: plain
            ? what === "array"
              ? bpf_map_type.BPF_MAP_TYPE_ARRAY
              : bpf_map_type.BPF_MAP_TYPE_HASH
            : bpf_map_type.BPF_MAP_TYPE_STRUCT_OPS,
          key_size: keySize,
          value_size: valueSize,
          max_entries: Number(o.max_entries ?? 1),
          map_flags: parseFlags(o.flags),
          btf_fd: btfFd,
          btf_vmlinux_value_type_id: vtype,
          map_name: o.name ? unquote(o.name) : "",
          map_extra: Number(o.map_extra ?? 0),
          value_type_btf_obj_fd: o.vtype_btf !== undefined ? this.resolveFd(o.vtype_btf) : 0,
        });
        if (r.ok && step.bind) {
          const id = await this.idOf("map", r.ret!);
          this.mapNames.set(id, step.bind);
          bind(r, { kind: "map", fd: 0, layout: lay ?? undefined, valueSize, keySize, id });
        }
        return res(r, true);
      }
      case "update": {
        const m = this.v(step.args[0]!);
        let value: Uint8Array;
        if (m.layout) value = buildValue(t.btf, m.layout, step.members ?? [], this.resolveToken);
        else {
          value = new Uint8Array(m.valueSize ?? 8);
          for (const [k, x] of step.members ?? [])
            new DataView(value.buffer).setBigUint64(Number(k) * 8, BigInt(x), true);
        }
        if (o.value_size)
          value = resize(
            value,
            /^[+-]/.test(o.value_size) ? value.length + Number(o.value_size) : Number(o.value_size),
          );
        return res(await t.update(m.fd, this.key(step, m.keySize), value, parseFlags(o.flags)), false);
      }
      case "lookup":
      case "map_read": {
        const m = this.v(step.args[0]!);
        const r = await t.lookup(m.fd, this.key(step, m.keySize), m.valueSize ?? 8, parseFlags(o.flags));
        let detail: Map<string, string> | undefined;
        if (r.ok && r.bytes) {
          if (m.layout) detail = decodeValue(t.btf, m.layout, r.bytes, this.nameOfProg);
          else if (o.as === "ran") {
            // Counters: only whether the value is non-zero is comparable across kernels.
            detail = new Map([["counter", r.bytes.some((x) => x !== 0) ? "ran" : "0"]]);
          } else detail = new Map([["bytes", Buffer.from(r.bytes).toString("hex")]]);
        }
        return res(r, false, detail);
      }
      case "delete": {
        const m = this.v(step.args[0]!);
        return res(await t.delete(m.fd, this.key(step, m.keySize)), false);
      }
      case "get_next_key": {
        const m = this.v(step.args[0]!);
        const k = o.key === undefined || o.key === "none" ? null : this.key(step, m.keySize);
        const r = await t.nextKey(m.fd, k, m.keySize ?? 4);
        return res(r, false, r.bytes ? new Map([["next_key", Buffer.from(r.bytes).toString("hex")]]) : undefined);
      }
      case "freeze":
        return res(await t.freeze(this.v(step.args[0]!).fd), false);
      case "prog": {
        const r = await t.objProg(step.args[0]!, step.args[1]!);
        if (r.ok && step.bind) {
          this.progNames.set(await this.idOf("prog", r.ret!), step.bind);
          bind(r, { kind: "prog", fd: 0 });
        }
        return res(r, true);
      }
      case "obj_map": {
        const r = await t.objMap(step.args[0]!, step.args[1]!);
        if (r.ok && step.bind) {
          const info = await t.info("map", r.ret!);
          const f = info.fields ?? {};
          bind(r, { kind: "map", fd: 0, valueSize: Number(f.value_size), keySize: Number(f.key_size) });
        }
        return res(r, true);
      }
      case "prog_asm": {
        const args = this.progAsmArgs(step);
        if (typeof args === "string") return { step, result: "unsupported", unsupported: args };
        const r = await t.progLoad(args);
        if (r.ok && step.bind) {
          this.progNames.set(await this.idOf("prog", r.ret!), step.bind);
          bind(r, { kind: "prog", fd: 0 });
        }
        return res(r, true);
      }
      case "link_create": {
        const m = this.v(step.args[0]!);
        const at = o.attach_type !== undefined ? Number(o.attach_type) : bpf_attach_type.BPF_STRUCT_OPS;
        const r = await t.linkCreate(m.fd, at, parseFlags(o.flags));
        bind(r, { kind: "link", fd: 0 });
        return res(r, true);
      }
      case "link_update": {
        const l = this.v(step.args[0]!);
        const m = this.v(step.args[1]!);
        const old = o.old !== undefined ? this.resolveFd(o.old) : 0;
        const flags = o.flags !== undefined ? parseFlags(o.flags) : o.old !== undefined ? BPF_F_REPLACE : 0;
        return res(await t.linkUpdate(l.fd, m.fd, flags, old), false);
      }
      case "link_detach":
        return res(await t.linkDetach(this.v(step.args[0]!).fd), false);
      case "close": {
        const name = step.args[0]!;
        // The name stays bound (its id still serves map_fd_by_id); its fd number is stale.
        return res(await t.close(this.v(name).fd), false);
      }
      case "map_info":
      case "link_info":
        return this.info(step);
      case "map_fd_by_id": {
        const m = this.v(step.args[0]!);
        const r = await t.mapFdById(m.id ?? Number(step.args[0]), parseFlags(o.open_flags));
        bind(r, { ...m, fd: 0 });
        return res(r, true);
      }
      case "poll": {
        const r = await t.poll(this.v(step.args[0]!).fd);
        return res(r, false, r.fields ? new Map([["revents", r.fields.revents ?? "?"]]) : undefined);
      }
      case "test_run":
        return this.testRun(step);
      case "fdinfo": {
        const v = this.v(step.args[0]!);
        const r = await t.fdinfo(v.fd);
        return res(r, false, r.ok && r.bytes ? this.fdinfoDetail(v, new TextDecoder().decode(r.bytes)) : undefined);
      }
      case "drop_caps":
        return res(await t.dropCaps(), false);
      case "tcp_xfer": {
        const cc = step.args[0] === "$uniq" ? this.uniq : step.args[0]!;
        const r = await t.tcpXfer(cc, Number(o.bytes ?? 4 << 20), Number(o.drop_every ?? 0));
        const d = r.fields ? new Map([["received", r.fields.received ?? "?"]]) : undefined;
        if (d && r.fields?.cc) d.set("cc", r.fields.cc === this.uniq ? "$uniq" : r.fields.cc);
        return res(r, false, d);
      }
    }
    throw new Error(`operation ${step.op} not implemented`);
  }

  private resolveFd(tok: string): number {
    return /^-?\d+$/.test(tok) ? Number(tok) : this.v(tok).fd;
  }

  private async info(step: Step): Promise<Observation> {
    const kind = step.op === "map_info" ? "map" : "link";
    const v = this.v(step.args[0]!);
    const r = await this.target.info(kind, v.fd);
    if (!r.ok) return { step, result: errnoName(r.errno ?? 0) };
    const f = r.fields ?? {};
    const d = new Map<string, string>();
    if (kind === "map") {
      d.set("type", f.type ?? "?");
      d.set("key_size", f.key_size ?? "?");
      const vs = Number(f.value_size);
      d.set("value_size", v.layout && vs === v.layout.valueType.size ? "value-type size" : String(vs));
      d.set("max_entries", f.max_entries ?? "?");
      d.set("map_flags", f.map_flags ?? "?");
      d.set("name", f.name ?? "-");
      const vt = Number(f.btf_vmlinux_value_type_id ?? 0);
      d.set("btf_vmlinux_value_type_id", vt ? this.target.btf.nameOf(vt) : "0");
      d.set("id", this.nameOfMap(Number(f.id)));
    } else {
      d.set("type", f.type ?? "?");
      d.set("map_id", this.nameOfMap(Number(f.map_id ?? 0)));
      d.set("prog_id", f.prog_id ?? "?");
    }
    return { step, result: "ok", detail: d };
  }

  /**
   * fdinfo lines as key -> value, without what differs by nature between a process and the
   * simulator (pos, flags, mnt_id, ino, memlock); ids become `$names`, sizes "value-type size".
   */
  private fdinfoDetail(v: Var, text: string): Map<string, string> {
    const d = new Map<string, string>();
    for (const line of text.split("\n")) {
      const m = /^([a-z_]+):\s*(.*)$/.exec(line);
      if (!m) continue;
      const [, k, val] = m as unknown as [string, string, string];
      if (["pos", "flags", "mnt_id", "ino", "memlock"].includes(k)) continue;
      if (k === "map_id") d.set(k, this.nameOfMap(Number(val)));
      else if (k === "prog_id") d.set(k, val === "0" ? "0" : this.nameOfProg(Number(val)));
      else if (k === "link_id" || k === "owner_prog_type" || k === "owner_jited")
        d.set(k, k === "link_id" ? "id" : val);
      else if (k === "value_size" && v.layout && Number(val) === v.layout.valueType.size) d.set(k, "value-type size");
      else d.set(k, val);
    }
    return d;
  }

  /**
   * The load attributes of `prog_asm TYPE.MEMBER "asm"` (a struct_ops program for that member),
   * or of `prog_asm raw_tp|syscall "asm"` (types with no attach target at load); a string when
   * this target's BTF lacks the struct.
   */
  private progAsmArgs(step: Step): ProgLoadArgs | string {
    const o = step.opts;
    const t = this.target;
    const common = {
      prog_flags: o.sleepable === "1" ? BPF_F_SLEEPABLE : 0,
      license: o.license ? unquote(o.license) : "GPL",
    };
    const plain = PLAIN_PROG_TYPES[step.args[0]!];
    if (plain !== undefined)
      return {
        ...common,
        prog_type: plain,
        expected_attach_type: 0,
        attach_btf_id: 0,
        insns: encodeInsns(assemble(unquote(step.args[1]!))),
        name: step.args[0]!,
      };
    const [sname, mname] = step.args[0]!.split(".");
    const sid = t.btf.findByNameKind(sname!, BTF_KIND_STRUCT);
    if (sid < 0) return `${t.name}: no struct ${sname}`;
    const st = t.btf.typeById(sid) as { members: { name: string }[] };
    const idx = st.members.findIndex((x) => x.name === mname);
    const text = unquote(step.args[1]!).replace(/\{(fd|off):([^}]+)\}/g, (_m, k: string, arg: string) =>
      String(k === "fd" ? this.v(arg).fd : memberOffset(t.btf, arg)),
    );
    return {
      ...common,
      prog_type: bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS,
      expected_attach_type: o.member_idx !== undefined ? Number(o.member_idx) : idx,
      attach_btf_id: o.attach_btf_id !== undefined ? Number(o.attach_btf_id) : sid,
      insns: encodeInsns(assemble(text)),
      name: mname ?? "",
    };
  }

  private async testRun(step: Step): Promise<Observation> {
    const o = step.opts;
    const p = this.v(step.args[0]!);
    const args = (o.args ?? "").split(",").filter((x) => x !== "");
    const ctx = new Uint8Array(8 * (1 + args.length));
    const dv = new DataView(ctx.buffer);
    for (const [i, a] of args.entries()) dv.setBigUint64(8 * (i + 1), BigInt.asUintN(64, BigInt(a)), true);
    const state = o.state === undefined || o.state === "null" ? null : u32le(Number(o.state));
    const r = await this.target.testRun(p.fd, ctx, state, {
      ctxSize: o.ctx_size !== undefined ? Number(o.ctx_size) : undefined,
      flags: parseFlags(o.flags),
      cpu: o.cpu !== undefined ? Number(o.cpu) : 0,
    });
    if (r.unsupported) return { step, result: "unsupported", unsupported: r.unsupported };
    if (!r.ok) return { step, result: errnoName(r.errno ?? 0) };
    const d = new Map<string, string>([["retval", r.fields?.retval ?? "?"]]);
    if (state && r.bytes?.length)
      d.set("state", String(new DataView(r.bytes.buffer, r.bytes.byteOffset).getUint32(0, true)));
    return { step, result: r.ret ? `ok ${r.ret}` : "ok", detail: d };
  }
}

/** The .BTF of a committed object after libbpf's open-time fixups (BpfObject.open does the same). */
export function objectBtf(file: string): Uint8Array {
  const obj = BpfObject.open(new Uint8Array(readFileSync(join(repoRoot(), "bpf/obj", file))));
  if (!obj.btf) throw new Error(`${file} has no .BTF`);
  return obj.btf.encode();
}

function resize(b: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(Math.max(0, n));
  out.set(b.subarray(0, out.length));
  return out;
}
