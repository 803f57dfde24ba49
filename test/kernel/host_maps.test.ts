/**
 * Per-CPU, LRU, queue and stack maps against the host kernel: creation errnos, and element commands
 * step by step with their results (the helper runs on CPU 0, and so do we; both have the host's
 * possible CPUs). LRU eviction must pick the same victims as the kernel's bpf_lru_list.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import type { MapCreateAttr } from "../../src/kernel/bpf_attr.js";
import {
  BPF_EXIST,
  BPF_F_NO_COMMON_LRU,
  BPF_F_NO_PREALLOC,
  BPF_F_NUMA_NODE,
  BPF_F_RDONLY_PROG,
  BPF_NOEXIST,
  bpf_cmd,
  bpf_map_type,
} from "../../src/uapi/bpf.js";
import { BpfError } from "../../src/uapi/errno.js";
import { host, hostOps, type MapOp, mapCreateBytes, ourOps, skip } from "./host_oracle.js";
import { boot } from "./util.js";

const T = bpf_map_type;

function possibleCpus(): number {
  try {
    const s = readFileSync("/sys/devices/system/cpu/possible", "utf8").trim();
    return s.split(",").reduce((n, r) => {
      const [a, b] = r.split("-").map(Number);
      return n + (b === undefined ? 1 : b - a + 1);
    }, 0);
  } catch {
    return 1;
  }
}
const NCPU = possibleCpus();

const key = (n: number) => n.toString(16).padStart(2, "0").padEnd(8, "0");
const val = (n: number, size = 8) =>
  n
    .toString(16)
    .padStart(2, "0")
    .padEnd(size * 2, "0");
/** A per-CPU value: CPU c's copy is `n + c`, each round_up(size, 8) bytes. */
const pval = (n: number, size: number) => {
  const r = Math.ceil(size / 8) * 8;
  return Array.from({ length: NCPU }, (_, c) => val(n + c, r)).join("");
};

test("MAP_CREATE errnos of per-CPU, LRU, queue and stack maps equal the host kernel's", { skip }, () => {
  const PA = { map_type: T.BPF_MAP_TYPE_PERCPU_ARRAY, key_size: 4, value_size: 8, max_entries: 4 };
  const PH = { ...PA, map_type: T.BPF_MAP_TYPE_PERCPU_HASH };
  const L = { ...PA, map_type: T.BPF_MAP_TYPE_LRU_HASH };
  const LP = { ...PA, map_type: T.BPF_MAP_TYPE_LRU_PERCPU_HASH };
  const Q = { map_type: T.BPF_MAP_TYPE_QUEUE, key_size: 0, value_size: 8, max_entries: 4 };
  const S = { ...Q, map_type: T.BPF_MAP_TYPE_STACK };
  const cases: MapCreateAttr[] = [
    PA,
    { ...PA, key_size: 8 },
    { ...PA, value_size: 32768 },
    { ...PA, value_size: 32769 },
    { ...PA, map_flags: BPF_F_NUMA_NODE },
    { ...PA, map_flags: BPF_F_NO_PREALLOC },
    { ...PA, map_flags: 1 << 10 /* BPF_F_MMAPABLE */ },
    PH,
    { ...PH, map_flags: BPF_F_NO_PREALLOC },
    { ...PH, value_size: 32769 },
    { ...PH, map_flags: BPF_F_NUMA_NODE },
    { ...PH, map_flags: BPF_F_NO_COMMON_LRU },
    { ...PH, key_size: 0 },
    L,
    { ...L, map_flags: BPF_F_NO_PREALLOC },
    { ...L, map_flags: BPF_F_NO_COMMON_LRU },
    { ...L, map_flags: BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE },
    { ...L, map_flags: BPF_F_NUMA_NODE },
    { ...L, max_entries: 0 },
    LP,
    { ...LP, map_flags: BPF_F_NUMA_NODE },
    { ...LP, map_flags: BPF_F_NO_PREALLOC },
    Q,
    S,
    { ...Q, key_size: 4 },
    { ...Q, value_size: 0 },
    { ...Q, max_entries: 0 },
    { ...Q, map_flags: BPF_F_NO_PREALLOC },
    { ...S, map_flags: BPF_F_RDONLY_PROG },
    { ...Q, value_size: (1 << 22) + 1 },
  ];
  for (const c of cases) {
    const { k, p } = boot({ nrCpus: NCPU });
    let ours = 0;
    try {
      k.bpf(p, bpf_cmd.BPF_MAP_CREATE, c);
    } catch (e) {
      if (!(e instanceof BpfError)) throw e;
      ours = -e.errno;
    }
    assert.equal(ours, host(bpf_cmd.BPF_MAP_CREATE, mapCreateBytes(c)), JSON.stringify(c));
  }
});

function compare(seq: MapOp[]): void {
  assert.deepEqual(ourOps(seq, NCPU), hostOps(seq), JSON.stringify(seq[0]));
}

test("PERCPU_ARRAY from the syscall: every CPU's value, round_up(value_size, 8) apart, as the host", { skip }, () => {
  const vs = 12;
  compare([
    ["create", T.BPF_MAP_TYPE_PERCPU_ARRAY, 4, vs, 3, 0],
    ["vsize", 16 * NCPU],
    ["lookup", key(1)],
    ["update", key(1), pval(0x10, vs), 0],
    ["lookup", key(1)],
    ["update", key(1), pval(0x20, vs), BPF_NOEXIST],
    ["update", key(1), pval(0x20, vs), BPF_EXIST],
    ["update", key(2), pval(0x30, vs), 4],
    ["update", key(2), pval(0x30, vs), 8],
    ["update", key(3), pval(0x30, vs), 0],
    ["lookup", key(3)],
    ["lookup", key(1)],
    ["delete", key(1)],
    ["next", null],
    ["next", key(2)],
    ["lookup_and_delete", key(1)],
  ]);
});

test("PERCPU_HASH and LRU_PERCPU_HASH from the syscall, as the host", { skip }, () => {
  for (const [type, flags] of [
    [T.BPF_MAP_TYPE_PERCPU_HASH, 0],
    [T.BPF_MAP_TYPE_PERCPU_HASH, BPF_F_NO_PREALLOC],
    [T.BPF_MAP_TYPE_LRU_PERCPU_HASH, 0],
  ]) {
    compare([
      ["create", type, 4, 4, 2, flags],
      ["vsize", 8 * NCPU],
      ["lookup", key(1)],
      ["update", key(1), pval(0x10, 4), BPF_EXIST],
      ["update", key(1), pval(0x10, 4), 0],
      ["update", key(1), pval(0x20, 4), BPF_NOEXIST],
      ["update", key(1), pval(0x30, 4), BPF_EXIST],
      ["lookup", key(1)],
      ["update", key(2), pval(0x40, 4), 4],
      ["update", key(2), pval(0x40, 4), 0],
      ["lookup", key(2)],
      ["lookup_and_delete", key(2)],
      ["lookup", key(2)],
      ["delete", key(2)],
      ["delete", key(1)],
      ["next", null],
    ]);
  }
});

/** Fill an LRU map past capacity, refreshing some keys (an update of a present key sets its reference bit), then see who is left. */
function lruSeq(type: number, flags: number, max: number, n: number, refresh: (i: number) => boolean): MapOp[] {
  const seq: MapOp[] = [["create", type, 4, 8, max, flags]];
  if (type === T.BPF_MAP_TYPE_LRU_PERCPU_HASH) seq.push(["vsize", 8 * NCPU]);
  const v = (i: number) => (type === T.BPF_MAP_TYPE_LRU_PERCPU_HASH ? pval(i, 8) : val(i));
  for (let i = 1; i <= n; i++) {
    seq.push(["update", key(i), v(i), 0]);
    if (refresh(i)) seq.push(["update", key(Math.max(1, i - 2)), v(i), BPF_EXIST]);
    if (i % 5 === 0) seq.push(["update", key(i - 1), v(i), BPF_NOEXIST]);
  }
  for (let i = 1; i <= n; i++) seq.push(["lookup", key(i)]);
  return seq;
}

test("LRU_HASH evicts the same elements as the host kernel (common LRU and BPF_F_NO_COMMON_LRU)", { skip }, () => {
  for (const [type, flags] of [
    [T.BPF_MAP_TYPE_LRU_HASH, 0],
    [T.BPF_MAP_TYPE_LRU_HASH, BPF_F_NO_COMMON_LRU],
    [T.BPF_MAP_TYPE_LRU_PERCPU_HASH, 0],
    [T.BPF_MAP_TYPE_LRU_PERCPU_HASH, BPF_F_NO_COMMON_LRU],
  ]) {
    for (const [max, n] of [
      [4, 9],
      [16, 40],
      [300, 700],
    ]) {
      compare(lruSeq(type, flags, max, n, (i) => i % 3 === 0));
      compare(lruSeq(type, flags, max, n, (i) => i % 7 < 4));
    }
  }
});

test("QUEUE and STACK from the syscall: push, peek, pop, BPF_EXIST overwriting the oldest, errnos, as the host", {
  skip,
}, () => {
  for (const type of [T.BPF_MAP_TYPE_QUEUE, T.BPF_MAP_TYPE_STACK]) {
    compare([
      ["create", type, 0, 4, 3, 0],
      ["lookup", null],
      ["lookup_and_delete", null],
      ["update", null, val(1, 4), 0],
      ["update", null, val(2, 4), 0],
      ["update", null, val(3, 4), 0],
      ["update", null, val(4, 4), 0],
      ["update", null, val(4, 4), BPF_NOEXIST],
      ["update", null, val(4, 4), 3],
      ["update", null, val(4, 4), 4],
      ["update", null, val(4, 4), BPF_EXIST],
      ["lookup", null],
      ["lookup_and_delete", null],
      ["update", null, val(5, 4), BPF_EXIST],
      ["update", null, val(6, 4), BPF_EXIST],
      ["lookup_and_delete", null],
      ["lookup_and_delete", null],
      ["lookup_and_delete", null],
      ["lookup_and_delete", null],
      ["delete", null],
      ["next", null],
    ]);
  }
});
