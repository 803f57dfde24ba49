/**
 * `structops btf dump file PATH [format raw|c] [base PATH]`, with bpftool's spellings:
 * `-j/--json`, `-p/--pretty`, `-B/--base-btf PATH`. PATH is a raw BTF blob (like
 * /sys/kernel/btf/vmlinux) or an ELF object whose .BTF section is dumped.
 */
import type { Command } from "commander";
import { Btf } from "../btf/btf.js";
import { btfDumpC } from "../btf/dump_c.js";
import { btfDumpRaw, btfDumpRawJson } from "../btf/dump_raw.js";
import { ElfFile } from "../elf/elf.js";
import { BTF_MAGIC } from "../uapi/btf.js";
import { BpfError, EINVAL, ENOENT, isBpfError } from "../uapi/errno.js";
import { io, readBytes } from "./session.js";

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

/** Parse `file PATH [format raw|c] [base PATH]` the way bpftool's do_dump does (keyword prefixes allowed). */
export function parseDumpArgs(args: string[]): { file: string; format: "raw" | "c"; base?: string } {
  const isPrefix = (arg: string, word: string) => arg.length > 0 && word.startsWith(arg);
  const a = [...args];
  const src = a.shift();
  if (!src || !isPrefix(src, "file"))
    throw new BpfError(EINVAL, `unrecognized BTF source specifier: '${src ?? ""}' (only 'file' is supported)`);
  const file = a.shift();
  if (!file) throw new BpfError(EINVAL, "expected a file path after 'file'");
  let format: "raw" | "c" = "raw";
  let base: string | undefined;
  while (a.length) {
    const kw = a.shift() as string;
    const val = a.shift();
    if (isPrefix(kw, "format")) {
      if (val !== "raw" && val !== "c")
        throw new BpfError(EINVAL, `unrecognized format specifier: '${val ?? ""}', possible values: raw, c`);
      format = val;
    } else if (isPrefix(kw, "base")) {
      if (!val) throw new BpfError(EINVAL, "expecting a path for 'base'");
      base = val;
    } else throw new BpfError(EINVAL, `unrecognized option: '${kw}'`);
  }
  return { file, format, base };
}

/** The dump as a string (what the command prints). */
export function btfDumpCommand(args: string[], opts: DumpOptions): string {
  const { file, format, base: basePath } = parseDumpArgs(args);
  const baseFile = basePath ?? opts.baseBtf;
  const base = baseFile ? Btf.parse(readBtfFile(baseFile)) : undefined;
  let btf: Btf;
  try {
    btf = Btf.parse(readBtfFile(file), { base });
  } catch (e) {
    if (isBpfError(e)) throw e.wrap(`failed to load BTF from ${file}`);
    throw e;
  }
  if (format === "c") {
    if (opts.json) throw new BpfError(EINVAL, "JSON output for C-syntax dump is not supported");
    return btfDumpC(btf);
  }
  return opts.json || opts.pretty ? btfDumpRawJson(btf, { pretty: opts.pretty }) : btfDumpRaw(btf);
}

export function register(program: Command): void {
  const btf = program
    .command("btf")
    .description("inspect BTF (bpftool btf)")
    .option("-j, --json", "JSON output")
    .option("-p, --pretty", "pretty-printed JSON output")
    .option("-B, --base-btf <path>", "base BTF for a split BTF file");
  btf
    .command("dump")
    .description("dump BTF: dump file PATH [format raw|c] [base PATH]")
    .argument("<args...>", "file PATH [format raw|c] [base PATH]")
    .option("-j, --json", "JSON output")
    .option("-p, --pretty", "pretty-printed JSON output")
    .option("-B, --base-btf <path>", "base BTF for a split BTF file")
    .action((args: string[], _opts: DumpOptions, cmd: Command) => {
      io.out(btfDumpCommand(args, cmd.optsWithGlobals<DumpOptions>()));
    });
}
