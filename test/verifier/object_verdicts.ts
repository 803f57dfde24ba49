/**
 * Verdicts on single programs of a committed BPF object: ours (a fresh simulated kernel, only
 * that program loaded, its log and the instruction the verifier stopped at) and the host
 * kernel's (through the system's libbpf, where root and bpf() allow).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { BpfError } from "../../src/uapi/errno.js";
import { repoRoot } from "./helpers.js";

export interface Verdict {
  /** 0 when it loaded, else the errno. */
  errno: number;
  /** The verifier log without its `processed` line and the loader's framing. */
  log: string[];
  insn?: number;
}

/** Load program `name` of `path` alone into a fresh simulated kernel. */
export function loadOne(path: string, name: string): Verdict {
  const k = new Kernel({ verifier: true });
  const h = { kernel: k, process: k.newProcess() };
  const lines: string[] = [];
  const obj = BpfObject.open(path, { print: (_l, m) => lines.push(m) });
  for (const p of obj.programs) p.setAutoload(p.name === name);
  const captured: { insn?: number } = {};
  const hook = k.verifier;
  k.verifier = (env) => {
    try {
      return hook?.(env);
    } catch (e) {
      if (e instanceof BpfError) captured.insn = e.context?.insn as number | undefined;
      throw e;
    }
  };
  try {
    obj.load(h);
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    const log = lines
      .join("\n")
      .split("\n")
      .filter((l) => l && !l.startsWith("processed") && !l.includes("PROG LOAD LOG") && !l.includes("failed to load"));
    return { errno: (e.context?.errno as number | undefined) ?? e.errno, log, insn: captured.insn };
  }
  return { errno: 0, log: [] };
}

const HOST_LOADER = join(repoRoot(), "test/fixtures/verifier/host_libbpf_load.py");

/** Why the host kernel cannot be asked here, or false. */
export function hostSkip(): string | false {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "needs root for bpf(2)";
  if (!existsSync("/sys/kernel/btf/vmlinux")) return "no /sys/kernel/btf/vmlinux";
  const py = spawnSync("python3", ["-c", "import ctypes; ctypes.CDLL('libbpf.so.1')"], { encoding: "utf8" });
  if (py.status !== 0) return "python3 or libbpf.so.1 missing";
  return false;
}

/** The host's answer for each program of `path`, loaded alone: -errno (0: loaded) and the log. */
export function hostVerdicts(path: string, progs: string[]): { prog: string; err: number; log: string }[] {
  const out = spawnSync("python3", [HOST_LOADER, path, ...progs], { encoding: "utf8", maxBuffer: 1 << 26 });
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout) as { prog: string; err: number; log: string }[];
}

/**
 * Each refused program as the table says (errno, last log lines, instruction), and where the
 * host can load programs, the host agrees; `good` must load on the host.
 */
export function checkRefusals(path: string, bad: readonly [string, number, string[], number][]): void {
  for (const [name, errno, msgs, insn] of bad) {
    const r = loadOne(path, name);
    assert.equal(r.errno, errno, `${name}: errno (log: ${r.log.slice(-2).join(" / ")})`);
    assert.deepEqual(r.log.slice(-msgs.length), msgs, name);
    assert.equal(r.insn, insn, `${name}: insn`);
  }
}

/** The host's verdicts match the table and ours; false when bpf() is refused here. */
export function compareWithHost(path: string, good: string[], bad: readonly [string, number, string[], number][]) {
  const g = hostVerdicts(path, good);
  if (g.length && g.every((x) => x.err === -1)) return false; // bpf() refused here (EPERM)
  for (const x of g)
    assert.equal(x.err, 0, `${x.prog}: the host refused it:\n${x.log.split("\n").slice(-4).join("\n")}`);
  const b = hostVerdicts(
    path,
    bad.map((x) => x[0]),
  );
  b.forEach((r, i) => {
    const [name, errno, msgs] = bad[i];
    assert.equal(r.err, -errno, `${name}: host errno`);
    const lines = r.log.split("\n").filter((l) => l && !l.startsWith("processed"));
    assert.deepEqual(lines.slice(-msgs.length), msgs, `${name}: host message`);
    const ours = loadOne(path, name);
    assert.deepEqual(ours.log.slice(-msgs.length), lines.slice(-msgs.length), `${name}: ours and the host's`);
  });
  return true;
}
