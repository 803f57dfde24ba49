import { BpfError, E2BIG, EFAULT } from "../uapi/errno.js";

/** What a faulting access was doing. */
export type AccessKind = "read" | "write" | "atomic" | "native";

/**
 * A load or store outside the program's sandbox: unmapped or guard bytes, NULL, a freed
 * region, or a write to a read-only region. The program stops; nothing outside its regions
 * was touched. `insn` is -1 when the access came from native code (kernel, helper).
 */
export class VmFault extends BpfError {
  readonly addr: bigint;
  readonly size: number;
  readonly kind: AccessKind;
  readonly insn: number;

  constructor(insn: number, addr: bigint, size: number, kind: AccessKind, prog?: string) {
    const where = insn >= 0 ? `insn ${insn}` : "native access";
    const what = kind === "native" ? "access" : kind;
    super(EFAULT, `${prog ? `${prog}: ` : ""}${where}: invalid ${what} of ${size} bytes at 0x${addr.toString(16)}`, {
      insn: insn >= 0 ? insn : undefined,
      prog,
    });
    this.name = "VmFault";
    this.addr = addr;
    this.size = size;
    this.kind = kind;
    this.insn = insn;
  }
}

/** The instruction budget of one run ran out: a runaway program was stopped. */
export class VmBudgetExceeded extends BpfError {
  readonly budget: number;
  readonly insn: number;

  constructor(budget: number, insn: number, prog?: string) {
    super(
      E2BIG,
      `${prog ? `${prog}: ` : ""}instruction budget of ${budget} exhausted at insn ${insn}: program stopped`,
      { insn, prog },
    );
    this.name = "VmBudgetExceeded";
    this.budget = budget;
    this.insn = insn;
  }
}

/** Join the two halves of a 64-bit register as an unsigned bigint. */
export function u64Of(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
