/**
 * `structops prog dump OBJ [xlated]`: the programs of a BPF object, disassembled, with the
 * source lines that .BTF.ext line_info attaches to them (as `bpftool prog dump xlated linum`
 * prints them). `xlated` shows the instructions after load (subprograms appended, CO-RE and
 * map relocations applied) in a simulated kernel; without it, as they are in the object.
 */
import type { Command } from "commander";
import { disassemble } from "../isa/disasm.js";
import type { Insn } from "../isa/insn.js";
import type { BpfLineInfo } from "../loader/btf_ext.js";
import { BpfObject } from "../loader/object.js";
import type { BpfProgram } from "../loader/program.js";
import { progCommand } from "./prog.js";
import { StructOpsSession } from "./struct_ops.js";

interface DumpOptions {
  json?: boolean;
  syntax?: "llvm" | "conformance";
}

export interface ProgDump {
  name: string;
  section: string;
  insns: { idx: number; text: string; line?: { file: string; line: number; col: number; src: string } }[];
}

function lineOf(obj: BpfObject, li: BpfLineInfo): { file: string; line: number; col: number; src: string } {
  return {
    file: obj.btf?.str(li.fileNameOff) ?? "",
    src: obj.btf?.str(li.lineOff) ?? "",
    line: li.lineCol >>> 10,
    col: li.lineCol & 0x3ff,
  };
}

export function dumpProgram(obj: BpfObject, p: BpfProgram, insns: Insn[], syntax: "llvm" | "conformance"): ProgDump {
  const text = disassemble(insns, { syntax });
  const byInsn = new Map<number, BpfLineInfo>();
  for (const li of p.lineInfo) byInsn.set(li.insnOff, li);
  const out: ProgDump["insns"] = [];
  // disassemble() prints one string per instruction and skips the second ld_imm64 slot.
  let t = 0;
  for (let i = 0; i < insns.length; i++) {
    if (i > 0 && insns[i - 1]!.code === 0x18) continue;
    const li = byInsn.get(i);
    out.push({ idx: i, text: text[t++] ?? "", line: li ? lineOf(obj, li) : undefined });
  }
  return { name: p.name, section: p.secName, insns: out };
}

function formatDump(d: ProgDump): string {
  const lines = [`${d.name}: (section ${d.section})`];
  for (const i of d.insns) {
    if (i.line?.src) lines.push(`; ${i.line.src.trim()} [${i.line.file}:${i.line.line}:${i.line.col}]`);
    lines.push(`${String(i.idx).padStart(5)}: ${i.text}`);
  }
  return lines.join("\n");
}

export function register(program: Command): void {
  progCommand(program)
    .command("dump")
    .description("disassemble the programs of a BPF object with their source lines")
    .argument("<obj>", "a .bpf.o object")
    .argument("[mode]", "'xlated': as loaded into a simulated kernel (relocated)")
    .option("--syntax <syntax>", "llvm (llvm-objdump's) or conformance", "llvm")
    .option("-j, --json", "JSON output")
    .action((path: string, mode: string | undefined, opts: DumpOptions) => {
      const syntax = opts.syntax === "conformance" ? "conformance" : "llvm";
      let obj: BpfObject;
      if (mode === "xlated") {
        const s = new StructOpsSession();
        obj = BpfObject.open(path);
        obj.load({ kernel: s.kernel, process: s.proc });
      } else {
        obj = BpfObject.open(path);
      }
      const dumps = obj.programs.map((p) =>
        dumpProgram(obj, p, mode === "xlated" ? (p.loadedInsns ?? p.insns) : p.insns, syntax),
      );
      if (opts.json) process.stdout.write(`${JSON.stringify(dumps)}\n`);
      else process.stdout.write(`${dumps.map(formatDump).join("\n\n")}\n`);
    });
}
