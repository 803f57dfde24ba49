import assert from "node:assert/strict";
import { test } from "node:test";
import { insn } from "../../src/isa/insn.js";
import { BPF_MEM, BPF_ST, BPF_W } from "../../src/isa/opcodes.js";
import { bpf_cmd, bpf_func_id, bpf_map_type, bpf_prog_type } from "../../src/uapi/bpf.js";
import { EACCES } from "../../src/uapi/errno.js";
import { RET_INTEGER } from "../../src/verifier/helper_protos.js";
import { add64, boot, call, exit, jeqImm, ldMapFd, ldxDw, mov64, mov64r, throwsErrno, u32, u64 } from "./util.js";

const C = bpf_cmd;
const stW = (dst: number, off: number, imm: number) => insn(BPF_ST | BPF_MEM | BPF_W, dst, 0, off, imm);

function lookup(mapFd: number, nullCheck: boolean) {
  return [
    ...ldMapFd(1, mapFd),
    stW(10, -4, 0),
    mov64r(2, 10),
    add64(2, -4),
    call(bpf_func_id.BPF_FUNC_map_lookup_elem),
    ...(nullCheck ? [jeqImm(0, 0, 2)] : []),
    ldxDw(0, 0, 0),
    exit(),
    ...(nullCheck ? [mov64(0, 0), exit()] : []),
  ];
}

test("with the verifier on, every load is checked: a missing NULL check is refused with the kernel's message", () => {
  const { k, p } = boot({ verifier: true });
  const m = k.bpf(p, C.BPF_MAP_CREATE, {
    // A hash map: lookups in an array with a constant in-range key are known non-NULL (v6.14+).
    map_type: bpf_map_type.BPF_MAP_TYPE_HASH,
    key_size: 4,
    value_size: 8,
    max_entries: 1,
  });
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: m, key: u32(0), value: u64(31) });
  const log_buf = new Uint8Array(4096);
  const bad = lookup(m, false);
  throwsErrno(
    () =>
      k.bpf(p, C.BPF_PROG_LOAD, {
        prog_type: bpf_prog_type.BPF_PROG_TYPE_SYSCALL,
        prog_flags: 16,
        insns: bad,
        insn_cnt: bad.length,
        license: "GPL",
        log_buf,
        log_size: 4096,
        log_level: 1,
      }),
    EACCES,
  );
  const log = new TextDecoder().decode(log_buf.subarray(0, log_buf.indexOf(0)));
  assert.match(log, /invalid mem access 'map_value_or_null'/);
  assert.equal(k.prog_idr.size, 0);
  const good = lookup(m, true);
  const fd = k.bpf(p, C.BPF_PROG_LOAD, {
    prog_type: bpf_prog_type.BPF_PROG_TYPE_SYSCALL,
    prog_flags: 16,
    insns: good,
    insn_cnt: good.length,
    license: "GPL",
  });
  const attr: { prog_fd: number; retval?: number } = { prog_fd: fd };
  k.bpf(p, C.BPF_PROG_TEST_RUN, attr);
  assert.equal(attr.retval, 31);
  const prog = k.prog_idr.find(k.objGetInfo(p, fd).id as number)!;
  assert.equal((prog.aux.verifier_result as { ok: boolean }).ok, true);
});

test("a helper registered with its prototype is known to the verifier; without one it is refused", () => {
  const { k, p } = boot({ verifier: true });
  k.registerHelper(240, () => 5);
  const prog = [call(240), exit()];
  const attr = { prog_type: bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER, insns: prog, insn_cnt: 2, license: "GPL" };
  assert.throws(
    () => k.bpf(p, C.BPF_PROG_LOAD, attr),
    (e: { errno?: number }) => e.errno === 22,
  );
  k.registerHelper(241, () => 6, { name: "bpf_test_helper", funcId: 241, retType: RET_INTEGER, argTypes: [] });
  const fd = k.bpf(p, C.BPF_PROG_LOAD, { ...attr, insns: [call(241), exit()] });
  const r: { prog_fd: number; retval?: number; data_in: Uint8Array; data_size_in: number } = {
    prog_fd: fd,
    data_in: new Uint8Array(14),
    data_size_in: 14,
  };
  k.bpf(p, C.BPF_PROG_TEST_RUN, r);
  assert.equal(r.retval, 6);
});
