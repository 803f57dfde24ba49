// Everything below the CLI runs in a browser: no Node module, no Node global. Checked twice: by
// reading each source file, and by bundling the library for the browser, which fails on anything
// a browser cannot resolve.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, posix, relative } from "node:path";
import { test } from "node:test";
import { build } from "esbuild";
import { basename, joinPath, MemoryPlatform, platform, setPlatform } from "../../src/platform.js";
import { repoRoot } from "../repo_root.js";

// The command and the harness that drives the host's kernel are Node programs on top of the stack.
const NODE_SIDE = ["src/cli/", "src/fidelity/"];

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (name.endsWith(".ts")) out.push(p);
  }
  return out;
}

const NODE_BUILTINS = new Set(["fs", "path", "crypto", "os", "url", "child_process", "worker_threads", "util"]);

test("no source below the CLI imports a Node module or uses Buffer", () => {
  const root = repoRoot();
  const bad: string[] = [];
  let checked = 0;
  for (const file of sources(join(root, "src"))) {
    const rel = relative(root, file);
    if (NODE_SIDE.some((d) => rel.startsWith(d))) continue;
    checked++;
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*)["']([^"']+)["']/g)) {
      const spec = m[1]!;
      if (spec.startsWith("node:") || NODE_BUILTINS.has(spec)) bad.push(`${rel}: ${spec}`);
    }
    for (const line of text.split("\n")) {
      if (/^\s*(\/\/|\*)/.test(line)) continue;
      if (/\bBuffer\.|\bprocess\.(env|argv|exit|stdout|stderr|cwd)\b|\b__dirname\b/.test(line))
        bad.push(`${rel}: ${line.trim()}`);
    }
  }
  assert.ok(checked > 100, `only ${checked} files checked`);
  assert.deepEqual(bad, []);
});

test("the library bundles for the browser", async () => {
  const root = repoRoot();
  const r = await build({
    entryPoints: [join(root, "src/index.ts")],
    bundle: true,
    write: false,
    platform: "browser",
    format: "esm",
    // The PNG rasteriser is native; only writing a .png plot loads it, which a page never does.
    external: ["@resvg/resvg-js"],
    logLevel: "silent",
  });
  assert.equal(r.errors.length, 0);
  assert.ok(r.outputFiles[0]!.text.length > 100_000);
});

test("a platform set by the embedder serves the loader's reads", async () => {
  const { BpfObject } = await import("../../src/loader/object.js");
  const mem = new MemoryPlatform();
  mem.files.set("objs/tcp_cubic.bpf.o", readFileSync(join(repoRoot(), "bpf/obj/tcp_cubic.bpf.o")));
  const prev = setPlatform(mem);
  try {
    const obj = BpfObject.open("objs/tcp_cubic.bpf.o");
    assert.equal(obj.name, "tcp_cubic");
    assert.ok(obj.programs.length > 0);
    assert.throws(
      () => BpfObject.open("objs/none.bpf.o"),
      /elf: failed to open objs\/none\.bpf\.o: ENOENT: no such file or directory, open 'objs\/none\.bpf\.o'/,
    );
    assert.deepEqual(platform().readDir("objs"), ["tcp_cubic.bpf.o"]);
  } finally {
    if (prev) setPlatform(prev);
  }
});

test("basename and joinPath follow POSIX", () => {
  for (const p of ["a/b.bpf.o", "b.bpf.o", "/x/y/", "/", "a//b", "", "dir/.hidden"]) {
    assert.equal(basename(p), posix.basename(p), p);
  }
  assert.equal(joinPath("a", "b"), "a/b");
  assert.equal(joinPath("a/", "b"), "a/b");
  assert.equal(joinPath("", "b"), "b");
});
