import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import { type BpfHandle, bpf_map_lookup_elem, bpf_map_update_elem } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_cmd, bpf_map_type as T } from "../../src/uapi/bpf.js";
import { BpfError, EBADF } from "../../src/uapi/errno.js";
import { repoRoot } from "../verifier/helpers.js";

/**
 * bpf/map_in_map_init.bpf.c: outer maps whose `.values` name inner maps are filled by the loader
 * right after they are created (libbpf's init_slots): ARRAY_OF_MAPS slots 0 and 2, HASH_OF_MAPS
 * keys 1 and 3; the other slots stay empty.
 */
const OBJ = join(repoRoot(), "bpf/obj/map_in_map_init.bpf.o");
const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);

function load(opts: { autocreate?: string[] } = {}) {
  const k = new Kernel({ verifier: true });
  const h: BpfHandle = { kernel: k, process: k.newProcess() };
  const debug: string[] = [];
  const obj = BpfObject.open(OBJ, { print: (level, msg) => level === "debug" && debug.push(msg) });
  for (const name of opts.autocreate ?? []) obj.findMap(name)?.setAutocreate(false);
  return { k, h, obj, debug };
}

/** "outer[key] = inner" for each filled slot of each map of maps, as the host helper prints them. */
function slots(h: BpfHandle, obj: BpfObject): string[] {
  const out: string[] = [];
  for (const m of obj.maps) {
    if (m.type !== T.BPF_MAP_TYPE_ARRAY_OF_MAPS && m.type !== T.BPF_MAP_TYPE_HASH_OF_MAPS) continue;
    for (let key = 0; key < m.maxEntries; key++) {
      const v = new Uint8Array(4);
      if (bpf_map_lookup_elem(h, m.fd, u32(key), v) !== 0) continue;
      const id = new DataView(v.buffer).getUint32(0, true);
      out.push(`${m.name}[${key}] = ${h.kernel.map_idr.find(id)?.name ?? `id ${id}`}`);
    }
  }
  return out;
}

const EXPECTED = [
  "outer_arr[0] = inner_a",
  "outer_arr[2] = inner_b",
  "outer_hash[1] = inner_c",
  "outer_hash[3] = inner_a",
];

test("map_in_map_init.bpf.o: the loader puts each .values inner map in its slot, as libbpf's init_slots", () => {
  const { h, obj, debug } = load();
  obj.load(h);
  assert.deepEqual(slots(h, obj), EXPECTED);
  assert.ok(debug.includes(".maps relo #1: map 'outer_arr' slot [2] points to map 'inner_b'"), debug.join("\n"));
  assert.ok(debug.some((l) => /^map 'outer_hash': slot \[3\] set to map 'inner_a' fd=\d+$/.test(l)));
  // Programs find the inner maps with nothing done from userspace.
  const put = (name: string, v: bigint) =>
    assert.equal(
      bpf_map_update_elem(h, obj.findMap(name)?.fd ?? -1, u32(0), new Uint8Array(new BigInt64Array([v]).buffer)),
      0,
    );
  put("inner_a", 11n);
  put("inner_b", 22n);
  put("inner_c", 33n);
  const run = (prog: string, key: number) => {
    const attr = { prog_fd: obj.findProgram(prog)?.fd ?? -1, ctx_in: u32(key), ctx_size_in: 4, retval: 0 };
    assert.equal(h.kernel.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr), 0);
    return attr.retval | 0;
  };
  assert.deepEqual(
    [0, 1, 2, 3].map((key) => run("where_arr", key)),
    [11, -1, 22, -1],
  );
  assert.deepEqual(
    [0, 1, 2, 3].map((key) => run("where_hash", key)),
    [-1, 33, -1, 11],
  );
});

test("an inner map that was not created fails the slot's update with EBADF and libbpf's message", () => {
  const { h, obj } = load({ autocreate: ["inner_b"] });
  assert.throws(
    () => obj.load(h),
    (e: unknown) =>
      e instanceof BpfError &&
      e.errno === EBADF &&
      e.message === "map 'outer_arr': failed to initialize slot [2] to map 'inner_b' fd=-1: -9 (EBADF)",
  );
  assert.equal(h.kernel.map_idr.size, 0, "the failed load leaves no map behind");
});

const skipHost = (() => {
  if (process.getuid?.() !== 0) return "needs root for bpf(2)";
  const probe = spawnSync("gcc", ["--version"]);
  if (probe.status !== 0) return "gcc is not installed";
  return false;
})();

test("the host's libbpf fills the same slots from the same object", { skip: skipHost }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), "structops-init-slots-"));
  try {
    const bin = join(dir, "init_slots_host");
    const src = join(repoRoot(), "test/loader/fixtures/init_slots_host.c");
    const cc = spawnSync("gcc", ["-O2", "-o", bin, src, "-lbpf"], { encoding: "utf8" });
    if (cc.status !== 0) return t.skip(`cannot build with libbpf: ${cc.stderr.slice(0, 200)}`);
    const r = spawnSync(bin, [OBJ], { encoding: "utf8" });
    if (r.status === 2) return t.skip("the host refused to load the object (bpf() not allowed here)");
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), EXPECTED);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
