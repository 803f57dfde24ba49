/**
 * `structops map dump MAP` as bpftool 7.1 prints it: maps with BTF (global data, ARRAY/HASH with
 * key and value types, per-CPU values one per CPU) through the BTF printer, in plain text, -j and
 * -p; maps without BTF as hex rows. Where the host can register bpf/obj/cli_maps.bpf.o, the same
 * updates go to its maps there and every dump and lookup must be byte for byte the host's.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { after, test } from "node:test";
import { freshState, run } from "./in_process.js";

const OBJ = "bpf/obj/cli_maps.bpf.o";
const BPFTOOL = ["/usr/sbin/bpftool", "/usr/bin/bpftool"].find((p) => existsSync(p));

const fresh = () => freshState("mapdump");

/** Updates that give every map of cli_maps.bpf.o entries worth printing: name, then bpftool's words. */
const UPDATES: string[][] = [
  [
    "so_arr",
    "key",
    "1",
    "0",
    "0",
    "0",
    "value",
    ...["0x10", "0x32", "0x54", "0x76", "0x98", "0xba", "0xdc", "0xfe"],
    ...["0xfb", "0xff", "0xff", "0xff", "0x61", "0x62", "0x63"],
    ...Array(9).fill("0"),
  ],
  [
    "so_hash",
    "key",
    ...Array.from({ length: 12 }, (_, i) => String(i + 1)),
    "0x41",
    "0x42",
    ...Array(10).fill("0"),
    "value",
    ...Array(8).fill("255"),
  ],
  [
    "so_pcpu_arr",
    "key",
    "1",
    "0",
    "0",
    "0",
    "value",
    "1",
    ...Array(7).fill("0"),
    "0xfe",
    "0xff",
    "0xff",
    "0xff",
    "0x78",
    ...Array(11).fill("0"),
  ],
  ["so_pcpu_hash", "key", "7", "0", "0", "0", "value", "3", "0", "0", "0"],
  ["so_raw", "key", "7", "0", "0", "0", "value", ...Array.from({ length: 20 }, (_, i) => String(i + 1))],
];
const MAPS = [
  "so_arr",
  "so_hash",
  "so_pcpu_arr",
  "so_pcpu_hash",
  "so_raw",
  "cli_maps.bss",
  "cli_maps.data",
  "cli_maps.rodata",
];

async function session(): Promise<{ st: string; ids: Map<string, number> }> {
  const st = fresh();
  assert.equal((await run(st, "struct_ops", "register", OBJ)).code, 0);
  for (const [name, ...rest] of UPDATES) {
    const r = await run(st, "map", "update", "name", name!, ...rest);
    assert.deepEqual(r, { out: "", err: "", code: 0 }, name);
  }
  const maps = JSON.parse((await run(st, "map", "show", "-j")).out) as { id: number; name: string }[];
  return { st, ids: new Map(maps.map((m) => [m.name, m.id])) };
}

test("map dump: u64 past 2^53 exact in -j, per-CPU values per CPU, hex rows without BTF", async () => {
  const { st, ids } = await session();
  const data = JSON.parse((await run(st, "-j", "map", "dump", "name", "cli_maps.data")).out);
  // JSON.parse rounds: compare the text.
  const text = (await run(st, "-j", "map", "dump", "id", String(ids.get("cli_maps.data")))).out;
  assert.match(text, /"so_big":18364758544493064720\}/);
  assert.equal(data[0].formatted.value[".data"][1].so_pair.tag, "pair");
  assert.match((await run(st, "map", "dump", "name", "cli_maps.data")).out, /\n {20}"so_big": 18364758544493064720\n/);
  const pcpu = JSON.parse((await run(st, "-j", "map", "dump", "name", "so_pcpu_arr")).out);
  const slot1 = pcpu.find((e: { formatted: { key: number } }) => e.formatted.key === 1);
  assert.deepEqual(
    slot1.formatted.values.map((v: { cpu: number; value: { big: number; neg: number } }) => [
      v.cpu,
      v.value.big,
      v.value.neg,
    ]),
    [
      [0, 1, -2],
      [1, 1, -2],
    ],
  );
  const raw = await run(st, "map", "dump", "name", "so_raw");
  assert.equal(
    raw.out,
    "key:\n07 00 00 00\nvalue:\n01 02 03 04 05 06 07 08  09 0a 0b 0c 0d 0e 0f 10\n11 12 13 14\nFound 1 element\n",
  );
  // bpftool's MAP forms: a name no map has fails without a word, a count other than two is usage.
  assert.deepEqual(await run(st, "map", "dump", "name", "so_none"), { out: "", err: "", code: 255 });
  assert.equal((await run(st, "map", "dump", "id", "1", "x")).code, 255);
  assert.equal(
    (await run(st, "map", "dump", "pinned", "/sys/fs/bpf/none")).err,
    "Error: bpf obj get (/sys/fs/bpf/none): No such file or directory\n",
  );
});

test("map dump name: several maps of one name, each under its header", async () => {
  const st = fresh();
  assert.equal((await run(st, "struct_ops", "register", "bpf/obj/tcp_reno.bpf.o")).code, 0);
  assert.equal((await run(st, "struct_ops", "register", "bpf/obj/tcp_reno_link.bpf.o", "/sys/fs/bpf/reno")).code, 0);
  const j = JSON.parse((await run(st, "-j", "map", "dump", "name", "so_reno")).out);
  assert.equal(j.length, 2);
  for (const m of j) {
    assert.deepEqual(Object.keys(m), ["id", "type", "name", "flags", "elements"]);
    assert.equal(m.type, "struct_ops");
    assert.equal(m.elements.length, 1);
  }
  const plain = (await run(st, "map", "dump", "name", "so_reno")).out;
  assert.match(
    plain,
    /^\[\{\n {8}"id": \d+,\n {8}"type": "struct_ops",\n {8}"name": "so_reno",\n {8}"flags": 0,\n {8}"elements": \[\{\n {16}"value": \{/,
  );
});

// The host: the same object registered there, the same updates, every dump compared.
const hostSkip = ((): string | false => {
  if (!BPFTOOL) return "bpftool is not installed";
  if (process.getuid?.() !== 0) return "needs root for bpf()";
  return false;
})();
let hostName: string | null = null;
after(() => {
  if (hostName) spawnSync(BPFTOOL!, ["struct_ops", "unregister", "name", hostName]);
});

test("map dump and lookup of every cli_maps map as the host's bpftool prints them", { skip: hostSkip }, async (t) => {
  const reg = spawnSync(BPFTOOL!, ["struct_ops", "register", OBJ], { encoding: "utf8" });
  if (reg.status !== 0 || !/Registered tcp_congestion_ops so_cli id \d+/.test(reg.stderr)) {
    // Another run holds the algorithm name, or the host refuses the object.
    t.skip(`the host refused the registration: ${reg.stderr.trim()}`);
    return;
  }
  hostName = "so_cli";
  const hostMaps = JSON.parse(spawnSync(BPFTOOL!, ["-j", "map", "show"], { encoding: "utf8" }).stdout) as {
    id: number;
    name: string;
  }[];
  // The newest map of each name: ours were just created.
  const hostId = (name: string) => String(Math.max(...hostMaps.filter((m) => m.name === name).map((m) => m.id)));
  const host = (...a: string[]) => spawnSync(BPFTOOL!, a, { encoding: "utf8" });
  for (const [name, ...rest] of UPDATES)
    assert.equal(host("map", "update", "id", hostId(name!), ...rest).status, 0, name);
  const { st, ids } = await session();
  for (const name of MAPS) {
    for (const view of [[], ["-j"], ["-p"]]) {
      for (const verb of [["dump"], ["lookup", "key", "1", "0", "0", "0"]]) {
        const h = host(...view, "map", verb[0]!, "id", hostId(name), ...verb.slice(1));
        const o = await run(st, ...view, "map", verb[0]!, "id", String(ids.get(name)), ...verb.slice(1));
        const what = `${view.join(" ")} map ${verb.join(" ")} of ${name}`;
        assert.equal(o.out, h.stdout, what);
        assert.equal(o.err, h.stderr, what);
      }
    }
  }
});
