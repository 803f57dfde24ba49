import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { bpfGraph } from "../../src/kernel/bpf_graph.js";
import { Kernel } from "../../src/kernel/kernel.js";
import type { Task } from "../../src/kernel/task.js";
import { task_exit } from "../../src/kernel/task.js";
import { type BpfHandle, bpf_map_delete_elem, bpf_map_update_elem } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { repoRoot } from "../verifier/helpers.js";
import { compareWithHost, hostSkip } from "../verifier/object_verdicts.js";

/**
 * kptrs in PERCPU_ARRAY, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH and TASK_STORAGE values
 * (bpf/map_kptrs.bpf.c): the programs only put a task reference and an allocated object in; the
 * kernel releases them (bpf_obj_free_fields) when an update replaces the value, when it is deleted
 * or evicted, when the map goes and when the storage's owner does. The task's refcount and the
 * allocator's live objects are the accounting: nothing is trusted to the program.
 */

const OBJ = join(repoRoot(), "bpf/obj/map_kptrs.bpf.o");
const NR_CPUS = 3;
const PROGS = ["stash_pcpu_arr", "stash_pcpu_hash", "stash_lru", "stash_lru_pcpu", "stash_tstore"];

function setup() {
  const k = new Kernel({ verifier: true, nrCpus: NR_CPUS });
  const h: BpfHandle = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(OBJ);
  obj.load(h);
  const target = k.newProcess();
  const t = target.task as Task;
  const g = bpfGraph(k);
  const run = (name: string, key: number, cpu = 0, pid = target.pid): number => {
    const ctx = new Uint8Array(new Int32Array([pid, key]).buffer);
    const attr = { prog_fd: obj.findProgram(name)?.fd ?? -1, ctx_in: ctx, ctx_size_in: ctx.length, retval: 0 };
    k.onCpu(cpu, () => assert.equal(k.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr), 0, name));
    return attr.retval | 0;
  };
  const fd = (name: string) => obj.findMap(name)?.fd ?? -1;
  const key = (n: number) => new Uint8Array(new Int32Array([n]).buffer);
  /** References the maps hold: the task's beyond its own, and live allocated objects. */
  const held = () => {
    k.quiesce();
    return { task: t.usage - 1, objs: g.objs.size };
  };
  return { k, h, obj, run, fd, key, held, t };
}

test("PERCPU_ARRAY: every CPU's copy is freed on a syscall update and with the map", () => {
  const { k, h, run, fd, key, held } = setup();
  for (const cpu of [0, 1, 2]) assert.equal(run("stash_pcpu_arr", 1, cpu), 0);
  assert.equal(run("stash_pcpu_arr", 1, 1), 0, "a second fill releases what it replaced itself");
  assert.deepEqual(held(), { task: 3, objs: 3 }, "one task reference and one object per CPU's copy");
  // A syscall update writes every CPU's copy around the kptr fields, then frees what they held.
  const size = 24;
  assert.equal(bpf_map_update_elem(h, fd("pcpu_arr"), key(1), new Uint8Array(size * NR_CPUS).fill(0xff), 0), 0);
  assert.deepEqual(held(), { task: 0, objs: 0 });
  assert.equal(run("stash_pcpu_arr", 0, 2), 0);
  assert.equal(run("stash_pcpu_arr", 1, 0), 0);
  assert.deepEqual(held(), { task: 2, objs: 2 });
  k.exit(h.process);
  assert.deepEqual(held(), { task: 0, objs: 0 }, "the map's free releases every CPU's copy");
});

test("PERCPU_HASH and LRU_PERCPU_HASH: freed on update, delete, eviction and map free", () => {
  const { k, h, run, fd, key, held } = setup();
  for (const map of ["pcpu_hash", "lru_pcpu"]) {
    const prog = map === "pcpu_hash" ? "stash_pcpu_hash" : "stash_lru_pcpu";
    for (const cpu of [0, 2]) assert.equal(run(prog, 7, cpu), 0);
    assert.deepEqual(held(), { task: 2, objs: 2 }, map);
    assert.equal(bpf_map_update_elem(h, fd(map), key(7), new Uint8Array(24 * NR_CPUS), 0), 0);
    assert.deepEqual(held(), { task: 0, objs: 0 }, `${map}: the update freed both copies' fields`);
    for (const cpu of [1, 2]) assert.equal(run(prog, 8, cpu), 0);
    assert.equal(bpf_map_delete_elem(h, fd(map), key(8)), 0);
    assert.deepEqual(held(), { task: 0, objs: 0 }, `${map}: the delete freed both copies' fields`);
  }
  // An LRU map full of elements evicts one for a new key: the evicted element's fields go.
  for (let i = 0; i < 12; i++) assert.equal(run("stash_lru_pcpu", 100 + i, i % NR_CPUS), 0);
  const live = held();
  assert.ok(live.task <= 4 && live.task === live.objs, `at most max_entries elements hold anything: ${live.task}`);
  assert.equal(run("stash_pcpu_hash", 1, 1), 0);
  k.exit(h.process);
  assert.deepEqual(held(), { task: 0, objs: 0 });
});

test("LRU_HASH: freed when an update replaces the element, on delete, eviction and map free", () => {
  const { k, h, run, fd, key, held } = setup();
  assert.equal(run("stash_lru", 1), 0);
  assert.deepEqual(held(), { task: 1, objs: 1 });
  // The new element's kptr fields start empty whatever the user's bytes say there.
  assert.equal(bpf_map_update_elem(h, fd("lru"), key(1), new Uint8Array(24).fill(0xff), 0), 0);
  assert.deepEqual(held(), { task: 0, objs: 0 });
  assert.equal(run("stash_lru", 1), 0);
  assert.equal(run("stash_lru", 2), 0);
  assert.equal(bpf_map_delete_elem(h, fd("lru"), key(2)), 0);
  assert.deepEqual(held(), { task: 1, objs: 1 });
  for (let i = 10; i < 30; i++) assert.equal(run("stash_lru", i), 0);
  const live = held();
  assert.ok(live.task <= 4 && live.task === live.objs, `evicted elements released theirs: ${live.task}`);
  k.exit(h.process);
  assert.deepEqual(held(), { task: 0, objs: 0 });
});

test("TASK_STORAGE: freed on a syscall update or delete, with the owner and with the map", () => {
  const { k, h, run, fd, held } = setup();
  const owner = k.newProcess();
  const pidfd = k.pidfdOpen(h.process, owner.pid);
  const key = new Uint8Array(new Int32Array([pidfd]).buffer);
  assert.equal(run("stash_tstore", owner.pid), 0);
  assert.equal(run("stash_tstore", owner.pid), 0);
  assert.deepEqual(held(), { task: 1, objs: 1 });
  assert.equal(bpf_map_update_elem(h, fd("tstore"), key, new Uint8Array(24).fill(0xff), 0), 0);
  assert.deepEqual(held(), { task: 0, objs: 0 }, "the update is a new element; the old one's fields go");
  assert.equal(run("stash_tstore", owner.pid), 0);
  assert.equal(bpf_map_delete_elem(h, fd("tstore"), key), 0);
  assert.deepEqual(held(), { task: 0, objs: 0 });
  // The owner's last reference frees its storage, and with it what the storage holds.
  assert.equal(run("stash_tstore", owner.pid), 0);
  assert.deepEqual(held(), { task: 1, objs: 1 });
  k.close(h.process, pidfd);
  task_exit(owner.task as Task);
  assert.deepEqual(held(), { task: 0, objs: 0 });
  // The map's free releases what every task's storage holds.
  const other = k.newProcess();
  assert.equal(run("stash_tstore", other.pid), 0);
  assert.deepEqual(held(), { task: 1, objs: 1 });
  k.exit(h.process);
  assert.deepEqual(held(), { task: 0, objs: 0 });
});

test("the host kernel loads the same programs", { skip: hostSkip() }, () => {
  compareWithHost(OBJ, PROGS, []);
});
