/** Shared helpers of the verifier tests: where the repository is, and small env builders. */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (tests run from test/ under tsx and from dist/test/ once compiled). */
export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, "package.json"))) {
    const up = dirname(d);
    if (up === d) throw new Error("repository root not found");
    d = up;
  }
  return d;
}

export const FIXTURES = join(repoRoot(), "test/fixtures/verifier");
export const CONFORMANCE = join(repoRoot(), "../shared/conformance");
