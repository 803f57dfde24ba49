/**
 * The I/O seam: everything below the CLI reads and writes files only through `platform()`, so the
 * same code runs under Node and in a browser. Under Node the host's file system is the default;
 * a browser (or a test) installs its own with `setPlatform`, e.g. an in-memory one holding the
 * objects a page bundles or a user drops.
 */

export interface Platform {
  /** The whole file; throws an Error whose message says why (Node's fs message under Node). */
  readFile(path: string): Uint8Array;
  writeFile(path: string, data: Uint8Array | string): void;
  /** The names in a directory (not paths), in no particular order. */
  readDir(path: string): string[];
}

let current: Platform | undefined;

/** Install a platform; returns the one it replaces (so a caller can put it back). */
export function setPlatform(p: Platform): Platform | undefined {
  const prev = current;
  current = p;
  return prev;
}

export function platform(): Platform {
  current ??= hostPlatform();
  return current;
}

/** POSIX basename: the last component, trailing slashes ignored. */
export function basename(path: string): string {
  let end = path.length;
  while (end > 1 && path[end - 1] === "/") end--;
  const p = path.slice(0, end);
  return p === "/" ? "" : p.slice(p.lastIndexOf("/") + 1);
}

/** `dir/name` (the only joining the core does). */
export function joinPath(dir: string, name: string): string {
  return dir === "" ? name : dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/** A file system held in memory, keyed by path exactly as given. */
export class MemoryPlatform implements Platform {
  readonly files = new Map<string, Uint8Array>();

  readFile(path: string): Uint8Array {
    const f = this.files.get(path);
    if (!f) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
    return f;
  }

  writeFile(path: string, data: Uint8Array | string): void {
    this.files.set(path, typeof data === "string" ? new TextEncoder().encode(data) : data);
  }

  readDir(path: string): string[] {
    const pre = path.endsWith("/") ? path : `${path}/`;
    const out = new Set<string>();
    for (const f of this.files.keys()) {
      if (f.startsWith(pre)) out.add(f.slice(pre.length).split("/")[0]!);
    }
    if (out.size === 0) throw new Error(`ENOENT: no such file or directory, scandir '${path}'`);
    return [...out];
  }
}

interface HostFs {
  readFileSync(path: string): Uint8Array;
  writeFileSync(path: string, data: Uint8Array | string): void;
  readdirSync(path: string): string[];
}

/**
 * The runtime's own file system where it offers one without an import (Node's
 * process.getBuiltinModule), so library users and tests under Node need no set-up; elsewhere a
 * platform whose every operation fails until one is set.
 */
function hostPlatform(): Platform {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const fs = proc?.getBuiltinModule?.("fs") as HostFs | undefined;
  if (!fs) {
    const none = (path: string): never => {
      throw new Error(`no file system here (setPlatform installs one): '${path}'`);
    };
    return { readFile: none, writeFile: none, readDir: none };
  }
  return {
    readFile: (path) => new Uint8Array(fs.readFileSync(path)),
    writeFile: (path, data) => fs.writeFileSync(path, data),
    readDir: (path) => fs.readdirSync(path),
  };
}
