import assert from "node:assert/strict";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import * as lib from "../../src/loader/bpf.js";
import { BPF_NOEXIST, bpf_attach_type, bpf_cmd, bpf_map_type, bpf_prog_type } from "../../src/uapi/bpf.js";
import { BpfError, EBADF, EEXIST, EINVAL, ENOENT, EPERM } from "../../src/uapi/errno.js";
import { retProg, u32, u64, userBtf } from "../kernel/util.js";

function handle(privileged = true) {
  const kernel = new Kernel();
  return { kernel, process: kernel.newProcess({ privileged }) };
}

/** The errno the typed kernel API throws for the same call (0 if it succeeds). */
function kernelErrno(fn: () => unknown): number {
  try {
    fn();
    return 0;
  } catch (e) {
    if (e instanceof BpfError) return e.errno;
    throw e;
  }
}

test("libbpf convention: fds on success, negative errno on failure, never a throw for a user error", () => {
  const k = handle();
  const fd = lib.bpf_map_create(k, bpf_map_type.BPF_MAP_TYPE_HASH, "h", 4, 8, 1, {});
  assert.ok(fd >= 3);
  assert.equal(lib.bpf_map_update_elem(k, fd, u32(1), u64(5), BPF_NOEXIST), 0);
  assert.equal(lib.bpf_map_update_elem(k, fd, u32(1), u64(5), BPF_NOEXIST), -EEXIST);
  const v = new Uint8Array(8);
  assert.equal(lib.bpf_map_lookup_elem(k, fd, u32(1), v), 0);
  assert.equal(v[0], 5);
  assert.equal(lib.bpf_map_lookup_elem(k, fd, u32(2), v), -ENOENT);
  const next = new Uint8Array(4);
  assert.equal(lib.bpf_map_get_next_key(k, fd, null, next), 0);
  assert.equal(next[0], 1);
  assert.equal(lib.bpf_map_delete_elem(k, fd, u32(1)), 0);
  assert.equal(lib.bpf_map_delete_elem(k, fd, u32(1)), -ENOENT);
  assert.equal(lib.bpf_map_freeze(k, fd), 0);
  assert.equal(lib.bpf_map_update_elem(k, fd, u32(1), u64(5), 0), -EPERM);
  assert.equal(lib.close(k, fd), 0);
  assert.equal(lib.close(k, fd), -EBADF);
  assert.equal(lib.bpf_map_lookup_elem(k, 42, u32(1), v), -EBADF);
  assert.equal(lib.bpf_map_create(k, 9999, "x", 4, 8, 1), -EINVAL);
});

test("the bpf.h API and the typed kernel API agree on every outcome", () => {
  const a = handle();
  const b = handle();
  const cases: [() => number, () => unknown][] = [
    [
      () => lib.bpf_map_create(a, bpf_map_type.BPF_MAP_TYPE_ARRAY, "ok", 4, 8, 1),
      () =>
        b.kernel.bpf(b.process, bpf_cmd.BPF_MAP_CREATE, {
          map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY,
          key_size: 4,
          value_size: 8,
          max_entries: 1,
          map_name: "ok",
        }),
    ],
    [
      () => lib.bpf_map_create(a, bpf_map_type.BPF_MAP_TYPE_ARRAY, "bad-name", 4, 8, 1),
      () =>
        b.kernel.bpf(b.process, bpf_cmd.BPF_MAP_CREATE, {
          map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY,
          key_size: 4,
          value_size: 8,
          max_entries: 1,
          map_name: "bad-name",
        }),
    ],
    [
      () => lib.bpf_map_update_elem(a, 3, u32(5), u64(1), 0),
      () => b.kernel.bpf(b.process, bpf_cmd.BPF_MAP_UPDATE_ELEM, { map_fd: 3, key: u32(5), value: u64(1) }),
    ],
    [
      () => lib.bpf_prog_load(a, bpf_prog_type.BPF_PROG_TYPE_SYSCALL, "p", "GPL", retProg(1), { prog_flags: 16 }),
      () =>
        b.kernel.bpf(b.process, bpf_cmd.BPF_PROG_LOAD, {
          prog_type: bpf_prog_type.BPF_PROG_TYPE_SYSCALL,
          insns: retProg(1),
          insn_cnt: 2,
          license: "GPL",
          prog_name: "p",
          prog_flags: 16,
        }),
    ],
    [
      () => lib.bpf_prog_load(a, bpf_prog_type.BPF_PROG_TYPE_SYSCALL, "p", "GPL", []),
      () =>
        b.kernel.bpf(b.process, bpf_cmd.BPF_PROG_LOAD, {
          prog_type: bpf_prog_type.BPF_PROG_TYPE_SYSCALL,
          insns: [],
          insn_cnt: 0,
          license: "GPL",
        }),
    ],
    [() => lib.bpf_link_detach(a, 3), () => b.kernel.bpf(b.process, bpf_cmd.BPF_LINK_DETACH, { link_fd: 3 })],
    [
      () => lib.bpf_map_get_fd_by_id(a, 77),
      () => b.kernel.bpf(b.process, bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: 77 }),
    ],
  ];
  for (const [viaLib, viaKernel] of cases) {
    const r = viaLib();
    const e = kernelErrno(viaKernel);
    if (e === 0) assert.ok(r >= 0, `lib gave ${r} where the kernel API succeeded`);
    else assert.equal(r, -e);
  }
});

test("libbpf truncates long object names instead of failing", () => {
  const k = handle();
  const fd = lib.bpf_map_create(k, bpf_map_type.BPF_MAP_TYPE_ARRAY, "a_very_long_map_name_indeed", 4, 8, 1);
  const info: Record<string, unknown> = {};
  assert.equal(lib.bpf_map_get_info_by_fd(k, fd, info), 0);
  assert.equal(info.name, "a_very_long_map");
  assert.equal(lib.bpf_prog_get_info_by_fd(k, fd, {}), -EINVAL, "a map fd is not a program");
});

test("bpf_prog_load: log options checked by libbpf; log_level 0 with a buffer retries at level 1 on failure", () => {
  const k = handle();
  const buf = new Uint8Array(512);
  assert.equal(lib.bpf_prog_load(k, 31, "p", "GPL", retProg(0), { log_level: 1 }), -EINVAL);
  assert.equal(lib.bpf_prog_load(k, 31, "p", "GPL", retProg(0), { log_level: 8, log_buf: buf }), -EINVAL);
  const bad = [
    ...retProg(0).slice(0, 1),
    { code: 0x18, dst: 1, src: 1, off: 0, imm: 55 },
    { code: 0, dst: 0, src: 0, off: 0, imm: 0 },
    ...retProg(0).slice(1),
  ];
  const opts: lib.BpfProgLoadOpts = { log_buf: buf, prog_flags: 16 };
  assert.equal(lib.bpf_prog_load(k, 31, "p", "GPL", bad, opts), -EBADF);
  assert.match(new TextDecoder().decode(buf.subarray(0, buf.indexOf(0))), /fd 55 is not pointing to valid bpf_map/);
  assert.ok((opts.log_true_size ?? 0) > 0);
});

test("bpf_btf_load: the same log option checks and level-1 retry as bpf_prog_load", () => {
  const k = handle();
  const buf = new Uint8Array(512);
  assert.equal(lib.bpf_btf_load(k, userBtf(), { log_level: 1 }), -EINVAL, "a level needs a buffer");
  assert.equal(lib.bpf_btf_load(k, userBtf(), { log_buf: buf, log_size: 0 }), -EINVAL, "a buffer needs a size");
  assert.equal(lib.bpf_prog_load(k, 31, "p", "GPL", retProg(0), { log_buf: buf, log_size: 0 }), -EINVAL);
  const opts: lib.BpfBtfLoadOpts = { log_buf: buf };
  assert.equal(lib.bpf_btf_load(k, new Uint8Array(8), opts), -EINVAL);
  assert.ok(buf.indexOf(0) > 0, "the level-1 retry wrote the failure into the buffer");
  assert.equal(opts.log_true_size, buf.indexOf(0) + 1);
});

test("test_run, info, ids and fd-by-id through the bpf.h API", () => {
  const k = handle();
  const pfd = lib.bpf_prog_load(k, bpf_prog_type.BPF_PROG_TYPE_SYSCALL, "seven", "GPL", retProg(7), {
    prog_flags: 16,
  });
  const opts: lib.BpfTestRunOpts = {};
  assert.equal(lib.bpf_prog_test_run_opts(k, pfd, opts), 0);
  assert.equal(opts.retval, 7);
  const info: Record<string, unknown> = {};
  assert.equal(lib.bpf_obj_get_info_by_fd(k, pfd, info), 0);
  const next = { id: 0 };
  assert.equal(lib.bpf_prog_get_next_id(k, 0, next), 0);
  assert.equal(next.id, info.id);
  assert.equal(lib.bpf_prog_get_next_id(k, next.id, next), -ENOENT);
  const again = lib.bpf_prog_get_fd_by_id(k, next.id);
  assert.ok(again > pfd);
  assert.equal(lib.bpf_btf_get_next_id(k, 0, next), 0, "vmlinux BTF has an id");
  const btfFd = lib.bpf_btf_load(k, userBtf());
  assert.ok(btfFd > 0);
  assert.equal(lib.bpf_btf_load(k, new Uint8Array(8)), -EINVAL);
  assert.equal(lib.bpf_map_get_next_id(k, 0, next), -ENOENT);
  assert.equal(lib.bpf_link_get_next_id(k, 0, next), -ENOENT);
  assert.equal(lib.bpf_link_get_fd_by_id(k, 1), -ENOENT);
  assert.equal(lib.bpf_btf_get_fd_by_id(k, 1) > 0, true);
  assert.equal(lib.bpf_link_create(k, pfd, 0, bpf_attach_type.BPF_XDP), -EINVAL);
  assert.equal(lib.bpf_link_update(k, pfd, pfd), -EINVAL);
  const u = handle(false);
  assert.equal(lib.bpf_map_create(u, bpf_map_type.BPF_MAP_TYPE_ARRAY, "x", 4, 8, 1), -EPERM);
  assert.equal(lib.bpf_map_get_fd_by_id_opts(k, 1, { open_flags: 3 << 3 }), -EINVAL);
});

test("lookup-and-delete and enable_stats through the bpf.h API", () => {
  const k = handle();
  const fd = lib.bpf_map_create(k, bpf_map_type.BPF_MAP_TYPE_HASH, "h", 4, 8, 4);
  assert.equal(lib.bpf_map_update_elem(k, fd, u32(3), u64(30)), 0);
  const v = new Uint8Array(8);
  assert.equal(lib.bpf_map_lookup_and_delete_elem(k, fd, u32(3), v), 0);
  assert.equal(v[0], 30);
  assert.equal(lib.bpf_map_lookup_and_delete_elem(k, fd, u32(3), v), -ENOENT);
  const s = lib.bpf_enable_stats(k, 0);
  assert.ok(s >= 3);
  assert.equal(k.kernel.sysctl.bpfStatsEnabled, 1);
  assert.equal(lib.close(k, s), 0);
  assert.equal(k.kernel.sysctl.bpfStatsEnabled, 0);
  assert.equal(lib.bpf_enable_stats(k, 9), -EINVAL);
});

test("batch operations through the bpf.h API report how many elements were processed", () => {
  const k = handle();
  const fd = lib.bpf_map_create(k, bpf_map_type.BPF_MAP_TYPE_HASH, "h", 4, 8, 4);
  const keys = new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0]);
  const values = new Uint8Array(16).fill(7);
  const n = { count: 2 };
  assert.equal(lib.bpf_map_update_batch(k, fd, keys, values, n), 0);
  assert.equal(n.count, 2);
  const outKeys = new Uint8Array(16);
  const outValues = new Uint8Array(32);
  const m = { count: 4 };
  assert.equal(lib.bpf_map_lookup_batch(k, fd, null, new Uint8Array(4), outKeys, outValues, m), -ENOENT);
  assert.equal(m.count, 2);
  const d = { count: 2 };
  assert.equal(lib.bpf_map_delete_batch(k, fd, keys, d), 0);
  assert.equal(
    lib.bpf_map_lookup_and_delete_batch(k, fd, null, new Uint8Array(4), outKeys, outValues, { count: 1 }),
    -ENOENT,
  );
});

test("pin and get through the bpf.h API", () => {
  const k = handle();
  const fd = lib.bpf_map_create(k, bpf_map_type.BPF_MAP_TYPE_ARRAY, "a", 4, 8, 1);
  assert.equal(lib.bpf_obj_pin(k, fd, "/sys/fs/bpf/a"), 0);
  assert.equal(lib.bpf_obj_pin(k, fd, "/sys/fs/bpf/a"), -17);
  assert.equal(lib.close(k, fd), 0);
  const again = lib.bpf_obj_get(k, "/sys/fs/bpf/a");
  assert.ok(again >= 3);
  assert.equal(lib.bpf_obj_get(k, "/sys/fs/bpf/none"), -ENOENT);
});
