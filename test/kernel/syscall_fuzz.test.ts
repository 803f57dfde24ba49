import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { BpfError } from "../../src/uapi/errno.js";
import { boot } from "./util.js";

const FIELDS = [
  "map_type",
  "key_size",
  "value_size",
  "max_entries",
  "map_flags",
  "map_fd",
  "key",
  "value",
  "next_key",
  "flags",
  "prog_type",
  "insn_cnt",
  "insns",
  "license",
  "prog_flags",
  "expected_attach_type",
  "attach_btf_id",
  "bpf_fd",
  "start_id",
  "map_id",
  "prog_id",
  "btf",
  "btf_size",
  "prog_fd",
  "target_fd",
  "attach_type",
  "link_fd",
  "new_prog_fd",
  "ctx_in",
  "ctx_size_in",
  "data_in",
  "data_size_in",
  "repeat",
  "keys",
  "values",
  "count",
  "pathname",
  "map_name",
  "prog_name",
  "in_batch",
  "out_batch",
  "ctx_out",
  "data_out",
  "func_info",
  "func_info_cnt",
  "func_info_rec_size",
  "prog_btf_fd",
  "fd_array",
  "open_flags",
  "file_flags",
  "old_prog_fd",
  "btf_fd",
  "btf_key_type_id",
  "btf_value_type_id",
  "btf_vmlinux_value_type_id",
  "log_level",
  "log_buf",
  "log_size",
];

const value = fc.oneof(
  fc.integer({ min: -2, max: 40 }),
  fc.constantFrom(0, 1, 2, 4, 8, 16, 26, 27, 31, 44, 1 << 13, 0xffffffff),
  fc.uint8Array({ maxLength: 48 }),
  fc.constant(null),
  fc.constantFrom("GPL", "x", "/sys/fs/bpf/x"),
  fc.array(
    fc.record({
      code: fc.constantFrom(0x18, 0x95, 0xb7, 0x85, 0x79, 0x00, 0x07),
      dst: fc.integer({ min: 0, max: 11 }),
      src: fc.integer({ min: 0, max: 7 }),
      off: fc.integer({ min: -4, max: 4 }),
      imm: fc.integer({ min: -2, max: 200 }),
    }),
    { maxLength: 6 },
  ),
);

const randomCall = fc.record({
  cmd: fc.integer({ min: 0, max: 37 }),
  attr: fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 8 }),
});

const C = bpf_cmd;
const fd = fc.integer({ min: 2, max: 8 });
const buf = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
/** Mostly-valid calls, so that objects really get created, used, pinned, linked and closed. */
const templates = fc.oneof(
  fc.record({
    cmd: fc.constant(C.BPF_MAP_CREATE),
    attr: fc.record({
      map_type: fc.constantFrom(1, 2),
      key_size: fc.constant(4),
      value_size: fc.constantFrom(4, 8),
      max_entries: fc.integer({ min: 1, max: 4 }),
      map_flags: fc.constantFrom(0, 1, 8, 16, 128),
    }),
  }),
  fc.record({
    cmd: fc.constantFrom(
      C.BPF_MAP_UPDATE_ELEM,
      C.BPF_MAP_LOOKUP_ELEM,
      C.BPF_MAP_DELETE_ELEM,
      C.BPF_MAP_LOOKUP_AND_DELETE_ELEM,
    ),
    attr: fc.record({ map_fd: fd, key: buf(4), value: buf(8), flags: fc.constantFrom(0, 1, 2) }),
  }),
  fc.record({ cmd: fc.constant(C.BPF_MAP_FREEZE), attr: fc.record({ map_fd: fd }) }),
  fc.record({
    cmd: fc.constant(C.BPF_PROG_LOAD),
    attr: fd.map((m) => {
      const insns = [
        { code: 0x18, dst: 1, src: 1, off: 0, imm: m },
        { code: 0, dst: 0, src: 0, off: 0, imm: 0 },
        { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
        { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
      ];
      return { prog_type: 1, insns, insn_cnt: 4, license: "GPL" };
    }),
  }),
  fc.record({
    cmd: fc.constantFrom(C.BPF_OBJ_PIN, C.BPF_OBJ_GET),
    attr: fc.record({ bpf_fd: fd, pathname: fc.constantFrom("/sys/fs/bpf/a", "/sys/fs/bpf/b") }),
  }),
  fc.record({
    cmd: fc.constantFrom(C.BPF_MAP_GET_FD_BY_ID, C.BPF_PROG_GET_FD_BY_ID),
    attr: fc.record({ start_id: fc.integer({ min: 1, max: 6 }) }),
  }),
  fc.record({ cmd: fc.constant(-1), attr: fc.record({ fd }) }),
);

const call = fc.oneof(randomCall, templates, templates);

test("fuzz: any bpf() call returns a number or throws a BpfError; nothing leaks once every fd is closed", () => {
  fc.assert(
    fc.property(fc.array(call, { maxLength: 25 }), (calls) => {
      const { k, p } = boot();
      for (const { cmd, attr } of calls) {
        try {
          if (cmd === -1) {
            // close(2)
            k.close(p, (attr as { fd: number }).fd);
            continue;
          }
          const r = k.bpf(p, cmd, attr as never);
          assert.equal(typeof r, "number");
        } catch (e) {
          if (!(e instanceof BpfError)) throw e;
        }
      }
      k.exit(p);
      for (const path of [
        ...new Set(calls.map((c) => (c.attr as { pathname?: unknown }).pathname).filter((x) => typeof x === "string")),
      ]) {
        try {
          k.unlink(path as string);
        } catch (e) {
          if (!(e instanceof BpfError)) throw e;
        }
      }
      k.quiesce();
      assert.equal(k.map_idr.size, 0, "maps left");
      assert.equal(k.prog_idr.size, 0, "programs left");
      assert.equal(k.link_idr.size, 0, "links left");
      assert.equal(k.btf_idr.size, 1, "only vmlinux BTF left");
      assert.equal(p.user.locked_vm, 0, "memlock left charged");
    }),
    { numRuns: 400, seed: 7 },
  );
  assert.ok(bpf_cmd.BPF_MAP_CREATE === 0);
});
