/**
 * bpftool's option parsing for bpftool's verbs: GNU getopt_long's permutation (an option anywhere
 * before `--`, a word starting with `-` is an option), abbreviated long options, and bpftool's
 * `unrecognized option '...'` line naming argv[optind - 1]. Where bpftool is installed, the same
 * refused command lines go to it (it refuses before touching the kernel) and the lines must match.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { main } from "../../src/cli/cli.js";
import { bpftoolGetopt } from "../../src/cli/getopt.js";
import { io } from "../../src/cli/session.js";

const BPFTOOL = ["/usr/sbin/bpftool", "/usr/bin/bpftool"].find((p) => existsSync(p));

async function run(state: string, ...args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = "";
  let err = "";
  const saved = { ...io };
  io.out = (s) => void (out += s);
  io.err = (s) => void (err += s);
  let code: number;
  try {
    code = await main(["node", "structops", "--state", state, ...args]);
  } finally {
    Object.assign(io, saved);
    process.exitCode = 0;
  }
  return { out, err, code };
}

test("getopt permutes: options anywhere before --, operands keep their order", () => {
  const ok = (args: string[]) => {
    const r = bpftoolGetopt(args);
    assert.ok(r.ok, JSON.stringify(r));
    return r;
  };
  assert.deepEqual(ok(["map", "show", "-jp", "id", "3"]).args, ["map", "show", "id", "3", "--json", "--pretty"]);
  assert.deepEqual(ok(["-d", "map", "-m", "show"]).args, ["map", "show"]);
  // After `--` every word is an operand; commander gets its own `--` before the first `-` word.
  assert.deepEqual(ok(["map", "update", "id", "1", "value", "--", "-1", "-j"]).args, [
    "map",
    "update",
    "id",
    "1",
    "value",
    "--",
    "-1",
    "-j",
  ]);
  assert.deepEqual(ok(["--", "map", "show", "-j"]).args, ["map", "show", "--", "-j"]);
  // Unambiguous prefixes, `=` values, values in the next word or the rest of a cluster.
  assert.deepEqual(ok(["btf", "dump", "--ba=x", "--js", "-Bvm", "--sta", "s"]).args, [
    "btf",
    "dump",
    "--base-btf",
    "x",
    "--json",
    "--base-btf",
    "vm",
    "--state",
    "s",
  ]);
  const p = ok(["-p", "prog", "show"]);
  assert.equal(p.json && p.pretty, true);
});

test("getopt refuses as bpftool words it", () => {
  const bad = (args: string[]) => {
    const r = bpftoolGetopt(args);
    assert.ok(!r.ok, JSON.stringify(r));
    return r.error;
  };
  assert.equal(bad(["map", "update", "id", "1", "value", "-1", "0"]), "unrecognized option '-1'");
  assert.equal(bad(["map", "show", "--b", "x"]), "unrecognized option '--b'"); // bpffs or base-btf
  assert.equal(bad(["map", "show", "--json=1"]), "unrecognized option '--json=1'");
  assert.equal(bad(["btf", "dump", "-B"]), "unrecognized option '-B'");
  assert.equal(bad(["map", "show", "-jx"]), "unrecognized option '-jx'");
  // A bad letter before the end of its cluster: optind has not moved, the word before is named.
  assert.equal(bad(["map", "show", "-xj"]), "unrecognized option 'show'");
});

test("a byte -1 after --, and the refusal without it, through the command", async () => {
  const st = join(mkdtempSync(join(tmpdir(), "structops-getopt-")), "session.json");
  assert.equal((await run(st, "struct_ops", "register", "bpf/obj/tcp_ca_count.bpf.o")).code, 0);
  const key = ["key", ...Array(16).fill("1")];
  const value = ["-1", ...Array(7).fill("0")];
  assert.deepEqual(await run(st, "map", "update", "name", "so_count_calls", ...key, "value", ...value), {
    out: "",
    err: "Error: unrecognized option '-1'\n",
    code: 255,
  });
  assert.deepEqual(await run(st, "-j", "map", "update", "name", "so_count_calls", ...key, "value", ...value), {
    out: '{"error":"unrecognized option \'-1\'"}\n',
    err: "",
    code: 255,
  });
  const upd = await run(st, "map", "update", "name", "so_count_calls", ...key, "value", "--", ...value);
  assert.deepEqual(upd, { out: "", err: "", code: 0 });
  const j = JSON.parse((await run(st, "map", "lookup", "name", "so_count_calls", ...key, "-j")).out);
  assert.deepEqual(j.value, ["0xff", ...Array(7).fill("0x00")]);
  // Options after the verb's words, and bpftool's flags that change nothing here, are taken.
  const show = await run(st, "map", "show", "name", "so_count_calls", "-d", "-f", "--js");
  assert.equal(JSON.parse(show.out).name, "so_count_calls");
});

test("refused command lines: the same line and status as the host's bpftool", {
  skip: !BPFTOOL && "bpftool is not installed",
}, async () => {
  const st = join(mkdtempSync(join(tmpdir(), "structops-getopt-")), "session.json");
  const cases = [
    ["map", "update", "id", "1", "key", "1", "value", "-1"],
    ["map", "-x", "show"],
    ["prog", "show", "--foo"],
    ["-j", "map", "show", "--foo"],
    ["-p", "link", "show", "-q"],
    ["map", "show", "-jx"],
    ["map", "show", "--json=1"],
    ["btf", "dump", "file", "x", "--b", "y"],
    ["struct_ops", "show", "-1"],
  ];
  for (const c of cases) {
    const h = spawnSync(BPFTOOL!, c, { encoding: "utf8" });
    const o = await run(st, ...c);
    // bpftool adds its usage text under a plain error; the error line is the first.
    assert.equal(o.err, h.stderr ? `${h.stderr.split("\n")[0]}\n` : "", c.join(" "));
    assert.equal(o.out, h.stdout, c.join(" "));
    assert.equal(o.code, 255, c.join(" "));
    assert.equal(h.status, 255, c.join(" "));
  }
});
