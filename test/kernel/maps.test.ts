import assert from "node:assert/strict";
import { test } from "node:test";
import { insn } from "../../src/isa/insn.js";
import { BPF_MEM, BPF_ST, BPF_W } from "../../src/isa/opcodes.js";
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_F_NO_PREALLOC,
  BPF_F_RDONLY_PROG,
  BPF_NOEXIST,
  bpf_cmd,
  bpf_func_id,
  bpf_map_type,
} from "../../src/uapi/bpf.js";
import { E2BIG, EEXIST, EINVAL, ENOENT, ENOTSUPP, EPERM } from "../../src/uapi/errno.js";
import {
  add64,
  boot,
  call,
  exit,
  jeqImm,
  ldMapFd,
  ldxDw,
  mov64,
  mov64r,
  readU32,
  readU64,
  stDw,
  throwsErrno,
  u32,
  u64,
} from "./util.js";

const C = bpf_cmd;
const T = bpf_map_type;
const stW = (dst: number, off: number, imm: number) => insn(BPF_ST | BPF_MEM | BPF_W, dst, 0, off, imm);

function mapCreate(k: ReturnType<typeof boot>["k"], p: ReturnType<typeof boot>["p"], attr: object): number {
  return k.bpf(p, C.BPF_MAP_CREATE, attr);
}

test("ARRAY from userspace: every element exists, NOEXIST is EEXIST, past the end is E2BIG, delete is EINVAL", () => {
  const { k, p } = boot();
  const fd = mapCreate(k, p, { map_type: T.BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: 8, max_entries: 3 });
  const v = new Uint8Array(8);
  k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: u32(2), value: v });
  assert.equal(readU64(v), 0n);
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: u32(2), value: u64(77), flags: BPF_EXIST });
  k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: u32(2), value: v });
  assert.equal(readU64(v), 77n);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: u32(0), value: v, flags: BPF_NOEXIST }), EEXIST);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: u32(3), value: v }), E2BIG);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: u32(3), value: v }), ENOENT);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_DELETE_ELEM, { map_fd: fd, key: u32(0) }), EINVAL);
  const next = new Uint8Array(4);
  const keys: number[] = [];
  let key: Uint8Array | null = null;
  for (;;) {
    try {
      k.bpf(p, C.BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key, next_key: next });
    } catch {
      break;
    }
    keys.push(readU32(next));
    key = next.slice();
  }
  assert.deepEqual(keys, [0, 1, 2]);
});

test("ARRAY creation rules", () => {
  const { k, p } = boot();
  const base = { map_type: T.BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: 8, max_entries: 1 };
  throwsErrno(() => mapCreate(k, p, { ...base, key_size: 8 }), EINVAL);
  throwsErrno(() => mapCreate(k, p, { ...base, max_entries: 0 }), EINVAL);
  throwsErrno(() => mapCreate(k, p, { ...base, value_size: 0 }), EINVAL);
  throwsErrno(() => mapCreate(k, p, { ...base, map_flags: BPF_F_NO_PREALLOC }), EINVAL);
  throwsErrno(() => mapCreate(k, p, { ...base, map_flags: BPF_F_RDONLY_PROG | (1 << 8) }), EINVAL);
});

test("HASH from userspace: ANY/NOEXIST/EXIST, ENOENT, E2BIG when full, replacing when full is fine", () => {
  for (const map_flags of [0, BPF_F_NO_PREALLOC]) {
    const { k, p } = boot();
    const fd = mapCreate(k, p, {
      map_type: T.BPF_MAP_TYPE_HASH,
      key_size: 4,
      value_size: 8,
      max_entries: 2,
      map_flags,
    });
    const upd = (key: number, val: number, flags: number) =>
      k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: u32(key), value: u64(val), flags });
    throwsErrno(() => upd(1, 1, BPF_EXIST), ENOENT);
    upd(1, 10, BPF_NOEXIST);
    throwsErrno(() => upd(1, 11, BPF_NOEXIST), EEXIST);
    upd(1, 12, BPF_EXIST);
    upd(2, 20, BPF_ANY);
    throwsErrno(() => upd(3, 30, BPF_ANY), E2BIG, /full/);
    upd(2, 21, BPF_ANY);
    const v = new Uint8Array(8);
    k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: u32(1), value: v });
    assert.equal(readU64(v), 12n);
    throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: u32(3), value: v }), ENOENT);
    const next = new Uint8Array(4);
    k.bpf(p, C.BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key: null, next_key: next });
    assert.equal(readU32(next), 1);
    k.bpf(p, C.BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key: u32(1), next_key: next });
    assert.equal(readU32(next), 2);
    throwsErrno(() => k.bpf(p, C.BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key: u32(2), next_key: next }), ENOENT);
    k.bpf(p, C.BPF_MAP_DELETE_ELEM, { map_fd: fd, key: u32(1) });
    throwsErrno(() => k.bpf(p, C.BPF_MAP_DELETE_ELEM, { map_fd: fd, key: u32(1) }), ENOENT);
    upd(3, 30, BPF_ANY);
    throwsErrno(() => upd(4, 40, 4 | 8), EINVAL);
  }
});

test("HASH creation rules", () => {
  const { k, p } = boot();
  const base = { map_type: T.BPF_MAP_TYPE_HASH, key_size: 4, value_size: 8, max_entries: 1 };
  throwsErrno(() => mapCreate(k, p, { ...base, key_size: 0 }), EINVAL);
  throwsErrno(() => mapCreate(k, p, { ...base, max_entries: 0 }), EINVAL);
  throwsErrno(() => mapCreate(k, p, { ...base, map_flags: 1 << 10 }), EINVAL);
  throwsErrno(() => mapCreate(k, p, { ...base, value_size: 1 << 22 }), E2BIG);
});

/** r0 = *lookup(map, key) or -1 when absent. */
function lookupProg(mapFd: number, key: number) {
  return [
    ...ldMapFd(1, mapFd),
    stW(10, -4, key),
    mov64r(2, 10),
    add64(2, -4),
    call(bpf_func_id.BPF_FUNC_map_lookup_elem),
    jeqImm(0, 0, 2),
    ldxDw(0, 0, 0),
    exit(),
    mov64(0, -1),
    exit(),
  ];
}

/** r0 = update(map, key, value, flags). */
function updateProg(mapFd: number, key: number, value: number, flags: number) {
  return [
    stW(10, -4, key),
    stDw(10, -16, value),
    ...ldMapFd(1, mapFd),
    mov64r(2, 10),
    add64(2, -4),
    mov64r(3, 10),
    add64(3, -16),
    mov64(4, flags),
    call(bpf_func_id.BPF_FUNC_map_update_elem),
    exit(),
  ];
}

function run(k: ReturnType<typeof boot>["k"], p: ReturnType<typeof boot>["p"], insns: ReturnType<typeof lookupProg>) {
  const fd = k.bpf(p, C.BPF_PROG_LOAD, {
    prog_type: 31,
    insns,
    insn_cnt: insns.length,
    license: "GPL",
    prog_flags: 16,
  });
  const attr: { prog_fd: number; retval?: number } = { prog_fd: fd };
  k.bpf(p, C.BPF_PROG_TEST_RUN, attr);
  k.close(p, fd);
  return attr.retval! | 0;
}

test("ARRAY and HASH from programs: lookup returns a pointer into the value, update reports errnos", () => {
  const { k, p } = boot();
  const arr = mapCreate(k, p, { map_type: T.BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: 8, max_entries: 2 });
  const hash = mapCreate(k, p, { map_type: T.BPF_MAP_TYPE_HASH, key_size: 4, value_size: 8, max_entries: 1 });
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: arr, key: u32(1), value: u64(41) });
  assert.equal(run(k, p, lookupProg(arr, 1)), 41);
  assert.equal(run(k, p, lookupProg(arr, 5)), -1, "out of range: NULL");
  assert.equal(run(k, p, lookupProg(hash, 7)), -1);
  assert.equal(run(k, p, updateProg(hash, 7, 99, BPF_NOEXIST)), 0);
  assert.equal(run(k, p, updateProg(hash, 7, 98, BPF_NOEXIST)), -EEXIST);
  assert.equal(run(k, p, updateProg(hash, 8, 1, BPF_ANY)), -E2BIG);
  assert.equal(run(k, p, updateProg(arr, 0, 5, BPF_NOEXIST)), -EEXIST);
  assert.equal(run(k, p, lookupProg(hash, 7)), 99);
  const v = new Uint8Array(8);
  k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: hash, key: u32(7), value: v });
  assert.equal(readU64(v), 99n, "a program's update is visible from userspace");
});

test("a value a program may still hold is freed only after a grace period", () => {
  const { k, p } = boot();
  const hash = mapCreate(k, p, { map_type: T.BPF_MAP_TYPE_HASH, key_size: 4, value_size: 8, max_entries: 4 });
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: hash, key: u32(1), value: u64(5) });
  const map = k.map_idr.find(k.objGetInfo(p, hash).id as number)!;
  const reader = k.rcu.rcuReadLock();
  const addr = map.ops.map_lookup_elem(map, u32(1));
  k.bpf(p, C.BPF_MAP_DELETE_ELEM, { map_fd: hash, key: u32(1) });
  k.quiesce();
  assert.equal(readU64(k.mem.bytes(addr, 8)), 5n, "still readable inside the read-side section");
  k.rcu.rcuReadUnlock(reader);
  k.quiesce();
  assert.throws(() => k.mem.bytes(addr, 8), "freed after the grace period");
});

test("BPF_F_RDONLY_PROG (.rodata): the program may read but not write the value", () => {
  const { k, p } = boot();
  const ro = mapCreate(k, p, {
    map_type: T.BPF_MAP_TYPE_ARRAY,
    key_size: 4,
    value_size: 8,
    max_entries: 1,
    map_flags: BPF_F_RDONLY_PROG,
  });
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: ro, key: u32(0), value: u64(3) });
  k.bpf(p, C.BPF_MAP_FREEZE, { map_fd: ro });
  assert.equal(run(k, p, lookupProg(ro, 0)), 3);
  // *(u64 *)(r0 + 0) = 1 on the looked-up value faults.
  const write = [
    ...lookupProg(ro, 0).slice(0, 6),
    jeqImm(0, 0, 3),
    stDw(0, 0, 1),
    mov64(0, 0),
    exit(),
    mov64(0, -1),
    exit(),
  ];
  assert.throws(
    () => run(k, p, write),
    (e: Error) => /write|perm|fault/i.test(e.message),
  );
});

test("LOOKUP_AND_DELETE_ELEM: hash maps return and remove the value; arrays are ENOTSUPP; needs read and write access", () => {
  const { k, p } = boot();
  const h = mapCreate(k, p, { map_type: T.BPF_MAP_TYPE_HASH, key_size: 4, value_size: 8, max_entries: 2 });
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: h, key: u32(1), value: u64(9) });
  const v = new Uint8Array(8);
  k.bpf(p, C.BPF_MAP_LOOKUP_AND_DELETE_ELEM, { map_fd: h, key: u32(1), value: v });
  assert.equal(readU64(v), 9n);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_AND_DELETE_ELEM, { map_fd: h, key: u32(1), value: v }), ENOENT);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_AND_DELETE_ELEM, { map_fd: h, key: u32(1), value: v, flags: 8 }), EINVAL);
  const a = mapCreate(k, p, { map_type: T.BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: 8, max_entries: 2 });
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_AND_DELETE_ELEM, { map_fd: a, key: u32(0), value: v }), ENOTSUPP);
  const ro = mapCreate(k, p, {
    map_type: T.BPF_MAP_TYPE_HASH,
    key_size: 4,
    value_size: 8,
    max_entries: 2,
    map_flags: 1 << 3,
  });
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_AND_DELETE_ELEM, { map_fd: ro, key: u32(0), value: v }), EPERM);
});
