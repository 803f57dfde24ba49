/**
 * The verifier hook of PROG_LOAD (bpf_check's call into do_check): builds the verifier's view of
 * the program from the loaded object (maps by index, ld_imm64 bindings, kfuncs, func_info, the
 * struct_ops table) and runs src/verifier on it. Its log goes to the user's log buffer; a refusal
 * is thrown with the verifier's errno.
 */

import type { Btf } from "../btf/btf.js";
import { BPF_F_ANY_ALIGNMENT, BPF_F_STRICT_ALIGNMENT } from "../uapi/bpf.js";
import { BpfError } from "../uapi/errno.js";
import type {
  KfuncInfo,
  LdImm64Aux as VAux,
  VerifierEnv as VEnv,
  VerifierMap,
  VerifierResult,
} from "../verifier/env.js";
import { bpfCheck } from "../verifier/verifier.js";
import type { BpfMap } from "./bpf.js";
import { CAP_SYS_BOOT } from "./capability.js";
import { innerMapMeta } from "./map_in_map.js";
import type { Module } from "./module.js";
import type { VerifierEnv } from "./syscall_prog.js";
import { tracing_attach_target } from "./trampoline.js";

function verifierMap(m: BpfMap): VerifierMap {
  const valueAddr = (m.ops as { map_direct_value_addr?: (m: BpfMap, off: number) => number }).map_direct_value_addr;
  let valueBytes: Uint8Array | undefined;
  if (m.frozen && m.rdonlyProg && valueAddr && m.max_entries === 1) {
    valueBytes = m.kernel.mem.bytes(valueAddr(m, 0), m.value_size).slice();
  }
  const rec = m.record instanceof BpfError ? null : m.record;
  const meta = innerMapMeta(m);
  return {
    type: m.map_type,
    keySize: m.key_size,
    valueSize: m.value_size,
    maxEntries: m.max_entries,
    flags: m.map_flags,
    rdonlyProg: m.rdonlyProg,
    wronlyProg: m.wronlyProg,
    frozen: m.frozen,
    valueBytes,
    name: m.name,
    btfStructName: m.ops.map_btf_name,
    spinLockOff: rec && rec.spinLockOff >= 0 ? rec.spinLockOff : undefined,
    hasBtf: m.btf !== null,
    record: rec,
    innerMeta: meta ? verifierMap(meta) : undefined,
  };
}

/** func_info records (struct bpf_func_info: u32 insn_off, u32 type_id). */
function funcInfo(env: VerifierEnv): { insnOff: number; typeId: number }[] | undefined {
  const a = env.prog.aux;
  if (!a.func_info || !a.func_info_cnt) return undefined;
  const rec = env.attr.func_info_rec_size || 8;
  const dv = new DataView(a.func_info.buffer, a.func_info.byteOffset, a.func_info.byteLength);
  const out: { insnOff: number; typeId: number }[] = [];
  for (let i = 0; i < a.func_info_cnt && (i + 1) * rec <= a.func_info.length; i++) {
    out.push({ insnOff: dv.getUint32(i * rec, true), typeId: dv.getUint32(i * rec + 4, true) });
  }
  return out;
}

/**
 * The verifier hook with `check` in the verifier's place: it gets the verifier's whole input (a
 * caller may answer from a record of an identical earlier run, see src/cli/verdict_cache.ts).
 */
export function verifierHookWith(check: (venv: VEnv) => VerifierResult): (env: VerifierEnv) => VerifierResult {
  return (env) => {
    const r = check(bpfVerifierEnv(env));
    for (const line of r.log.split("\n")) if (line) env.log.log(line);
    if (r.error) throw r.error;
    return r;
  };
}

export const bpfVerifierHook = verifierHookWith(bpfCheck);

/** Everything the verifier reads of a PROG_LOAD (the program, its maps, the kernel's tables). */
export function bpfVerifierEnv(env: VerifierEnv): VEnv {
  const { kernel: k, prog } = env;
  const maps = prog.aux.used_maps;
  const aux: (VAux | undefined)[] = [];
  const ksymBtfs: Btf[] = [];
  for (const [i, a] of env.ldImm64Aux) {
    if (a.kind === "map_ptr") aux[i] = { kind: "map_ptr", map: maps.indexOf(a.map) };
    else if (a.kind === "map_value") aux[i] = { kind: "map_value", map: maps.indexOf(a.map), off: a.off };
    else if (a.kind === "btf_id") {
      // A module's variable: its id is in the module's split BTF.
      if (a.btf === k.btfVmlinuxObj) aux[i] = { kind: "btf_id", btfId: a.btfId };
      else {
        let at = ksymBtfs.indexOf(a.btf.btf);
        if (at < 0) at = ksymBtfs.push(a.btf.btf) - 1;
        aux[i] = { kind: "btf_id", btfId: a.btfId, btf: at };
      }
    }
  }
  const proc = k.current;
  return {
    insns: env.insns,
    ldImm64Aux: aux,
    progType: prog.type,
    expectedAttachType: prog.expected_attach_type,
    attachBtfId: prog.aux.attach_btf_id,
    sleepable: prog.aux.sleepable,
    privStackRequested: prog.aux.priv_stack_requested,
    // x86-64 has efficient unaligned access: strict only when asked, and not with BPF_F_ANY_ALIGNMENT.
    strictAlignment:
      (Number(env.attr.prog_flags ?? 0) & (BPF_F_STRICT_ALIGNMENT | BPF_F_ANY_ALIGNMENT)) === BPF_F_STRICT_ALIGNMENT,
    gpl: prog.gpl_compatible,
    privileged: env.privileged,
    allowPtrLeaks: proc ? proc.cred.perfmonCapable() : env.privileged,
    capSysBoot: proc ? proc.capable(CAP_SYS_BOOT) : env.privileged,
    logLevel: env.log.level,
    btf: prog.aux.attach_btf?.btf ?? k.btfVmlinux,
    progBtf: prog.aux.btf?.btf ?? null,
    progStructMetas: prog.aux.btf?.structMetas,
    maps: maps.map(verifierMap),
    kfuncs: k.kfuncs as ReadonlyMap<number, KfuncInfo>,
    kfuncBtfs: new Map(
      prog.aux.kfunc_btf_tab.map((b) => [
        b.offset,
        { btf: b.btf.btf, kfuncs: (b.module as Module).kfuncs as ReadonlyMap<number, KfuncInfo> },
      ]),
    ),
    helperProtos: k.helperProtos.size ? k.helperProtos : undefined,
    ksymBtfs: ksymBtfs.length ? ksymBtfs : undefined,
    funcInfo: funcInfo(env),
    structOps: k.structOps?.verifierTable,
    attachTarget: tracing_attach_target(prog) ?? undefined,
    ops: k.progTypes.get(prog.type)?.verifier_ops,
    condResched: k.condResched,
  };
}
