/** kernel/bpf/core.c: the program tag and running a program under the right RCU flavour. */
import { sha1 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { encodeInsns, type Insn, LD_IMM64_CODE } from "../isa/insn.js";
import { BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE } from "../uapi/bpf.js";
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
