/**
 * `structops btf show|list [id ID]` and `btf dump {file PATH | id ID | prog id ID | map id ID
 * [key|value|kv|all]} [format raw|c] [base PATH]`, with bpftool's spellings: `-j/--json`,
 * `-p/--pretty`, `-B/--base-btf PATH`. A file is a raw BTF blob (like /sys/kernel/btf/vmlinux)
 * or an ELF object whose .BTF section is dumped; an id names a BTF object of the session's
 * kernel (1 is its vmlinux: `btf dump id 1 format c` is the vmlinux.h programs for the
 * simulated kernel compile against).
 */
import type { Command } from "commander";
import { Btf } from "../btf/btf.js";
import { btfDumpC } from "../btf/dump_c.js";
import { btfDumpRaw, btfDumpRawJson } from "../btf/dump_raw.js";
import { ElfFile } from "../elf/elf.js";
import { BTF_MAGIC } from "../uapi/btf.js";
import { BpfError, EINVAL, ENOENT, isBpfError } from "../uapi/errno.js";
import { allIds, btfById, type Handle, objView, parseId } from "./bpf_info.js";
import { CliError } from "./errors.js";
import { io, jsonOut, openSession, optsOf, readBytes, type SessionOpts, sessionOptions } from "./session.js";

interface DumpOptions {
  json?: boolean;
  pretty?: boolean;
  baseBtf?: string;
}

/** The BTF bytes of a file: the file itself if it starts with the BTF magic, else its .BTF section. */
export function readBtfFile(path: string): Uint8Array {
  const bytes = readBytes("BTF file", path);
  const magic = bytes.length >= 2 ? bytes[0] | (bytes[1] << 8) : 0;
  if (magic === BTF_MAGIC || ((magic >> 8) | ((magic & 0xff) << 8)) === BTF_MAGIC) return bytes;
  const sec = ElfFile.parse(bytes).sectionByName(".BTF");
  if (!sec) throw new BpfError(ENOENT, `${path} has no .BTF section`);
  return sec.data;
}

/** Where `btf dump` takes its BTF from (bpftool's BTF_SRC). */
export type BtfSource =
  | { kind: "file"; file: string }
  | { kind: "id"; id: number }
  | { kind: "prog"; id: number }
  | { kind: "map"; id: number; roots: "key" | "value" | "kv" | "all" };

const isPrefix = (arg: string, word: string) => arg.length > 0 && word.startsWith(arg);

/** `id ID` after `prog` or `map` (bpftool's prog_parse_fd / map_parse_fd, id form). */
function objId(a: string[], kind: "prog" | "map"): number {
  const kw = a.shift();
  if (kw === undefined) throw new CliError(`expected ${kind} spec, got nothing`);
  if (kw === "tag" || kw === "name" || kw === "pinned")
    throw new CliError(`btf dump ${kind} ${kw} is not supported: name the ${kind} by id`);
  if (kw !== "id") throw new CliError(`expected 'id', 'tag', 'name' or 'pinned', got: '${kw}'?`);
  return parseId(a.shift());
}

/** Parse `BTF_SRC [format raw|c] [base PATH]` the way bpftool's do_dump does (keyword prefixes allowed). */
export function parseDumpArgs(args: string[]): { src: BtfSource; format: "raw" | "c"; base?: string } {
  const a = [...args];
  const word = a.shift() ?? "";
  let src: BtfSource;
  if (isPrefix(word, "file")) {
    const file = a.shift();
    if (!file) throw new BpfError(EINVAL, "expected a file path after 'file'");
    src = { kind: "file", file };
  } else if (isPrefix(word, "id")) {
    src = { kind: "id", id: parseId(a.shift()) };
  } else if (isPrefix(word, "prog")) {
    src = { kind: "prog", id: objId(a, "prog") };
  } else if (isPrefix(word, "map")) {
    const id = objId(a, "map");
    let roots: "key" | "value" | "kv" | "all" = "kv";
    const r = a[0];
    if (r !== undefined) {
      for (const w of ["key", "value", "kv", "all"] as const) {
        if (isPrefix(r, w)) {
          roots = w;
          a.shift();
          break;
        }
      }
    }
    src = { kind: "map", id, roots };
  } else throw new BpfError(EINVAL, `unrecognized BTF source specifier: '${word}'`);
  let format: "raw" | "c" = "raw";
  let base: string | undefined;
  while (a.length) {
    const kw = a.shift() as string;
    const val = a.shift();
    if (isPrefix(kw, "format")) {
      if (val === undefined) throw new BpfError(EINVAL, "expecting value for 'format' option");
      if (val !== "raw" && val !== "c")
        throw new BpfError(EINVAL, `unrecognized format specifier: '${val}', possible values: raw, c`);
      format = val;
    } else if (isPrefix(kw, "base")) {
      if (!val) throw new BpfError(EINVAL, "expecting a path for 'base'");
      base = val;
    } else throw new BpfError(EINVAL, `unrecognized option: '${kw}'`);
  }
  return { src, format, base };
}

/** A BTF object of the session's kernel (bpftool's btf__load_from_kernel_by_id_split). */
function kernelBtfById(h: Handle, id: number): Btf {
  const btf = btfById(h, id);
  if (!btf) throw new CliError(`get btf by id (${id}): No such file or directory`);
  return btf;
}

function format(btf: Btf, fmt: "raw" | "c", opts: DumpOptions, ids?: number[]): string {
  if (fmt === "c") {
    if (opts.json || opts.pretty) throw new CliError("JSON output for C-syntax dump is not supported");
    return btfDumpC(btf, { ids });
  }
  return opts.json || opts.pretty ? btfDumpRawJson(btf, { pretty: opts.pretty, ids }) : btfDumpRaw(btf, { ids });
}

/** The dump of a file as a string (what the command prints). */
export function btfDumpCommand(args: string[], opts: DumpOptions): string {
  const { src, format: fmt, base: basePath } = parseDumpArgs(args);
  if (src.kind !== "file") throw new CliError("a BTF object of the kernel needs the session: use `structops btf dump`");
  const baseFile = basePath ?? opts.baseBtf;
  const base = baseFile ? Btf.parse(readBtfFile(baseFile)) : undefined;
  let btf: Btf;
  try {
    btf = Btf.parse(readBtfFile(src.file), { base });
  } catch (e) {
    if (isBpfError(e)) throw e.wrap(`failed to load BTF from ${src.file}`);
    throw e;
  }
  return format(btf, fmt, opts);
}

/** The dump of a BTF object of the session's kernel (`id`, `prog`, `map` sources). */
export function btfDumpKernel(
  h: Handle,
  src: Exclude<BtfSource, { kind: "file" }>,
  fmt: "raw" | "c",
  opts: DumpOptions,
): string {
  if (src.kind === "id") return format(kernelBtfById(h, src.id), fmt, opts);
  const { info } = objView(h, src.kind, src.id);
  const btf = kernelBtfById(h, Number(info.btf_id ?? 0));
  if (src.kind === "prog" || src.roots === "all") return format(btf, fmt, opts);
  const key = Number(info.btf_key_type_id ?? 0);
  const value = Number(info.btf_value_type_id ?? 0);
  const ids = src.roots === "key" ? [key] : src.roots === "value" ? [value] : [key, value];
  return format(btf, fmt, opts, ids);
}

/** bpftool's `btf show -j` object of one BTF: the programs and maps using it, newest first as bpftool lists them. */
export function btfShowRows(h: Handle, spec: string[]): Record<string, unknown>[] {
  let ids: number[];
  if (spec.length === 0) ids = allIds(h, "btf");
  else if (spec.length === 2) {
    if (spec[0] !== "id") throw new CliError(`expected 'id', got: '${spec[0]}'?`);
    ids = [parseId(spec[1])];
  } else throw new CliError(`what is '${spec[0]}'?`);
  const views = ids.map((id) => objView(h, "btf", id).info);
  const users = (kind: "prog" | "map") => {
    const by = new Map<number, number[]>();
    for (const id of allIds(h, kind)) {
      const b = Number(objView(h, kind, id).info.btf_id ?? 0);
      if (b) by.set(b, [id, ...(by.get(b) ?? [])]);
    }
    return by;
  };
  const progs = users("prog");
  const maps = users("map");
  return views.map((i) => {
    const id = Number(i.id);
    const row: Record<string, unknown> = {
      id,
      size: i.btf_size,
      prog_ids: progs.get(id) ?? [],
      map_ids: maps.get(id) ?? [],
      kernel: Boolean(i.kernel_btf),
    };
    if (i.name) row.name = i.name;
    return row;
  });
}

/** bpftool's plain `btf show` line. */
export function btfShowPlain(r: Record<string, unknown>): string {
  const name = r.kernel ? `[${r.name}]` : r.name ? String(r.name) : "<anon>";
  let s = `${r.id}: name ${name}  size ${r.size}B`;
  const progs = r.prog_ids as number[];
  const maps = r.map_ids as number[];
  if (progs.length) s += `  prog_ids ${progs.join(",")}`;
  if (maps.length) s += `  map_ids ${maps.join(",")}`;
  return `${s}\n`;
}

export function register(program: Command): void {
  const btf = program
    .command("btf")
    .description("inspect BTF (bpftool btf)")
    .option("-j, --json", "JSON output")
    .option("-p, --pretty", "pretty-printed JSON output")
    .option("-B, --base-btf <path>", "base BTF for a split BTF file");
  sessionOptions(btf.command("show"))
    .alias("list")
    .argument("[SPEC...]", "id ID")
    .description("show the BTF objects of the session's kernel")
    .action(async (spec: string[], _o: SessionOpts, c: Command) => {
      const o = optsOf<SessionOpts>(c);
      const s = await openSession(o.state, true);
      const rows = btfShowRows(s, spec);
      if (!jsonOut(o, spec.length ? rows[0] : rows)) for (const r of rows) io.out(btfShowPlain(r));
    });
  sessionOptions(btf.command("dump"))
    .description(
      "dump BTF: dump {file PATH | id ID | prog id ID | map id ID [key|value|kv|all]} [format raw|c] [base PATH]",
    )
    .argument("<args...>", "BTF_SRC [format raw|c] [base PATH]")
    .option("-B, --base-btf <path>", "base BTF for a split BTF file")
    .action(async (args: string[], _opts: DumpOptions, cmd: Command) => {
      const o = cmd.optsWithGlobals<DumpOptions & SessionOpts>();
      const { src, format: fmt } = parseDumpArgs(args);
      if (src.kind === "file") io.out(btfDumpCommand(args, o));
      else io.out(btfDumpKernel(await openSession(o.state, true), src, fmt, o));
    });
}
