import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Command } from "commander";
import { register, verifyObjectFile, verifyVectorFile } from "../../src/cli/prog_verify.js";
import { CONFORMANCE, FIXTURES, repoRoot } from "./helpers.js";

async function cli(args: string[]): Promise<{ out: string; code: number }> {
  const program = new Command();
  program.exitOverride();
  register(program);
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const log = console.log;
  process.stdout.write = ((s: string) => chunks.push(String(s)) > 0) as typeof process.stdout.write;
  console.log = (...a: unknown[]) => void chunks.push(`${a.join(" ")}\n`);
  const saved = process.exitCode;
  process.exitCode = 0;
  try {
    await program.parseAsync(["node", "structops", ...args]);
  } finally {
    process.stdout.write = write;
    console.log = log;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = saved;
  return { out: chunks.join(""), code };
}

test("prog verify prints the log and exits 1 on a rejected vector", async () => {
  const r = await cli(["prog", "verify", join(FIXTURES, "map_value_oob.data")]);
  assert.equal(r.code, 1);
  assert.match(r.out, /^7: \(79\) r0 = \*\(u64 \*\)\(r0 \+8\)$/m);
  assert.match(r.out, /^invalid access to map value, value_size=8 off=8 size=8$/m);
  assert.match(r.out, /verification failed: .* \(EACCES\) at insn 7/);
});

test("prog verify exits 0 on an accepted conformance vector, log level 2", {
  skip: existsSync(CONFORMANCE) ? false : "no conformance vectors",
}, async () => {
  const r = await cli(["prog", "verify", join(CONFORMANCE, "prime.data"), "--log-level", "2"]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /verification succeeded/);
  assert.match(r.out, /^processed \d+ insns/m);
});

test("prog verify -j gives the verdict as JSON", async () => {
  const r = await cli(["prog", "verify", "-j", join(FIXTURES, "uninit_reg.data")]);
  const v = JSON.parse(r.out);
  assert.equal(v[0].accepted, false);
  assert.equal(v[0].error, "R3 !read_ok");
  assert.equal(v[0].insn, 0);
  assert.equal(v[0].errno, "EACCES");
});

test("vector verdicts carry the error's instruction", () => {
  const [v] = verifyVectorFile(join(FIXTURES, "unreachable.data"), 1);
  assert.equal(v.accepted, false);
  assert.equal(v.insn, 2);
});

test("an object file: every program of dummy_ops verifies in the simulated kernel", async () => {
  const path = join(repoRoot(), "bpf/obj/dummy_ops.bpf.o");
  if (!existsSync(path)) return;
  const verdicts = await verifyObjectFile(path, 1);
  assert.ok(verdicts.length >= 1);
  for (const v of verdicts) assert.equal(v.accepted, true, `${v.prog}: ${v.error}\n${v.log}`);
});

test("prog verify: programs an object does not load by default are verified one at a time", async () => {
  // graph_bad.bpf.o holds only `?tc`/`?socket`/`?kprobe` programs, each breaking one rule.
  const vs = await verifyObjectFile("bpf/obj/graph_bad.bpf.o", 0);
  assert.ok(vs.length >= 10, `${vs.length} verdicts`);
  assert.ok(vs.every((v) => !v.accepted));
  const leak = vs.find((v) => v.prog === "leak_obj_new");
  assert.match(leak?.error ?? "", /reference leak/);
  // An optional struct_ops program no map uses fails as libbpf fails it; the others are unchanged.
  const feat = await verifyObjectFile("bpf/obj/features.bpf.o", 0);
  assert.equal(feat.filter((v) => v.prog === "feat_ssthresh").length, 1);
  assert.match(feat.find((v) => v.prog === "feat_spare")?.error ?? "", /isn't referenced anywhere/);
});
