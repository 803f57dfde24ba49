/**
 * `structops prog dump`, two forms:
 *
 *   prog dump xlated { id ID | name NAME } [linum]   bpftool's: a program of the session's kernel
 *                                                    as the kernel translated it, printed as
 *                                                    bpftool prints it (kernel/bpf/disasm.c syntax,
 *                                                    helper names, map[id:N], func_info signatures,
 *                                                    line_info source lines)
 *   prog dump OBJ [xlated]                           the programs of a BPF object file,
 *                                                    disassembled (llvm-objdump syntax) with their
 *                                                    .BTF.ext source lines; `xlated`: as a one-run
 *                                                    simulated kernel translated them after load,
 *                                                    in the xlated form above
 */
import type { Command } from "commander";
import type { Btf } from "../btf/btf.js";
import { JsonWriter } from "../btf/json_writer.js";
import type { Insn } from "../isa/insn.js";
import type { BpfLineInfo } from "../loader/btf_ext.js";
import type { BpfObject } from "../loader/object.js";
import type { BpfProgram } from "../loader/program.js";
import { BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE } from "../uapi/bpf.js";
import { BTF_KIND_FUNC } from "../uapi/btf.js";
import { btfById, funcInfos, type Handle, objView } from "./bpf_info.js";
import { btfTypeOnly } from "./btf_dumper.js";
import { CliError } from "./errors.js";
import { progCommand } from "./prog.js";
import { selectProgs } from "./prog_show.js";
import { io, openSession, optsOf, readBytes, type SessionOpts, sessionOptions } from "./session.js";

interface DumpOptions extends SessionOpts {
  syntax?: string;
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

export async function dumpProgram(
  obj: BpfObject,
  p: BpfProgram,
  insns: Insn[],
  syntax: "llvm" | "conformance",
): Promise<ProgDump> {
  const { disassemble } = await import("../isa/disasm.js");
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

/** One instruction of bpftool's xlated dump: its signature line, source line and text. */
export interface XlatedInsn {
  idx: number;
  proto?: string;
  src?: string;
  linum?: { file: string; line: number; col: number };
  disasm: string;
}

/** The xlated instructions of program `id` with what bpftool prints around them. */
export async function xlatedDump(h: Handle, id: number): Promise<XlatedInsn[]> {
  const { printBpfInsn } = await import("../verifier/log.js");
  const { info } = objView(h, "prog", id);
  const insns = info.xlated_prog_insns as Insn[] | undefined;
  if (!insns) throw new CliError("can't get the xlated instructions: Operation not permitted");
  const btf = Number(info.btf_id) ? btfById(h, Number(info.btf_id)) : undefined;
  const funcs = new Map(funcInfos(info).map((f) => [f.insnOff, f.typeId]));
  const lines = new Map<number, { fileOff: number; lineOff: number; lineCol: number }>();
  const raw = info.line_info as Uint8Array | undefined;
  if (raw) {
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let o = 0; o + 16 <= raw.byteLength; o += 16) {
      const insnOff = dv.getUint32(o, true);
      if (!lines.has(insnOff)) {
        lines.set(insnOff, {
          fileOff: dv.getUint32(o + 4, true),
          lineOff: dv.getUint32(o + 8, true),
          lineCol: dv.getUint32(o + 12, true),
        });
      }
    }
  }
  let vmlinux: Btf | null | undefined;
  const kfuncName = (btfId: number): string | undefined => {
    if (vmlinux === undefined) vmlinux = btfById(h, 1) ?? null;
    try {
      const t = vmlinux?.typeById(btfId);
      return t?.kind === BTF_KIND_FUNC ? t.name : undefined;
    } catch {
      return undefined;
    }
  };
  const out: XlatedInsn[] = [];
  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i]!;
    const next = insns[i + 1];
    const row: XlatedInsn = { idx: i, disasm: "" };
    const typeId = funcs.get(i);
    if (btf && typeId !== undefined) {
      const sig = btfTypeOnly(btf, typeId);
      if (sig) row.proto = sig;
    }
    const li = lines.get(i);
    if (btf && li) {
      row.src = btf.str(li.lineOff).trimStart();
      row.linum = { file: btf.str(li.fileOff), line: li.lineCol >>> 10, col: li.lineCol & 0x3ff };
    }
    // bpftool's print_imm: a map reference the kernel turned back into its id.
    if (insn.code === 0x18 && (insn.src === BPF_PSEUDO_MAP_FD || insn.src === BPF_PSEUDO_MAP_VALUE)) {
      const ref =
        insn.src === BPF_PSEUDO_MAP_FD ? `map[id:${insn.imm}]` : `map[id:${insn.imm}][0]+${(next?.imm ?? 0) >>> 0}`;
      row.disasm = `(18) r${insn.dst} = ${ref}`;
    } else {
      row.disasm = printBpfInsn(insn, next, { kfuncName }, i);
    }
    out.push(row);
    if (insn.code === 0x18) i++;
  }
  return out;
}

/** bpftool's dump_xlated_plain. */
export function xlatedPlain(rows: XlatedInsn[], linum: boolean): string {
  let s = "";
  for (const r of rows) {
    if (r.proto) s += `${r.proto}:\n`;
    if (r.src !== undefined) {
      s += linum
        ? `; ${r.src} [file:${r.linum!.file} line_num:${r.linum!.line} line_col:${r.linum!.col}]\n`
        : `; ${r.src}\n`;
    }
    s += `${String(r.idx).padStart(4)}: ${r.disasm}\n`;
  }
  return s;
}

/** bpftool's dump_xlated_json. */
export function xlatedJson(rows: XlatedInsn[], linum: boolean, pretty: boolean): string {
  const w = new JsonWriter(pretty);
  w.startArray();
  for (const r of rows) {
    w.startObject();
    if (r.proto) w.stringField("proto", r.proto);
    if (r.src !== undefined) {
      w.stringField("src", r.src);
      if (linum && r.linum) {
        w.stringField("file", r.linum.file);
        if (r.linum.line) w.intField("line_num", r.linum.line);
        if (r.linum.col) w.intField("line_col", r.linum.col);
      }
    }
    w.stringField("disasm", r.disasm);
    w.endObject();
  }
  w.endArray();
  return w.toString();
}

async function dumpSessionProg(mode: string, rest: string[], o: DumpOptions): Promise<void> {
  if (mode === "jited") {
    throw new CliError("jited: the simulated kernel compiles programs to JavaScript, not to machine code");
  }
  const linum = rest.at(-1) === "linum";
  const spec = linum ? rest.slice(0, -1) : rest;
  if (spec.length !== 2 || (spec[0] !== "id" && spec[0] !== "name")) {
    throw new CliError(`expected 'id PROG_ID' or 'name PROG_NAME' after '${mode}', got: '${rest.join(" ")}'`);
  }
  const s = await openSession(o.state);
  const ids = selectProgs(s, spec);
  const json = o.json || o.pretty;
  // Several programs of one name: bpftool prints each (and with -j, an array of the arrays).
  const dumps: XlatedInsn[][] = [];
  for (const id of ids) dumps.push(await xlatedDump(s, id));
  if (json) {
    const texts = dumps.map((d) => xlatedJson(d, linum, o.pretty ?? false).replace(/\n$/, ""));
    io.out(`${texts.length === 1 ? texts[0] : `[${texts.join(",")}]`}\n`);
  } else io.out(dumps.map((d) => xlatedPlain(d, linum)).join("\n"));
}

async function dumpObject(path: string, mode: string | undefined, o: DumpOptions): Promise<void> {
  if (mode !== undefined && mode !== "xlated")
    throw new CliError(`prog dump OBJ: expected 'xlated' or nothing after the object, got: ${mode}`);
  if (mode === "xlated" && o.syntax !== undefined) {
    throw new CliError(`--syntax ${o.syntax}: the xlated dump is in the kernel's syntax, as bpftool prints it`);
  }
  const syntax = o.syntax ?? "llvm";
  if (syntax !== "llvm" && syntax !== "conformance") {
    throw new CliError(`--syntax ${syntax}: expected llvm or conformance`);
  }
  const bytes = readBytes("object", path);
  const { BpfObject } = await import("../loader/object.js");
  const obj = BpfObject.open(bytes, { path });
  if (mode === "xlated") return dumpObjectXlated(obj, o);
  const dumps: ProgDump[] = [];
  for (const p of obj.programs) dumps.push(await dumpProgram(obj, p, p.insns, syntax));
  if (o.json || o.pretty) io.out(`${JSON.stringify(dumps, null, o.pretty ? 4 : undefined)}\n`);
  else io.out(`${dumps.map(formatDump).join("\n\n")}\n`);
}

/**
 * The object's programs as the kernel translated them: loaded into a one-run kernel, then each
 * dumped as `prog dump xlated id ID` dumps a session's (bpftool's format: helper and kfunc names,
 * map[id:N], func_info signatures, source lines), in the object's order.
 */
async function dumpObjectXlated(obj: BpfObject, o: DumpOptions): Promise<void> {
  const { StructOpsSession } = await import("./kernel_session.js");
  const s = new StructOpsSession();
  obj.load({ kernel: s.kernel, process: s.proc });
  const dumps: XlatedInsn[][] = [];
  for (const p of obj.programs) {
    if (p.fd < 0) continue;
    dumps.push(await xlatedDump(s, (s.object(p.fd) as { id: number }).id));
  }
  if (o.json || o.pretty) {
    const texts = dumps.map((d) => xlatedJson(d, false, o.pretty ?? false).replace(/\n$/, ""));
    io.out(`[${texts.join(",")}]\n`);
  } else io.out(dumps.map((d) => xlatedPlain(d, false)).join("\n"));
}

export function register(program: Command): void {
  sessionOptions(progCommand(program).command("dump"))
    .description(
      "xlated { id ID | name NAME } [linum]: a program of the session as the kernel translated it (bpftool's); " +
        "OBJ [xlated]: the programs of an object file, disassembled with their source lines",
    )
    .argument("<args...>", "xlated PROG [linum] | OBJ [xlated]")
    .option("--syntax <syntax>", "for OBJ without xlated: llvm (llvm-objdump's, the default) or conformance")
    .action(async (args: string[], _o: DumpOptions, c: Command) => {
      const o = optsOf<DumpOptions>(c);
      const [first, ...rest] = args;
      if (first === "xlated" || first === "jited") return dumpSessionProg(first, rest, o);
      if (rest.length > 1) throw new CliError(`too many arguments: '${rest.slice(1).join(" ")}'`);
      return dumpObject(first!, rest[0], o);
    });
}
