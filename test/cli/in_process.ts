// One `structops` invocation inside the test's process: a new program and, through the session,
// a freshly booted kernel brought to the recorded state by replay (what a second process would see).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/cli.js";
import { io } from "../../src/cli/session.js";

export async function run(state: string, ...args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = "";
  let err = "";
  const saved = { ...io };
  io.out = (s) => void (out += s);
  io.err = (s) => void (err += s);
  let code: number;
  try {
    code = await main(["node", "structops", ...args, "--state", state]);
  } finally {
    Object.assign(io, saved);
    process.exitCode = 0;
  }
  return { out, err, code };
}

/** An unused state file path: an empty session. */
export const freshState = (tag: string) => join(mkdtempSync(join(tmpdir(), `structops-${tag}-`)), "session.json");
