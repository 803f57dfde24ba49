import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { BtfBuilder } from "../../src/btf/builder.js";
import { btfDumpRaw, btfDumpRawJson } from "../../src/btf/dump_raw.js";
import { btfDumpCommand, parseDumpArgs, register } from "../../src/cli/btf.js";
import { BpfError } from "../../src/uapi/errno.js";
import { allKindsBuilder, noBpftool, noVmlinux, VMLINUX } from "./helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "btf-cli-"));

function files() {
  const { b } = allKindsBuilder();
  const base = b.toBtf();
  const sb = new BtfBuilder({ base });
  sb.addStructAuto("mod_s", [{ name: "x", type: base.findByName("int") }]);
  const basePath = join(tmp, "base.btf");
  const splitPath = join(tmp, "split.btf");
  writeFileSync(basePath, b.build());
  writeFileSync(splitPath, sb.build());
  return { b, sb, base, basePath, splitPath };
}

/** Run `structops <argv>` through commander, capturing stdout. */
function runCli(argv: string[]): string {
  const program = new Command().exitOverride();
  register(program);
  const chunks: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((s: string) => {
    chunks.push(s);
    return true;
  }) as typeof process.stdout.write;
  try {
    program.parse(argv, { from: "user" });
  } finally {
    process.stdout.write = write;
  }
  return chunks.join("");
}

test("btf dump argument parsing follows bpftool (keyword prefixes, format, base)", () => {
  const file = { kind: "file", file: "x" };
  assert.deepEqual(parseDumpArgs(["file", "x"]), { src: file, format: "raw", base: undefined });
  assert.deepEqual(parseDumpArgs(["f", "x", "form", "c"]), { src: file, format: "c", base: undefined });
  assert.deepEqual(parseDumpArgs(["file", "x", "base", "y"]), { src: file, format: "raw", base: "y" });
  // The kernel's BTF objects: by id, or through a program's or map's (key and value by default).
  assert.deepEqual(parseDumpArgs(["id", "1"]).src, { kind: "id", id: 1 });
  assert.deepEqual(parseDumpArgs(["prog", "id", "7"]).src, { kind: "prog", id: 7 });
  assert.deepEqual(parseDumpArgs(["map", "id", "3"]).src, { kind: "map", id: 3, roots: "kv" });
  assert.deepEqual(parseDumpArgs(["map", "id", "3", "val", "format", "c"]), {
    src: { kind: "map", id: 3, roots: "value" },
    format: "c",
    base: undefined,
  });
  assert.throws(() => parseDumpArgs(["bogus", "1"]), /unrecognized BTF source specifier: 'bogus'/);
  assert.throws(
    () => parseDumpArgs(["prog", "bogus", "1"]),
    /expected 'id', 'tag', 'name' or 'pinned', got: 'bogus'\?/,
  );
  assert.throws(() => parseDumpArgs(["map", "name", "m"]), /btf dump map name is not supported: name the map by id/);
  assert.throws(() => parseDumpArgs(["file", "x", "format", "xml"]), /possible values: raw, c/);
  assert.throws(() => parseDumpArgs(["file", "x", "bogus", "1"]), /unrecognized option: 'bogus'/);
});

test("structops btf dump file PATH: raw, -j, format c, base", () => {
  const { base, basePath, splitPath, sb } = files();
  assert.equal(runCli(["btf", "dump", "file", basePath]), btfDumpRaw(base));
  assert.equal(runCli(["btf", "-j", "dump", "file", basePath]), btfDumpRawJson(base));
  assert.equal(runCli(["btf", "dump", "file", basePath, "-j"]), btfDumpRawJson(base));
  assert.match(runCli(["btf", "dump", "file", basePath, "format", "c"]), /^struct tcp_congestion_ops \{$/m);
  const split = runCli(["btf", "dump", "file", splitPath, "base", basePath]);
  assert.equal(split, `[${sb.nrTypes}] STRUCT 'mod_s' size=4 vlen=1\n\t'x' type_id=1 bits_offset=0\n`);
  assert.equal(runCli(["btf", "-B", basePath, "dump", "file", splitPath]), split);
});

test("structops btf dump file /sys/kernel/btf/vmlinux is bpftool's output line for line", {
  skip: noVmlinux || noBpftool,
}, () => {
  const ours = runCli(["btf", "dump", "file", VMLINUX]).split("\n");
  const theirs = execFileSync("bpftool", ["btf", "dump", "file", VMLINUX], {
    maxBuffer: 1 << 30,
    encoding: "utf8",
  }).split("\n");
  assert.equal(ours.length, theirs.length);
  for (let i = 0; i < ours.length; i++) if (ours[i] !== theirs[i]) assert.equal(ours[i], theirs[i], `line ${i + 1}`);
});

/** The repository root, from test/btf (tsx) or dist/test/btf (compiled). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4 && !existsSync(join(dir, "bpf", "obj")); i++) dir = dirname(dir);
  return dir;
}

test("dumps of our BPF objects' .BTF (ELF, both byte orders) equal bpftool's, raw and C", { skip: noBpftool }, () => {
  const root = repoRoot();
  const objs = readdirSync(join(root, "bpf", "obj"))
    .filter((f) => f.endsWith(".o"))
    .map((f) => join(root, "bpf", "obj", f));
  const be = join(root, "test", "fixtures", "elf", "dummy_ops.bpfeb.o");
  if (existsSync(be)) objs.push(be);
  assert.ok(objs.length > 0);
  for (const o of objs) {
    const tool = (...a: string[]) => execFileSync("bpftool", ["btf", "dump", "file", o, ...a], { encoding: "utf8" });
    assert.equal(btfDumpCommand(["file", o], {}), tool(), o);
    assert.equal(btfDumpCommand(["file", o, "format", "c"], {}), tool("format", "c"), o);
  }
});

test("btf dump errors are BpfErrors naming the file", () => {
  const bad = join(tmp, "bad.btf");
  writeFileSync(bad, new Uint8Array([0x9f, 0xeb, 1, 0, 24, 0, 0, 0]));
  assert.throws(
    () => btfDumpCommand(["file", bad], {}),
    (e: unknown) => e instanceof BpfError && e.message.startsWith(`failed to load BTF from ${bad}`),
  );
  const { basePath } = files();
  assert.throws(() => btfDumpCommand(["file", basePath, "format", "c"], { json: true }), /not supported/);
});
