import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import type { BpfMap } from "../../src/kernel/bpf.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { mapFromFd } from "../../src/kernel/syscall_map.js";
import {
  type BpfHandle,
  bpf_map_create,
  bpf_map_delete_elem,
  bpf_map_lookup_elem,
  bpf_map_update_elem,
  close,
} from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { BPF_F_INNER_MAP, bpf_cmd, bpf_map_type as T } from "../../src/uapi/bpf.js";
import { EINVAL } from "../../src/uapi/errno.js";
import { repoRoot } from "../verifier/helpers.js";
import { checkRefusals, compareWithHost, hostSkip } from "../verifier/object_verdicts.js";

/**
 * Maps of maps: bpf/map_in_map.bpf.c's ARRAY_OF_MAPS and HASH_OF_MAPS (declared with
 * `__array(values, ...)`, created by the loader around their template) filled by userspace with
 * map fds; programs reach the inner maps through them. The syscall rules (which maps fit a
 * template, flags, errnos, ids read back) run the same on the host kernel; timers in inner maps
 * are checked per inner map (map_uid).
 */

const OBJ = join(repoRoot(), "bpf/obj/map_in_map.bpf.o");
const GOOD = ["count_arr", "count_hash", "arm_timer"];
const BAD: [string, number, string[], number][] = [
  ["bad_timer_other_inner", EINVAL, ["timer pointer in R1 map_uid=1 doesn't match map pointer in R2 map_uid=2"], 27],
  ["bad_update_outer", EINVAL, ["cannot pass map_type 12 into func bpf_map_update_elem#2"], 11],
  ["bad_unchecked_inner", 13, ["R1 type=map_ptr_or_null expected=map_ptr"], 11],
  [
    "bad_inner_oob",
    13,
    ["invalid access to map value, value_size=8 off=8 size=8", "R0 min value is outside of the allowed memory range"],
    14,
  ],
];

function setup() {
  const k = new Kernel({ verifier: true });
  const h: BpfHandle = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(OBJ);
  obj.load(h);
  const fd = (name: string) => obj.findMap(name)?.fd ?? -1;
  const map = (name: string): BpfMap => mapFromFd(h.process, fd(name)).map;
  const run = (name: string, key: number, slot = 0): number => {
    const ctx = new Uint8Array(new Int32Array([key, slot]).buffer);
    const attr = { prog_fd: obj.findProgram(name)?.fd ?? -1, ctx_in: ctx, ctx_size_in: ctx.length, retval: 0 };
    assert.equal(k.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr), 0, name);
    return attr.retval | 0;
  };
  const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
  const get = (m: string, key: number, size = 8): bigint | number => {
    const v = new Uint8Array(size);
    const r = bpf_map_lookup_elem(h, fd(m), u32(key), v);
    if (r) return r;
    return size === 4 ? new DataView(v.buffer).getUint32(0, true) : new DataView(v.buffer).getBigInt64(0, true);
  };
  return { k, h, obj, fd, map, run, u32, get };
}

test("map_in_map.bpf.o: programs count in the inner maps userspace put in the outer ones", () => {
  const { h, fd, map, run, u32, get } = setup();
  assert.equal(run("count_arr", 0), -1, "an empty slot gives NULL");
  assert.equal(bpf_map_update_elem(h, fd("outer_arr"), u32(0), u32(fd("counters_a")), 0), 0);
  assert.equal(bpf_map_update_elem(h, fd("outer_arr"), u32(1), u32(fd("counters_b")), 0), 0);
  assert.equal(run("count_arr", 0, 2), 0);
  assert.equal(run("count_arr", 0, 2), 0);
  assert.equal(run("count_arr", 1, 3), 0);
  assert.equal(get("counters_a", 2), 2n);
  assert.equal(get("counters_b", 3), 1n);
  assert.equal(get("counters_b", 2), 0n);
  assert.equal(run("count_arr", 0, 4), 10 + 79, "slot 4 is past the inner array: the CHECK line");
  // Userspace reads a slot back as the inner map's id.
  assert.equal(get("outer_arr", 1, 4), map("counters_b").id);
  // HASH_OF_MAPS: inner hash tables by key.
  assert.equal(bpf_map_update_elem(h, fd("outer_hash"), u32(10), u32(fd("table_a")), 0), 0);
  assert.equal(run("count_hash", 10, 3), 0);
  assert.equal(run("count_hash", 10, 3), 0);
  assert.equal(get("table_a", 3), 2n);
  assert.equal(run("count_hash", 11, 3), -1);
});

test("an inner map lives while a slot holds it, and goes after RCU once none does", () => {
  const { k, h, fd, map, run, u32 } = setup();
  const inner = bpf_map_create(h, T.BPF_MAP_TYPE_ARRAY, "spare", 4, 8, 4);
  assert.ok(inner > 0);
  const m = mapFromFd(h.process, inner).map;
  assert.equal(bpf_map_update_elem(h, fd("outer_arr"), u32(0), u32(inner), 0), 0);
  assert.equal(bpf_map_update_elem(h, fd("outer_hash"), u32(5), u32(fd("table_a")), 0), 0);
  close(h, inner);
  k.quiesce();
  assert.equal(m.freed, false, "the outer map's slot keeps it");
  assert.equal(run("count_arr", 0, 1), 0);
  // Replacing the slot lets go of it; programs may still hold it until a grace period ends.
  assert.equal(bpf_map_update_elem(h, fd("outer_arr"), u32(0), u32(fd("counters_a")), 0), 0);
  assert.equal(m.freed, false);
  k.quiesce();
  assert.equal(m.freed, true);
  // The outer map's free puts what it holds.
  const t = map("table_a");
  const refs = t.refcnt;
  assert.equal(bpf_map_delete_elem(h, fd("outer_hash"), u32(5)), 0);
  assert.equal(t.refcnt, refs - 1);
});

test("an outer map's template holds its inner map's BTF, and puts it when the outer map goes", () => {
  const { k, h, obj, fd } = setup();
  const btf = [...k.btf_idr.values()].find((b) => !b.kernelBtf);
  assert.ok(btf, "the object's BTF");
  // Everything but one outer map lets go first: the object's other maps, programs and BTF fd.
  const keep = k.bpf(h.process, bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: mapFromFd(h.process, fd("outer_arr")).map.id });
  obj.close();
  k.quiesce();
  assert.equal(btf.freed, false, "the outer map and its template still hold it");
  close(h, keep);
  k.quiesce();
  assert.equal(k.map_idr.size, 0);
  assert.equal(btf.freed, true, "the last reference, the outer map's, frees the BTF");
  assert.equal(
    [...k.btf_idr.values()].some((b) => b === btf),
    false,
  );
});

test("a timer in an inner map fires with that inner map's value", () => {
  const { k, h, fd, run, u32 } = setup();
  assert.equal(bpf_map_update_elem(h, fd("outer_timers"), u32(1), u32(fd("timers_b")), 0), 0);
  assert.equal(run("arm_timer", 1), 0);
  assert.equal(run("arm_timer", 0), -1);
  k.setTimeNs(k.ktimeGetNs() + 10_000n);
  const v = new Uint8Array(24);
  assert.equal(bpf_map_lookup_elem(h, fd("timers_b"), u32(0), v), 0);
  assert.equal(new DataView(v.buffer).getBigInt64(16, true), 1n, "the callback counted once");
  assert.equal(bpf_map_lookup_elem(h, fd("timers_a"), u32(0), v), 0);
  assert.equal(new DataView(v.buffer).getBigInt64(16, true), 0n, "the other inner map's timer never ran");
});

test("map_in_map: each refused program with the kernel's errno, message and instruction", () => {
  checkRefusals(OBJ, BAD);
});

test("the host kernel gives the same verdicts and messages for map-in-map programs", { skip: hostSkip() }, () => {
  compareWithHost(OBJ, GOOD, BAD);
});

/**
 * One scenario of map commands over named maps: which maps fit a template (type, sizes, flags,
 * max_entries unless BPF_F_INNER_MAP), the update flags, errnos, the ids read back.
 */
type Op =
  | ["create", string, number, number, number, number, number, string | null]
  | ["update", string, number, number | string, number]
  | ["lookup", string, number]
  | ["delete", string, number]
  | ["close", string];

const AOM = T.BPF_MAP_TYPE_ARRAY_OF_MAPS;
const HOM = T.BPF_MAP_TYPE_HASH_OF_MAPS;
const SCENARIO: Op[] = [
  ["create", "tmpl", T.BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0, null],
  ["create", "aom", AOM, 4, 4, 2, 0, "tmpl"],
  ["create", "hom", HOM, 4, 4, 2, 0, "tmpl"],
  ["create", "aom_vs8", AOM, 4, 8, 2, 0, "tmpl"],
  ["create", "aom_ks8", AOM, 8, 4, 2, 0, "tmpl"],
  ["create", "aom_badfd", AOM, 4, 4, 2, 0, "BADFD"],
  ["create", "aom_of_aom", AOM, 4, 4, 2, 0, "aom"],
  ["create", "hash_tmpl", T.BPF_MAP_TYPE_HASH, 4, 8, 4, 0, null],
  ["create", "hom_of_hash", HOM, 4, 4, 2, 0, "hash_tmpl"],
  ["create", "a2", T.BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0, null],
  ["create", "a_me5", T.BPF_MAP_TYPE_ARRAY, 4, 8, 5, 0, null],
  ["create", "a_vs16", T.BPF_MAP_TYPE_ARRAY, 4, 16, 4, 0, null],
  ["create", "h_same", T.BPF_MAP_TYPE_HASH, 4, 8, 4, 0, null],
  ["create", "flag_tmpl", T.BPF_MAP_TYPE_ARRAY, 4, 8, 4, BPF_F_INNER_MAP, null],
  ["create", "aom_flag", AOM, 4, 4, 2, 0, "flag_tmpl"],
  ["create", "flag_me9", T.BPF_MAP_TYPE_ARRAY, 4, 8, 9, BPF_F_INNER_MAP, null],
  ["update", "aom", 0, "a2", 0],
  ["update", "aom", 1, "a_me5", 0],
  ["update", "aom", 1, "a_vs16", 0],
  ["update", "aom", 1, "h_same", 0],
  ["update", "aom", 1, "a2", 1],
  ["update", "aom", 1, "a2", 2],
  ["update", "aom", 5, "a2", 0],
  ["update", "aom", 1, 9999, 0],
  ["lookup", "aom", 0],
  ["lookup", "aom", 1],
  ["lookup", "aom", 7],
  ["delete", "aom", 1],
  ["delete", "aom", 9],
  ["update", "aom_flag", 0, "a2", 0],
  ["update", "aom_flag", 0, "flag_me9", 0],
  ["lookup", "aom_flag", 0],
  ["update", "hom", 10, "a2", 0],
  ["update", "hom", 10, "a2", 1],
  ["update", "hom", 11, "a2", 2],
  ["update", "hom", 11, "a_vs16", 0],
  ["update", "hom", 11, "a2", 0],
  ["update", "hom", 12, "a2", 0],
  ["update", "hom", 10, "a2", 4],
  ["lookup", "hom", 10],
  ["lookup", "hom", 99],
  ["close", "a2"],
  ["lookup", "hom", 11],
  ["delete", "hom", 10],
  ["delete", "hom", 10],
  ["delete", "aom", 0],
  ["delete", "aom", 0],
  ["update", "hom_of_hash", 1, "h_same", 0],
];

/** The scenario on the simulated kernel, with the host fixture's result shapes. */
function simScenario(): unknown[] {
  const k = new Kernel();
  const h: BpfHandle = { kernel: k, process: k.newProcess() };
  const fds = new Map<string, number>();
  const names = new Map<number, string>();
  const key = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
  return SCENARIO.map((op) => {
    switch (op[0]) {
      case "create": {
        const [, name, type, ks, vs, me, flags, inner] = op;
        const innerFd = inner === "BADFD" ? 9999 : inner ? (fds.get(inner) ?? 0) : undefined;
        const r = bpf_map_create(h, type, name, ks, vs, me, { map_flags: flags, inner_map_fd: innerFd });
        if (r >= 0) {
          fds.set(name, r);
          names.set(mapFromFd(h.process, r).map.id, name);
        }
        return Math.min(r, 0);
      }
      case "update": {
        const [, m, k2, v, flags] = op;
        const val = typeof v === "string" ? (fds.get(v) ?? -1) : v;
        return bpf_map_update_elem(h, fds.get(m) ?? -1, key(k2), key(val), flags);
      }
      case "lookup": {
        const v = new Uint8Array(4);
        const r = bpf_map_lookup_elem(h, fds.get(op[1]) ?? -1, key(op[2]), v);
        return [r, r === 0 ? (names.get(new DataView(v.buffer).getUint32(0, true)) ?? null) : null];
      }
      case "delete":
        return bpf_map_delete_elem(h, fds.get(op[1]) ?? -1, key(op[2]));
      case "close":
        close(h, fds.get(op[1]) ?? -1);
        fds.delete(op[1]);
        return 0;
    }
    return null;
  });
}

/** What Linux 6.18 answers, step by step (from the host; the host test checks it still does). */
const EXPECTED: unknown[] = [
  0,
  0,
  0,
  -22,
  -22,
  -9,
  -22,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  -22,
  -22,
  -22,
  -22,
  -22,
  -7,
  -9,
  [0, "a2"],
  [-2, null],
  [-2, null],
  -2,
  -7,
  -22,
  0,
  [0, "flag_me9"],
  0,
  -17,
  -2,
  -22,
  0,
  -7,
  -22,
  [0, "a2"],
  [-2, null],
  0,
  [0, "a2"],
  0,
  -2,
  0,
  -2,
  0,
];

test("map-in-map syscalls: templates, flags, errnos and ids as Linux 6.18 answers", () => {
  assert.deepEqual(simScenario(), EXPECTED);
});

test("the host kernel answers the map-in-map scenario the same way", { skip: hostSkip() }, () => {
  const out = spawnSync(
    "python3",
    [join(repoRoot(), "test/kernel/fixtures/host_map_in_map.py"), JSON.stringify(SCENARIO)],
    {
      encoding: "utf8",
    },
  );
  assert.equal(out.status, 0, out.stderr);
  assert.deepEqual(JSON.parse(out.stdout), EXPECTED);
});
