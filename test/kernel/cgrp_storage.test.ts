/**
 * BPF_MAP_TYPE_CGRP_STORAGE (src/kernel/bpf_cgrp_storage.ts): creation rules and the syscall side
 * keyed by a cgroup directory fd (compared with the host kernel where bpf() is allowed), the
 * helpers from clang output (bpf/cgrp_storage.bpf.c, built against the host's vmlinux.h) with the
 * same results and verifier verdicts as the host's 6.18, and storage going with its cgroup.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { BtfBuilder } from "../../src/btf/builder.js";
import { cgroup_get, cgroup_open, cgroup_put, cgroupRoot } from "../../src/kernel/cgroup.js";
import { Kernel } from "../../src/kernel/kernel.js";
import type { BpfHandle } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { BPF_F_NO_PREALLOC, BPF_NOEXIST, bpf_cmd, bpf_map_type } from "../../src/uapi/bpf.js";
import { BTF_INT_SIGNED } from "../../src/uapi/btf.js";
import { EACCES, EBADF, EEXIST, EINVAL, ENOENT, ENOTSUPP } from "../../src/uapi/errno.js";
import { repoRoot } from "../verifier/helpers.js";
import { checkRefusals, compareWithHost, hostSkip } from "../verifier/object_verdicts.js";
import { skip as hostMapSkip, hostOps, type MapOp, ourOps } from "./host_oracle.js";
import { readU64, throwsErrno, u32, u64 } from "./util.js";

const C = bpf_cmd;
const T = bpf_map_type;
const OBJ = join(repoRoot(), "bpf/obj/cgrp_storage.bpf.o");

/** BTF: int (1), long (2), struct val { long a; } (3). */
function btf(): Uint8Array {
  const b = new BtfBuilder();
  b.addInt("int", 4, BTF_INT_SIGNED);
  const long = b.addInt("long", 8, BTF_INT_SIGNED);
  b.addStructAuto("val", [{ name: "a", type: long }]);
  return b.build();
}

function setup() {
  const k = new Kernel({ verifier: true });
  const p = k.newProcess();
  const data = btf();
  const btfFd = k.bpf(p, C.BPF_BTF_LOAD, { btf: data, btf_size: data.length });
  const create = (extra: object = {}) =>
    k.bpf(p, C.BPF_MAP_CREATE, {
      map_type: T.BPF_MAP_TYPE_CGRP_STORAGE,
      key_size: 4,
      value_size: 8,
      max_entries: 0,
      map_flags: BPF_F_NO_PREALLOC,
      btf_fd: btfFd,
      btf_key_type_id: 1,
      btf_value_type_id: 3,
      ...extra,
    });
  const root = cgroupRoot(k);
  assert.ok(root);
  return { k, p, create, root };
}

test("CGRP_STORAGE creation: BPF_F_NO_PREALLOC, max_entries 0, an int key and BTF are required", () => {
  const { create } = setup();
  create();
  throwsErrno(() => create({ map_flags: 0 }), EINVAL);
  throwsErrno(() => create({ max_entries: 1 }), EINVAL);
  throwsErrno(() => create({ btf_key_type_id: 0, btf_value_type_id: 0 }), EINVAL);
  throwsErrno(() => create({ btf_key_type_id: 2, key_size: 8 }), EINVAL);
  throwsErrno(() => create({ map_flags: BPF_F_NO_PREALLOC | 2 }), EINVAL);
  throwsErrno(() => create({ value_size: 4 }), EINVAL);
});

test("CGRP_STORAGE through a cgroup directory fd: update, lookup, delete; EBADF, ENOENT, ENOTSUPP", () => {
  const { k, p, create, root } = setup();
  const fd = create();
  const a = root.mkdir(root.cgrp, "a");
  const afd = cgroup_open(k, p, "/a");
  const rootFd = cgroup_open(k, p, "/");
  const v = new Uint8Array(8);
  const lookup = (cfd: number) => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: u32(cfd), value: v });
  throwsErrno(() => lookup(afd), ENOENT);
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: u32(afd), value: u64(7), flags: BPF_NOEXIST });
  throwsErrno(
    () => k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: u32(afd), value: u64(8), flags: BPF_NOEXIST }),
    EEXIST,
  );
  lookup(afd);
  assert.equal(readU64(v), 7n);
  // One value per cgroup: the root has none.
  throwsErrno(() => lookup(rootFd), ENOENT);
  // Keys that are not cgroup directories: a bad fd, stdin, the map itself.
  throwsErrno(() => lookup(99), EBADF);
  throwsErrno(() => lookup(0), EBADF);
  throwsErrno(() => lookup(fd), EBADF);
  throwsErrno(
    () => k.bpf(p, C.BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key: u32(afd), next_key: new Uint8Array(4) }),
    ENOTSUPP,
  );
  k.bpf(p, C.BPF_MAP_DELETE_ELEM, { map_fd: fd, key: u32(afd) });
  throwsErrno(() => k.bpf(p, C.BPF_MAP_DELETE_ELEM, { map_fd: fd, key: u32(afd) }), ENOENT);
  // Offline: the open directory no longer reaches the cgroup.
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: u32(afd), value: u64(9), flags: 0 });
  cgroup_get(a);
  root.rmdir(a);
  throwsErrno(() => lookup(afd), ENOENT);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: u32(afd), value: u64(1), flags: 0 }), ENOENT);
  // The value lives while the cgroup does (a reference is still held), and goes when it is freed.
  k.rcu.synchronizeRcu();
  assert.equal(a.bpf_cgrp_storage.size, 1);
  cgroup_put(a);
  k.rcu.synchronizeRcu();
  k.rcu.synchronizeRcu();
  assert.ok(a.freed);
  assert.equal(a.bpf_cgrp_storage.size, 0);
});

test("CGRP_STORAGE: freeing the map drops every cgroup's value", () => {
  const { k, p, create, root } = setup();
  const fd = create();
  const b = root.mkdir(root.cgrp, "b");
  for (const path of ["/", "/b"])
    k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: u32(cgroup_open(k, p, path)), value: u64(1), flags: 0 });
  assert.equal(b.bpf_cgrp_storage.size, 1);
  assert.equal(root.cgrp.bpf_cgrp_storage.size, 1);
  p.files.close(fd);
  k.rcu.synchronizeRcu();
  assert.equal(b.bpf_cgrp_storage.size, 0);
  assert.equal(root.cgrp.bpf_cgrp_storage.size, 0);
});

test("CGRP_STORAGE creation and syscall errnos equal the host kernel's", { skip: hostMapSkip }, () => {
  const hex = Buffer.from(btf()).toString("hex");
  const NP = BPF_F_NO_PREALLOC;
  const seqs: MapOp[][] = [
    [
      ["btf", hex],
      ["create_btf", T.BPF_MAP_TYPE_CGRP_STORAGE, 4, 8, 0, NP, 1, 3],
      // stdin and an fd that is not open are not cgroup directories
      ["lookup", "00000000"],
      ["lookup", "63000000"],
      ["update", "00000000", "0100000000000000", 0],
      ["delete", "63000000"],
      ["next", null],
      ["lookup_and_delete", "00000000"],
    ],
    [
      ["btf", hex],
      ["create_btf", T.BPF_MAP_TYPE_CGRP_STORAGE, 4, 8, 0, 0, 1, 3],
    ],
    [
      ["btf", hex],
      ["create_btf", T.BPF_MAP_TYPE_CGRP_STORAGE, 4, 8, 1, NP, 1, 3],
    ],
    [
      ["btf", hex],
      ["create_btf", T.BPF_MAP_TYPE_CGRP_STORAGE, 4, 8, 0, NP | 2, 1, 3],
    ],
    [
      ["btf", hex],
      ["create_btf", T.BPF_MAP_TYPE_CGRP_STORAGE, 4, 4, 0, NP, 1, 3],
    ],
    [
      ["btf", hex],
      ["create_btf", T.BPF_MAP_TYPE_CGRP_STORAGE, 4, 8, 0, NP, 2, 3],
    ],
    [["create", T.BPF_MAP_TYPE_CGRP_STORAGE, 4, 8, 0, NP]],
  ];
  for (const seq of seqs) assert.deepEqual(ourOps(seq), hostOps(seq), JSON.stringify(seq[1]));
});

/** Program runs as host_libbpf_run.py names them: PROG[:CTX_HEX] (struct cgrp_arg { u64 id, n; }). */
const RUNS = [
  "storage:01000000000000000000000000000000",
  "bump:01000000000000000000000000000000",
  "bump:01000000000000000000000000000000",
  "null_cgroup",
  "maybe_null:ffffff00000000000000000000000000",
];
/** What each run gives: the return value (u32) and the context copied back. */
const WANT = [
  { retval: 0, ctx: "01000000000000002a00000000000000" },
  { retval: 0, ctx: "01000000000000000100000000000000" },
  { retval: 0, ctx: "01000000000000000200000000000000" },
  { retval: -EINVAL >>> 0, ctx: "" },
  { retval: -EINVAL >>> 0, ctx: "ffffff00000000000000000000000000" },
];
const BAD: [string, number, string[], number][] = [
  ["bad_task", EACCES, ["R2 is of type task_struct but cgroup is expected"], 6],
  ["bad_map_type", EINVAL, ["cannot pass map_type 1 into func bpf_cgrp_storage_get#210"], 10],
  ["bad_lookup", EINVAL, ["cannot pass map_type 32 into func bpf_map_lookup_elem#1"], 6],
];

function ourRuns(): { h: BpfHandle; obj: BpfObject; out: { retval: number; ctx: string }[] } {
  const k = new Kernel({ verifier: true });
  const h = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(OBJ);
  obj.load(h);
  const out = RUNS.map((r) => {
    const [name, hex = ""] = r.split(":");
    const ctx = Buffer.from(hex, "hex");
    const attr = {
      prog_fd: obj.findProgram(name)?.fd ?? -1,
      ctx_in: ctx.length ? new Uint8Array(ctx) : undefined,
      ctx_size_in: ctx.length,
      retval: 0,
    };
    assert.equal(k.bpf(h.process, C.BPF_PROG_TEST_RUN, attr), 0, name);
    return { retval: attr.retval >>> 0, ctx: attr.ctx_in ? Buffer.from(attr.ctx_in).toString("hex") : "" };
  });
  return { h, obj, out };
}

test("cgrp_storage.bpf.o: get with and without F_CREATE, delete, a NULL cgroup; the value read back by cgroup fd", () => {
  const { h, obj, out } = ourRuns();
  assert.deepEqual(out, WANT);
  // bump left 2 in the root cgroup's value: userspace reads it through the root's directory fd.
  const map = obj.findMap("cgrp_map");
  assert.ok(map);
  const v = new Uint8Array(16);
  const key = u32(cgroup_open(h.kernel, h.process, "/"));
  h.kernel.bpf(h.process, C.BPF_MAP_LOOKUP_ELEM, { map_fd: map.fd, key, value: v });
  assert.equal(readU64(v), 2n);
});

test("cgrp_storage bad programs: refused with the kernel's errno, message and instruction", () => {
  checkRefusals(OBJ, BAD);
});

test("the host kernel verifies and runs cgrp_storage.bpf.o as we do", { skip: hostSkip() }, () => {
  if (!compareWithHost(OBJ, ["storage", "bump", "null_cgroup", "maybe_null"], BAD)) return;
  const script = join(repoRoot(), "test/fixtures/verifier/host_libbpf_run.py");
  const r = spawnSync("python3", [script, OBJ, ...RUNS], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const host = (JSON.parse(r.stdout) as { err: number; retval: number; ctx: string }[]).map((x) => {
    assert.equal(x.err, 0);
    return { retval: x.retval, ctx: x.ctx };
  });
  assert.deepEqual(host, WANT);
});
