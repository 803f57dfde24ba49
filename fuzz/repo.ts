/** Where the repository is, from the source tree (tsx) or from dist/. */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(d, "package.json")) && existsSync(join(d, "bpf"))) return d;
    d = dirname(d);
  }
  throw new Error("fuzz: repository root not found");
}

export const ROOT = findRoot();

/** The committed objects (ours, built by clang) and the loader's hand-made fixtures. */
export function corpusObjects(): { name: string; bytes: Uint8Array }[] {
  const out: { name: string; bytes: Uint8Array }[] = [];
  for (const dir of ["bpf/obj", "test/fixtures/elf"]) {
    const full = join(ROOT, dir);
    if (!existsSync(full)) continue;
    for (const f of readdirSync(full).sort()) {
      if (f.endsWith(".o"))
        out.push({ name: f.replace(/\.bpf\.o$|\.o$/, ""), bytes: new Uint8Array(readFileSync(join(full, f))) });
    }
  }
  return out;
}
