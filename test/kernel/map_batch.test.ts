import assert from "node:assert/strict";
import { test } from "node:test";
import { bpf_cmd, bpf_map_type } from "../../src/uapi/bpf.js";
import { EINVAL, ENOENT, ENOTSUPP, EPERM } from "../../src/uapi/errno.js";
import { boot, readU32, readU64, throwsErrno } from "./util.js";

const C = bpf_cmd;

function packU32(vals: number[]): Uint8Array {
  const b = new Uint8Array(vals.length * 4);
  vals.forEach((v, i) => {
    new DataView(b.buffer).setUint32(i * 4, v, true);
  });
  return b;
}
function packU64(vals: number[]): Uint8Array {
  const b = new Uint8Array(vals.length * 8);
  vals.forEach((v, i) => {
    new DataView(b.buffer).setBigUint64(i * 8, BigInt(v), true);
  });
  return b;
}

test("batch update, then lookup in chunks with in/out batch tokens until ENOENT, then delete", () => {
  const { k, p } = boot();
  const fd = k.bpf(p, C.BPF_MAP_CREATE, {
    map_type: bpf_map_type.BPF_MAP_TYPE_HASH,
    key_size: 4,
    value_size: 8,
    max_entries: 8,
  });
  const up = { map_fd: fd, keys: packU32([1, 2, 3, 4, 5]), values: packU64([10, 20, 30, 40, 50]), count: 5 };
  k.bpf(p, C.BPF_MAP_UPDATE_BATCH, up);
  assert.equal(up.count, 5);
  const seen: [number, bigint][] = [];
  let token: Uint8Array | null = null;
  for (;;) {
    const keys = new Uint8Array(8);
    const values = new Uint8Array(16);
    const out_batch = new Uint8Array(4);
    const attr = { map_fd: fd, in_batch: token, out_batch, keys, values, count: 2 };
    let end = false;
    try {
      k.bpf(p, C.BPF_MAP_LOOKUP_BATCH, attr);
    } catch (e) {
      assert.equal((e as { errno: number }).errno, ENOENT);
      end = true;
    }
    for (let i = 0; i < attr.count; i++) seen.push([readU32(keys.subarray(i * 4)), readU64(values.subarray(i * 8))]);
    if (end) break;
    token = out_batch;
  }
  assert.deepEqual(seen, [
    [1, 10n],
    [2, 20n],
    [3, 30n],
    [4, 40n],
    [5, 50n],
  ]);
  const del = { map_fd: fd, keys: packU32([1, 2, 9]), count: 3 };
  throwsErrno(() => k.bpf(p, C.BPF_MAP_DELETE_BATCH, del), ENOENT);
  assert.equal(del.count, 2, "stopped at the missing key");
  const keys = new Uint8Array(12);
  const values = new Uint8Array(24);
  const lad = { map_fd: fd, keys, values, count: 3 };
  k.bpf(p, C.BPF_MAP_LOOKUP_AND_DELETE_BATCH, lad);
  assert.equal(lad.count, 3);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_BATCH, { map_fd: fd, keys, values, count: 3 }), ENOENT);
});

test("batch rules: arrays have lookup/update only, flags must be 0, access modes apply, count 0 does nothing", () => {
  const { k, p } = boot();
  const a = k.bpf(p, C.BPF_MAP_CREATE, {
    map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY,
    key_size: 4,
    value_size: 8,
    max_entries: 3,
  });
  const attr = { map_fd: a, keys: packU32([0, 1]), values: packU64([7, 8]), count: 2 };
  k.bpf(p, C.BPF_MAP_UPDATE_BATCH, attr);
  const keys = new Uint8Array(12);
  const values = new Uint8Array(24);
  const look = { map_fd: a, keys, values, count: 10 };
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_BATCH, look), ENOENT);
  assert.equal(look.count, 3, "every element of an array, then the end");
  assert.equal(readU64(values.subarray(8)), 8n);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_DELETE_BATCH, { map_fd: a, keys, count: 1 }), ENOTSUPP);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_AND_DELETE_BATCH, { map_fd: a, keys, values, count: 1 }), ENOTSUPP);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_BATCH, { map_fd: a, keys, values, count: 1, elem_flags: 2 }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_BATCH, { map_fd: a, keys, values, count: 1, flags: 1 }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_BATCH, { map_fd: a, keys, values, count: 1, extra: { x: 1 } }), EINVAL);
  assert.equal(k.bpf(p, C.BPF_MAP_LOOKUP_BATCH, { map_fd: a, count: 0 }), 0);
  k.bpf(p, C.BPF_MAP_FREEZE, { map_fd: a });
  throwsErrno(() => k.bpf(p, C.BPF_MAP_UPDATE_BATCH, attr), EPERM);
});
