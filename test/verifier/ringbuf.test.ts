import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import type { BpfRingbuf } from "../../src/kernel/ringbuf.js";
import { mapFromFd } from "../../src/kernel/syscall_map.js";
import { bpf_prog_test_run_opts, mmap } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import {
  ring__avail_data_size,
  ring__consume,
  ring__consumer_pos,
  ring__producer_pos,
  ring__size,
  ring_buffer__consume,
  ring_buffer__consume_n,
  ring_buffer__free,
  ring_buffer__new,
  ring_buffer__poll,
  ring_buffer__ring,
} from "../../src/loader/ringbuf.js";
import { bpf_map_type } from "../../src/uapi/bpf.js";
import { E2BIG, EACCES, EINVAL, ENOTSUPP, EPERM } from "../../src/uapi/errno.js";
import { host, skip as hostBpfSkip, hostOps, type MapOp, mapCreateBytes, ourOps } from "../kernel/host_oracle.js";
import { repoRoot } from "./helpers.js";
import { checkRefusals, compareWithHost, hostSkip } from "./object_verdicts.js";

/**
 * BPF_MAP_TYPE_RINGBUF (bpf/ringbuf.bpf.c, bpf/ringbuf_bad.bpf.c): records reserved, submitted,
 * discarded, copied and reserved through dynptrs by syscall programs, read back in order by the
 * user-side consumer (ring_buffer__*) across the ring's end; the map's creation rules and
 * element commands; each verifier rule broken, refused with 6.18's errno, message and
 * instruction, compared with the host kernel where it can load programs.
 */

const OBJ = join(repoRoot(), "bpf/obj/ringbuf.bpf.o");
const BAD_OBJ = join(repoRoot(), "bpf/obj/ringbuf_bad.bpf.o");
const leak = "BPF_EXIT instruction in main prog would lead to reference leak";
const BAD: [string, number, string[], number][] = [
  ["leak", EINVAL, ["Unreleased reference id=2 alloc_insn=4", leak], 9],
  ["no_null_check", EACCES, ["R0 invalid mem access 'ringbuf_mem_or_null'"], 6],
  ["var_size", EACCES, ["R2 is not a known constant'"], 6],
  [
    "past_end",
    EACCES,
    ["invalid access to memory, mem_size=8 off=8 size=8", "R0 min value is outside of the allowed memory range"],
    7,
  ],
  ["submit_stack", EACCES, ["R1 type=fp expected=ringbuf_mem"], 5],
  ["discard_map_value", EACCES, ["R1 type=map_value expected=ringbuf_mem"], 10],
  ["double_submit", EACCES, ["R1 type=scalar expected=ringbuf_mem"], 12],
  ["use_after_submit", EACCES, ["R6 invalid mem access 'scalar'"], 11],
  ["submit_offset", EINVAL, ["R1 must have zero offset when passed to release func or trusted arg to kfunc"], 9],
  ["reserve_array", EINVAL, ["cannot pass map_type 2 into func bpf_ringbuf_reserve#131"], 4],
  ["lookup_ringbuf", EACCES, ["invalid zero-sized read"], 6],
  ["output_var_len", EACCES, ["R3 unbounded memory access, use 'var &= const' or 'if (var < const)'"], 8],
  ["dynptr_leak", EINVAL, ["Unreleased reference id=2 alloc_insn=6", leak], 13],
  ["dynptr_never_released", EINVAL, ["Unreleased reference id=2 alloc_insn=6", leak], 8],
  ["submit_local_dynptr", EINVAL, ["arg 1 is an unacquired reference"], 10],
  ["overwrite_dynptr", EINVAL, ["cannot overwrite referenced dynptr"], 9],
  ["slice_after_submit", EACCES, ["R6 invalid mem access 'scalar'"], 24],
  ["reserve_twice", EINVAL, ["cannot overwrite referenced dynptr"], 13],
  ["submit_twice_dynptr", EINVAL, ["arg 1 is an unacquired reference"], 13],
  ["dynptr_array", EINVAL, ["cannot pass map_type 2 into func bpf_ringbuf_reserve_dynptr#198"], 7],
];
const GOOD = ["reserve_one", "output_one", "dynptr_one", "dynptr_too_big", "query"];

/** struct rb_args of ringbuf.bpf.c. */
function args(a: { val?: bigint; len?: number; discard?: boolean; flags?: number }): Uint8Array {
  const b = new Uint8Array(24);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, a.val ?? 0n, true);
  dv.setUint32(8, a.len ?? 0, true);
  dv.setUint32(12, a.discard ? 1 : 0, true);
  dv.setBigUint64(16, BigInt(a.flags ?? 0), true);
  return b;
}

function setup() {
  const k = new Kernel({ verifier: true });
  const h = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(OBJ);
  obj.load(h);
  const run = (prog: string, a: Parameters<typeof args>[0] = {}) => {
    const ctx = args(a);
    // A syscall program's context is copied back into ctx_in.
    const opts = { ctx_in: ctx, retval: 0 };
    assert.equal(bpf_prog_test_run_opts(h, obj.findProgram(prog)?.fd ?? -1, opts), 0, prog);
    return { ret: opts.retval | 0, out: new DataView(ctx.buffer) };
  };
  const fd = obj.findMap("rb")?.fd ?? -1;
  const ring = mapFromFd(h.process, fd).map as BpfRingbuf;
  return { k, h, obj, run, fd, ring };
}

interface Rec {
  size: number;
  seq: bigint;
  val: bigint;
  bytes: Uint8Array;
}
const collect = (out: Rec[]) => (_ctx: unknown, data: Uint8Array, size: number) => {
  const dv = new DataView(data.buffer, data.byteOffset, data.length);
  out.push({
    size,
    seq: size >= 8 ? dv.getBigUint64(0, true) : -1n,
    val: size >= 16 ? dv.getBigUint64(8, true) : -1n,
    bytes: data.slice(),
  });
  return 0;
};

test("ringbuf.bpf.o: records come out in order, discarded ones skipped, through every producer helper", () => {
  const { h, run, fd } = setup();
  const got: Rec[] = [];
  const rb = ring_buffer__new(h, fd, collect(got));
  assert.equal(run("reserve_one", { val: 10n }).ret, 0);
  assert.equal(run("reserve_one", { val: 11n, discard: true }).ret, 0);
  assert.equal(run("output_one", { val: 12n, len: 20 }).ret, 0);
  assert.equal(run("dynptr_one", { val: 13n }).ret, 0);
  assert.equal(run("dynptr_one", { val: 14n, discard: true }).ret, 0);
  assert.equal(run("output_one", { val: 15n, len: 0 }).ret, 0);
  // Records of 16, (16), 20, 16, (16), 0 bytes: headers included and rounded up to 8.
  assert.equal(run("query", { flags: 0 }).out.getBigUint64(0, true), 24n * 4n + 32n + 8n);
  assert.equal(run("query", { flags: 1 }).out.getBigUint64(0, true), 4096n);
  assert.equal(ring_buffer__poll(rb, 100), 4);
  assert.deepEqual(
    got.map((r) => [r.size, r.seq, r.val]),
    [
      [16, 1n, 10n],
      [20, 3n, 12n],
      [16, 4n, 13n],
      [0, -1n, -1n],
    ],
  );
  const ring = ring_buffer__ring(rb, 0);
  assert.ok(ring);
  assert.equal(ring__consumer_pos(ring), 136n);
  assert.equal(ring__producer_pos(ring), 136n);
  assert.equal(ring__avail_data_size(ring), 0n);
  assert.equal(ring__size(ring), 4096);
  assert.equal(run("query", { flags: 2 }).out.getBigUint64(0, true), 136n);
  assert.equal(run("query", { flags: 3 }).out.getBigUint64(0, true), 136n);
  assert.equal(run("query", { flags: 9 }).out.getBigUint64(0, true), 0n);
  // Nothing readable: poll returns at once.
  assert.equal(ring_buffer__poll(rb, 100), 0);
  ring_buffer__free(rb);
});

test("ringbuf.bpf.o: a full ring refuses records until the consumer catches up, and wraps around", () => {
  const { h, run, fd } = setup();
  const got: Rec[] = [];
  const rb = ring_buffer__new(h, fd, collect(got));
  // 24-byte records: the producer may run at most 4095 bytes ahead, so 170 fit.
  let n = 0;
  while (run("reserve_one", { val: BigInt(n) }).ret === 0) n++;
  assert.equal(n, 170);
  assert.equal(run("output_one", { len: 8 }).ret, -11); // -EAGAIN
  assert.equal(run("dynptr_one").ret, -1);
  assert.equal(ring_buffer__consume_n(rb, 5), 5);
  assert.equal(ring_buffer__consume(rb), 165);
  assert.deepEqual(
    got.map((r) => r.val),
    [...Array(170).keys()].map(BigInt),
  );
  // Past the end, records of every size and kind, some wrapping: each reads back whole.
  got.length = 0;
  const want: [number, bigint][] = [];
  for (let i = 0; i < 400; i++) {
    const len = 16 + ((i * 37) % 200);
    const kind = i % 4;
    if (kind === 0) assert.equal(run("output_one", { val: BigInt(i), len }).ret, 0);
    else if (kind === 1) assert.equal(run("reserve_one", { val: BigInt(i), discard: i % 8 === 1 }).ret, 0);
    else assert.equal(run("dynptr_one", { val: BigInt(i) }).ret, 0);
    if (!(kind === 1 && i % 8 === 1)) want.push([kind === 0 ? len : 16, BigInt(i)]);
    if (i % 7 === 6) ring_buffer__poll(rb, 0);
  }
  ring_buffer__poll(rb, 0);
  assert.deepEqual(
    got.map((r) => [r.size, r.val]),
    want,
  );
  // Every output_one record carries its sequence number, then its value, then the buffer's bytes.
  const seqs = got.map((r) => r.seq);
  assert.deepEqual(
    seqs,
    [...seqs].sort((a, b) => (a < b ? -1 : 1)),
  );
  const ring = ring_buffer__ring(rb, 0);
  assert.ok(ring && ring__consumer_pos(ring) > 3n * 4096n, "the positions wrapped several times");
});

test("ringbuf.bpf.o: the callback's error stops consumption after that record; dynptr reservation errors", () => {
  const { h, run, fd } = setup();
  let calls = 0;
  const rb = ring_buffer__new(h, fd, () => (++calls === 2 ? -42 : 0));
  for (let i = 0; i < 4; i++) run("reserve_one", { val: BigInt(i) });
  assert.equal(ring_buffer__consume(rb), -42);
  const ring = ring_buffer__ring(rb, 0);
  assert.ok(ring);
  assert.equal(ring__consumer_pos(ring), 48n);
  assert.equal(ring__consume(ring), 2);
  // Too big for the ring, unknown flags, past a dynptr's 24-bit size: NULL dynptr, released anyway.
  assert.equal(run("dynptr_too_big", { len: 5000 }).ret, -EINVAL);
  assert.equal(run("dynptr_too_big", { len: 8, flags: 1 }).ret, -EINVAL);
  assert.equal(run("dynptr_too_big", { len: 1 << 24 }).ret, -E2BIG);
  assert.equal(run("output_one", { len: 8, flags: 4 }).ret, -EINVAL);
  assert.equal(ring__avail_data_size(ring), 0n);
});

test("ringbuf: a commit wakes the consumer when it waits at that record, or when forced", () => {
  const { h, run, fd, ring } = setup();
  const rb = ring_buffer__new(h, fd, () => 0);
  run("reserve_one", {}); // the consumer is at this record: wakeup
  assert.equal(ring.wakeups, 1);
  run("reserve_one", {}); // behind the first one: no wakeup
  assert.equal(ring.wakeups, 1);
  run("reserve_one", { flags: 2 }); // BPF_RB_FORCE_WAKEUP
  assert.equal(ring.wakeups, 2);
  ring_buffer__consume(rb);
  run("reserve_one", { flags: 1 }); // BPF_RB_NO_WAKEUP
  assert.equal(ring.wakeups, 2);
  run("output_one", { len: 8, flags: 2 });
  assert.equal(ring.wakeups, 3);
});

test("ringbuf: mmap() gives the consumer page writable and nothing else; other maps cannot be mapped", () => {
  const { h, fd, obj } = setup();
  assert.equal(mmap(h, fd, 4096, true, 4096), -EPERM);
  assert.equal(mmap(h, fd, 8192, true, 0), -EPERM);
  assert.equal(mmap(h, fd, 4096 * 4, false, 4096 * 2), -EINVAL);
  const m = mmap(h, fd, 4096 + 8192, false, 4096);
  assert.ok(typeof m !== "number" && !m.writable);
  assert.throws(() => m.write(0, new Uint8Array(8)));
  const bss = obj.findMap(".bss")?.fd ?? -1;
  assert.equal(mmap(h, bss, 4096, false, 0), -ENOTSUPP);
  assert.throws(() => ring_buffer__new(h, bss, () => 0), { errno: EINVAL });
});

test("ringbuf_bad: refusals with the kernel's messages", () => {
  checkRefusals(BAD_OBJ, BAD);
});

test("the host kernel loads and refuses the same ring buffer programs as we do", { skip: hostSkip() }, () => {
  compareWithHost(OBJ, GOOD, []);
  compareWithHost(BAD_OBJ, [], BAD);
});

test("the host kernel's ring fills up, refuses and reports its positions as ours does", { skip: hostSkip() }, () => {
  // 171 fixed records (170 fit), then each failure path, then every query flag.
  const runs: [string, Parameters<typeof args>[0]][] = [
    ...[...Array(171).keys()].map((i): [string, Parameters<typeof args>[0]] => ["reserve_one", { val: BigInt(i) }]),
    ["output_one", { len: 8 }],
    ["dynptr_one", {}],
    ["dynptr_too_big", { len: 5000 }],
    ["dynptr_too_big", { len: 8, flags: 1 }],
    ["dynptr_too_big", { len: 1 << 24 }],
    ["output_one", { len: 8, flags: 4 }],
    ...[0, 1, 2, 3, 4].map((flags): [string, Parameters<typeof args>[0]] => ["query", { flags }]),
  ];
  const script = join(repoRoot(), "test/fixtures/verifier/host_libbpf_run.py");
  const spec = runs.map(([p, a]) => `${p}:${Buffer.from(args(a)).toString("hex")}`);
  const r = spawnSync("python3", [script, OBJ, ...spec], { encoding: "utf8", maxBuffer: 1 << 24 });
  assert.equal(r.status, 0, r.stderr);
  const host = (JSON.parse(r.stdout) as { err: number; retval: number; ctx: string }[]).map((x) => [
    x.err,
    x.retval | 0,
    x.ctx,
  ]);
  if (host.every((x) => x[0] === -1)) return; // bpf() refused here
  const { run } = setup();
  const ours = runs.map(([p, a]) => {
    const { ret, out } = run(p, a);
    return [0, ret, Buffer.from(new Uint8Array(out.buffer)).toString("hex")];
  });
  assert.deepEqual(ours, host);
  assert.deepEqual(
    host.slice(169, 177).map((x) => x[1]),
    [0, -1, -11, -1, -EINVAL, -EINVAL, -E2BIG, -EINVAL],
  );
});

const T = bpf_map_type;
const CREATES: [number, number, number, number][] = [
  [0, 0, 4096, 0],
  [0, 0, 8192, 0],
  [0, 0, 1 << 20, 0],
  [0, 0, 0, 0],
  [0, 0, 4095, 0],
  [0, 0, 4096 * 3, 0],
  [0, 0, 2048, 0],
  [4, 0, 4096, 0],
  [0, 8, 4096, 0],
  [0, 0, 4096, 1 << 10], // BPF_F_MMAPABLE
  [0, 0, 4096, 1 << 2], // BPF_F_NUMA_NODE
  [0, 0, 4096, 1], // BPF_F_NO_PREALLOC
];

test("MAP_CREATE of ring buffers gives the host kernel's errnos", { skip: hostBpfSkip }, () => {
  for (const [key_size, value_size, max_entries, map_flags] of CREATES) {
    const attr = { map_type: T.BPF_MAP_TYPE_RINGBUF, key_size, value_size, max_entries, map_flags };
    const k = new Kernel();
    let ours = 0;
    try {
      k.bpf(k.newProcess(), 0, attr);
    } catch (e) {
      ours = -(e as { errno: number }).errno;
    }
    assert.equal(ours, host(0, mapCreateBytes(attr)), JSON.stringify(attr));
  }
});

test("element commands on a ring buffer give the host kernel's errnos", { skip: hostBpfSkip }, () => {
  const ops: MapOp[] = [
    ["create", T.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096, 0],
    ["lookup", null],
    ["update", null, "", 0],
    ["delete", null],
    ["next", null],
    ["freeze"],
  ];
  assert.deepEqual(ourOps(ops), hostOps(ops));
});
