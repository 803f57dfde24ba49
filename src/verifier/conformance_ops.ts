/**
 * Verifier ops for the ISA conformance vectors (bpf_conformance's .data files): r1 points at a
 * context of the vector's memory size, readable and writable at any offset inside it, and r2
 * holds that size. No helpers; any return value.
 */
import { bpf_prog_type } from "../uapi/bpf.js";
import type { VerifierEnv, VerifierOps } from "./env.js";
import { markRegKnown, type RegState } from "./reg_state.js";

export function conformanceOps(memSize: number): VerifierOps {
  return {
    name: "conformance",
    getFuncProto: () => undefined,
    isValidAccess: (off, size) => (off >= 0 && off + size <= memSize ? {} : undefined),
    initRegs(regs: RegState[]): void {
      markRegKnown(regs[2], BigInt(memSize));
    },
  };
}

/** A VerifierEnv for one conformance program, as a privileged loader would present it. */
export function conformanceEnv(insns: VerifierEnv["insns"], memSize: number, logLevel = 0): VerifierEnv {
  return {
    insns,
    progType: bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER,
    privileged: true,
    gpl: true,
    logLevel,
    ops: conformanceOps(memSize),
  };
}
