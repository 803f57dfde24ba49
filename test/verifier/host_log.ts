/**
 * Our verifier log next to the host kernel's (6.18): the programs compared, how each is loaded
 * into the host (a socket filter through bpf(2) from Python's ctypes: Node has no syscall
 * binding), the environment we verify them in (the same: no r2 of the conformance format), and
 * the normalisation (kernel addresses, map references and ids only).
 *
 * Run directly to capture the golden logs the host-free test compares against:
 *   node --import tsx test/verifier/host_log.ts --capture
 * writes test/fixtures/verifier/<name>.l<level>.log from the host kernel's logs.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { encodeInsns } from "../../src/isa/insn.js";
import type { VerifierEnv } from "../../src/verifier/env.js";
import { parseVerifierVector, type VerifierVector, vectorEnv } from "../../src/verifier/vector.js";
import { bpfCheck } from "../../src/verifier/verifier.js";
import { FIXTURES } from "./helpers.js";

export const LOG_FIXTURES = join(FIXTURES, "log");
export const CAPTURE_COMMAND = "node --import tsx test/verifier/host_log.ts --capture";

/** Programs whose level-1 and level-2 logs match the host's line for line (after normalising). */
export const LOG_PROGRAMS: readonly string[] = [
  "branch_popped.data",
  "subprog_return.data",
  "verified_branches.data",
  "spill_fill.data",
  "big_constants.data",
  "../call_bad_target.data",
  "../callx.data",
  "../ctx_oob.data",
  "../fall_through_end.data",
  "../frame_pointer_ro.data",
  "../gpl_only_helper.data",
  "../helper_arg_type.data",
  "../helper_clobbers.data",
  "../invalid_shift.data",
  "../jump_into_ldimm64.data",
  "../jump_out_of_range.data",
  "../map_ptr_arith.data",
  "../map_value_oob.data",
  "../map_value_or_null_arith.data",
  "../map_value_or_null_deref.data",
  "../ptr_bitwise.data",
  "../rdonly_map_write.data",
  "../scalar_deref.data",
  "../stack_off_positive.data",
  "../stack_off_too_low.data",
];

export const LEVELS = [1, 2] as const;

export function loadVector(name: string): VerifierVector {
  return parseVerifierVector(readFileSync(join(LOG_FIXTURES, name), "utf8"), name);
}

export function goldenPath(name: string, level: number): string {
  const base = name.replace(/^\.\.\//, "").replace(/\.data$/, "");
  return join(FIXTURES, `${base}.l${level}.log`);
}

/** The vector as the host sees it: a socket filter whose r1 is the context and nothing else. */
export function hostLikeEnv(v: VerifierVector, level: number): VerifierEnv {
  const env = vectorEnv(v, level);
  const ops = env.ops ? { ...env.ops, initRegs: undefined } : undefined;
  return { ...env, ops };
}

export function ourLog(v: VerifierVector, level: number): string {
  return bpfCheck(hostLikeEnv(v, level)).log;
}

/**
 * What differs between two runs of the same program and nothing else: kernel addresses of maps
 * (the host prints them; we print map[id:N]) and object ids (`id=N` of scalars and pointers).
 */
export function normaliseLog(log: string): string[] {
  return log
    .replace(/0xffff[0-9a-f]{12}/g, "ADDR")
    .replace(/map\[id:\d+\](\[0\]\+\d+)?/g, "ADDR")
    .replace(/ADDR +;/g, "ADDR ;")
    .replace(/\bid=\d+,/g, "")
    .replace(/,id=\d+\b/g, "")
    .replace(/\(id=\d+\)/g, "()")
    .split("\n");
}

/** Loads programs through the real bpf(2) from Python ctypes (Node has no syscall binding). */
export const LOADER = `
import ctypes, json, sys, struct, os
libc = ctypes.CDLL(None, use_errno=True)
def bpf(cmd, attr):
    r = libc.syscall(321, cmd, attr, ctypes.sizeof(attr))
    return r, (ctypes.get_errno() if r < 0 else 0)
def load(p):
    code = bytearray(bytes.fromhex(p["hex"]))
    fds = []
    for m in p["maps"]:
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("<IIIII", attr, 0, m["type"], m["key"], m["value"], m["entries"], m["flags"])
        fd, err = bpf(0, attr)
        if fd < 0: return {"fd": -1, "errno": err, "log": "map create failed"}
        fds.append(fd)
    for i in range(0, len(code), 8):
        idx = struct.unpack_from("<i", code, i+4)[0]
        if code[i] == 0x18 and (code[i+1] >> 4) in (1, 2) and 0 <= idx < len(fds):
            struct.pack_into("<i", code, i+4, fds[idx])
    buf = ctypes.create_string_buffer(bytes(code))
    lic = ctypes.create_string_buffer(p["license"].encode())
    log = ctypes.create_string_buffer(1 << 24)
    attr = ctypes.create_string_buffer(160)
    level = p["log_level"]
    struct.pack_into("<IIQQIIQ", attr, 0, 1, len(code) // 8, ctypes.addressof(buf), ctypes.addressof(lic),
                     level, len(log) if level else 0, ctypes.addressof(log) if level else 0)
    fd, err = bpf(5, attr)
    if fd >= 0: os.close(fd)
    for f in fds: os.close(f)
    return {"fd": fd, "errno": err, "log": log.value.decode(errors="replace")}
print(json.dumps([load(p) for p in json.load(sys.stdin)]))
`;

export interface HostResult {
  fd: number;
  errno: number;
  log: string;
}

/** Why the host cannot be asked here, or false. */
export function hostSkipReason(): string | false {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "needs root for bpf(2)";
  const py = spawnSync("python3", ["-c", "import ctypes"], { encoding: "utf8" });
  if (py.status !== 0) return "python3 with ctypes is not installed";
  return false;
}

/** Load each vector into the host kernel as a socket filter at `level`; its log and errno. */
export function hostLogs(vs: readonly VerifierVector[], level: number): HostResult[] {
  const progs = vs.map((v) => ({
    hex: Buffer.from(encodeInsns(v.insns)).toString("hex"),
    maps: v.maps.map((m) => ({
      type: m.type,
      key: m.keySize,
      value: m.valueSize,
      entries: m.maxEntries,
      flags: m.rdonlyProg ? 1 << 7 : 0,
    })),
    license: v.gpl ? "GPL" : "MIT",
    log_level: level,
  }));
  const dir = mkdtempSync(join(tmpdir(), "structops-vlog-"));
  try {
    writeFileSync(join(dir, "load.py"), LOADER);
    const out = spawnSync("python3", [join(dir, "load.py")], { input: JSON.stringify(progs), maxBuffer: 1 << 28 });
    if (out.status !== 0) throw new Error(`host loader failed: ${out.stderr?.toString()}`);
    return JSON.parse(out.stdout.toString());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A golden file: the normalised host log after a header naming how it was captured. */
export function goldenText(hostLog: string, level: number): string {
  const header = `# host kernel ${release()}, log_level ${level}, normalised; captured by: ${CAPTURE_COMMAND}`;
  return `${header}\n${normaliseLog(hostLog).join("\n")}`;
}

export function readGolden(name: string, level: number): string[] {
  const text = readFileSync(goldenPath(name, level), "utf8");
  return text.slice(text.indexOf("\n") + 1).split("\n");
}

if (process.argv.includes("--capture")) {
  const skip = hostSkipReason();
  if (skip) throw new Error(`cannot capture: ${skip}`);
  const vs = LOG_PROGRAMS.map(loadVector);
  for (const level of LEVELS) {
    hostLogs(vs, level).forEach((r, i) => {
      if (r.errno === 1) throw new Error(`${LOG_PROGRAMS[i]}: bpf(2) refused with EPERM`);
      writeFileSync(goldenPath(LOG_PROGRAMS[i], level), goldenText(r.log, level));
      const same = normaliseLog(ourLog(vs[i], level)).join("\n") === normaliseLog(r.log).join("\n");
      console.log(`${LOG_PROGRAMS[i]} level ${level}: ${same ? "same as ours" : "DIFFERS from ours"}`);
    });
  }
}
