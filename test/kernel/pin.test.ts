import assert from "node:assert/strict";
import { test } from "node:test";
import { bpf_obj_pins } from "../../src/kernel/inode.js";
import { BPF_F_RDONLY, bpf_cmd, bpf_map_type } from "../../src/uapi/bpf.js";
import { EEXIST, EINVAL, ENOENT, EPERM } from "../../src/uapi/errno.js";
import { boot, retProg, throwsErrno, u32, u64, userBtf } from "./util.js";

const C = bpf_cmd;
const ARRAY = { map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: 8, max_entries: 1 };

test("a pin holds the map (a user reference too) after every fd is closed; OBJ_GET reopens it; unlink frees it", () => {
  const { k, p } = boot();
  const fd = k.bpf(p, C.BPF_MAP_CREATE, ARRAY);
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: u32(0), value: u64(5) });
  const map = k.map_idr.find(k.objGetInfo(p, fd).id as number)!;
  k.bpf(p, C.BPF_OBJ_PIN, { pathname: "/sys/fs/bpf/counts", bpf_fd: fd });
  assert.equal(map.usercnt, 2);
  throwsErrno(() => k.bpf(p, C.BPF_OBJ_PIN, { pathname: "/sys/fs/bpf/counts", bpf_fd: fd }), EEXIST);
  k.close(p, fd);
  assert.equal(map.freed, false);
  const q = k.newProcess();
  const ro = k.bpf(q, C.BPF_OBJ_GET, { pathname: "/sys/fs/bpf/counts", file_flags: BPF_F_RDONLY });
  const v = new Uint8Array(8);
  k.bpf(q, C.BPF_MAP_LOOKUP_ELEM, { map_fd: ro, key: u32(0), value: v });
  assert.equal(v[0], 5);
  throwsErrno(() => k.bpf(q, C.BPF_MAP_UPDATE_ELEM, { map_fd: ro, key: u32(0), value: v }), EPERM);
  k.close(q, ro);
  assert.deepEqual(bpf_obj_pins(k), ["/sys/fs/bpf/counts"]);
  k.unlink("/sys/fs/bpf/counts");
  assert.equal(map.freed, true);
  throwsErrno(() => k.bpf(q, C.BPF_OBJ_GET, { pathname: "/sys/fs/bpf/counts" }), ENOENT);
  throwsErrno(() => k.unlink("/sys/fs/bpf/counts"), ENOENT);
});

test("pin rules: bpffs only, maps/programs/links only, programs reopen read-write only", () => {
  const { k, p } = boot();
  const prog = k.bpf(p, C.BPF_PROG_LOAD, { prog_type: 1, insns: retProg(0), insn_cnt: 2, license: "GPL" });
  throwsErrno(() => k.bpf(p, C.BPF_OBJ_PIN, { pathname: "/tmp/x", bpf_fd: prog }), EPERM);
  k.bpf(p, C.BPF_OBJ_PIN, { pathname: "/sys/fs/bpf/prog", bpf_fd: prog });
  throwsErrno(() => k.bpf(p, C.BPF_OBJ_GET, { pathname: "/sys/fs/bpf/prog", file_flags: BPF_F_RDONLY }), EINVAL);
  const again = k.bpf(p, C.BPF_OBJ_GET, { pathname: "/sys/fs/bpf/prog" });
  assert.equal(k.objGetInfo(p, again).id, k.objGetInfo(p, prog).id);
  const btf = userBtf();
  const bfd = k.bpf(p, C.BPF_BTF_LOAD, { btf, btf_size: btf.length });
  throwsErrno(() => k.bpf(p, C.BPF_OBJ_PIN, { pathname: "/sys/fs/bpf/btf", bpf_fd: bfd }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_OBJ_PIN, { pathname: "/sys/fs/bpf/p2", bpf_fd: prog, file_flags: 1 }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_OBJ_GET, { pathname: "/sys/fs/bpf/prog", bpf_fd: prog }), EINVAL);
});
