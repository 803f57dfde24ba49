import assert from "node:assert/strict";
import { test } from "node:test";
import { Idr, INT_MAX } from "../../src/kernel/idr.js";
import { bpf_cmd, bpf_map_type } from "../../src/uapi/bpf.js";
import { ENOENT, ENOSPC } from "../../src/uapi/errno.js";
import { boot, throwsErrno } from "./util.js";

test("idr_alloc_cyclic: ids grow from 1, are not reused at once, wrap past INT_MAX and skip live ids", () => {
  const idr = new Idr<string>();
  assert.equal(idr.allocCyclic("a"), 1);
  assert.equal(idr.allocCyclic("b"), 2);
  idr.remove(1);
  assert.equal(idr.allocCyclic("c"), 3, "a freed id is not handed out again before the wrap");
  idr.setNext(INT_MAX);
  assert.equal(idr.allocCyclic("d"), INT_MAX);
  assert.equal(idr.allocCyclic("e"), 1, "wraps to 1, which is free again");
  assert.equal(idr.allocCyclic("f"), 4, "skips live 2 and 3");
  assert.deepEqual(idr.getNext(3), { id: 3, obj: "c" });
  assert.equal(idr.getNext(INT_MAX)?.obj, "d");
});

test("a full id space is ENOSPC", () => {
  const idr = new Idr<number>(1, 2);
  idr.allocCyclic(1);
  idr.allocCyclic(2);
  throwsErrno(() => idr.allocCyclic(3), ENOSPC);
});

test("map ids through bpf(): cyclic per kind, GET_NEXT_ID walks them, a freed id stops resolving", () => {
  const { k, p } = boot();
  const mk = () =>
    k.bpf(p, bpf_cmd.BPF_MAP_CREATE, {
      map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY,
      key_size: 4,
      value_size: 4,
      max_entries: 1,
    });
  const a = mk();
  const b = mk();
  const idA = k.objGetInfo(p, a).id as number;
  const idB = k.objGetInfo(p, b).id as number;
  assert.equal(idB, idA + 1);
  k.close(p, a);
  const c = mk();
  assert.equal(k.objGetInfo(p, c).id, idB + 1, "the freed id is not reused");
  const attr: { start_id: number; next_id?: number } = { start_id: 0 };
  k.bpf(p, bpf_cmd.BPF_MAP_GET_NEXT_ID, attr);
  assert.equal(attr.next_id, idB, "the freed id is skipped");
  throwsErrno(() => k.bpf(p, bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: idA }), ENOENT);
  throwsErrno(() => k.bpf(p, bpf_cmd.BPF_MAP_GET_NEXT_ID, { start_id: idB + 1 }), ENOENT);
  k.map_idr.setNext(INT_MAX);
  const d = mk();
  assert.equal(k.objGetInfo(p, d).id, INT_MAX);
  const e = mk();
  assert.equal(k.objGetInfo(p, e).id, idA, "wraps around and takes the lowest free id");
});
