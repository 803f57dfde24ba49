import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { EACCES } from "../../src/uapi/errno.js";
import { repoRoot } from "./helpers.js";
import { checkRefusals, compareWithHost, hostSkip } from "./object_verdicts.js";

/**
 * Reads of a map's kernel struct through its pointer (bpf/map_ptr.bpf.c): check_ptr_to_map_access
 * walks the map type's struct in vmlinux BTF (bpf_array, bpf_htab, which begin with struct
 * bpf_map); the loads find the map's attributes, as on the host kernel; writes, negative offsets
 * and reads past the struct are refused with its messages.
 */

const OBJ = join(repoRoot(), "bpf/obj/map_ptr.bpf.o");
const GOOD = ["read_fields", "read_hash", "read_name"];
const BAD: [string, number, string[], number][] = [
  ["write_field", EACCES, ["only read from bpf_array is supported"], 3],
  ["negative_off", EACCES, ["R1 is bpf_array invalid negative access: off=-8"], 2],
  ["beyond", EACCES, ["access beyond struct bpf_array at off 400 size 4"], 2],
];
/** max_entries 3, key_size 4, value_size 8, elem_size 8, index_mask 3; 'a' + 1000; a hash's max_entries 5. */
const WANT: Record<string, number> = {
  read_fields: 3 | (4 << 4) | (8 << 8) | (8 << 16) | (3 << 24),
  read_name: 97 + 1000,
  read_hash: 5,
};

function ours(): Record<string, number> {
  const k = new Kernel({ verifier: true });
  const h = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(OBJ);
  obj.load(h);
  const out: Record<string, number> = {};
  for (const name of GOOD) {
    const attr = { prog_fd: obj.findProgram(name)?.fd ?? -1, retval: -1 };
    assert.equal(k.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr), 0, name);
    out[name] = attr.retval;
  }
  return out;
}

test("map_ptr.bpf.o: a map's attributes read through its pointer", () => {
  assert.deepEqual(ours(), WANT);
});

test("map_ptr_bad: writes, negative offsets and reads past the struct are refused", () => {
  checkRefusals(OBJ, BAD);
});

test("the host kernel verifies and runs the map pointer reads as we do", { skip: hostSkip() }, () => {
  if (!compareWithHost(OBJ, GOOD, BAD)) return;
  const script = join(repoRoot(), "test/fixtures/verifier/host_libbpf_run.py");
  const r = spawnSync("python3", [script, OBJ, ...GOOD], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const host = Object.fromEntries(
    (JSON.parse(r.stdout) as { prog: string; retval: number }[]).map((x) => [x.prog, x.retval]),
  );
  assert.deepEqual(host, WANT);
});
