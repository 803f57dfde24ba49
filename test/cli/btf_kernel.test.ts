/**
 * `structops btf show` and `btf dump id|prog|map` on the session's kernel, as bpftool reads a
 * kernel's BTF objects: vmlinux is id 1 and named, a program's BTF lists the programs and maps
 * using it, a module's split BTF is read over vmlinux, and `btf dump id 1 format c` is the
 * vmlinux.h bpf/'s objects for the simulated kernel are compiled against.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { so } from "./spawn.js";

const obj = (name: string) => join(process.cwd(), "bpf", "obj", name);

test("btf show lists vmlinux in an empty session, as bpftool's first line on any kernel", async () => {
  const st = join(mkdtempSync(join(tmpdir(), "so-btf-")), "s.json");
  const plain = await so(["btf", "show"], st);
  assert.equal(plain.code, 0, plain.err);
  assert.match(plain.out, /^1: name \[vmlinux\] {2}size \d+B\n$/);
  const j = await so(["btf", "show", "-j"], st);
  const rows = JSON.parse(j.out) as Record<string, unknown>[];
  assert.equal(rows.length, 1);
  assert.deepEqual(Object.keys(rows[0]!), ["id", "size", "prog_ids", "map_ids", "kernel", "name"]);
  assert.equal(rows[0]!.kernel, true);
  assert.equal(rows[0]!.name, "vmlinux");
});

test("a registered object's BTF names its programs and maps; dump prog/map read it", async () => {
  const st = join(mkdtempSync(join(tmpdir(), "so-btf-")), "s.json");
  assert.equal((await so(["struct_ops", "register", obj("tcp_reno.bpf.o")], st)).code, 0);
  const rows = JSON.parse((await so(["btf", "show", "-j"], st)).out) as Record<string, unknown>[];
  const own = rows.find((r) => r.kernel === false);
  assert.ok(own);
  assert.equal("name" in own, false, "an unnamed BTF has no name field");
  const progs = JSON.parse((await so(["prog", "show", "-j"], st)).out) as { id: number; btf_id: number }[];
  const maps = JSON.parse((await so(["map", "show", "-j"], st)).out) as { id: number; btf_id?: number }[];
  // bpftool lists the users newest first.
  const want = (xs: { id: number; btf_id?: number }[]) =>
    xs
      .filter((x) => x.btf_id === own.id)
      .map((x) => x.id)
      .sort((a, b) => b - a);
  assert.deepEqual(own.prog_ids, want(progs));
  assert.deepEqual(own.map_ids, want(maps));
  assert.ok((own.prog_ids as number[]).length > 0);
  const plain = (await so(["btf", "show", "id", String(own.id)], st)).out;
  assert.equal(
    plain,
    `${own.id}: name <anon>  size ${own.size}B  prog_ids ${(own.prog_ids as number[]).join(",")}  map_ids ${(own.map_ids as number[]).join(",")}\n`,
  );
  // The program's BTF is the object's: a FUNC for the program dumped through `prog id`.
  const byProg = await so(["btf", "dump", "prog", "id", String(progs[0]!.id)], st);
  assert.equal(byProg.code, 0, byProg.err);
  assert.equal(byProg.out, (await so(["btf", "dump", "id", String(own.id)], st)).out);
  // A struct_ops map has no key or value type of its own: bpftool prints type 0 twice.
  const sm = maps.find((m) => m.btf_id === own.id && (m as { type?: string }).type === "struct_ops");
  assert.ok(sm);
  const kv = await so(["btf", "dump", "map", "id", String(sm.id)], st);
  assert.equal(kv.out, "[0] UNKNOWN '(anon)'\n[0] UNKNOWN '(anon)'\n");
  assert.equal((await so(["btf", "dump", "map", "id", String(sm.id), "value"], st)).out, "[0] UNKNOWN '(anon)'\n");
});

test("btf dump id 1 format c is the simulated vmlinux.h; a module's split BTF reads over it", async () => {
  const st = join(mkdtempSync(join(tmpdir(), "so-btf-")), "s.json");
  const h = await so(["btf", "dump", "id", "1", "format", "c"], st);
  assert.equal(h.code, 0, h.err);
  for (const t of [
    "struct tcp_congestion_ops {",
    "struct Qdisc_ops {",
    "struct sched_ext_ops {",
    "struct bpf_dummy_ops {",
  ])
    assert.ok(h.out.includes(t), t);
  assert.equal((await so(["module", "load", "bpf_testmod"], st)).code, 0);
  const rows = JSON.parse((await so(["btf", "show", "-j"], st)).out) as Record<string, unknown>[];
  const mod = rows.find((r) => r.name === "bpf_testmod");
  assert.ok(mod);
  assert.equal(mod.kernel, true);
  assert.match((await so(["btf", "show", "id", String(mod.id)], st)).out, /^\d+: name \[bpf_testmod\] {2}size \d+B\n$/);
  const c = await so(["btf", "dump", "id", String(mod.id), "format", "c"], st);
  assert.equal(c.code, 0, c.err);
  assert.ok(c.out.includes("struct bpf_testmod_ops {"));
  // Split: the module's raw dump starts after vmlinux's last type id.
  const raw = (await so(["btf", "dump", "id", String(mod.id)], st)).out;
  const firstId = Number(/^\[(\d+)\]/.exec(raw)?.[1]);
  const ids = (await so(["btf", "dump", "id", "1"], st)).out.match(/^\[\d+\]/gm) ?? [];
  const vmlinuxLast = Number(ids[ids.length - 1]?.slice(1, -1));
  assert.equal(firstId, vmlinuxLast + 1);
});

test("bpftool's errors: unknown id, bad spec, C with JSON", async () => {
  const st = join(mkdtempSync(join(tmpdir(), "so-btf-")), "s.json");
  const cases: [string[], string][] = [
    [["btf", "dump", "id", "99"], "Error: get btf by id (99): No such file or directory\n"],
    [["btf", "show", "id", "99"], "Error: can't get BTF object by id (99): No such file or directory\n"],
    [["btf", "show", "foo"], "Error: what is 'foo'?\n"],
    [["btf", "show", "name", "x"], "Error: expected 'id', got: 'name'?\n"],
    [["btf", "dump", "id", "abc"], "Error: can't parse abc as ID\n"],
  ];
  for (const [args, err] of cases) {
    const r = await so(args, st);
    assert.equal(r.code, 255, args.join(" "));
    assert.equal(r.err, err, args.join(" "));
  }
  const j = await so(["btf", "dump", "id", "1", "format", "c", "-j"], st);
  assert.equal(j.code, 255);
  assert.equal(j.out, '{"error":"JSON output for C-syntax dump is not supported"}\n');
});
