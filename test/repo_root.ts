/** Where the repository is, for tests under test/ (tsx) and dist/test/ (compiled) alike. */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: the nearest directory above this file holding package.json. */
export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, "package.json"))) {
    const up = resolve(d, "..");
    if (up === d) break;
    d = up;
  }
  return d;
}
