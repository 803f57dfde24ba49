import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { ROOT } from "../elf/helpers.js";

// The committed fixtures that need no vmlinux.h rebuild byte-identically with the compiler
// that built them (clang 14.0.6, flags as in bpf/build.sh), written to another directory.
const CLANG = "14.0.6";
function why(): string | false {
  try {
    const v = execFileSync("clang", ["--version"], { encoding: "utf8" });
    if (!v.includes(`clang version ${CLANG}`)) return `clang is not ${CLANG}: outputs legitimately differ`;
    execFileSync("llvm-strip", ["--version"], { stdio: "ignore" });
    return false;
  } catch {
    return "clang or llvm-strip is not installed";
  }
}
const skip = why();
const fixtures = join(ROOT, "test/fixtures/elf");
const out = mkdtempSync(join(tmpdir(), "structops-repro-"));
after(() => rmSync(out, { recursive: true, force: true }));

for (const name of [
  "bad_sec",
  "bad_st_ops_prog",
  "bad_st_ops_nonfunc",
  "st_ops_shadow",
  "st_ops_autoload",
  "st_ops_kern",
  "extern_kcfg",
  "extern_kfunc",
  "skip_relo",
]) {
  test(`${name}.bpf.o rebuilds byte-identically from its source`, { skip }, () => {
    const obj = join(out, `${name}.bpf.o`);
    execFileSync(
      "clang",
      [
        "-g",
        "-O2",
        "-target",
        "bpf",
        "-mcpu=v3",
        "-D__TARGET_ARCH_x86",
        `-fdebug-prefix-map=${fixtures}=.`,
        "-c",
        `${name}.bpf.c`,
        "-o",
        obj,
      ],
      { cwd: fixtures },
    );
    execFileSync("llvm-strip", ["-g", obj]);
    assert.deepEqual(readFileSync(obj), readFileSync(join(fixtures, `${name}.bpf.o`)));
  });
}
