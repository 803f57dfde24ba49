import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { bpfGraph } from "../../src/kernel/bpf_graph.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { percpuAllocated } from "../../src/kernel/percpu.js";
import { type BpfHandle, bpf_map_delete_elem, bpf_map_lookup_elem, bpf_map_update_elem } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { EACCES, EINVAL } from "../../src/uapi/errno.js";
import { repoRoot } from "./helpers.js";
import { checkRefusals, compareWithHost, hostSkip } from "./object_verdicts.js";

/**
 * Per-CPU allocated objects on clang output (bpf/percpu_obj.bpf.c): bpf_percpu_obj_new, a
 * `__percpu_kptr` field of ARRAY and HASH values moved with bpf_kptr_xchg, every CPU's copy
 * written through bpf_per_cpu_ptr and this CPU's through bpf_this_cpu_ptr in an RCU section; the
 * kernel's per-CPU allocations show that what an element holds is freed (after RCU) when the
 * program drops it, when userspace replaces or deletes the element, and when the map goes.
 * The refusals percpu_alloc_fail.c checks, with 6.18's errno, message and instruction.
 */

const OBJ = join(repoRoot(), "bpf/obj/percpu_obj.bpf.o");
const NR_CPUS = 4;

function setup() {
  const k = new Kernel({ verifier: true, nrCpus: NR_CPUS });
  const h: BpfHandle = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(OBJ);
  obj.load(h);
  const run = (name: string, key = 0, cpu = 0): number => {
    const ctx = new Uint8Array(new Int32Array([NR_CPUS, key]).buffer);
    const attr = { prog_fd: obj.findProgram(name)?.fd ?? -1, ctx_in: ctx, ctx_size_in: ctx.length, retval: 0 };
    k.onCpu(cpu, () => assert.equal(k.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr), 0, name));
    return attr.retval | 0;
  };
  const total = (): bigint => {
    const m = obj.internalMap(".bss");
    assert.ok(m);
    const v = new Uint8Array(m.valueSize);
    assert.equal(bpf_map_lookup_elem(h, m.fd, new Uint8Array(4), v), 0);
    // `total` is the section's first variable.
    return new DataView(v.buffer).getBigInt64(0, true);
  };
  const elemN = (map: string, key: number): bigint => {
    const v = new Uint8Array(16);
    assert.equal(
      bpf_map_lookup_elem(h, obj.findMap(map)?.fd ?? -1, new Uint8Array(new Int32Array([key]).buffer), v),
      0,
    );
    return new DataView(v.buffer).getBigInt64(0, true);
  };
  return { k, h, obj, run, total, elemN, g: bpfGraph(k) };
}

const sumCpus = (NR_CPUS * (NR_CPUS - 1)) / 2;

test("percpu_obj.bpf.o: one copy per CPU, written through bpf_per_cpu_ptr and bpf_this_cpu_ptr", () => {
  const { k, run, total, elemN } = setup();
  assert.equal(percpuAllocated(k), 0);
  assert.equal(run("pc_install"), 0);
  assert.equal(percpuAllocated(k), 1, "one per-CPU allocation, held by arr[0]");
  assert.equal(run("pc_fill", 0, 2), 0, "every copy gets its CPU, CPU 2's copy a hit");
  assert.equal(run("pc_fill", 0, 3), 0);
  assert.equal(run("pc_fill", 0, 3), 0);
  assert.equal(run("pc_sum"), 0);
  assert.equal(total(), BigInt(3 * 1000 + sumCpus), "hits counted on the CPU each run was on");
  // A second object replaces the first, which the program drops: freed after a grace period.
  assert.equal(run("pc_install"), 0);
  assert.equal(elemN("arr", 0), 1n);
  assert.equal(percpuAllocated(k), 2, "the dropped object waits for RCU readers");
  k.quiesce();
  assert.equal(percpuAllocated(k), 1);
  assert.equal(run("pc_sum"), 0);
  assert.equal(total(), 0n, "the new object starts zeroed on every CPU");
  // Exchanged in inside an RCU section, the pointer still reaches this CPU's copy.
  assert.equal(run("pc_xchg_in_rcu", 0, 1), 0);
  k.quiesce();
  assert.equal(percpuAllocated(k), 1);
  assert.equal(run("pc_sum"), 0);
  assert.equal(total(), 5000n);
  assert.equal(run("pc_remove"), 0);
  assert.equal(run("pc_remove"), -1, "the field is empty now");
  assert.ok(run("pc_sum") > 0, "pc_sum finds no object (returns its line)");
  k.quiesce();
  assert.equal(percpuAllocated(k), 0);
});

test("percpu_obj.bpf.o: the kernel frees what an element holds on update, delete and map free", () => {
  const { k, h, obj, run, g } = setup();
  const key = (n: number) => new Uint8Array(new Int32Array([n]).buffer);
  // ARRAY: a syscall update replaces the value; bpf_obj_free_fields drops the old object.
  assert.equal(run("pc_install", 1), 0);
  assert.equal(percpuAllocated(k), 1);
  assert.equal(bpf_map_update_elem(h, obj.findMap("arr")?.fd ?? -1, key(1), new Uint8Array(16), 0), 0);
  k.quiesce();
  assert.equal(percpuAllocated(k), 0, "the update freed the old value's per-CPU object");
  // HASH: an update of an existing key and a delete both free.
  const hash = obj.findMap("hash")?.fd ?? -1;
  assert.equal(run("pc_install_hash", 3), 0);
  assert.equal(run("pc_install_hash", 4), 0);
  assert.equal(percpuAllocated(k), 2);
  assert.equal(bpf_map_update_elem(h, hash, key(3), new Uint8Array(16), 0), 0);
  k.quiesce();
  assert.equal(percpuAllocated(k), 1);
  assert.equal(bpf_map_delete_elem(h, hash, key(4)), 0);
  k.quiesce();
  assert.equal(percpuAllocated(k), 0);
  // Whatever the maps still hold goes with them.
  assert.equal(run("pc_install", 0), 0);
  assert.equal(run("pc_install", 1), 0);
  assert.equal(run("pc_install_hash", 5), 0);
  assert.equal(percpuAllocated(k), 3);
  k.exit(h.process);
  k.quiesce();
  assert.equal(percpuAllocated(k), 0);
  assert.equal(g.allocated, g.freed);
});

/** What Linux 6.18 answers for each refused program: errno, the last log lines, the instruction. */
const BAD: [string, number, string[], number][] = [
  ["bad_store", EACCES, ["store to referenced kptr disallowed"], 11],
  ["bad_xchg_type", EACCES, ["invalid kptr access, R2 type=percpu_ptr_other expected=ptr_counters"], 17],
  ["bad_use_after_xchg", EACCES, ["R1 type=scalar expected=percpu_ptr_, percpu_rcu_ptr_, percpu_trusted_ptr_"], 24],
  ["bad_obj_drop", EINVAL, ["arg#0 expected for bpf_percpu_obj_drop_impl()"], 7],
  ["bad_percpu_drop", EINVAL, ["arg#0 expected for bpf_obj_drop_impl()"], 7],
  ["bad_plain_into_percpu", EACCES, ["invalid kptr access, R2 type=ptr_ expected=ptr_counters"], 17],
  ["bad_new_ptr_member", EINVAL, ["bpf_percpu_obj_new type ID argument must be of a struct of scalars"], 3],
  ["bad_new_special", EINVAL, ["bpf_percpu_obj_new type ID argument must not contain special fields"], 3],
  ["bad_new_big", EINVAL, ["bpf_percpu_obj_new type size (600) is greater than 512"], 3],
  ["bad_deref", EACCES, ["R0 is ptr_counters access percpu memory: off=0"], 6],
  ["bad_per_cpu_owned", EACCES, ["R1 type=percpu_ptr_ expected=percpu_ptr_, percpu_rcu_ptr_, percpu_trusted_ptr_"], 10],
  [
    "bad_leak",
    EINVAL,
    ["Unreleased reference id=2 alloc_insn=3", "BPF_EXIT instruction in main prog would lead to reference leak"],
    8,
  ],
  [
    "bad_load_outside_rcu",
    EACCES,
    ["R1 type=untrusted_ptr_ expected=percpu_ptr_, percpu_rcu_ptr_, percpu_trusted_ptr_"],
    10,
  ],
  ["bad_copy_after_unlock", EACCES, ["only read is supported"], 18],
];

const GOOD = ["pc_install", "pc_install_hash", "pc_fill", "pc_sum", "pc_xchg_in_rcu", "pc_remove"];

test("percpu_obj: each refused program with the kernel's errno, message and instruction", () => {
  checkRefusals(OBJ, BAD);
});

test("the host kernel gives the same verdicts and messages for per-CPU objects", { skip: hostSkip() }, () => {
  compareWithHost(OBJ, GOOD, BAD);
});
