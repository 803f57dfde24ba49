/**
 * Per-CPU and queue/stack maps from programs: a program sees its CPU's copy (bpf_get_smp_processor_id
 * tells which), bpf_map_lookup_percpu_elem reaches another CPU's, push/pop/peek copy values, and
 * the verifier keeps each helper to its map types (check_map_func_compatibility) and lets pop/peek
 * fill uninitialized stack (ARG_PTR_TO_UNINIT_MAP_VALUE) of value_size bytes.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Insn, insn } from "../../src/isa/insn.js";
import { BPF_ALU64, BPF_DW, BPF_MEM, BPF_STX, BPF_X } from "../../src/isa/opcodes.js";
import { BPF_F_TEST_RUN_ON_CPU, bpf_cmd, bpf_map_type, bpf_prog_type, bpf_func_id as F } from "../../src/uapi/bpf.js";
import { EACCES, EINVAL, ENXIO } from "../../src/uapi/errno.js";
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
} from "./util.js";

const C = bpf_cmd;
const T = bpf_map_type;
const stxDw = (dst: number, src: number, off: number): Insn => insn(BPF_STX | BPF_MEM | BPF_DW, dst, src, off, 0);
/** dst += src (64-bit). */
const addr = (dst: number, src: number): Insn => insn(BPF_ALU64 | BPF_X, dst, src, 0, 0);

function setup(nrCpus = 3) {
  const { k, p } = boot({ nrCpus });
  const load = (insns: Insn[], logBuf?: Uint8Array) =>
    k.bpf(p, C.BPF_PROG_LOAD, {
      prog_type: bpf_prog_type.BPF_PROG_TYPE_RAW_TRACEPOINT,
      insns,
      insn_cnt: insns.length,
      license: "GPL",
      log_level: logBuf ? 1 : 0,
      log_buf: logBuf,
      log_size: logBuf?.length ?? 0,
    });
  const run = (fd: number, cpu?: number) => {
    const attr: Record<string, unknown> = { prog_fd: fd };
    if (cpu !== undefined) Object.assign(attr, { flags: BPF_F_TEST_RUN_ON_CPU, cpu });
    k.bpf(p, C.BPF_PROG_TEST_RUN, attr);
    return attr.retval as number;
  };
  const refused = (insns: Insn[], errno: number, msg: RegExp) => {
    const log = new Uint8Array(1 << 16);
    throwsErrno(() => load(insns, log), errno);
    const text = new TextDecoder().decode(log.subarray(0, log.indexOf(0)));
    assert.match(text, msg);
  };
  return { k, p, load, run, refused };
}

/** key = 0 at fp-8; r2 = fp-8. */
const keyOnStack = (): Insn[] => [stDw(10, -8, 0), mov64r(2, 10), add64(2, -8)];

test("PERCPU_ARRAY: each CPU's program run writes its own copy; the syscall sees all of them", () => {
  const { k, p, load, run } = setup(3);
  const map = k.bpf(p, C.BPF_MAP_CREATE, {
    map_type: T.BPF_MAP_TYPE_PERCPU_ARRAY,
    key_size: 4,
    value_size: 8,
    max_entries: 2,
  });
  // r6 = cpu; v = lookup(&0); *v += cpu + 100; return cpu
  const fd = load([
    call(F.BPF_FUNC_get_smp_processor_id),
    mov64r(6, 0),
    ...keyOnStack(),
    ...ldMapFd(1, map),
    call(F.BPF_FUNC_map_lookup_elem),
    jeqImm(0, 0, 5),
    ldxDw(1, 0, 0),
    addr(1, 6),
    add64(1, 100),
    stxDw(0, 1, 0),
    mov64r(0, 6),
    exit(),
  ]);
  assert.equal(run(fd), 0);
  assert.equal(run(fd, 2), 2);
  assert.equal(run(fd, 2), 2);
  throwsErrno(() => run(fd, 3), ENXIO);
  const v = new Uint8Array(8 * 3);
  k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: map, key: u32(0), value: v });
  assert.deepEqual(
    [0, 1, 2].map((c) => readU64(v.subarray(c * 8))),
    [100n, 0n, 204n],
  );
});

test("bpf_map_lookup_percpu_elem reads another CPU's copy; a CPU past nr_cpu_ids gives NULL", () => {
  const { k, p, load, run } = setup(2);
  for (const type of [T.BPF_MAP_TYPE_PERCPU_ARRAY, T.BPF_MAP_TYPE_PERCPU_HASH, T.BPF_MAP_TYPE_LRU_PERCPU_HASH]) {
    const map = k.bpf(p, C.BPF_MAP_CREATE, { map_type: type, key_size: 4, value_size: 4, max_entries: 2 });
    const vals = new Uint8Array(16);
    new DataView(vals.buffer).setUint32(0, 7, true);
    new DataView(vals.buffer).setUint32(8, 9, true);
    k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: map, key: u32(0), value: vals });
    const prog = (cpu: number) =>
      load([
        ...keyOnStack(),
        ...ldMapFd(1, map),
        mov64(3, cpu),
        call(F.BPF_FUNC_map_lookup_percpu_elem),
        jeqImm(0, 0, 2),
        insn(0x61, 0, 0, 0, 0), // r0 = *(u32 *)(r0 + 0)
        exit(),
        mov64(0, 0xdead),
        exit(),
      ]);
    assert.equal(run(prog(0)), 7, `type ${type}`);
    assert.equal(run(prog(1)), 9, `type ${type}`);
    assert.equal(run(prog(2)), 0xdead, `type ${type}`);
  }
});

test("PERCPU_HASH: a program's insert sets its CPU's copy and zeroes the others; updates are in place", () => {
  const { k, p, load, run } = setup(2);
  const map = k.bpf(p, C.BPF_MAP_CREATE, {
    map_type: T.BPF_MAP_TYPE_PERCPU_HASH,
    key_size: 4,
    value_size: 8,
    max_entries: 4,
  });
  const prog = load([
    ...keyOnStack(),
    stDw(10, -16, 55),
    mov64r(3, 10),
    add64(3, -16),
    ...ldMapFd(1, map),
    mov64(4, 0),
    call(F.BPF_FUNC_map_update_elem),
    exit(),
  ]);
  assert.equal(run(prog, 1), 0);
  const v = new Uint8Array(16);
  k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: map, key: u32(0), value: v });
  assert.deepEqual([readU64(v), readU64(v.subarray(8))], [0n, 55n]);
  v.fill(0);
  new DataView(v.buffer).setBigUint64(0, 3n, true);
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: map, key: u32(0), value: v });
  assert.equal(run(prog, 0), 0);
  k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: map, key: u32(0), value: v });
  assert.deepEqual([readU64(v), readU64(v.subarray(8))], [55n, 0n]);
});

test("QUEUE and STACK from programs: push copies in, pop and peek fill an uninitialized stack buffer", () => {
  for (const [type, order] of [
    [T.BPF_MAP_TYPE_QUEUE, [11n, 12n]],
    [T.BPF_MAP_TYPE_STACK, [12n, 11n]],
  ] as const) {
    const { k, p, load, run } = setup(1);
    const map = k.bpf(p, C.BPF_MAP_CREATE, { map_type: type, key_size: 0, value_size: 8, max_entries: 2 });
    const push = (n: number) =>
      load([
        stDw(10, -8, n),
        mov64r(2, 10),
        add64(2, -8),
        ...ldMapFd(1, map),
        mov64(3, 0),
        call(F.BPF_FUNC_map_push_elem),
        exit(),
      ]);
    const pop = (helper: number) =>
      load([
        mov64r(2, 10),
        add64(2, -8),
        ...ldMapFd(1, map),
        call(helper),
        jeqImm(0, 0, 1),
        exit(),
        ldxDw(0, 10, -8),
        exit(),
      ]);
    assert.equal(run(push(11)), 0);
    assert.equal(run(push(12)), 0);
    assert.equal(run(push(13)), -7 >>> 0); // -E2BIG: full without BPF_EXIST
    const peek = pop(F.BPF_FUNC_map_peek_elem);
    const popFd = pop(F.BPF_FUNC_map_pop_elem);
    assert.equal(BigInt(run(peek)), order[0]);
    assert.equal(BigInt(run(popFd)), order[0]);
    assert.equal(BigInt(run(popFd)), order[1]);
    assert.equal(run(popFd), -2 >>> 0); // -ENOENT when empty
    void k;
  }
});

test("the verifier keeps queue/stack and per-CPU helpers to their map types, with the kernel's message", () => {
  const { k, p, refused } = setup(1);
  const q = k.bpf(p, C.BPF_MAP_CREATE, { map_type: T.BPF_MAP_TYPE_QUEUE, key_size: 0, value_size: 8, max_entries: 2 });
  const a = k.bpf(p, C.BPF_MAP_CREATE, { map_type: T.BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: 8, max_entries: 2 });
  // The key is checked before the map type (check_map_func_compatibility comes last): a queue's
  // key_size is 0, as the host kernel says.
  refused(
    [...keyOnStack(), ...ldMapFd(1, q), call(F.BPF_FUNC_map_lookup_elem), mov64(0, 0), exit()],
    EACCES,
    /invalid zero-sized read/,
  );
  refused(
    [...keyOnStack(), ...ldMapFd(1, a), mov64(3, 0), call(F.BPF_FUNC_map_push_elem), mov64(0, 0), exit()],
    EINVAL,
    /cannot pass map_type 2 into func bpf_map_push_elem#87/,
  );
  refused(
    [...keyOnStack(), ...ldMapFd(1, a), mov64(3, 0), call(F.BPF_FUNC_map_lookup_percpu_elem), mov64(0, 0), exit()],
    EINVAL,
    /cannot pass map_type 2 into func bpf_map_lookup_percpu_elem#195/,
  );
  // pop's buffer must still hold value_size bytes: one running past the top of the stack is
  // EINVAL (check_stack_access_within_bounds), worded as the helper's write.
  refused(
    [mov64r(2, 10), add64(2, -4), ...ldMapFd(1, q), call(F.BPF_FUNC_map_pop_elem), mov64(0, 0), exit()],
    EINVAL,
    /invalid write to stack R2 off=-4 size=8/,
  );
});

test("batch commands on per-CPU maps move every CPU's value, round_up(value_size, 8) apart", () => {
  const { k, p } = setup(3);
  for (const type of [T.BPF_MAP_TYPE_PERCPU_ARRAY, T.BPF_MAP_TYPE_PERCPU_HASH]) {
    const fd = k.bpf(p, C.BPF_MAP_CREATE, { map_type: type, key_size: 4, value_size: 4, max_entries: 2 });
    const keys = new Uint8Array(8);
    const dv = new DataView(keys.buffer);
    dv.setUint32(0, 0, true);
    dv.setUint32(4, 1, true);
    // Two elements x three CPUs x 8 bytes; element e on CPU c holds 10 * e + c.
    const vals = new Uint8Array(2 * 3 * 8);
    const vv = new DataView(vals.buffer);
    for (let e = 0; e < 2; e++) for (let c = 0; c < 3; c++) vv.setUint32((e * 3 + c) * 8, 10 * e + c, true);
    const up: Record<string, unknown> = { map_fd: fd, keys, values: vals, count: 2 };
    k.bpf(p, C.BPF_MAP_UPDATE_BATCH, up);
    assert.equal(up.count, 2);
    const outK = new Uint8Array(8);
    const outV = new Uint8Array(48);
    const look: Record<string, unknown> = {
      map_fd: fd,
      keys: outK,
      values: outV,
      count: 2,
      out_batch: new Uint8Array(4),
    };
    try {
      k.bpf(p, C.BPF_MAP_LOOKUP_BATCH, look);
    } catch {
      // ENOENT at the end of the map, with count set
    }
    assert.equal(look.count, 2);
    const ov = new DataView(outV.buffer);
    const got = [0, 1, 2, 3, 4, 5].map((i) => ov.getUint32(i * 8, true));
    const firstKey = new DataView(outK.buffer).getUint32(0, true);
    const want = firstKey === 0 ? [0, 1, 2, 10, 11, 12] : [10, 11, 12, 0, 1, 2];
    assert.deepEqual(got, want, `type ${type}`);
  }
});
