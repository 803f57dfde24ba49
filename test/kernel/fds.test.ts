import assert from "node:assert/strict";
import { test } from "node:test";
import { BPF_F_RDONLY, BPF_F_WRONLY, bpf_cmd, bpf_map_type } from "../../src/uapi/bpf.js";
import { EBADF, EINVAL, EPERM } from "../../src/uapi/errno.js";
import { boot as bootDummy, createMap } from "../subsys/dummy/struct_ops_fixture.js";
import { boot, retProg, throwsErrno, u32, u64 } from "./util.js";

const C = bpf_cmd;
const ARRAY = { map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: 8, max_entries: 2 };

test("fds: lowest free fd from 3, close frees the slot, dup shares the object", () => {
  const { k, p } = boot();
  const a = k.bpf(p, C.BPF_MAP_CREATE, ARRAY);
  const b = k.bpf(p, C.BPF_MAP_CREATE, ARRAY);
  assert.deepEqual([a, b], [3, 4]);
  k.close(p, a);
  assert.equal(k.bpf(p, C.BPF_MAP_CREATE, ARRAY), 3);
  const d = k.dup(p, b);
  assert.equal(d, 5);
  assert.equal(k.objGetInfo(p, d).id, k.objGetInfo(p, b).id);
  k.close(p, b);
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: d, key: u32(0), value: u64(1) });
});

test("a closed fd is EBADF; an fd of the wrong kind is EINVAL", () => {
  const { k, p } = boot();
  const m = k.bpf(p, C.BPF_MAP_CREATE, ARRAY);
  const prog = k.bpf(p, C.BPF_PROG_LOAD, { prog_type: 1, insns: retProg(0), insn_cnt: 2, license: "GPL" });
  k.close(p, m);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: m, key: u32(0), value: new Uint8Array(8) }), EBADF);
  throwsErrno(() => k.close(p, m), EBADF);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: prog, key: u32(0), value: new Uint8Array(8) }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_PROG_TEST_RUN, { prog_fd: 99 }), EBADF);
  const m2 = k.bpf(p, C.BPF_MAP_CREATE, ARRAY);
  throwsErrno(() => k.bpf(p, C.BPF_PROG_TEST_RUN, { prog_fd: m2 }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_LINK_DETACH, { link_fd: m2 }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: 77 }), EBADF);
  const sock = k.socket(p);
  throwsErrno(() => k.bpf(p, C.BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: sock }), EINVAL);
  throwsErrno(
    () => k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, btf_key_type_id: 1, btf_value_type_id: 1, btf_fd: m2 }),
    EINVAL,
  );
  throwsErrno(
    () => k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, btf_key_type_id: 1, btf_value_type_id: 1, btf_fd: 99 }),
    EBADF,
  );
});

test("fds are per process", () => {
  const { k, p } = boot();
  const q = k.newProcess();
  const m = k.bpf(p, C.BPF_MAP_CREATE, ARRAY);
  throwsErrno(() => k.bpf(q, C.BPF_MAP_FREEZE, { map_fd: m }), EBADF);
});

test("BPF_F_RDONLY / BPF_F_WRONLY maps give read-only / write-only fds (EPERM otherwise)", () => {
  const { k, p } = boot();
  const ro = k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, map_flags: BPF_F_RDONLY });
  k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: ro, key: u32(0), value: new Uint8Array(8) });
  throwsErrno(() => k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: ro, key: u32(0), value: u64(1) }), EPERM);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_FREEZE, { map_fd: ro }), EPERM);
  const wo = k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, map_flags: BPF_F_WRONLY });
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: wo, key: u32(0), value: u64(1) });
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: wo, key: u32(0), value: new Uint8Array(8) }), EPERM);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_GET_NEXT_KEY, { map_fd: wo, key: null, next_key: new Uint8Array(4) }), EPERM);
  // The flags are fd modes, not map properties: map_flags does not keep them.
  assert.equal(k.objGetInfo(p, ro).map_flags, 0);
  // GET_FD_BY_ID with open_flags opens the same map read-only.
  const id = k.objGetInfo(p, wo).id as number;
  const rofd = k.bpf(p, C.BPF_MAP_GET_FD_BY_ID, { map_id: id, open_flags: BPF_F_RDONLY });
  const v = new Uint8Array(8);
  k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: rofd, key: u32(0), value: v });
  assert.equal(v[0], 1);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: rofd, key: u32(0), value: u64(2) }), EPERM);
});

test("MAP_FREEZE: syscall writes become EPERM, reads still work, a second freeze is EPERM (no write access left)", () => {
  const { k, p } = boot();
  const m = k.bpf(p, C.BPF_MAP_CREATE, ARRAY);
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: m, key: u32(1), value: u64(9) });
  k.bpf(p, C.BPF_MAP_FREEZE, { map_fd: m });
  throwsErrno(() => k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: m, key: u32(1), value: u64(1) }), EPERM, /frozen/);
  // map_get_sys_perms() drops write access of a frozen map before the frozen check: EPERM, not EBUSY.
  throwsErrno(() => k.bpf(p, C.BPF_MAP_FREEZE, { map_fd: m }), EPERM);
  const v = new Uint8Array(8);
  k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: m, key: u32(1), value: v });
  assert.equal(v[0], 9);
  assert.match(k.fdinfo(p, m), /frozen:\t1\n/);
});

test("fds 0-2 hold ordinary files: EINVAL where a BPF fd is expected, and a BPF object takes 0 once it is closed", () => {
  const { k, p } = boot();
  assert.deepEqual(p.files.list(), [0, 1, 2]);
  for (const fd of [0, 1, 2]) {
    throwsErrno(() => k.bpf(p, C.BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: fd }), EINVAL);
    throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: u32(0), value: new Uint8Array(8) }), EINVAL);
  }
  // btf_fd left 0 names stdin, not a missing fd
  throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, btf_key_type_id: 1, btf_value_type_id: 1 }), EINVAL);
  k.close(p, 0);
  assert.equal(k.bpf(p, C.BPF_MAP_CREATE, ARRAY), 0);
});

test("a struct_ops map created with btf_fd 0 is EINVAL (fd 0 is stdin)", () => {
  const r = bootDummy();
  throwsErrno(() => createMap(r, "bpf_dummy_ops", { btfFd: 0 }), EINVAL);
});
