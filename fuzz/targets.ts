import type { FuzzTarget } from "./target.js";
import { btfTarget } from "./target_btf.js";
import { elfTarget } from "./target_elf.js";
import { insnTarget } from "./target_insn.js";
import { statemachineTarget } from "./target_statemachine.js";

export const TARGETS: Record<string, FuzzTarget> = {
  elf: elfTarget,
  btf: btfTarget,
  insn: insnTarget,
  statemachine: statemachineTarget,
};
