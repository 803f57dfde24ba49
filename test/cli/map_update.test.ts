/**
 * `structops map update|lookup|delete|getnext`: bpftool's grammar and messages, the entries
 * printed as bpftool prints them, updates and deletes recorded in the session and replayed. Where
 * the host's bpftool can run, the same argument lists go to a map of the same shape created there
 * (`bpftool map create`, no BTF): every error line, the hex output and the JSON must be the same;
 * bpftool's exit status -errno becomes the CLI's 255 (1 for a lookup that finds nothing).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { after, test } from "node:test";
import { freshState, run } from "./in_process.js";

const COUNT = "bpf/obj/tcp_ca_count.bpf.o";
const TAILCALL = "bpf/obj/sim/testmod_tailcall.bpf.o";
const BPFTOOL = ["/usr/sbin/bpftool", "/usr/bin/bpftool"].find((p) => existsSync(p));

const fresh = () => freshState("mapupd");

/** A session with tcp_ca_count registered: its hash map so_count_calls (key 16 B, value 8 B). */
async function countSession(): Promise<{ st: string; id: string }> {
  const st = fresh();
  assert.equal((await run(st, "struct_ops", "register", COUNT)).code, 0);
  const maps = JSON.parse((await run(st, "map", "show", "-j")).out) as { id: number; name: string }[];
  const m = maps.find((x) => x.name === "so_count_calls");
  assert.ok(m, JSON.stringify(maps));
  return { st, id: String(m.id) };
}

const KEY = ["key", ...Array.from({ length: 16 }, (_, i) => String(i + 1))];

test("update, lookup, getnext, delete on a hash map; each change outlives the command", async () => {
  const { st, id } = await countSession();
  const upd = await run(st, "map", "update", "id", id, ...KEY, "value", "hex", "ff", "1", "0", "0", "0", "0", "0", "0");
  assert.deepEqual(upd, { out: "", err: "", code: 0 });
  // A new invocation replays the update.
  const look = await run(st, "map", "lookup", "id", id, ...KEY);
  assert.equal(look.code, 0);
  // The map has BTF: bpftool prints the key and the value through it.
  assert.match(look.out, /^\{\n {4}"key": \{\n {8}"sk": 578437695752307201,\n {8}"op": 202050057,/);
  assert.match(look.out, /\n {4}"value": 511\n\}\n$/);
  const j = JSON.parse((await run(st, "map", "lookup", "id", id, ...KEY, "-j")).out);
  assert.deepEqual(j.value, ["0xff", "0x01", "0x00", "0x00", "0x00", "0x00", "0x00", "0x00"]);
  assert.equal(j.formatted.value, 511);
  // getnext without a key: the first key.
  const first = await run(st, "map", "getnext", "id", id);
  assert.equal(first.out, "key: None\nnext key:\n01 02 03 04 05 06 07 08  09 0a 0b 0c 0d 0e 0f 10\n");
  // noexist on a key that is there: the kernel's EEXIST in bpftool's words.
  const dup = await run(st, "map", "update", "id", id, ...KEY, "value", ...Array(8).fill("0"), "noexist");
  assert.deepEqual(dup, { out: "", err: "Error: update failed: File exists\n", code: 255 });
  assert.deepEqual(await run(st, "map", "delete", "id", id, ...KEY, "-j"), { out: "null\n", err: "", code: 0 });
  const gone = await run(st, "map", "lookup", "id", id, ...KEY);
  assert.equal(gone.code, 1);
  assert.equal(gone.out, "key:\n01 02 03 04 05 06 07 08  09 0a 0b 0c 0d 0e 0f 10\n\nNot found\n");
  // By name: the same map.
  assert.equal(
    (await run(st, "map", "update", "name", "so_count_calls", ...KEY, "value", ...Array(8).fill("7"))).code,
    0,
  );
  const byName = JSON.parse((await run(st, "map", "lookup", "name", "so_count_calls", ...KEY, "-j")).out);
  assert.deepEqual(byName.value, Array(8).fill("0x07"));
  // A name no map has: bpftool fails without a word.
  assert.deepEqual(await run(st, "map", "lookup", "name", "nosuch", ...KEY), { out: "", err: "", code: 255 });
});

test("a program array slot by program id, with bpftool's warning; the slot goes with the last user reference", {
  skip: existsSync(TAILCALL) ? false : `${TAILCALL} is missing (run bpf/build.sh)`,
}, async () => {
  const st = fresh();
  assert.equal((await run(st, "module", "load", "bpf_testmod")).code, 0);
  // Its first bpf_testmod_st_ops registers (the second one cannot while it is), its link pinned.
  await run(st, "struct_ops", "register", TAILCALL, "/sys/fs/bpf/tc");
  const maps = JSON.parse((await run(st, "map", "show", "-j")).out) as { id: number; type: string }[];
  const pa = maps.find((m) => m.type === "prog_array");
  assert.ok(pa);
  const progs = JSON.parse((await run(st, "prog", "show", "-j")).out) as { id: number; type: string }[];
  const prog = progs.find((p) => p.type === "struct_ops")!;
  const key = ["key", "0", "0", "0", "0"];
  const r = await run(st, "map", "update", "id", String(pa.id), ...key, "value", "id", String(prog.id));
  assert.equal(r.code, 0, r.err);
  assert.equal(
    r.err,
    "Warning: updating program array via MAP_ID, make sure this map is kept open\n         by some process or pinned otherwise update will be lost\n",
  );
  // Nothing else holds the array open: its slots were cleared when the command closed it.
  assert.equal((await run(st, "map", "lookup", "id", String(pa.id), ...key)).code, 1);
  const bad = await run(st, "map", "update", "id", String(pa.id), ...key, "value", "1", "2", "3", "4");
  assert.deepEqual(bad, { out: "", err: "Error: expected 'id', 'tag', 'name' or 'pinned', got: '1'?\n", code: 255 });
  const few = await run(st, "map", "update", "id", String(pa.id), ...key, "value", "id");
  assert.equal(few.err, "Error: not enough value arguments for map of progs\n");
  const none = await run(st, "map", "update", "id", String(pa.id), ...key, "value", "id", "99999");
  assert.ok(none.err.endsWith("\nError: get by id (99999): No such file or directory\n"), none.err);
});

// The same argument lists on the host's bpftool, against a hash map of the same shape.
const hostDir = BPFTOOL && process.getuid?.() === 0 ? "/sys/fs/bpf" : null;
const hostMap = hostDir ? `${hostDir}/structops_mapupd_${process.pid}` : "";
function hostSkip(): string | false {
  if (!BPFTOOL) return "bpftool is not installed";
  if (!hostDir) return "needs root for bpf()";
  const r = spawnSync(
    BPFTOOL,
    ["map", "create", hostMap, "type", "hash", "key", "16", "value", "8", "entries", "1024", "name", "so_count_calls"],
    { encoding: "utf8" },
  );
  if (r.status !== 0) return `bpftool map create fails here: ${r.stderr.trim()}`;
  return false;
}
const hostSkipReason = hostSkip();
after(() => {
  if (hostMap) rmSync(hostMap, { force: true });
});

test("error lines, hex output and JSON as the host's bpftool gives them", { skip: hostSkipReason }, async () => {
  const { st, id } = await countSession();
  const V = ["value", ...Array(8).fill("1")];
  const cases: string[][] = [
    ["update", ...KEY, ...V],
    ["-j", "lookup", ...KEY],
    ["getnext", ...KEY],
    ["-j", "getnext", ...KEY],
    ["getnext"],
    ["update", ...KEY, ...V, "noexist"],
    ["update", ...KEY, ...V, "exist", "any"],
    ["update", ...KEY, ...V, "bogus"],
    ["update", ...KEY],
    ["update", ...V],
    ["update", ...KEY, "value", "1", "2"],
    ["update", ...KEY.slice(0, 5), ...V],
    ["update", ...KEY, "value", "hex", "zz", "1", "2", "3", "4", "5", "6", "7"],
    ["update", ...KEY, "value", "0x1ff", "010", "0377", "", "+5", " 6", "7", "8"],
    ["-j", "lookup", ...KEY],
    ["lookup", ...KEY, ...V],
    ["delete", ...KEY],
    ["delete", ...KEY],
    ["-j", "delete", ...KEY],
    ["lookup", ...KEY],
    ["-j", "lookup", ...KEY],
    ["-j", "update", ...KEY, "value", "1"],
    ["getnext"],
    ["update", "k", ...KEY.slice(1), "val", ...V.slice(1), "noex"],
  ];
  for (const c of cases) {
    const j = c[0] === "-j" ? ["-j"] : [];
    const [verb, ...rest] = j.length ? c.slice(1) : c;
    const h = spawnSync(BPFTOOL!, [...j, "map", verb!, "pinned", hostMap, ...rest], { encoding: "utf8" });
    const o = await run(st, ...j, "map", verb!, "id", id, ...rest);
    const what = c.join(" ");
    // bpftool's JSON leaves `formatted` out for a map without BTF; ours has BTF.
    const strip = (s: string) => s.replace(/,"formatted":\{.*\}\}$/m, "}");
    assert.equal(strip(o.out), h.stdout, `stdout of ${what}`);
    assert.equal(o.err, h.stderr, `stderr of ${what}`);
    const status = h.status === 0 ? 0 : verb === "lookup" && h.status === 254 && !h.stderr ? 1 : 255;
    assert.equal(o.code, status, `status of ${what} (bpftool ${h.status})`);
  }
});
