/**
 * Differential CO-RE test: the system libbpf, given the same object and the same target BTF
 * (open_opts.btf_custom_path), must take the same decisions as bpfCoreApplyRelos, down to its
 * debug lines ("patched insn #N (LDX/ST/STX) off A -> B", "substituting insn #N ...").
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { ElfFile } from "../../src/elf/elf.js";
import { SimTarget } from "../../src/fidelity/sim.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpfCoreApplyRelos } from "../../src/loader/relo_core.js";
import { objPath, ROOT } from "../elf/helpers.js";

const fixtures = join(ROOT, "test/fixtures/elf");
const dir = mkdtempSync(join(tmpdir(), "structops-core-"));
const helper = join(dir, "libbpf_core_log");
after(() => rmSync(dir, { recursive: true, force: true }));

function buildHelper(): string | false {
  try {
    execFileSync("cc", ["-O1", "-o", helper, join(fixtures, "libbpf_core_log.c"), "-lbpf"], { stdio: "pipe" });
    return false;
  } catch (e) {
    return `cannot build the libbpf helper (needs cc and libbpf-dev): ${(e as Error).message.split("\n")[0]}`;
  }
}
const noHelper = buildHelper();

/** The CO-RE outcome lines, without the `libbpf: ` prefix and relocation numbers (libbpf numbers them per section). */
function normalize(lines: string[]): string[] {
  return lines
    .map((l) => l.replace(/^libbpf: /, "").replace(/relo #\d+: /, ""))
    .filter((l) => / (patched|substituting) insn #/.test(l))
    .sort();
}

function libbpfLines(obj: string, targetBtf: string): string[] {
  let out: string;
  try {
    out = execFileSync(helper, [obj, targetBtf], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    out = String((e as { stdout?: string }).stdout ?? "");
  }
  return normalize(out.split("\n"));
}

function ourLines(obj: string, target: Btf): string[] {
  const o = BpfObject.open(obj);
  const lines: string[] = [];
  for (const prog of o.allPrograms) {
    bpfCoreApplyRelos(prog.insns, o.btf as Btf, target, o.coreRelosFor(prog), {
      progName: prog.name,
      print: (_l, m) => lines.push(m),
    });
  }
  return normalize(lines);
}

/** libbpf probes the kernel before relocating; without the privileges to do so it prints nothing to compare. */
const NO_LOG = "libbpf stopped before CO-RE (it needs bpf() privileges to probe the kernel first)";

test("CO-RE decisions equal libbpf's: the two-layout fixture", { skip: noHelper }, (t) => {
  const targetPath = join(fixtures, "core_target.bpf.o");
  const target = Btf.parse(
    ElfFile.parse(new Uint8Array(readFileSync(targetPath))).sectionByName(".BTF")?.data as Uint8Array,
  );
  const want = libbpfLines(join(fixtures, "core_local.bpf.o"), targetPath);
  if (want.length === 0) return t.skip(NO_LOG);
  assert.ok(want.length >= 15, want.join("\n"));
  assert.deepEqual(ourLines(join(fixtures, "core_local.bpf.o"), target), want);
});

let simBtf: Btf | undefined;
let noSim: string | false = false;
try {
  simBtf = new SimTarget().btf;
} catch (e) {
  noSim = `the simulated kernel does not boot: ${(e as Error).message}`;
}

for (const name of ["tcp_reno", "tcp_dctcp", "tcp_cubic"]) {
  test(`CO-RE decisions equal libbpf's: ${name} (host build) against the simulated kernel's BTF`, {
    skip: noHelper || noSim,
  }, (t) => {
    const btf = simBtf as Btf;
    const path = join(dir, "sim_vmlinux.btf");
    writeFileSync(path, btf.encode());
    const want = libbpfLines(objPath(name), path);
    if (want.length === 0) return t.skip(NO_LOG);
    assert.deepEqual(ourLines(objPath(name), btf), want);
  });
}

/** libbpf's open-phase debug lines we also print: programs found, BTF map fields, global-data maps. */
function openLines(lines: string[]): string[] {
  return lines
    .map((l) => l.replace(/^libbpf: /, ""))
    .filter((l) =>
      /: found program '|^map '.*': (at sec_idx|found (type|key|value|max_entries|map_flags|key_size|value_size))|\(global data\): at sec_idx/.test(
        l,
      ),
    )
    .sort();
}

for (const name of ["tcp_reno", "tcp_dctcp", "tcp_cubic", "features"]) {
  test(`open: ${name}: programs, BTF map definitions and global-data map flags as libbpf reports them`, {
    skip: noHelper,
  }, (t) => {
    let out: string;
    try {
      out = execFileSync(helper, [objPath(name), "/sys/kernel/btf/vmlinux"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (e) {
      out = String((e as { stdout?: string }).stdout ?? "");
    }
    const want = openLines(out.split("\n"));
    if (want.length === 0) return t.skip("libbpf printed nothing (no debug output)");
    const ours: string[] = [];
    BpfObject.open(objPath(name), { print: (_l, m) => ours.push(m) });
    assert.deepEqual(openLines(ours), want);
  });
}
