/**
 * Differential tests against LLVM: clang-compiled objects disassembled by llvm-objdump and by
 * us must read the same, instruction for instruction; and text assembled by llvm-mc and by us
 * must give the same bytes. Skipped (saying why) where the LLVM tools are missing.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { assemble } from "../../src/isa/asm.js";
import { disassemble } from "../../src/isa/disasm.js";
import { decodeInsns, encodeInsns } from "../../src/isa/insn.js";

const HERE = fileURLToPath(new URL(".", import.meta.url));
/** Fixture path, from the sources (tsx) or from the compiled dist/test tree. */
function fixture(name: string): string {
  const candidates = [join(HERE, "fixtures", name), join(HERE, "../../../test/isa/fixtures", name)];
  const found = candidates.find((p) => existsSync(p));
  assert.ok(found, `fixture ${name} not found`);
  return found;
}

/** The newest of `name-19`, `name-18`, `name` that exists, with its LLVM major version. */
function findTool(name: string): { path: string; major: number } | undefined {
  for (const cand of [`${name}-19`, `${name}-18`, name]) {
    const r = spawnSync(cand, ["--version"], { encoding: "utf8" });
    if (r.status !== 0) continue;
    const m = /version (\d+)/.exec(r.stdout);
    return { path: cand, major: m ? Number(m[1]) : 0 };
  }
  return undefined;
}

const clang = findTool("clang");
const objdump = findTool("llvm-objdump");
const objcopy = findTool("llvm-objcopy");
const mc = findTool("llvm-mc");
// llvm-objdump prints hex immediates and w registers for 32-bit loads from LLVM 18 on; we follow that.
const needObjdump =
  !objdump || !objcopy
    ? "llvm-objdump/llvm-objcopy not installed"
    : objdump.major < 18
      ? `llvm-objdump ${objdump.major} prints the pre-LLVM-18 syntax; install llvm-19`
      : false;
const skipCompile = !clang ? "clang not installed" : needObjdump;
const skipMc = !mc || mc.major < 18 ? "llvm-mc >= 18 not installed" : false;

function objdumpLines(obj: string, section: string): string[] {
  const out = execFileSync(objdump!.path, ["-d", "--no-show-raw-insn", "--mcpu=v4", "-j", section, obj], {
    encoding: "utf8",
  });
  return out
    .split("\n")
    .filter((l) => /^\s+\d+:\t/.test(l))
    .map((l) => l.replace(/^\s+\d+:\t/, "").replace(/((?:goto|gotol|may_goto) [+-]0x[0-9a-f]+) <[^>]*>$/, "$1"));
}

function sectionSlots(obj: string, section: string, dir: string) {
  const bin = join(dir, `${section.replace(/\W/g, "_")}.bin`);
  execFileSync(objcopy!.path, ["-O", "binary", `--only-section=${section}`, obj, bin]);
  return decodeInsns(new Uint8Array(readFileSync(bin)));
}

const cpus = clang && clang.major >= 18 ? ["v1", "v2", "v3", "v4"] : ["v1", "v2", "v3"];
for (const cpu of cpus) {
  test(`disassembly of clang -mcpu=${cpu} output matches llvm-objdump line for line`, { skip: skipCompile }, () => {
    const dir = mkdtempSync(join(tmpdir(), "isa-objdump-"));
    try {
      const obj = join(dir, "mix.o");
      execFileSync(clang!.path, ["-g", "-O2", "-target", "bpf", `-mcpu=${cpu}`, "-c", fixture("isa_mix.c"), "-o", obj]);
      for (const section of [".text", "prog"]) {
        const theirs = objdumpLines(obj, section);
        const ours = disassemble(sectionSlots(obj, section, dir), { syntax: "llvm", objdump: true });
        assert.ok(theirs.length > 5, `${section}: llvm-objdump printed instructions`);
        assert.deepEqual(ours, theirs, `${section} (-mcpu=${cpu})`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("assembling llvm syntax gives the bytes llvm-mc gives, and llvm-objdump reads our disassembly back", {
  skip: skipMc || needObjdump,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), "isa-mc-"));
  try {
    const src = fixture("llvm_all.s");
    const obj = join(dir, "all.o");
    execFileSync(mc!.path, ["-triple", "bpfel", "-mcpu=v4", "-filetype=obj", src, "-o", obj]);
    const theirs = sectionSlots(obj, ".text", dir);
    const ours = assemble(readFileSync(src, "utf8"), { syntax: "llvm" });
    assert.deepEqual(encodeInsns(ours), encodeInsns(theirs));
    assert.deepEqual(disassemble(ours, { syntax: "llvm", objdump: true }), objdumpLines(obj, ".text"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
