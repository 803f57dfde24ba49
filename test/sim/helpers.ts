/** Paths that work from the sources (tsx) and from the compiled tests under dist/. */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, "package.json"))) {
    const up = resolve(d, "..");
    if (up === d) break;
    d = up;
  }
  return d;
}

/** A committed BPF object: bpf/obj/<name>.bpf.o */
export function bpfObj(name: string): string {
  return join(repoRoot(), "bpf", "obj", `${name}.bpf.o`);
}
