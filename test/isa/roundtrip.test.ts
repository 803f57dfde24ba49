import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import fc from "fast-check";
import { assemble } from "../../src/isa/asm.js";
import { type DecodedInsn, decodeProgram, encodeInsn } from "../../src/isa/decode.js";
import { disassemble } from "../../src/isa/disasm.js";
import type { SyntaxName } from "../../src/isa/syntax.js";
import { arbInsn } from "./arbitrary.js";

// The conformance vectors sit beside the repository (tests run from its root).
const DIR = "../shared/conformance";
const files = existsSync(DIR) ? readdirSync(DIR).filter((f) => f.endsWith(".data")) : [];
const skip = files.length === 0 ? `no conformance vectors in ${DIR}` : false;
const asmOf = (f: string): string =>
  /^-- asm\n([\s\S]*?)(?=^-- |(?![\s\S]))/m.exec(readFileSync(`${DIR}/${f}`, "utf8"))![1]!;

for (const syntax of ["conformance", "llvm"] as SyntaxName[]) {
  for (const labels of [false, true]) {
    test(`conformance vectors: assemble -> decode -> encode -> disassemble (${syntax}, labels ${labels}) -> assemble gives the same slots`, {
      skip,
    }, () => {
      for (const f of files) {
        const insns = assemble(asmOf(f));
        const reencoded = decodeProgram(insns).flatMap((p) => encodeInsn(p.insn));
        assert.deepEqual(reencoded, insns, `${f}: decode/encode`);
        const text = disassemble(reencoded, { syntax, labels });
        assert.deepEqual(assemble(text.join("\n"), { syntax }), insns, `${f}:\n${text.join("\n")}`);
      }
    });
  }
}

test("every valid instruction survives encode -> decode and disassemble -> assemble in both syntaxes", () => {
  fc.assert(
    fc.property(fc.array(arbInsn, { minLength: 1, maxLength: 8 }), (generated: DecodedInsn[]) => {
      // fast-check builds null-prototype records; compare as ordinary objects.
      const prog = structuredClone(generated);
      const slots = prog.flatMap(encodeInsn);
      assert.deepEqual(
        decodeProgram(slots).map((p) => p.insn),
        prog,
      );
      for (const syntax of ["conformance", "llvm"] as SyntaxName[]) {
        for (const labels of [false, true]) {
          const text = disassemble(slots, { syntax, labels }).join("\n");
          assert.deepEqual(assemble(text, { syntax }), slots, text);
        }
      }
    }),
    { numRuns: 2000 },
  );
});
