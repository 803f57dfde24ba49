/**
 * struct bpf_program of libbpf: one program (or .text subprogram) cut out of an executable
 * ELF section by its STT_FUNC symbol, with what open learned about it (type from the
 * SEC_DEF, autoload, relocations kept symbolic) and what load fills in.
 */
import type { Insn } from "../isa/insn.js";
import { BPF_F_SLEEPABLE, bpf_prog_type } from "../uapi/bpf.js";
import { BpfError, EINVAL } from "../uapi/errno.js";
import type { BpfFuncInfo, BpfLineInfo } from "./btf_ext.js";
import type { RelocDesc } from "./relo.js";
import type { BpfSecDef } from "./section_defs.js";

export class BpfProgram {
  readonly name: string;
  /** Section name without a leading `?`. */
  readonly secName: string;
  readonly secIdx: number;
  /** First instruction of this program in its section, and how many it owns there. */
  readonly secInsnOff: number;
  readonly secInsnCnt: number;
  /** A GLOBAL (or WEAK) symbol, as opposed to a static function. */
  readonly symGlobal: boolean;
  /** Lives in `.text`: a subprogram appended to the programs that call it. */
  readonly isSubprog: boolean;
  secDef?: BpfSecDef;
  /** The instructions; after load (for entry programs) with subprograms appended and relocated. */
  insns: Insn[];
  type: number = bpf_prog_type.BPF_PROG_TYPE_UNSPEC;
  expectedAttachType = 0;
  attachBtfId = 0;
  attachBtfObjFd = 0;
  /** bpf_program__set_attach_target(): the program an fentry/fexit/freplace program attaches to. */
  attachProgFd = 0;
  progFlags = 0;
  autoload = true;
  autoattach = true;
  /** Relocations found in this program's instructions (insn index relative to `insns`). */
  readonly relos: RelocDesc[] = [];
  /** .BTF.ext records for this program, insn offsets in instructions from the program start. */
  funcInfo: BpfFuncInfo[] = [];
  lineInfo: BpfLineInfo[] = [];
  /** Set by load: the kernel fd (or -1), and where subprograms were appended. */
  fd = -1;
  /** The instructions as sent to the kernel (subprograms appended, relocations applied). */
  loadedInsns?: Insn[];
  /** True once the owning object is loaded; setters refuse then, as libbpf does. */
  loaded = false;

  constructor(init: {
    name: string;
    secName: string;
    secIdx: number;
    secInsnOff: number;
    insns: Insn[];
    symGlobal: boolean;
    isSubprog: boolean;
  }) {
    this.name = init.name;
    this.secName = init.secName;
    this.secIdx = init.secIdx;
    this.secInsnOff = init.secInsnOff;
    this.secInsnCnt = init.insns.length;
    this.insns = init.insns;
    this.symGlobal = init.symGlobal;
    this.isSubprog = init.isSubprog;
  }

  get sleepable(): boolean {
    return (this.progFlags & BPF_F_SLEEPABLE) !== 0;
  }

  /** bpf_program__set_autoload: -EINVAL once loaded. */
  setAutoload(autoload: boolean): void {
    if (this.loaded) throw new BpfError(EINVAL, `prog '${this.name}': cannot change autoload after load`);
    this.autoload = autoload;
  }

  /** bpf_program__set_type: allowed before load (e.g. for a section libbpf does not know). */
  setType(type: number): void {
    if (this.loaded) throw new BpfError(EINVAL, `prog '${this.name}': cannot change type after load`);
    this.type = type;
  }

  setExpectedAttachType(type: number): void {
    if (this.loaded) throw new BpfError(EINVAL, `prog '${this.name}': cannot change attach type after load`);
    this.expectedAttachType = type;
  }

  /** Does section instruction `insnIdx` fall inside this program? */
  containsSecInsn(insnIdx: number): boolean {
    return insnIdx >= this.secInsnOff && insnIdx < this.secInsnOff + this.secInsnCnt;
  }
}
