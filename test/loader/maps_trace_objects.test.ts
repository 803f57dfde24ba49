/**
 * Our own BPF C (bpf/maps.bpf.c, bpf/dummy_trace.bpf.c) through the loader: a per-CPU counter run
 * on each CPU, a queue filled and drained from programs, task storage counting the current task,
 * and fentry/fexit around a bpf_dummy_ops program (dummy_st_ops' fentry half) seeing its argument
 * and return value; results read back through the syscall API. Both the host-types and the
 * simulated-kernel-types builds.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { SimTarget } from "../../src/fidelity/sim.js";
import { bpf_program__attach_trace, bpf_program__set_attach_target } from "../../src/loader/attach_target.js";
import { type BpfHandle, bpf_map_lookup_elem, close } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpfDummyUserPtr } from "../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { BPF_F_TEST_RUN_ON_CPU, bpf_cmd } from "../../src/uapi/bpf.js";
import { BpfError, EINVAL } from "../../src/uapi/errno.js";
import { OBJ_DIR } from "../elf/helpers.js";

const C = bpf_cmd;
const VARIANTS = ["", "sim"].filter((v) => existsSync(join(OBJ_DIR, v, "maps.bpf.o")));

function boot(): BpfHandle {
  const kernel = new SimTarget().kernel;
  return { kernel, process: kernel.newProcess() };
}

function u64s(...v: bigint[]): Uint8Array {
  const b = new Uint8Array(8 * v.length);
  const dv = new DataView(b.buffer);
  for (const [i, x] of v.entries()) dv.setBigUint64(i * 8, BigInt.asUintN(64, x), true);
  return b;
}

const rd64 = (b: Uint8Array, i = 0) => new DataView(b.buffer, b.byteOffset).getBigUint64(i * 8, true);

function testRun(h: BpfHandle, fd: number, opts: { ctx?: Uint8Array; cpu?: number } = {}): number {
  const attr: Record<string, unknown> = { prog_fd: fd };
  if (opts.ctx) Object.assign(attr, { ctx_in: opts.ctx, ctx_size_in: opts.ctx.length });
  if (opts.cpu !== undefined) Object.assign(attr, { flags: BPF_F_TEST_RUN_ON_CPU, cpu: opts.cpu });
  h.kernel.bpf(h.process, C.BPF_PROG_TEST_RUN, attr);
  return attr.retval as number;
}

for (const variant of VARIANTS) {
  const path = (name: string) => join(OBJ_DIR, variant, `${name}.bpf.o`);
  const label = variant ? `sim/` : "";

  test(`${label}maps.bpf.o: a per-CPU counter, a queue and task storage from programs, read back by the syscall`, () => {
    const h = boot();
    const k = h.kernel;
    const obj = BpfObject.open(path("maps"));
    obj.load(h);
    const fd = (p: string) => obj.findProgram(p)!.fd;
    // count_cpu: 3 runs on CPU 0, 2 on CPU 1; every CPU's slot comes back from one lookup.
    for (const cpu of [0, 1, 0, 1, 0]) assert.equal(testRun(h, fd("count_cpu"), { cpu }), cpu);
    const per = new Uint8Array(8 * k.nrCpus);
    assert.equal(bpf_map_lookup_elem(h, obj.findMap("cpu_runs")!.fd, new Uint8Array(4), per), 0);
    assert.deepEqual([rd64(per, 0), rd64(per, 1)], [3n, 2n]);
    // enqueue 5 values into a 4-slot queue with BPF_EXIST: the oldest is dropped.
    for (const v of [10n, 11n, 12n, 13n, 14n]) assert.equal(testRun(h, fd("enqueue"), { ctx: u64s(v) }), 0);
    const peek = new Uint8Array(8);
    assert.equal(bpf_map_lookup_elem(h, obj.findMap("fifo")!.fd, null, peek), 0);
    assert.equal(rd64(peek), 11n);
    const bss = obj.internalMap(".bss")!;
    const popped: bigint[] = [];
    for (let i = 0; i < 4; i++) {
      assert.equal(testRun(h, fd("dequeue")), 0);
      const v = new Uint8Array(bss.valueSize);
      bpf_map_lookup_elem(h, bss.fd, new Uint8Array(4), v);
      popped.push(rd64(v));
    }
    assert.deepEqual(popped, [11n, 12n, 13n, 14n]);
    assert.equal(testRun(h, fd("dequeue")), -2 >>> 0); // -ENOENT: empty
    // task_count: the caller's task gets a value, found again through its pidfd.
    for (let i = 0; i < 3; i++) assert.equal(testRun(h, fd("task_count")), 0);
    const pidfd = k.pidfdOpen(h.process, h.process.pid);
    const key = new Uint8Array(4);
    new DataView(key.buffer).setInt32(0, pidfd, true);
    const tv = new Uint8Array(16);
    assert.equal(bpf_map_lookup_elem(h, obj.findMap("task_runs")!.fd, key, tv), 0);
    assert.equal(rd64(tv, 0), 3n);
    assert.equal(new DataView(tv.buffer).getUint32(8, true), h.process.pid);
    close(h, pidfd);
  });

  test(`${label}dummy_trace.bpf.o: fentry/fexit around dummy_test_1 see its state argument and its return value`, () => {
    const h = boot();
    const target = BpfObject.open(path("dummy_ops"));
    target.load(h);
    const tgtFd = target.findProgram("dummy_test_1")!.fd;
    const obj = BpfObject.open(path("dummy_trace"));
    for (const p of ["trace_entry", "trace_exit"])
      bpf_program__set_attach_target(h, obj.findProgram(p)!, tgtFd, "dummy_test_1");
    obj.load(h);
    const links = ["trace_entry", "trace_exit"].map((p) => bpf_program__attach_trace(h, obj.findProgram(p)!));
    for (const l of links) assert.ok(l >= 0, `attach: ${l}`);
    // A second attach of the same program has no target left (the load-time one is spent).
    assert.equal(bpf_program__attach_trace(h, obj.findProgram("trace_entry")!), -EINVAL);
    const seen = () => {
      const out: bigint[] = [];
      for (let i = 0; i < 4; i++) {
        const v = new Uint8Array(8);
        const key = new Uint8Array(4);
        new DataView(key.buffer).setUint32(0, i, true);
        bpf_map_lookup_elem(h, obj.findMap("seen")!.fd, key, v);
        out.push(rd64(v));
      }
      return out;
    };
    const st = new Uint8Array([0xef, 0xbe, 0, 0]);
    assert.equal(testRun(h, tgtFd, { ctx: u64s(bpfDummyUserPtr(h.process, st)) }), 0xbeef);
    assert.deepEqual(seen(), [0xbeefn, 0xbeefn, 1n, 1n]);
    assert.equal(testRun(h, tgtFd, { ctx: u64s(0n) }), 0xf2f3f4f5);
    assert.deepEqual(seen(), [BigInt.asUintN(64, -1n), 0xf2f3f4f5n, 2n, 2n]);
    // Detached: the target runs alone again.
    for (const l of links) close(h, l);
    h.kernel.quiesce();
    assert.equal(testRun(h, tgtFd, { ctx: u64s(0n) }), 0xf2f3f4f5);
    assert.deepEqual(seen()[2], 2n);
  });
}

test("bpf_program__set_attach_target: a function the target program's BTF lacks is EINVAL", () => {
  const variant = VARIANTS[0];
  if (variant === undefined) return;
  const path = (name: string) => join(OBJ_DIR, variant, `${name}.bpf.o`);
  const h = boot();
  const target = BpfObject.open(path("dummy_ops"));
  target.load(h);
  const tgtFd = target.findProgram("dummy_test_1")!.fd;
  const obj = BpfObject.open(path("dummy_trace"));
  assert.throws(
    () => bpf_program__set_attach_target(h, obj.findProgram("trace_entry")!, tgtFd, "no_such_func"),
    (e: unknown) => e instanceof BpfError && e.errno === EINVAL,
  );
  // Without a target at all, the section's function is looked up in the kernel's BTF: not there.
  assert.throws(() => obj.load(h), BpfError);
});
