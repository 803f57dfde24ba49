/**
 * Cold open + load + register of our CUBIC object in a fresh process, beside bpftool doing the same
 * on the host in the same run.
 *
 * Whole process against whole process: `structops struct_ops register bpf/obj/tcp_cubic.bpf.o`
 * (dist/cli/main.js with a fresh session: Node's start, the bundle from its code cache, a kernel
 * boot, open, CO-RE, the verifier, maps, register) against `bpftool struct_ops register` of the
 * same object on the host kernel (which verifies it too), both timed by bench/c/rusage.c (wall,
 * and CPU from wait4). bpftool 7.1 (libbpf 1.1) does not know `.struct_ops.link`: it then gets a
 * copy whose section is renamed `.struct_ops` (a map registered without a link, unregistered by
 * id after each run). Either way the copy's CA has a name of its own, so it cannot meet a
 * `so_cubic` someone else registered on the host. Without root or bpf(), the baseline falls back
 * to `bpftool gen skeleton` (libbpf's open only) and says so.
 *
 * In-process split, from a child that times itself: kernel boot (its vmlinux BTF built), open,
 * load (CO-RE, maps, verifier, programs), register; and `node -e 0` for Node's own start.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BpfObject } from "../src/loader/object.js";
import { BpfCcHost } from "../src/sim/bpf_cc.js";
import { type BenchResult, median } from "./bench.js";

const OBJ = "bpf/obj/tcp_cubic.bpf.o";
const RUNS = 7;

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

interface Split {
  boot: number;
  open: number;
  load: number;
  register: number;
  total: number;
}

/** In the child: one cold boot + open + load + register, each step in CPU ms. */
function child(): void {
  const c0 = cpuMs();
  const host = new BpfCcHost({ CONFIG_HZ: 1000 });
  const c1 = cpuMs();
  const obj = BpfObject.open(OBJ);
  const c2 = cpuMs();
  obj.load(host.h);
  const c3 = cpuMs();
  for (const m of obj.maps) if (m.structOps) m.attachStructOps();
  const c4 = cpuMs();
  const split: Split = { boot: c1 - c0, open: c2 - c1, load: c3 - c2, register: c4 - c3, total: c4 - c0 };
  process.stdout.write(JSON.stringify(split));
}

/** ELF64 little-endian section [offset, size] by name, for the baseline's copy. */
function elfSection(elf: Uint8Array, name: string): [number, number] | undefined {
  const dv = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const shoff = Number(dv.getBigUint64(0x28, true));
  const shentsize = dv.getUint16(0x3a, true);
  const shnum = dv.getUint16(0x3c, true);
  const strOff = Number(dv.getBigUint64(shoff + dv.getUint16(0x3e, true) * shentsize + 0x18, true));
  const want = new TextEncoder().encode(`${name}\0`);
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * shentsize;
    const n = strOff + dv.getUint32(h, true);
    if (want.every((b, k) => elf[n + k] === b))
      return [Number(dv.getBigUint64(h + 0x18, true)), Number(dv.getBigUint64(h + 0x20, true))];
  }
  return undefined;
}

function replaceAll(bytes: Uint8Array, from: string, to: string): void {
  const f = new TextEncoder().encode(from);
  const t = new TextEncoder().encode(to);
  for (let i = bytes.indexOf(f[0]); i >= 0 && i <= bytes.length - f.length; i = bytes.indexOf(f[0], i + 1))
    if (f.every((b, k) => bytes[i + k] === b)) bytes.set(t, i);
}

/** The object as bpftool gets it: the CA renamed; with `noLink`, its section `.struct_ops`. */
function baselineCopy(dir: string, noLink: boolean): string {
  const elf = new Uint8Array(readFileSync(OBJ));
  const sec = elfSection(elf, ".struct_ops.link");
  if (sec) {
    const data = elf.subarray(sec[0], sec[0] + sec[1]);
    const at = Buffer.from(data).indexOf("so_cubic\0");
    if (at >= 0) data.set(new TextEncoder().encode("so_bnchc\0"), at);
  }
  // Same length: the NUL ends the string table entries (section name, BTF DATASEC) early.
  if (noLink) replaceAll(elf, ".struct_ops.link\0", ".struct_ops\0link\0");
  const path = join(dir, noLink ? "tcp_cubic_nolink.bpf.o" : "tcp_cubic.bpf.o");
  writeFileSync(path, elf);
  return path;
}

interface Timed {
  wall: number;
  cpu: number;
}

/** One run of CMD under bench/c/rusage.c; undefined if it failed. */
function timed(rusage: string, cmd: string[], env?: NodeJS.ProcessEnv): (Timed & { stderr: string }) | undefined {
  const r = spawnSync(rusage, cmd, { encoding: "utf8", env: env ?? process.env });
  if (r.status !== 0) return undefined;
  const [wall, cpu] = r.stdout.trim().split(" ").map(Number);
  return { wall, cpu, stderr: r.stderr };
}

/** bpftool struct_ops register of the object (or its copy), unregistered again; undefined if refused. */
function bpftoolRegister(rusage: string, obj: string): (Timed & { stderr: string }) | undefined {
  const r = timed(rusage, ["bpftool", "struct_ops", "register", obj]);
  const id = r && /Registered \S+ \S+ id (\d+)/.exec(r.stderr)?.[1];
  // Registered without a link (the .struct_ops copy): it stays until unregistered.
  if (id) spawnSync("bpftool", ["struct_ops", "unregister", "id", id], { stdio: "ignore" });
  return r;
}

function hasBpftool(): boolean {
  try {
    execFileSync("bpftool", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export async function run(): Promise<BenchResult[]> {
  const self = fileURLToPath(import.meta.url);
  const root = join(dirname(self), self.includes("/dist/") ? "../.." : "..");
  const cli = join(root, "dist", "cli", "main.js");
  const here = dirname(self);
  const src = [join(here, "c", "rusage.c"), join(root, "bench", "c", "rusage.c")].find(existsSync);
  const dir = mkdtempSync(join(tmpdir(), "structops-loader-"));
  try {
    const load = loadavg()[0].toFixed(1);
    // In-process split.
    const split: Split[] = [];
    for (let i = 0; i < RUNS; i++) {
      // Under the interrupt budget the command sets (src/cli/launcher.ts).
      const out = execFileSync(process.execPath, [...process.execArgv, "--interrupt-budget=262144", self, "--child"], {
        cwd: root,
      });
      split.push(JSON.parse(out.toString()));
    }
    const med = (k: keyof Split) => median(split.map((s) => s[k]));
    const splitNote = `kernel boot ${med("boot").toFixed(1)} + open ${med("open").toFixed(1)} + load (CO-RE, maps, verifier) ${med("load").toFixed(1)} + register ${med("register").toFixed(1)} ms CPU`;
    const rows: BenchResult[] = [];

    const rusage = join(dir, "rusage");
    const haveRusage =
      src !== undefined && spawnSync("gcc", ["-O2", "-o", rusage, src], { stdio: "ignore" }).status === 0;
    if (!haveRusage || !existsSync(cli)) {
      rows.push({
        name: "loader.cold_open_load_cubic",
        value: med("total"),
        unit: "ms",
        note: `in-process CPU, median of ${RUNS} fresh processes; ${splitNote}; no baseline (gcc or dist/cli missing)`,
      });
      return rows;
    }

    // The baseline: bpftool register on the host, else bpftool gen skeleton.
    let baseName = "";
    let baseCmd: (() => (Timed & { stderr: string }) | undefined) | undefined;
    if (hasBpftool()) {
      for (const noLink of [false, true]) {
        const copy = baselineCopy(dir, noLink);
        if (bpftoolRegister(rusage, copy)) {
          baseName = `bpftool struct_ops register${noLink ? " (copy in .struct_ops)" : ""}, whole process`;
          baseCmd = () => bpftoolRegister(rusage, copy);
          break;
        }
      }
      if (!baseCmd && timed(rusage, ["bpftool", "gen", "skeleton", OBJ])) {
        baseName = "bpftool gen skeleton (libbpf open only: register refused here), whole process";
        baseCmd = () => timed(rusage, ["bpftool", "gen", "skeleton", OBJ]);
      }
    }

    const ours: Timed[] = [];
    const base: Timed[] = [];
    const node: Timed[] = [];
    for (let i = 0; i < RUNS; i++) {
      // A fresh session each time: nothing replayed, no verdict kept from an earlier run.
      const state = join(dir, `session-${i}`, "session.json");
      const r = timed(rusage, [process.execPath, cli, "struct_ops", "register", join(root, OBJ)], {
        ...process.env,
        STRUCTOPS_STATE: state,
      });
      if (!r) throw new Error(`structops struct_ops register ${OBJ} failed`);
      ours.push(r);
      const b = baseCmd?.();
      if (b) base.push(b);
      const n = timed(rusage, [process.execPath, "-e", "0"]);
      if (n) node.push(n);
    }
    const oursCpu = median(ours.map((t) => t.cpu));
    const oursWall = median(ours.map((t) => t.wall));
    const nodeCpu = median(node.map((t) => t.cpu));
    const nodeWall = median(node.map((t) => t.wall));
    const baseCpu = base.length ? median(base.map((t) => t.cpu)) : undefined;
    const baseWall = base.length ? median(base.map((t) => t.wall)) : undefined;
    const goal = (v: number, b: number | undefined) => (b === undefined ? "" : v <= 3 * b ? "met" : "not met");
    rows.push(
      {
        name: "loader.cold_register_cubic (structops struct_ops register, whole process, CPU)",
        value: oursCpu,
        unit: "ms",
        baseline: baseCpu !== undefined ? { name: `${baseName}, CPU ms`, value: baseCpu } : undefined,
        ratio: baseCpu !== undefined ? oursCpu / baseCpu : undefined,
        note: `goal <= 3x: ${goal(oursCpu, baseCpu)}; median of ${RUNS}, alternating; node -e 0 alone ${nodeCpu.toFixed(1)} ms CPU; load average ${load} on ${cpus().length} CPUs`,
      },
      {
        name: "loader.cold_register_cubic (whole process, wall)",
        value: oursWall,
        unit: "ms",
        baseline: baseWall !== undefined ? { name: `${baseName}, wall ms`, value: baseWall } : undefined,
        ratio: baseWall !== undefined ? oursWall / baseWall : undefined,
        note: `goal <= 3x: ${goal(oursWall, baseWall)}; node -e 0 alone ${nodeWall.toFixed(1)} ms wall`,
      },
      {
        name: "loader.cold_open_load_cubic (in-process: boot + open + load + register, CPU)",
        value: med("total"),
        unit: "ms",
        baseline: baseCpu !== undefined ? { name: `${baseName}, CPU ms`, value: baseCpu } : undefined,
        ratio: baseCpu !== undefined ? med("total") / baseCpu : undefined,
        note: `goal <= 3x: ${goal(med("total"), baseCpu)}; Node's start not counted; median of ${RUNS} fresh processes; ${splitNote}`,
      },
    );
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes("--child")) child();
else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const r of await run()) console.log(r);
}
