/** Paths that work from the sources (tsx) and from the compiled tests under dist/. */
import { join } from "node:path";
import { repoRoot } from "../repo_root.js";

export { repoRoot };

/** A committed BPF object: bpf/obj/<name>.bpf.o */
export function bpfObj(name: string): string {
  return join(repoRoot(), "bpf", "obj", `${name}.bpf.o`);
}
