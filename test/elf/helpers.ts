import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root, from test/elf (source) or dist/test/elf (compiled). */
export const ROOT = here.includes(`${join("dist", "test")}`) ? join(here, "../../..") : join(here, "../..");
export const OBJ_DIR = join(ROOT, "bpf/obj");
export const OBJECTS = ["tcp_reno", "tcp_cubic", "tcp_dctcp", "dummy_ops", "features"] as const;
export const BE_OBJECT = join(ROOT, "test/fixtures/elf/dummy_ops.bpfeb.o");

export function objPath(name: string): string {
  return join(OBJ_DIR, `${name}.bpf.o`);
}

export function readObj(name: string): Uint8Array {
  return new Uint8Array(readFileSync(objPath(name)));
}

/** Why a tool-dependent test must skip, or false when `tool` runs here. */
export function toolMissing(tool: string, args: string[] = ["--version"]): string | false {
  try {
    execFileSync(tool, args, { stdio: "ignore" });
    return false;
  } catch {
    return `${tool} is not installed`;
  }
}

export function run(tool: string, args: string[]): string {
  return execFileSync(tool, args, { encoding: "utf8" });
}
