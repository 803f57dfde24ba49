/**
 * What the page shows of one BPF object: its ELF sections, maps and programs, each program's
 * disassembly with the source lines of .BTF.ext, the verifier's log of each program at the level
 * asked for, and registration of each struct_ops map as the kernel does it (the map's state and
 * refcount read back with BPF_MAP_LOOKUP_ELEM, or the errno of the refusal).
 */
import type { Btf } from "../../src/btf/btf.js";
import { disassemble } from "../../src/isa/disasm.js";
import type { Kernel } from "../../src/kernel/kernel.js";
import { type BpfHandle, bpf_map_get_info_by_fd, bpf_map_lookup_elem } from "../../src/loader/bpf.js";
import type { BpfLineInfo } from "../../src/loader/btf_ext.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpfObjectLoad } from "../../src/loader/object_load.js";
import { bpf_map_type, bpf_prog_type, bpf_struct_ops_state } from "../../src/uapi/bpf.js";
import { BpfError, errnoName } from "../../src/uapi/errno.js";
import { bootKernel } from "./kernels.js";

export interface SectionRow {
  index: number;
  name: string;
  type: number;
  flags: number;
  size: number;
}

export interface MapRow {
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  structOps: boolean;
}

export interface InsnRow {
  idx: number;
  text: string;
  src?: string;
  file?: string;
  line?: number;
  col?: number;
}

export interface Verdict {
  accepted: boolean;
  errno?: string;
  error?: string;
  insn?: number;
  log: string;
}

export interface ProgRow {
  name: string;
  section: string;
  type: string;
  insns: InsnRow[];
  /** Loaded with the object (false for SEC("?...")): such a program is verified on its own. */
  autoload: boolean;
  verdict?: Verdict;
}

export interface Registration {
  map: string;
  ok: boolean;
  /** The struct_ops type's name (tcp_congestion_ops). */
  kind?: string;
  state?: string;
  refcnt?: number;
  mapId?: number;
  errno?: string;
  error?: string;
}

export interface ObjectReport {
  name: string;
  path: string;
  size: number;
  sections: SectionRow[];
  maps: MapRow[];
  programs: ProgRow[];
  btf?: Btf;
  /** The whole object's load failure, one line (programs after a refused one are not attempted). */
  loadError?: string;
  registrations: Registration[];
}

const nameOf = (table: Record<string, number>, v: number, strip: string) =>
  (Object.entries(table).find(([, x]) => x === v)?.[0] ?? String(v)).replace(strip, "").toLowerCase();

const STATE_NAMES = Object.fromEntries(Object.entries(bpf_struct_ops_state).map(([k, v]) => [v, k]));

/** One line for an error a user caused: the message and the errno's name. */
export function errorLine(e: unknown): string {
  if (e instanceof BpfError) return `${e.message} (${errnoName(e.errno)})`;
  return e instanceof Error ? e.message : String(e);
}

function lineOf(btf: Btf | undefined, li: BpfLineInfo): Pick<InsnRow, "src" | "file" | "line" | "col"> {
  return {
    file: btf?.str(li.fileNameOff) ?? "",
    src: btf?.str(li.lineOff) ?? "",
    line: li.lineCol >>> 10,
    col: li.lineCol & 0x3ff,
  };
}

/** Open PATH (from the page's platform); throws a BpfError for a broken object. */
export function openObject(path: string): BpfObject {
  return BpfObject.open(path);
}

/**
 * Everything the page shows of the object at PATH: open, load into a fresh simulated kernel with
 * the verifier logging at LOGLEVEL, then register each struct_ops map (BPF_LINK_CREATE for
 * .struct_ops.link maps, BPF_MAP_UPDATE_ELEM otherwise).
 */
export function inspectObject(path: string, logLevel: 1 | 2): ObjectReport {
  const obj = openObject(path);
  const report: ObjectReport = {
    name: obj.name,
    path,
    size: obj.elf.bytes.length,
    sections: obj.elf.sections
      .filter((s) => s.index > 0)
      .map((s) => ({ index: s.index, name: s.name, type: s.type, flags: s.flags, size: s.size })),
    maps: obj.maps.map((m) => ({
      name: m.name,
      type: nameOf(bpf_map_type, m.type, "BPF_MAP_TYPE_"),
      keySize: m.keySize,
      valueSize: m.valueSize,
      maxEntries: m.maxEntries,
      structOps: Boolean(m.structOps),
    })),
    programs: [],
    btf: obj.btf,
    registrations: [],
  };
  // Disassemble before loading: the instructions as in the object (relocations not yet applied).
  const rows = new Map<string, InsnRow[]>();
  for (const p of obj.programs) rows.set(p.name, disasm(obj, p.insns, p.lineInfo));

  const kernel = bootKernel();
  const verdicts = captureVerdicts(kernel, logLevel);
  const h: BpfHandle = { kernel, process: kernel.newProcess() };
  try {
    bpfObjectLoad(obj, h);
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    report.loadError = errorLine(e);
  }
  for (const p of obj.programs) {
    // The kernel keeps the first 15 characters of a program's name.
    const i = verdicts.findIndex((x) => x.name !== "" && p.name.startsWith(x.name));
    const verdict =
      i >= 0 ? verdicts.splice(i, 1)[0]!.verdict : p.autoload ? undefined : verifyAlone(path, p.name, logLevel);
    report.programs.push({
      name: p.name,
      section: p.secName,
      type: nameOf(bpf_prog_type, p.type, "BPF_PROG_TYPE_"),
      insns: rows.get(p.name) ?? [],
      autoload: p.autoload,
      verdict,
    });
  }
  if (!report.loadError) report.registrations = registerAll(h, obj);
  return report;
}

/**
 * A program the object does not load by default: load the object with it alone switched on (and
 * the optional struct_ops maps that use it created), as a test would. The programs of every map
 * created load with it, so the verdict is the named program's (as `structops prog verify` picks
 * it); without one, the loader's refusal, or that an earlier program's refusal stopped the load.
 */
function verifyAlone(path: string, name: string, level: number): Verdict | undefined {
  const obj = openObject(path);
  for (const p of obj.programs) p.setAutoload(p.name === name);
  // A struct_ops program loads with a map that uses it: create the optional ones that do.
  for (const m of obj.maps) if (m.structOps?.progs.some((p) => p?.name === name)) m.setAutocreate(true);
  const kernel = bootKernel();
  const seen = captureVerdicts(kernel, level);
  let failure: BpfError | undefined;
  try {
    bpfObjectLoad(obj, { kernel, process: kernel.newProcess() });
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    failure = e;
  }
  // The kernel keeps the first 15 characters of a program's name.
  const own = seen.find((x) => x.name !== "" && name.startsWith(x.name));
  if (own) return own.verdict;
  if (!failure) return undefined;
  if (seen.some((x) => !x.verdict.accepted)) {
    return { accepted: false, error: "not attempted (an earlier program was refused)", log: "" };
  }
  return { accepted: false, errno: errnoName(failure.errno), error: failure.message, log: "" };
}

function disasm(obj: BpfObject, insns: BpfObject["programs"][number]["insns"], lineInfo: BpfLineInfo[]): InsnRow[] {
  const text = disassemble(insns, { syntax: "llvm" });
  const byInsn = new Map<number, BpfLineInfo>();
  for (const li of lineInfo) byInsn.set(li.insnOff, li);
  const out: InsnRow[] = [];
  // One string per instruction; the second slot of ld_imm64 has none.
  let t = 0;
  for (let i = 0; i < insns.length; i++) {
    if (i > 0 && insns[i - 1]!.code === 0x18) continue;
    const li = byInsn.get(i);
    out.push({ idx: i, text: text[t++] ?? "", ...(li ? lineOf(obj.btf, li) : {}) });
  }
  return out;
}

/** Keep what the verifier says about each program the kernel is asked to load, at LEVEL. */
function captureVerdicts(kernel: Kernel, level: number): { name: string; verdict: Verdict }[] {
  const seen: { name: string; verdict: Verdict }[] = [];
  const hook = kernel.verifier;
  kernel.verifier = (kenv) => {
    const lines: string[] = [];
    const env = { ...kenv, log: { level, lines, log: (l: string) => void lines.push(l) } } as typeof kenv;
    const logOf = () => lines.map((l) => (l.endsWith("\n") ? l : `${l}\n`)).join("");
    try {
      const r = hook?.(env);
      seen.push({ name: env.prog.name, verdict: { accepted: true, log: logOf() } });
      return r;
    } catch (e) {
      if (e instanceof BpfError) {
        seen.push({
          name: env.prog.name,
          verdict: {
            accepted: false,
            errno: errnoName(e.errno),
            error: e.message,
            insn: e.context.insn as number | undefined,
            log: logOf(),
          },
        });
      }
      throw e;
    }
  };
  return seen;
}

/** Register each struct_ops map; read back its state and refcount as bpftool struct_ops show does. */
function registerAll(h: BpfHandle, obj: BpfObject): Registration[] {
  const out: Registration[] = [];
  for (const m of obj.maps) {
    if (!m.structOps) continue;
    if (!m.autocreate || m.fd < 0) {
      out.push({ map: m.name, ok: false, kind: m.structOps.tname, error: "not created (autocreate off)" });
      continue;
    }
    const info: { id?: number } = {};
    const mapId = bpf_map_get_info_by_fd(h, m.fd, info) === 0 ? info.id : undefined;
    // The struct the object fills (its type may live in a module's BTF rather than vmlinux's).
    const kind = m.structOps.tname;
    try {
      m.attachStructOps();
    } catch (e) {
      if (!(e instanceof BpfError)) throw e;
      out.push({ map: m.name, ok: false, kind, errno: errnoName(e.errno), error: e.message, mapId });
      continue;
    }
    const value = new Uint8Array(m.valueSize);
    const err = bpf_map_lookup_elem(h, m.fd, new Uint8Array(4), value);
    const dv = new DataView(value.buffer);
    out.push({
      map: m.name,
      ok: true,
      kind,
      mapId,
      refcnt: err ? undefined : dv.getUint32(0, true),
      state: err ? errnoName(-err) : (STATE_NAMES[dv.getUint32(4, true)] ?? String(dv.getUint32(4, true))),
    });
  }
  return out;
}
