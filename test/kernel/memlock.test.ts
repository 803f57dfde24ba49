import assert from "node:assert/strict";
import { test } from "node:test";
import { BPF_F_NO_PREALLOC, bpf_cmd, bpf_map_type } from "../../src/uapi/bpf.js";
import { E2BIG, EPERM } from "../../src/uapi/errno.js";
import { boot, throwsErrno, u32, u64 } from "./util.js";

const C = bpf_cmd;
const T = bpf_map_type;

test("a map charges whole pages of its size to its user and uncharges them when freed", () => {
  const { k, p } = boot();
  // 312-byte struct bpf_array + 1000 * 8 bytes = 8312 bytes -> 3 pages.
  const fd = k.bpf(p, C.BPF_MAP_CREATE, {
    map_type: T.BPF_MAP_TYPE_ARRAY,
    key_size: 4,
    value_size: 8,
    max_entries: 1000,
  });
  assert.equal(p.user.locked_vm, 3);
  const fd2 = k.bpf(p, C.BPF_MAP_CREATE, {
    map_type: T.BPF_MAP_TYPE_ARRAY,
    key_size: 4,
    value_size: 8,
    max_entries: 1,
  });
  assert.equal(p.user.locked_vm, 4);
  k.close(p, fd);
  assert.equal(p.user.locked_vm, 1);
  k.close(p, fd2);
  assert.equal(p.user.locked_vm, 0);
});

test("RLIMIT_MEMLOCK: a map that would go over the limit is EPERM (v5.8), and nothing stays charged", () => {
  const { k } = boot();
  const p = k.newProcess({ rlimitMemlock: 4 * 4096 });
  const big = { map_type: T.BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: 4096, max_entries: 4 };
  throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, big), EPERM, /RLIMIT_MEMLOCK/);
  assert.equal(p.user.locked_vm, 0);
  assert.equal(k.map_idr.size, 0, "the half-made map is freed and has no id");
  const small = { map_type: T.BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: 4096, max_entries: 3 };
  k.bpf(p, C.BPF_MAP_CREATE, small);
  assert.equal(p.user.locked_vm, 4);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, { ...small, max_entries: 1 }), EPERM);
  // The charge is per user: another process of the same uid shares it.
  const q = k.newProcess({ uid: p.uid, rlimitMemlock: 4 * 4096 });
  throwsErrno(() => k.bpf(q, C.BPF_MAP_CREATE, { ...small, max_entries: 1 }), EPERM);
  const r = k.newProcess({ uid: 4242, rlimitMemlock: 4 * 4096 });
  k.bpf(r, C.BPF_MAP_CREATE, { ...small, max_entries: 1 });
  p.rlimitMemlock = Number.POSITIVE_INFINITY;
  k.bpf(p, C.BPF_MAP_CREATE, { ...small, max_entries: 100 });
});

test("a map that allocates every element is refused before it allocates them (v5.8 array and queue map_alloc charge first)", () => {
  const { k } = boot();
  const p = k.newProcess({ rlimitMemlock: 8 << 20 });
  const allocs: number[] = [];
  const alloc = k.mem.alloc.bind(k.mem);
  k.mem.alloc = (size, opts) => {
    allocs.push(size);
    return alloc(size, opts);
  };
  // 15M elements of 24 bytes: 361 MB of values the default 8 MiB RLIMIT_MEMLOCK cannot pay for.
  for (const map_type of [T.BPF_MAP_TYPE_ARRAY, T.BPF_MAP_TYPE_PERCPU_ARRAY]) {
    throwsErrno(
      () => k.bpf(p, C.BPF_MAP_CREATE, { map_type, key_size: 4, value_size: 24, max_entries: 15_073_281 }),
      EPERM,
      /RLIMIT_MEMLOCK/,
    );
  }
  for (const map_type of [T.BPF_MAP_TYPE_QUEUE, T.BPF_MAP_TYPE_STACK]) {
    throwsErrno(
      () => k.bpf(p, C.BPF_MAP_CREATE, { map_type, key_size: 0, value_size: 24, max_entries: 15_073_281 }),
      EPERM,
      /RLIMIT_MEMLOCK/,
    );
  }
  assert.ok(
    allocs.every((n) => n < 1 << 20),
    `no values were allocated for the refused maps (allocations: ${allocs.join(", ")})`,
  );
  assert.equal(p.user.locked_vm, 0);
  assert.equal(k.map_idr.size, 0);
});

test("a size too large to account is E2BIG", () => {
  const { k, p } = boot();
  throwsErrno(
    () =>
      k.bpf(p, C.BPF_MAP_CREATE, {
        map_type: T.BPF_MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: 1 << 20,
        max_entries: 1 << 12,
      }),
    E2BIG,
  );
});

test("memlock in fdinfo and map_mem_usage: array exact, hash by preallocation and element count", () => {
  const { k, p } = boot();
  // Values measured on a 6.18 host: array 1 x u64 = 320 bytes, 100 x u64 = 1112 bytes.
  const a1 = k.bpf(p, C.BPF_MAP_CREATE, { map_type: T.BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: 8, max_entries: 1 });
  const a100 = k.bpf(p, C.BPF_MAP_CREATE, {
    map_type: T.BPF_MAP_TYPE_ARRAY,
    key_size: 4,
    value_size: 8,
    max_entries: 100,
  });
  assert.match(k.fdinfo(p, a1), /memlock:\t320\n/);
  assert.match(k.fdinfo(p, a100), /memlock:\t1112\n/);
  // With the host's 2 possible CPUs, hash maps of 100 x (u32 -> u64) measure 9488 (prealloc) and 2944 (empty, no prealloc).
  k.nrCpus = 2;
  const h = k.bpf(p, C.BPF_MAP_CREATE, { map_type: T.BPF_MAP_TYPE_HASH, key_size: 4, value_size: 8, max_entries: 100 });
  const hn = k.bpf(p, C.BPF_MAP_CREATE, {
    map_type: T.BPF_MAP_TYPE_HASH,
    key_size: 4,
    value_size: 8,
    max_entries: 100,
    map_flags: BPF_F_NO_PREALLOC,
  });
  assert.match(k.fdinfo(p, h), /memlock:\t9488\n/);
  assert.match(k.fdinfo(p, hn), /memlock:\t2944\n/);
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: hn, key: u32(1), value: u64(1) });
  assert.match(k.fdinfo(p, hn), /memlock:\t3016\n/, "grows by elem_size + llist node per element");
});

test("programs charge their pages too (v5.8 bpf_prog_charge_memlock) and give them back when freed", () => {
  const { k } = boot();
  const p = k.newProcess({ rlimitMemlock: 2 * 4096 });
  const insns = [
    { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
    { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
  ];
  const load = () => k.bpf(p, C.BPF_PROG_LOAD, { prog_type: 31, insns, insn_cnt: 2, license: "GPL", prog_flags: 16 });
  const a = load();
  load();
  assert.equal(p.user.locked_vm, 2);
  throwsErrno(load, EPERM, /RLIMIT_MEMLOCK/);
  assert.equal(p.user.locked_vm, 2);
  k.close(p, a);
  k.quiesce();
  assert.equal(p.user.locked_vm, 1);
  load();
});
