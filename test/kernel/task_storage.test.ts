/**
 * BPF_MAP_TYPE_TASK_STORAGE and the task model: creation rules and the syscall side keyed by pidfd
 * (compared with the host kernel where bpf() is allowed), bpf_task_storage_get/delete from a
 * program on `current` (bpf_get_current_task_btf), and storage going with its task.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { BtfBuilder } from "../../src/btf/builder.js";
import type { Insn } from "../../src/isa/insn.js";
import {
  BPF_F_NO_PREALLOC,
  BPF_LOCAL_STORAGE_GET_F_CREATE,
  BPF_NOEXIST,
  bpf_cmd,
  bpf_map_type,
  bpf_prog_type,
  bpf_func_id as F,
} from "../../src/uapi/bpf.js";
import { BTF_INT_SIGNED } from "../../src/uapi/btf.js";
import { EACCES, EBADF, EEXIST, EINVAL, ENOENT, ENOTSUPP } from "../../src/uapi/errno.js";
import { hostOps, type MapOp, ourOps, skip } from "./host_oracle.js";
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
  readU64,
  stDw,
  throwsErrno,
  u32,
  u64,
} from "./util.js";

const C = bpf_cmd;
const T = bpf_map_type;

/** BTF: int (1), long (2), struct val { long a; } (3). */
function btf(): Uint8Array {
  const b = new BtfBuilder();
  b.addInt("int", 4, BTF_INT_SIGNED);
  const long = b.addInt("long", 8, BTF_INT_SIGNED);
  b.addStructAuto("val", [{ name: "a", type: long }]);
  return b.build();
}

function setup() {
  const { k, p } = boot();
  const data = btf();
  const btfFd = k.bpf(p, C.BPF_BTF_LOAD, { btf: data, btf_size: data.length });
  const create = (extra: object = {}) =>
    k.bpf(p, C.BPF_MAP_CREATE, {
      map_type: T.BPF_MAP_TYPE_TASK_STORAGE,
      key_size: 4,
      value_size: 8,
      max_entries: 0,
      map_flags: BPF_F_NO_PREALLOC,
      btf_fd: btfFd,
      btf_key_type_id: 1,
      btf_value_type_id: 3,
      ...extra,
    });
  return { k, p, create };
}

test("TASK_STORAGE creation: BPF_F_NO_PREALLOC, max_entries 0, an int key and BTF are required", () => {
  const { create } = setup();
  create();
  throwsErrno(() => create({ map_flags: 0 }), EINVAL);
  throwsErrno(() => create({ max_entries: 1 }), EINVAL);
  throwsErrno(() => create({ btf_key_type_id: 0, btf_value_type_id: 0 }), EINVAL);
  throwsErrno(() => create({ btf_key_type_id: 2, key_size: 8 }), EINVAL);
  throwsErrno(() => create({ map_flags: BPF_F_NO_PREALLOC | 2 }), EINVAL);
  throwsErrno(() => create({ value_size: 4 }), EINVAL);
});

test("TASK_STORAGE from the syscall: keyed by pidfd, EBADF for other fds, no iteration", () => {
  const { k, p, create } = setup();
  const fd = create();
  const other = k.newProcess();
  const pidfd = k.pidfdOpen(p, other.pid);
  const v = new Uint8Array(8);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: u32(pidfd), value: v }), ENOENT);
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: u32(pidfd), value: u64(5), flags: 0 });
  throwsErrno(
    () => k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: u32(pidfd), value: u64(6), flags: BPF_NOEXIST }),
    EEXIST,
  );
  k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: u32(pidfd), value: v });
  assert.equal(readU64(v), 5n);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: u32(fd), value: v }), EBADF);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: u32(99), value: v }), EBADF);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key: u32(pidfd), next_key: v }), ENOTSUPP);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_AND_DELETE_ELEM, { map_fd: fd, key: u32(pidfd), value: v }), ENOTSUPP);
  k.bpf(p, C.BPF_MAP_DELETE_ELEM, { map_fd: fd, key: u32(pidfd) });
  throwsErrno(() => k.bpf(p, C.BPF_MAP_DELETE_ELEM, { map_fd: fd, key: u32(pidfd) }), ENOENT);
  // The task exits: its pidfd no longer reaches a task.
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: u32(pidfd), value: u64(7), flags: 0 });
  k.exit(other);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: u32(pidfd), value: v }), ENOENT);
});

test("TASK_STORAGE creation and syscall errnos equal the host kernel's", { skip }, () => {
  const hex = Buffer.from(btf()).toString("hex");
  const NP = BPF_F_NO_PREALLOC;
  const seqs: MapOp[][] = [
    [
      ["btf", hex],
      ["create_btf", T.BPF_MAP_TYPE_TASK_STORAGE, 4, 8, 0, NP, 1, 3],
      ["lookup", "00000000"],
      ["lookup", "63000000"],
      ["next", null],
      ["lookup_and_delete", "00000000"],
    ],
    [
      ["btf", hex],
      ["create_btf", T.BPF_MAP_TYPE_TASK_STORAGE, 4, 8, 0, 0, 1, 3],
    ],
    [
      ["btf", hex],
      ["create_btf", T.BPF_MAP_TYPE_TASK_STORAGE, 4, 8, 1, NP, 1, 3],
    ],
    [
      ["btf", hex],
      ["create_btf", T.BPF_MAP_TYPE_TASK_STORAGE, 4, 8, 0, NP | 2, 1, 3],
    ],
    [
      ["btf", hex],
      ["create_btf", T.BPF_MAP_TYPE_TASK_STORAGE, 4, 8, 0, NP | (1 << 9), 1, 3],
    ],
    [
      ["btf", hex],
      ["create_btf", T.BPF_MAP_TYPE_TASK_STORAGE, 4, 4, 0, NP, 1, 3],
    ],
    [
      ["btf", hex],
      ["create_btf", T.BPF_MAP_TYPE_TASK_STORAGE, 4, 8, 0, NP, 2, 3],
    ],
    [["create", T.BPF_MAP_TYPE_TASK_STORAGE, 4, 8, 0, NP]],
  ];
  for (const seq of seqs) assert.deepEqual(ourOps(seq), hostOps(seq), JSON.stringify(seq[1]));
});

test("bpf_task_storage_get/delete from a program on current, read back through the task's pidfd", () => {
  const { k, p, create } = setup();
  const map = create();
  // t = bpf_get_current_task_btf(); v = bpf_task_storage_get(map, t, 0, F_CREATE); if (!v) return 1;
  // *v += 1; return bpf_task_storage_delete(map, NULL) (-EINVAL)
  const prog: Insn[] = [
    call(F.BPF_FUNC_get_current_task_btf),
    mov64r(2, 0),
    ...ldMapFd(1, map),
    mov64(3, 0),
    mov64(4, BPF_LOCAL_STORAGE_GET_F_CREATE),
    call(F.BPF_FUNC_task_storage_get),
    jeqImm(0, 0, 8),
    ldxDw(1, 0, 0),
    add64(1, 1),
    { code: 0x7b, dst: 0, src: 1, off: 0, imm: 0 },
    ...ldMapFd(1, map),
    mov64(2, 0),
    call(F.BPF_FUNC_task_storage_delete),
    exit(),
    mov64(0, 1),
    exit(),
  ];
  const fd = k.bpf(p, C.BPF_PROG_LOAD, {
    prog_type: bpf_prog_type.BPF_PROG_TYPE_RAW_TRACEPOINT,
    insns: prog,
    insn_cnt: prog.length,
    license: "GPL",
  });
  for (let i = 0; i < 3; i++) {
    const attr: { prog_fd: number; retval?: number } = { prog_fd: fd };
    k.bpf(p, C.BPF_PROG_TEST_RUN, attr);
    assert.equal(attr.retval, -EINVAL >>> 0);
  }
  const v = new Uint8Array(8);
  k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: map, key: u32(k.pidfdOpen(p, p.pid)), value: v });
  assert.equal(readU64(v), 3n);
  // Another task has none.
  const q = k.newProcess();
  throwsErrno(
    () => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: map, key: u32(k.pidfdOpen(p, q.pid)), value: v }),
    ENOENT,
  );
});

test("the verifier: task storage needs a task_struct pointer and its own map type", () => {
  const { k, p, create } = setup();
  const map = create();
  const arr = k.bpf(p, C.BPF_MAP_CREATE, {
    map_type: T.BPF_MAP_TYPE_ARRAY,
    key_size: 4,
    value_size: 8,
    max_entries: 1,
  });
  const refused = (insns: Insn[], errno: number, msg: RegExp) => {
    const log = new Uint8Array(1 << 16);
    throwsErrno(
      () =>
        k.bpf(p, C.BPF_PROG_LOAD, {
          prog_type: bpf_prog_type.BPF_PROG_TYPE_RAW_TRACEPOINT,
          insns,
          insn_cnt: insns.length,
          license: "GPL",
          log_level: 1,
          log_buf: log,
          log_size: log.length,
        }),
      errno,
    );
    assert.match(new TextDecoder().decode(log.subarray(0, log.indexOf(0))), msg);
  };
  // A stack pointer is not a task.
  refused(
    [
      stDw(10, -8, 0),
      mov64r(2, 10),
      add64(2, -8),
      ...ldMapFd(1, map),
      mov64(3, 0),
      mov64(4, 0),
      call(F.BPF_FUNC_task_storage_get),
      mov64(0, 0),
      exit(),
    ],
    EACCES,
    /R2 type=fp expected=ptr_, trusted_ptr_, rcu_ptr_/,
  );
  // An array map is not task storage.
  refused(
    [
      call(F.BPF_FUNC_get_current_task_btf),
      mov64r(2, 0),
      ...ldMapFd(1, arr),
      mov64(3, 0),
      mov64(4, 0),
      call(F.BPF_FUNC_task_storage_get),
      mov64(0, 0),
      exit(),
    ],
    EINVAL,
    /cannot pass map_type 2 into func bpf_task_storage_get#156/,
  );
  // A task storage map is not for bpf_map_lookup_elem.
  refused(
    [
      stDw(10, -8, 0),
      mov64r(2, 10),
      add64(2, -8),
      ...ldMapFd(1, map),
      call(F.BPF_FUNC_map_lookup_elem),
      mov64(0, 0),
      exit(),
    ],
    EINVAL,
    /cannot pass map_type 29 into func bpf_map_lookup_elem#1/,
  );
});
