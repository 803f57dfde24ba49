/**
 * `structops module load|unload|show` and struct_ops verbs on a module's types: the module is
 * recorded in the session, `struct_ops register` finds bpf_testmod's types in its BTF, `show`
 * prints the value under the module's type, and rmmod is refused while a pinned link holds it.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { freshState, run } from "./in_process.js";

const MULTI = "bpf/obj/sim/testmod_multi_pages.bpf.o";
const AUTOCREATE = "bpf/obj/sim/testmod_autocreate.bpf.o";
const skip = existsSync(MULTI) ? false : `${MULTI} is missing (run bpf/build.sh)`;

const fresh = () => freshState("module");
const json = async (state: string, ...args: string[]) => JSON.parse((await run(state, ...args, "-j")).out);

test("module load/show/unload, recorded in the session; unknown and double loads fail", { skip }, async () => {
  const st = fresh();
  assert.deepEqual(await json(st, "module", "show"), []);
  assert.equal((await run(st, "module", "load", "bpf_testmod")).code, 0);
  const [m] = await json(st, "module", "show");
  assert.equal(m.name, "bpf_testmod");
  assert.equal(m.used_by, 0);
  // The module's BTF is a kernel BTF of its own, after vmlinux's.
  assert.ok(m.btf_id > 1);
  const again = await run(st, "module", "load", "bpf_testmod");
  assert.equal(again.code, 255);
  assert.match(again.err, /^Error: Module bpf_testmod is already loaded/);
  const none = await run(st, "module", "load", "no_such_mod");
  assert.equal(none.code, 255);
  assert.match(none.err, /Module no_such_mod not found/);
  assert.equal((await run(st, "module", "unload", "bpf_testmod")).code, 0);
  assert.deepEqual(await json(st, "module", "show"), []);
});

test("struct_ops register and show on bpf_testmod's types; rmmod refused while a pinned link holds it", {
  skip,
}, async () => {
  const st = fresh();
  // Without the module the type is in no BTF: libbpf's init_kern error.
  const before = await run(st, "struct_ops", "register", MULTI);
  assert.equal(before.code, 255);
  assert.match(before.err, /struct_ops init_kern: struct bpf_testmod_ops is not found in kernel BTF/);

  await run(st, "module", "load", "bpf_testmod");
  const r = await run(st, "struct_ops", "register", MULTI, "/sys/fs/bpf/tm");
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /^Registered bpf_testmod_ops multi_pages map id \d+ link id \d+\n$/);
  const shown = await run(st, "struct_ops", "show");
  assert.match(shown.out, /^\d+: multi_pages\s+bpf_testmod_ops\s+\n$/);
  const dump = await run(st, "struct_ops", "dump", "name", "multi_pages");
  assert.match(dump.out, /"bpf_struct_ops_bpf_testmod_ops"/);
  assert.match(dump.out, /"tramp_40": "int \(int value\) tm_tramp_40\/prog_id:\d+"/);
  assert.equal((await json(st, "module", "show"))[0].used_by, 1);
  const busy = await run(st, "module", "unload", "bpf_testmod");
  assert.equal(busy.code, 255);
  assert.equal(busy.err, "Error: Module bpf_testmod is in use\n");
  // Unregistering drops the link, the map, and the map's hold on the module.
  const id = (await json(st, "struct_ops", "show"))[0].id;
  assert.equal((await run(st, "struct_ops", "unregister", "id", String(id))).code, 0);
  assert.equal((await json(st, "module", "show"))[0].used_by, 0);
  assert.equal((await run(st, "module", "unload", "bpf_testmod")).code, 0);
});

test("struct_ops register reports init_kern's failure for a flavor the module's type lacks", { skip }, async () => {
  const st = fresh();
  await run(st, "module", "load", "bpf_testmod");
  const r = await run(st, "struct_ops", "register", AUTOCREATE);
  assert.equal(r.code, 255);
  assert.match(r.err, /Cannot find member does_not_exist in kernel BTF/);
});
