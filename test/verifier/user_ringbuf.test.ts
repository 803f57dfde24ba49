import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import { bpf_map_lookup_elem, bpf_prog_test_run_opts, mmap, poll } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import {
  user_ring_buffer__discard,
  user_ring_buffer__new,
  user_ring_buffer__reserve,
  user_ring_buffer__submit,
} from "../../src/loader/user_ringbuf.js";
import { bpf_map_type } from "../../src/uapi/bpf.js";
import { BTF_KIND_DATASEC } from "../../src/uapi/btf.js";
import { E2BIG, EBUSY, EINVAL, ENOSPC, EPERM } from "../../src/uapi/errno.js";
import { host, skip as hostBpfSkip, hostOps, type MapOp, mapCreateBytes, ourOps } from "../kernel/host_oracle.js";
import { repoRoot } from "./helpers.js";
import { checkRefusals, compareWithHost, hostSkip } from "./object_verdicts.js";

/**
 * User ring buffers: user space produces records through the loader (user_ring_buffer__new /
 * reserve / submit / discard over the map's mmap()), bpf/user_ringbuf.bpf.c's programs drain them
 * with bpf_user_ringbuf_drain, whose callback reads each record through a local dynptr. The same
 * steps run on the host kernel with libbpf give the same results: what each reserve answers, what
 * each drain returns and counted, the positions. bpf/user_ringbuf_bad.bpf.c's programs are
 * refused with 6.18's errno, message and instruction.
 */

const OBJ = join(repoRoot(), "bpf/obj/user_ringbuf.bpf.o");
const BAD_OBJ = join(repoRoot(), "bpf/obj/user_ringbuf_bad.bpf.o");

const BAD: [string, number, string[], number][] = [
  ["drain_kernel_ringbuf", EINVAL, ["cannot pass map_type 27 into func bpf_user_ringbuf_drain#209"], 6],
  ["output_to_user_ringbuf", EINVAL, ["cannot pass map_type 31 into func bpf_ringbuf_output#130"], 8],
  [
    "callback_returns_2",
    EINVAL,
    ["At callback return the register R0 has smin=2 smax=2 should have been in [0, 1]"],
    10,
  ],
  ["callback_submits", EINVAL, ["cannot release unowned const bpf_dynptr"], 10],
  ["callback_reinits", EINVAL, ["Dynptr has to be an uninitialized dynptr"], 15],
  ["callback_reads_dynptr", 13, ["R1 invalid mem access 'dynptr_ptr'"], 9],
  ["null_ctx_read", 13, ["R2 invalid mem access 'scalar'"], 9],
];

/** A record's bytes: seq and val, and for longer ones a tail word in the last 4 bytes. */
function record(size: number, seq: number, val: number, tail = 0): string {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  if (size >= 4) dv.setUint32(0, seq, true);
  if (size >= 8) dv.setUint32(4, val, true);
  if (size >= 12) dv.setUint32(size - 4, tail, true);
  return Buffer.from(b).toString("hex");
}

const r = (size: number, seq: number, val: number, how: string, tail = 0) =>
  `reserve:${size}:${record(size, seq, val, tail)}:${how}`;

/**
 * An empty drain; records taken, discarded, too short to read; sizes refused; four big records
 * filling the ring (a fifth finds no room); a record asking the callback to stop the drain;
 * records wrapping past the end of the ring; a drain from inside a drain (EBUSY); a record never
 * committed, which stops every later drain.
 */
const STEPS = [
  "run:drain",
  "bss",
  r(8, 1, 5, "submit"),
  r(8, 2, 7, "discard"),
  r(4, 3, 0, "submit"),
  r(12, 4, 9, "submit", 256),
  "pos",
  "run:drain",
  "pos",
  "bss",
  `reserve:${0x40000000}::submit`,
  "reserve:5000::submit",
  ...[5, 6, 7, 8].map((s) => r(1000, s, 1, "submit", 1000 + s)),
  r(1000, 99, 1, "submit"),
  "pos",
  "run:drain",
  "pos",
  "bss",
  r(1000, 9, 1, "submit", 9),
  r(1000, 10, 77, "submit", 10),
  r(1000, 11, 1, "submit", 11),
  "run:drain",
  "pos",
  "bss",
  "run:drain",
  "bss",
  r(1000, 12, 2, "submit", 12),
  r(1000, 13, 3, "submit", 13),
  "pos",
  "run:drain",
  "bss",
  r(8, 14, 3, "submit"),
  "run:drain_nested",
  "bss",
  "pos",
  r(8, 15, 4, "keep"),
  r(8, 16, 4, "submit"),
  "run:drain",
  "pos",
  "bss",
];

function ours(steps: string[]): unknown[] {
  const k = new Kernel();
  const h = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(OBJ);
  obj.load(h);
  const rb = user_ring_buffer__new(h, obj.findMap("user_rb")?.fd ?? -1);
  const bss = obj.internalMap(".bss");
  assert.ok(bss);
  return steps.map((step) => {
    const [kind, ...a] = step.split(":");
    if (kind === "reserve") {
      const s = user_ring_buffer__reserve(rb, Number(a[0]));
      if (typeof s === "number") return s;
      s.data.set(Buffer.from(a[1] ?? "", "hex"));
      if (a[2] === "submit") user_ring_buffer__submit(rb, s);
      else if (a[2] === "discard") user_ring_buffer__discard(rb, s);
      return 0;
    }
    if (kind === "run") {
      const opts: { retval?: number } = {};
      const err = bpf_prog_test_run_opts(h, obj.findProgram(a[0])?.fd ?? -1, opts);
      return [err, (opts.retval ?? 0) | 0];
    }
    if (kind === "bss") {
      const out = new Uint8Array(bss.valueSize);
      assert.equal(bpf_map_lookup_elem(h, bss.fd, new Uint8Array(4), out), 0);
      return Buffer.from(out).toString("hex");
    }
    return [Number(rb.consumerPos), Number(rb.producerPos)];
  });
}

/** The object's .bss variables by name, read from a dump of its bytes (hex). */
function bssVars(hex: string): Record<string, bigint> {
  const obj = BpfObject.open(OBJ);
  const btf = obj.btf;
  assert.ok(btf);
  const bytes = Buffer.from(hex, "hex");
  const sec = btf.typeById(btf.findByNameKind(".bss", BTF_KIND_DATASEC)) as {
    vars: { type: number; offset: number; size: number }[];
  };
  const out: Record<string, bigint> = {};
  for (const v of sec.vars) {
    const name = btf.typeById(v.type).name;
    // u64 and long as signed, u32 (and u32 arrays, element by element as name[i]) as unsigned.
    if (v.size === 8) out[name] = bytes.readBigInt64LE(v.offset);
    else
      for (let i = 0; i < v.size / 4; i++)
        out[v.size > 4 ? `${name}[${i}]` : name] = BigInt(bytes.readUInt32LE(v.offset + 4 * i));
  }
  return out;
}

test("user_ringbuf.bpf.o: records produced by the loader are drained in order, each once", () => {
  const res = ours(STEPS);
  const at = (step: string, from = 0) => STEPS.indexOf(step, from);
  const after = (i: number) => bssVars(res[at("bss", i)] as string);
  const drains = STEPS.flatMap((s, i) => (s.startsWith("run:") ? [i] : []));
  // An empty ring: nothing to drain.
  assert.deepEqual(res[drains[0]], [0, 0]);
  assert.equal(after(drains[0]).drain_ret, 0n);
  // Four records, one discarded: three taken (the short one unreadable), the last seq returned.
  assert.deepEqual(res[drains[1]], [0, 4]);
  let b = after(drains[1]);
  assert.deepEqual([b.drain_ret, b.count, b.short_records, b.total], [3n, 3n, 1n, 5n + 9n + 256n]);
  assert.deepEqual([b["sizes[0]"], b["sizes[1]"], b["sizes[2]"]], [8n, 4n, 12n], "the records' sizes");
  // Sizes with the header's flag bits, or past the ring: E2BIG; past the room left: ENOSPC.
  assert.deepEqual(res.slice(at("reserve:1073741824::submit"), at("reserve:5000::submit") + 1), [-E2BIG, -E2BIG]);
  assert.equal(res[at(r(1000, 99, 1, "submit"))], -ENOSPC);
  assert.deepEqual(res[drains[2]], [0, 8]);
  assert.equal(after(drains[2]).drain_ret, 4n);
  // The callback's 1 ends the drain after the record that asked; the next drain takes the rest.
  assert.deepEqual(res[drains[3]], [0, 10]);
  assert.equal(after(drains[3]).drain_ret, 2n);
  assert.deepEqual(res[drains[4]], [0, 11]);
  // Records wrapping past the end of the ring read whole (their last word included).
  assert.deepEqual(res[drains[5]], [0, 13]);
  b = after(drains[5]);
  assert.deepEqual([b.drain_ret, b.total], [2n, 4409n + 2n + 12n + 3n + 13n]);
  // A drain inside a drain: the ring is busy.
  b = after(drains[6]);
  assert.deepEqual([b.drain_ret, b.nested_ret], [1n, BigInt(-EBUSY)]);
  // A record never committed stops the drain before it, and before every later one.
  b = after(drains[7]);
  assert.equal(b.drain_ret, 0n);
  const [cons, prod] = res[drains[7] + 1] as number[];
  assert.equal(prod - cons, 32, "the busy record and the one after it stay");
});

test("user_ringbuf_bad.bpf.o: each program refused with 6.18's errno, message and instruction", () => {
  checkRefusals(BAD_OBJ, BAD);
});

test("the host kernel loads and refuses the same user ring buffer programs", { skip: hostSkip() }, () => {
  compareWithHost(OBJ, ["drain", "drain_nested"], []);
  compareWithHost(BAD_OBJ, [], BAD);
});

test("the host kernel's user ring buffer answers each step as ours does", { skip: hostSkip() }, () => {
  const script = join(repoRoot(), "test/fixtures/verifier/host_user_ringbuf.py");
  const out = spawnSync("python3", [script, OBJ, "user_rb", ...STEPS], { encoding: "utf8", maxBuffer: 1 << 24 });
  assert.equal(out.status, 0, out.stderr);
  const hostRes = JSON.parse(out.stdout) as unknown[];
  if (hostRes.every((x) => x === -1)) return; // bpf() refused here
  assert.deepEqual(ours(STEPS), hostRes);
});

const T = bpf_map_type;
const CREATES: [number, number, number, number][] = [
  [0, 0, 4096, 0],
  [0, 0, 1 << 20, 0],
  [0, 0, 0, 0],
  [0, 0, 4095, 0],
  [0, 0, 4096 * 3, 0],
  [4, 0, 4096, 0],
  [0, 8, 4096, 0],
  [0, 0, 4096, 1 << 10], // BPF_F_MMAPABLE
  [0, 0, 4096, 1 << 2], // BPF_F_NUMA_NODE
];

test("MAP_CREATE of user ring buffers gives the host kernel's errnos", { skip: hostBpfSkip }, () => {
  for (const [key_size, value_size, max_entries, map_flags] of CREATES) {
    const attr = { map_type: T.BPF_MAP_TYPE_USER_RINGBUF, key_size, value_size, max_entries, map_flags };
    const k = new Kernel();
    let res = 0;
    try {
      k.bpf(k.newProcess(), 0, attr);
    } catch (e) {
      res = -(e as { errno: number }).errno;
    }
    assert.equal(res, host(0, mapCreateBytes(attr)), JSON.stringify(attr));
  }
});

test("element commands on a user ring buffer give the host kernel's errnos", { skip: hostBpfSkip }, () => {
  const ops: MapOp[] = [
    ["create", T.BPF_MAP_TYPE_USER_RINGBUF, 0, 0, 4096, 0],
    ["lookup", null],
    ["update", null, "", 0],
    ["delete", null],
    ["next", null],
    ["freeze"],
  ];
  assert.deepEqual(ourOps(ops), hostOps(ops));
});

test("mmap of a user ring buffer: the consumer position read-only, the rest writable; poll says writable while there is room", () => {
  const k = new Kernel();
  const h = { kernel: k, process: k.newProcess() };
  const fd = k.bpf(h.process, 0, { map_type: T.BPF_MAP_TYPE_USER_RINGBUF, max_entries: 4096 });
  assert.equal(mmap(h, fd, 4096, true, 0), -EPERM);
  assert.equal(typeof mmap(h, fd, 4096, false, 0), "object");
  assert.equal(typeof mmap(h, fd, 4096 + 2 * 4096, true, 4096), "object");
  assert.equal(mmap(h, fd, 4096 * 4, true, 4096), -EINVAL, "past the data's two copies");
  const rb = user_ring_buffer__new(h, fd);
  assert.equal(poll(h, fd) & 0x4, 0x4);
  const s = user_ring_buffer__reserve(rb, 4096 - 8);
  assert.equal(typeof s, "object");
  assert.equal(poll(h, fd) & 0x4, 0, "full: not writable");
  assert.equal(user_ring_buffer__reserve(rb, 0), -ENOSPC);
});
