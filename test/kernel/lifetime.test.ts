import assert from "node:assert/strict";
import { test } from "node:test";
import { bpf_cmd, bpf_map_type } from "../../src/uapi/bpf.js";
import { ENOENT } from "../../src/uapi/errno.js";
import { boot, exit, ldMapFd, mov64, throwsErrno } from "./util.js";

const C = bpf_cmd;
const ARRAY = { map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: 8, max_entries: 1 };

test("an fd keeps its map alive; the last close frees it and its id", () => {
  const { k, p } = boot();
  const fd = k.bpf(p, C.BPF_MAP_CREATE, ARRAY);
  const id = k.objGetInfo(p, fd).id as number;
  const map = k.map_idr.find(id)!;
  assert.equal(map.refcnt, 1);
  assert.equal(map.usercnt, 1);
  const fd2 = k.bpf(p, C.BPF_MAP_GET_FD_BY_ID, { map_id: id });
  assert.equal(map.refcnt, 2);
  assert.equal(map.usercnt, 2);
  k.close(p, fd);
  assert.equal(map.freed, false);
  k.close(p, fd2);
  assert.equal(map.refcnt, 0);
  assert.equal(map.freed, true);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_GET_FD_BY_ID, { map_id: id }), ENOENT);
});

test("a program's used map lives while the program does, after its fd is closed", () => {
  const { k, p } = boot();
  const mfd = k.bpf(p, C.BPF_MAP_CREATE, ARRAY);
  const mid = k.objGetInfo(p, mfd).id as number;
  const insns = [...ldMapFd(1, mfd), mov64(0, 0), exit()];
  const pfd = k.bpf(p, C.BPF_PROG_LOAD, { prog_type: 1, insns, insn_cnt: insns.length, license: "GPL" });
  assert.deepEqual(k.objGetInfo(p, pfd).map_ids, [mid]);
  k.close(p, mfd);
  const map = k.map_idr.find(mid)!;
  assert.equal(map.refcnt, 1, "held by the program");
  assert.equal(map.usercnt, 0);
  const again = k.bpf(p, C.BPF_MAP_GET_FD_BY_ID, { map_id: mid });
  k.close(p, again);
  const pid = k.objGetInfo(p, pfd).id as number;
  k.close(p, pfd);
  // The program is freed after an RCU grace period; its id goes at once.
  throwsErrno(() => k.bpf(p, C.BPF_PROG_GET_FD_BY_ID, { prog_id: pid }), ENOENT);
  assert.equal(map.freed, false, "the program (and so the map) waits for a grace period");
  k.quiesce();
  assert.equal(map.freed, true);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_GET_FD_BY_ID, { map_id: mid }), ENOENT);
});

test("a program being freed waits for an RCU reader that started before", () => {
  const { k, p } = boot();
  const pfd = k.bpf(p, C.BPF_PROG_LOAD, { prog_type: 1, insns: [mov64(0, 1), exit()], insn_cnt: 2, license: "GPL" });
  const prog = k.prog_idr.find(k.objGetInfo(p, pfd).id as number)!;
  const reader = k.rcu.rcuReadLock();
  k.close(p, pfd);
  k.quiesce();
  assert.equal(prog.freed, false);
  k.rcu.rcuReadUnlock(reader);
  k.quiesce();
  assert.equal(prog.freed, true);
});

test("process exit closes every fd", () => {
  const { k, p } = boot();
  const fd = k.bpf(p, C.BPF_MAP_CREATE, ARRAY);
  const map = k.map_idr.find(k.objGetInfo(p, fd).id as number)!;
  k.exit(p);
  assert.equal(map.freed, true);
  assert.deepEqual(p.files.list(), []);
});
