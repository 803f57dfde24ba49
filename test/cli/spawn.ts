// The real `structops` command in a process of its own, as a user runs it (tests run from the
// repository root, with the compiled tree in dist/).
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BUNDLE = join(process.cwd(), "dist", "cli", "main.js");
const TREE = join(process.cwd(), "dist", "src", "cli", "main.js");
/**
 * The command as package.json installs it (the bundle `npm test` builds), unless it is older than
 * the compiled tree (a bare `tsc` since): then the tree's own entry point.
 */
export const MAIN =
  existsSync(BUNDLE) &&
  statSync(BUNDLE).mtimeMs >= statSync(join(process.cwd(), "dist", "src", "cli", "cli.js")).mtimeMs
    ? BUNDLE
    : TREE;

export interface Run {
  code: number;
  out: string;
  err: string;
}

/** Run `structops ARGS` with its session in `state` (an unused path: an empty session). */
export function so(args: string[], state: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, STRUCTOPS_STATE: state, ...env },
        maxBuffer: 64 << 20,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 255) : 0;
        resolve({ code, out: stdout, err: stderr });
      },
    );
  });
}

export const freshState = () => join(mkdtempSync(join(tmpdir(), "structops-cli-")), "session.json");

/** Run jobs at most `n` at a time (the machine has two cores). */
export async function pool<T>(jobs: (() => Promise<T>)[], n = 2): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, worker));
  return out;
}
