/**
 * The page's file system (src/platform.ts): our committed objects under bpf/obj/, as the command
 * names them, and what the user drops under dropped/. The simulation's worker installs the same.
 */
import bundled from "structops:objects";
import { MemoryPlatform, setPlatform } from "../../src/platform.js";

export const OBJ_DIR = "bpf/obj";
export const DROP_DIR = "dropped";

/** Names of the bundled objects, sorted. */
export const bundledNames: string[] = Object.keys(bundled).sort();

export function installPlatform(): MemoryPlatform {
  const mem = new MemoryPlatform();
  for (const [name, bytes] of Object.entries(bundled)) mem.files.set(`${OBJ_DIR}/${name}`, bytes);
  setPlatform(mem);
  return mem;
}

/** Where an object the page knows is: a bundled name, or "dropped/NAME". */
export function objectPath(name: string): string {
  return name.startsWith(`${DROP_DIR}/`) ? name : `${OBJ_DIR}/${name}`;
}
