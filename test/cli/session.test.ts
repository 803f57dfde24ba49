import assert from "node:assert/strict";
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { statePath } from "../../src/cli/session.js";
import { freshState, run } from "./in_process.js";

// Tests run from the repository root.
const RENO = "bpf/obj/tcp_reno.bpf.o";
const RENO_LINK = "bpf/obj/tcp_reno_link.bpf.o";
const CUBIC_LINK = "bpf/obj/tcp_cubic_link.bpf.o";

const fresh = () => freshState("session");
const json = async (state: string, ...args: string[]) => JSON.parse((await run(state, ...args, "-j")).out);

test("register in one process, show in the next: same maps, same ids", async () => {
  const st = fresh();
  const r = await run(st, "struct_ops", "register", RENO);
  assert.match(r.err, /^Registered tcp_congestion_ops so_reno id 1\n$/);
  assert.ok(existsSync(st), "the state file is written");
  const shown = await run(st, "struct_ops", "show");
  // bpftool's "%u: %-15s %-32s\n", trailing padding included.
  assert.equal(shown.out, `1: ${"so_reno".padEnd(15)} ${"tcp_congestion_ops".padEnd(32)}\n`);
  await run(st, "struct_ops", "register", CUBIC_LINK, "/sys/fs/bpf/cc");
  const a = { progs: await json(st, "prog", "show"), maps: await json(st, "map", "show") };
  const b = { progs: await json(st, "prog", "show"), maps: await json(st, "map", "show") };
  assert.deepEqual(a, b, "replay hands out the same ids every boot");
  assert.ok(a.progs.length > 3 && a.maps.some((m: { name: string }) => m.name === "so_cubic"));
});

test("register output names map and link ids for link-based struct_ops; unpinned links go at exit", async () => {
  const st = fresh();
  const r = await run(st, "struct_ops", "register", RENO_LINK);
  assert.match(r.err, /^Registered tcp_congestion_ops so_reno map id \d+ link id 1\n$/);
  // No LINK_DIR: the link dies with the registering process, as with bpftool.
  assert.deepEqual(await json(st, "link", "show"), []);
  assert.deepEqual(await json(st, "struct_ops", "show"), []);
  // ...and after the grace periods the map's programs and the object's data maps went with it.
  assert.deepEqual(await json(st, "prog", "show"), []);
  assert.deepEqual(await json(st, "map", "show"), []);
});

test("register reports a map that fails and registers the others, exiting 255, as bpftool does", async () => {
  const st = fresh();
  // two_nouse lacks ssthresh and undo_cwnd: tcp_validate_congestion_control refuses it (EINVAL).
  const r = await run(st, "struct_ops", "register", "test/fixtures/elf/st_ops_two_ca.bpf.o");
  assert.equal(r.code, 255);
  assert.equal(
    r.err,
    "Registered tcp_congestion_ops two_ok id 1\nError: can't register struct_ops two_nouse: Invalid argument\n",
  );
  const shown = await json(st, "struct_ops", "show");
  assert.deepEqual(
    shown.map((m: { name: string }) => m.name),
    ["two_ok"],
  );
  // The failed map holds nothing: unregistering the one that registered leaves an empty kernel.
  await run(st, "struct_ops", "unregister", "name", "two_ok");
  assert.deepEqual(await json(st, "struct_ops", "show"), []);
  assert.deepEqual(await json(st, "prog", "show"), []);
});

test("unregister persists across invocations", async () => {
  const st = fresh();
  await run(st, "struct_ops", "register", RENO);
  await run(st, "struct_ops", "register", CUBIC_LINK, "/sys/fs/bpf/cc");
  const before = await json(st, "struct_ops", "show");
  assert.deepEqual(
    before.map((m: { name: string }) => m.name),
    ["so_reno", "so_cubic"],
  );
  const u = await run(st, "struct_ops", "unregister", "name", "so_reno");
  assert.match(u.err, /Unregistered tcp_congestion_ops so_reno id 1/);
  const after = await json(st, "struct_ops", "show");
  assert.deepEqual(after, [before[1]], "so_cubic keeps its id; so_reno stays gone");
});

test("link detach persists; the detached struct_ops link reports map 0", async () => {
  const st = fresh();
  await run(st, "struct_ops", "register", CUBIC_LINK, "/sys/fs/bpf/cc");
  const [l] = await json(st, "link", "show");
  assert.deepEqual(Object.keys(l), ["id", "type", "prog_id", "map_id"]);
  assert.equal(l.type, "struct_ops");
  assert.equal((await run(st, "link", "show")).out, `${l.id}: struct_ops  map ${l.map_id}  \n`);
  assert.equal((await run(st, "link", "detach", "id", String(l.id), "-j")).out, "null\n");
  assert.equal((await run(st, "link", "show", "id", String(l.id))).out, `${l.id}: struct_ops  map 0  \n`);
  assert.deepEqual(await json(st, "struct_ops", "show"), []);
});

test("session reset clears the state", async () => {
  const st = fresh();
  await run(st, "struct_ops", "register", RENO);
  await run(st, "session", "reset");
  assert.equal(existsSync(st), false);
  assert.deepEqual(await json(st, "struct_ops", "show"), []);
  assert.deepEqual(await json(st, "prog", "show"), []);
});

test("an object file changed since it was registered is reported, not replayed", async () => {
  const st = fresh();
  const obj = join(mkdtempSync(join(tmpdir(), "structops-obj-")), "reno.bpf.o");
  copyFileSync(RENO, obj);
  await run(st, "struct_ops", "register", obj);
  appendFileSync(obj, Buffer.from([0]));
  const r = await run(st, "struct_ops", "show");
  assert.match(r.err, /Warning: replaying register .*reno\.bpf\.o: object .* changed since it was registered/);
  assert.equal(r.out, "");
  // Replaced by another object: reported by every verb, here `map show`.
  const st2 = fresh();
  copyFileSync(RENO, `${st2}.o`);
  await run(st2, "struct_ops", "register", `${st2}.o`);
  copyFileSync(RENO_LINK, `${st2}.o`);
  assert.match((await run(st2, "map", "show")).err, /changed since it was registered/);
  rmSync(`${st2}.o`);
  assert.match((await run(st2, "prog", "show")).err, /no longer exists; not replayed/);
});

test("prog/map show: bpftool's JSON keys and plain lines", async () => {
  const st = fresh();
  await run(st, "struct_ops", "register", RENO);
  const progs = await json(st, "prog", "show");
  const p = progs[0];
  assert.deepEqual(Object.keys(p), [
    "id",
    "type",
    "name",
    "tag",
    "gpl_compatible",
    "bytes_xlated",
    "jited",
    "bytes_jited",
    "bytes_memlock",
    "btf_id",
  ]);
  assert.match(p.tag, /^[0-9a-f]{16}$/);
  assert.deepEqual(await json(st, "prog", "show", "id", String(p.id)), p, "show id ID prints one object");
  const plain = (await run(st, "prog", "show", "id", String(p.id))).out;
  assert.equal(
    plain,
    `${p.id}: struct_ops  name ${p.name}  tag ${p.tag}  gpl\n` +
      `\txlated ${p.bytes_xlated}B  jited ${p.bytes_jited}B  memlock ${p.bytes_memlock}B\n\tbtf_id ${p.btf_id}\n`,
  );
  const m = await json(st, "map", "show", "id", "1");
  assert.deepEqual(m, {
    id: 1,
    type: "struct_ops",
    name: "so_reno",
    flags: 0,
    bytes_key: 4,
    bytes_value: 256,
    max_entries: 1,
    bytes_memlock: m.bytes_memlock,
    frozen: 0,
    btf_id: m.btf_id,
  });
  assert.equal(
    (await run(st, "map", "list", "id", "1")).out,
    `1: struct_ops  name so_reno  flags 0x0\n\tkey 4B  value 256B  max_entries 1  memlock ${m.bytes_memlock}B\n\tbtf_id ${m.btf_id}\n`,
  );
  const pretty = (await run(st, "map", "show", "id", "1", "-p")).out;
  assert.equal(pretty, `${JSON.stringify(m, null, 4)}\n`);
  const missing = await run(st, "prog", "show", "id", "999");
  assert.deepEqual(missing, { out: "", err: "Error: get by id (999): No such file or directory\n", code: 255 });
});

test("map dump: struct_ops value and global data through the BTF printer", async () => {
  const st = fresh();
  await run(st, "struct_ops", "register", CUBIC_LINK, "/sys/fs/bpf/cc");
  const maps = await json(st, "map", "show");
  const so = maps.find((m: { type: string }) => m.type === "struct_ops");
  const plain = (await run(st, "map", "dump", "id", String(so.id))).out;
  assert.ok(plain.startsWith('[{\n        "value": {\n            "common": {'), plain.slice(0, 80));
  assert.ok(plain.endsWith("\n        }\n    }\n]\n"));
  assert.match(plain, /"state": "BPF_STRUCT_OPS_STATE_READY"/);
  const [row] = await json(st, "map", "dump", "id", String(so.id));
  assert.deepEqual(row.key, ["0x00", "0x00", "0x00", "0x00"]);
  assert.equal(row.value.length, 256);
  // The JSON form carries the same value the plain BTF form prints.
  assert.match(row.formatted.value.data.name, /^\w+$/);
  assert.ok(plain.includes(`"name": "${row.formatted.value.data.name}"`));
  assert.equal(row.formatted.value.common.state, "BPF_STRUCT_OPS_STATE_READY");
  const bss = maps.find((m: { name: string }) => m.name.endsWith(".bss"));
  // .bss has BTF too (its DATASEC, no key type): each variable through the BTF printer.
  const dump = (await run(st, "map", "dump", "id", String(bss.id))).out;
  assert.match(dump, /^\[\{\n {8}"value": \{\n {12}"\.bss": \[\{\n {20}"\w+": 0\n/);
  assert.ok(dump.endsWith("\n            ]\n        }\n    }\n]\n"), dump);
});

test("--obj keeps the one-run behaviour and leaves the session alone", async () => {
  const st = fresh();
  const r = await run(st, "struct_ops", "show", "--obj", RENO);
  assert.match(r.out, /^1: so_reno/);
  assert.equal(existsSync(st), false);
});

test("state path: --state, then $STRUCTOPS_STATE, then $XDG_STATE_HOME, then ~/.local/state", () => {
  // Under the test runner, no --state and no $STRUCTOPS_STATE: a private file, never the user's.
  assert.match(statePath(undefined, { NODE_TEST_CONTEXT: "child-v8", XDG_STATE_HOME: "/z" }), /structops-test-state-/);
  assert.equal(statePath("/x/s.json", { STRUCTOPS_STATE: "/y" }), "/x/s.json");
  assert.equal(statePath(undefined, { STRUCTOPS_STATE: "/y/s.json", XDG_STATE_HOME: "/z" }), "/y/s.json");
  assert.equal(statePath(undefined, { XDG_STATE_HOME: "/z" }), "/z/structops/session.json");
  assert.match(statePath(undefined, {}), /\/\.local\/state\/structops\/session\.json$/);
});

test("the state file records paths with their sha256", async () => {
  const st = fresh();
  await run(st, "struct_ops", "register", RENO);
  const s = JSON.parse(readFileSync(st, "utf8"));
  assert.equal(s.version, 1);
  assert.equal(s.ops[0].op, "register");
  assert.ok(s.ops[0].path.endsWith(RENO));
  assert.match(s.ops[0].sha256, /^[0-9a-f]{64}$/);
});
