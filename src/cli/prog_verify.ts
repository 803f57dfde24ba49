/**
 * `structops prog verify FILE [--log-level 1|2]`: run the verifier on a program and print the
 * verdict and the verifier log. FILE is a `.data` vector (conformance format: r1 points at a
 * context of the `-- mem` size, r2 holds that size; our corpus's `-- maps`, `-- unprivileged`,
 * `-- helpers` sections are honoured), or an object file whose every program is loaded into a
 * simulated kernel. Exit status: 0 accepted, 1 rejected, 2 unusable input.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { BpfError, errnoName } from "../uapi/errno.js";
import type { VerifierResult } from "../verifier/env.js";
import { parseVerifierVector, vectorEnv } from "../verifier/vector.js";
import { bpfCheck } from "../verifier/verifier.js";
import { CliError, EXIT_ERROR } from "./errors.js";
import { progCommand } from "./prog.js";
import { readBytes } from "./session.js";

interface VerifyOptions {
  logLevel?: string;
  json?: boolean;
}

export interface ProgVerdict {
  prog: string;
  accepted: boolean;
  errno?: string;
  error?: string;
  insn?: number;
  log: string;
}

function verdictOf(prog: string, r: VerifierResult): ProgVerdict {
  return {
    prog,
    accepted: r.ok,
    errno: r.error ? errnoName(r.error.errno) : undefined,
    error: r.error?.message,
    insn: r.error?.context.insn as number | undefined,
    log: r.log,
  };
}

/** Verify a `.data` vector's program. */
export function verifyVectorFile(path: string, logLevel: number): ProgVerdict[] {
  const v = parseVerifierVector(readFileSync(path, "utf8"), path);
  return [verdictOf(path, bpfCheck(vectorEnv(v, logLevel)))];
}

/**
 * Verify every program of a BPF object file: open it with the loader and load it into a
 * simulated kernel (the vmlinux a session boots: TCP, bpf_dummy_ops, qdiscs, sched_ext), whose PROG_LOAD runs the
 * verifier. The loader stops at the first program refused; programs after it are not attempted.
 * A program the object does not load by default (`SEC("?...")`) is verified alone afterwards, in an
 * object loaded with only it switched on (and the optional struct_ops maps that use it created), as
 * a test that enables it would load it.
 */
export async function verifyObjectFile(path: string, logLevel: number, only?: string): Promise<ProgVerdict[]> {
  const [{ Kernel }, { BpfObject }, { bpfObjectLoad }, { vmlinux }] = await Promise.all([
    import("../kernel/kernel.js"),
    import("../loader/object.js"),
    import("../loader/object_load.js"),
    import("../subsys/vmlinux.js"),
  ]);
  const kernel = new Kernel({ verifier: true, subsystems: vmlinux().subsystems });
  // Keep what the verifier said about each program the kernel is asked to load.
  const seen: { name: string; verdict: ProgVerdict }[] = [];
  const hook = kernel.verifier;
  // The verifier writes into a log of its own (no size limit) at the level asked for; the load
  // itself runs at level 0, as libbpf loads by default.
  kernel.verifier = (kenv) => {
    const lines: string[] = [];
    const env = { ...kenv, log: { level: logLevel, lines, log: (l: string) => void lines.push(l) } } as typeof kenv;
    const logOf = () => lines.map((l) => (l.endsWith("\n") ? l : `${l}\n`)).join("");
    try {
      const r = hook?.(env);
      seen.push({ name: env.prog.name, verdict: { prog: env.prog.name, accepted: true, log: logOf() } });
      return r;
    } catch (e) {
      if (e instanceof BpfError) {
        const verdict: ProgVerdict = {
          prog: env.prog.name,
          accepted: false,
          errno: errnoName(e.errno),
          error: e.message,
          insn: e.context.insn as number | undefined,
          log: logOf(),
        };
        seen.push({ name: env.prog.name, verdict });
      }
      throw e;
    }
  };
  const obj = BpfObject.open(path);
  if (only !== undefined) {
    for (const p of obj.programs) p.setAutoload(p.name === only);
    // A struct_ops program loads with a map that uses it: create the optional ones that do.
    for (const m of obj.maps) if (m.structOps?.progs.some((p) => p?.name === only)) m.setAutocreate(true);
  }
  let failure: BpfError | undefined;
  try {
    bpfObjectLoad(obj, { kernel, process: kernel.newProcess() });
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    failure = e;
  }
  const verdicts: ProgVerdict[] = [];
  for (const p of obj.programs) {
    if (only !== undefined ? p.name !== only : !p.autoload) continue;
    // The kernel keeps the first 15 characters of a program's name.
    const i = seen.findIndex((x) => x.name !== "" && p.name.startsWith(x.name));
    if (i >= 0) {
      verdicts.push({ ...seen[i].verdict, prog: p.name });
      seen.splice(i, 1);
    } else if (failure && !verdicts.some((v) => !v.accepted)) {
      // Refused before the verifier ran (a map, a relocation): the loader's reason.
      verdicts.push({
        prog: p.name,
        accepted: false,
        errno: errnoName(failure.errno),
        error: failure.message,
        log: "",
      });
    } else {
      verdicts.push({
        prog: p.name,
        accepted: false,
        error: "not attempted (an earlier program was refused)",
        log: "",
      });
    }
  }
  if (only === undefined) {
    for (const p of obj.programs) if (!p.autoload) verdicts.push(...(await verifyObjectFile(path, logLevel, p.name)));
  }
  return verdicts;
}

/** An ELF object, or a .data vector (anything else is refused naming the file). */
function isElf(path: string): boolean {
  const b = readBytes("program file", path);
  if (b.length >= 4 && b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46) return true;
  if (!new TextDecoder().decode(b).includes("-- asm")) {
    throw new CliError(`${path}: neither a BPF object (ELF) nor a .data program vector (no '-- asm' section)`);
  }
  return false;
}

export function register(program: Command): void {
  progCommand(program)
    .command("verify")
    .description("run the verifier on FILE (.data vector or BPF object) and print its verdict and log")
    .argument("<file>", "a .data program vector or a .bpf.o object")
    .option("--log-level <n>", "verifier log level (1: paths, 2: states at every prune point)", "1")
    .option("-j, --json", "JSON output")
    .action(async (file: string, opts: VerifyOptions) => {
      const level = Number(opts.logLevel ?? 1);
      if (![0, 1, 2].includes(level)) {
        console.error(`Error: invalid log level '${opts.logLevel}'`);
        process.exitCode = EXIT_ERROR;
        return;
      }
      let verdicts: ProgVerdict[];
      try {
        verdicts = isElf(file) ? await verifyObjectFile(file, level) : verifyVectorFile(file, level);
      } catch (e) {
        if (!(e instanceof BpfError) && !(e instanceof CliError) && !(e instanceof Error && "code" in e)) throw e;
        console.error(`Error: ${(e as Error).message}`);
        process.exitCode = EXIT_ERROR;
        return;
      }
      if (opts.json) console.log(JSON.stringify(verdicts, null, 2));
      else {
        for (const v of verdicts) {
          if (verdicts.length > 1 || v.prog !== file) console.log(`prog ${v.prog}:`);
          process.stdout.write(v.log);
          console.log(
            v.accepted
              ? "verification succeeded"
              : `verification failed: ${v.error} (${v.errno}) at insn ${v.insn ?? "?"}`,
          );
        }
      }
      process.exitCode = verdicts.every((v) => v.accepted) ? 0 : 1;
    });
}
