/**
 * kernel/bpf/core.c: the program tag, running a program under the right RCU flavour, and the
 * compatibility a PROG_ARRAY demands of the programs it holds and of those that use it.
 */
import { sha1 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { btfFuncPtrProto } from "../btf/resolve.js";
import { encodeInsns, type Insn, LD_IMM64_CODE } from "../isa/insn.js";
import { BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE, bpf_map_type, bpf_prog_type } from "../uapi/bpf.js";
import { BTF_KIND_FUNC, BTF_KIND_STRUCT } from "../uapi/btf.js";
import { BpfError, EINVAL } from "../uapi/errno.js";
import type { BpfProg } from "./bpf.js";

/**
 * bpf_prog_calc_tag(): the first 8 bytes of a digest of the instructions, with the imm of both
 * slots of map-fd and map-value ld_imm64 zeroed, since fds differ from load to load. The digest
 * is SHA-1 up to v6.17 and SHA-256 (prog->digest, kept for program signing) from v6.18 on.
 */
export function bpf_prog_calc_tag(insns: readonly Insn[], hash: "sha1" | "sha256" = "sha256"): Uint8Array {
  const dst: Insn[] = [];
  let wasLdMap = false;
  for (const insn of insns) {
    const c = { ...insn };
    if (!wasLdMap && c.code === LD_IMM64_CODE && (c.src === BPF_PSEUDO_MAP_FD || c.src === BPF_PSEUDO_MAP_VALUE)) {
      wasLdMap = true;
      c.imm = 0;
    } else if (wasLdMap && c.code === 0 && c.dst === 0 && c.src === 0 && c.off === 0) {
      wasLdMap = false;
      c.imm = 0;
    } else {
      wasLdMap = false;
    }
    dst.push(c);
  }
  const digest = (hash === "sha1" ? sha1 : sha256)(encodeInsns(dst));
  return digest.slice(0, 8);
}

/**
 * bpf_prog_run(): non-sleepable programs run inside an RCU read-side section, sleepable ones
 * inside an RCU-tasks-trace one, so frees of what they use wait for them. `active` counts
 * invocations in flight.
 */
export function bpf_prog_run(prog: BpfProg, ctx: number | bigint | readonly (number | bigint)[]): bigint {
  if (!prog.bpf_func) throw new BpfError(EINVAL, `program ${prog.name || prog.id} has no runtime (no VM bound)`);
  if (prog.freed) throw new Error(`bpf_prog_run: program ${prog.id} was freed`);
  const rcu = prog.kernel.rcu;
  const tok = prog.aux.sleepable ? rcu.rcuReadLockTrace() : rcu.rcuReadLock();
  prog.active++;
  try {
    const k = prog.kernel;
    if (!k.sysctl.bpfStatsEnabled) return prog.bpf_func(ctx);
    // Statistics only while kernel.bpf_stats_enabled is set, as the static key gates them.
    const t0 = k.ktimeGetNs();
    const r = prog.bpf_func(ctx);
    prog.run_cnt++;
    prog.run_time_ns += k.ktimeGetNs() - t0;
    return r;
  } finally {
    prog.active--;
    rcu.rcuReadUnlock(tok);
  }
}

/** GPL-compatible licence strings (include/linux/license.h license_is_gpl_compatible). */
export function license_is_gpl_compatible(license: string): boolean {
  return (
    license === "GPL" ||
    license === "GPL v2" ||
    license === "GPL and additional rights" ||
    license === "Dual BSD/GPL" ||
    license === "Dual MIT/GPL" ||
    license === "Dual MPL/GPL"
  );
}

/**
 * map->owner (include/linux/bpf.h struct bpf_map_owner): what the first program that used a
 * PROG_ARRAY, or was stored in it, fixes for every later one, so that a tail call never lands
 * in a program expecting another context.
 */
export interface BpfMapOwner {
  type: number;
  jited: boolean;
  expected_attach_type: number;
  sleepable: boolean;
  /** aux->attach_func_proto as (BTF object, FUNC_PROTO id); null where the type has none. */
  attach_func_proto: string | null;
}

const mapOwners = new WeakMap<object, BpfMapOwner>();

/** aux->attach_func_proto: the prototype a struct_ops member or a tracing target declares. */
function attachFuncProto(prog: BpfProg): string | null {
  const attach = prog.aux.attach_btf;
  if (!attach || !prog.aux.attach_btf_id) return null;
  const btf = attach.btf;
  const t = btf.tryTypeById(prog.aux.attach_btf_id);
  if (!t) return null;
  let protoId: number | null = null;
  if (t.kind === BTF_KIND_FUNC) protoId = t.type;
  else if (t.kind === BTF_KIND_STRUCT) {
    const m = t.members[prog.expected_attach_type];
    if (m) protoId = btfFuncPtrProto(btf, m.type)?.id ?? null;
  }
  return protoId === null ? null : `${attach.id}:${protoId}`;
}

/**
 * __bpf_prog_map_compatible(): the first program fixes the map's owner; later ones must match
 * its type, JIT state, expected attach type and sleepability, and for the types whose context is
 * a function's arguments (tracing, LSM, extension, struct_ops) the attach prototype.
 */
export function bpf_prog_map_compatible(map: object, prog: BpfProg): boolean {
  const proto = attachFuncProto(prog);
  const owner = mapOwners.get(map);
  if (!owner) {
    mapOwners.set(map, {
      type: prog.type,
      jited: prog.jited,
      expected_attach_type: prog.expected_attach_type,
      sleepable: prog.aux.sleepable,
      attach_func_proto: proto,
    });
    return true;
  }
  if (owner.type !== prog.type || owner.jited !== prog.jited || owner.sleepable !== prog.aux.sleepable) return false;
  if (owner.expected_attach_type !== prog.expected_attach_type) return false;
  if (owner.attach_func_proto !== proto) {
    const P = bpf_prog_type;
    const byProto: number[] = [
      P.BPF_PROG_TYPE_TRACING,
      P.BPF_PROG_TYPE_LSM,
      P.BPF_PROG_TYPE_EXT,
      P.BPF_PROG_TYPE_STRUCT_OPS,
    ];
    if (byProto.includes(prog.type)) return false;
  }
  return true;
}

/** The owner a map has taken, if any (for tests and `map show`). */
export function bpf_map_owner(map: object): BpfMapOwner | undefined {
  return mapOwners.get(map);
}

/**
 * bpf_check_tail_call() (from bpf_prog_select_runtime): every PROG_ARRAY the program uses must
 * accept it as its owner would. EINVAL, with nothing in the verifier log.
 */
export function bpf_check_tail_call(prog: BpfProg): void {
  for (const map of prog.aux.used_maps) {
    if (map.map_type !== bpf_map_type.BPF_MAP_TYPE_PROG_ARRAY) continue;
    if (!bpf_prog_map_compatible(map, prog)) {
      throw new BpfError(
        EINVAL,
        `program ${prog.name || prog.id} does not match the owner of prog array ${map.name || map.id}`,
      );
    }
  }
}
