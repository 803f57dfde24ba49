import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { bpfGraph } from "../../src/kernel/bpf_graph.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { task_exit } from "../../src/kernel/task.js";
import { type BpfHandle, bpf_map_delete_elem, bpf_map_update_elem } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { EACCES, EINVAL } from "../../src/uapi/errno.js";
import { repoRoot } from "./helpers.js";
import { checkRefusals, compareWithHost, hostSkip } from "./object_verdicts.js";

/**
 * kptrs on clang output: bpf/kptr.bpf.c keeps a task in a map element (`__kptr`, with an
 * `__kptr_untrusted` beside it) and an allocated object holding another object and a task,
 * moving references with bpf_kptr_xchg; the simulated objects' refcounts show that what a map
 * or an object still holds when it goes is released, and only then freed (after RCU).
 * bpf/kptr_bad.bpf.c's programs are refused with 6.18's errno, message and instruction.
 */

const OBJ = join(repoRoot(), "bpf/obj");
const BAD_OBJ = join(OBJ, "kptr_bad.bpf.o");

function boot(): { k: Kernel; h: BpfHandle } {
  const k = new Kernel({ verifier: true });
  return { k, h: { kernel: k, process: k.newProcess() } };
}

function run(h: BpfHandle, obj: BpfObject, name: string, pid: number): number {
  const ctx = new Uint8Array(new Int32Array([pid, 0]).buffer);
  const attr = { prog_fd: obj.findProgram(name)?.fd ?? -1, ctx_in: ctx, ctx_size_in: ctx.length, retval: 0 };
  assert.equal(h.kernel.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr), 0, name);
  return attr.retval | 0;
}

const GOOD = ["stash_task", "read_task", "unstash_task", "stash_obj", "check_obj"];

test("kptr.bpf.o: a task held by a map element lives until the map goes, then is freed after RCU", () => {
  const { k, h } = boot();
  const obj = BpfObject.open(join(OBJ, "kptr.bpf.o"));
  obj.load(h);
  const other = k.newProcess();
  const t = other.task;
  assert.ok(t);
  const pid = other.pid;
  assert.equal(t.usage, 1);
  assert.equal(run(h, obj, "stash_task", pid), 0);
  assert.equal(t.usage, 2, "the map element holds a reference");
  assert.equal(run(h, obj, "read_task", pid), 0, "read back through the RCU and the untrusted pointer");
  assert.equal(run(h, obj, "stash_task", pid), 0);
  assert.equal(t.usage, 2, "the reference exchanged out was released");
  assert.equal(run(h, obj, "unstash_task", pid), 0);
  assert.equal(t.usage, 1);
  assert.equal(run(h, obj, "unstash_task", pid), -1, "the field is empty now");
  assert.equal(run(h, obj, "stash_task", pid), 0);
  // The task exits: the map's reference keeps it, readable through the kptr.
  task_exit(t);
  k.quiesce();
  assert.equal(t.usage, 1);
  assert.equal(t.freed, false);
  assert.equal(run(h, obj, "read_task", pid), 0);
  // The map goes with the object's fds (its free is deferred work): bpf_obj_free_fields puts the
  // task, whose memory goes after a grace period.
  k.exit(h.process);
  assert.equal(t.freed, false);
  k.quiesce();
  assert.equal(t.usage, 0);
  assert.equal(t.freed, true);
});

test("kptr.bpf.o: an allocated object holding another and a task; dropping it releases both", () => {
  const { k, h } = boot();
  const obj = BpfObject.open(join(OBJ, "kptr.bpf.o"));
  obj.load(h);
  const other = k.newProcess();
  const t = other.task;
  assert.ok(t);
  const g = bpfGraph(k);
  assert.equal(run(h, obj, "stash_obj", other.pid), 0);
  assert.equal(g.objs.size, 2, "outer in the map, inner in outer");
  assert.equal(t.usage, 2, "outer holds the task");
  assert.equal(run(h, obj, "check_obj", other.pid), 0);
  // A second outer replaces the first, which is dropped with what it holds.
  assert.equal(run(h, obj, "stash_obj", other.pid), 0);
  k.quiesce();
  assert.equal(g.objs.size, 2);
  assert.equal(t.usage, 2);
  assert.equal(g.allocated - g.freed, 2);
  // A syscall update of the array element frees what the old value held.
  const fd = obj.findMap("objs")?.fd ?? -1;
  assert.equal(bpf_map_update_elem(h, fd, new Uint8Array(4), new Uint8Array(8), 0), 0);
  k.quiesce();
  assert.equal(g.objs.size, 0);
  assert.equal(t.usage, 1);
  // Deleting a hash element releases its task.
  assert.equal(run(h, obj, "stash_task", other.pid), 0);
  assert.equal(t.usage, 2);
  const key = new Uint8Array(new Int32Array([other.pid]).buffer);
  assert.equal(bpf_map_delete_elem(h, obj.findMap("tasks")?.fd ?? -1, key), 0);
  assert.equal(t.usage, 1);
  assert.equal(run(h, obj, "stash_obj", other.pid), 0);
  k.exit(h.process);
  k.quiesce();
  assert.equal(g.objs.size, 0);
  assert.equal(g.allocated, g.freed);
  assert.equal(t.usage, 1);
});

/**
 * What Linux 6.18 answers for each program of bpf/kptr_bad.bpf.c: errno, the last lines of the
 * log, the instruction it stopped at. Taken from the host kernel; the host test below checks
 * they still agree.
 */
const BAD: [string, number, string[], number][] = [
  ["store_ref", EACCES, ["store to referenced kptr disallowed"], 12],
  [
    "store_scalar",
    EACCES,
    ["invalid kptr access, R1 type=scalar expected=ptr_task_struct or untrusted_ptr_task_struct"],
    11,
  ],
  ["atomic_kptr", EACCES, ["kptr in map can only be accessed using BPF_MEM instruction mode"], 9],
  ["xchg_untrusted", EACCES, ["off=8 kptr isn't referenced kptr"], 15],
  ["xchg_not_kptr", EACCES, ["off=16 doesn't point to kptr"], 15],
  ["xchg_wrong_type", EACCES, ["invalid kptr access, R2 type=ptr_bpf_cpumask expected=ptr_task_struct"], 13],
  ["xchg_unreferenced", EINVAL, ["R2 must be referenced when passed to release function"], 13],
  [
    "xchg_leak",
    EINVAL,
    ["Unreleased reference id=2 alloc_insn=10", "BPF_EXIT instruction in main prog would lead to reference leak"],
    14,
  ],
  ["release_loaded", EINVAL, ["R1 must be referenced or trusted"], 12],
  ["deref_unchecked", EACCES, ["R1 invalid mem access 'untrusted_ptr_or_null_'"], 9],
  ["obj_load_kptr", EACCES, ["direct access to kptr is disallowed"], 7],
  ["xchg_stack", EACCES, ["R1 type=fp expected=map_value, ptr_"], 8],
];

test("kptr_bad: each program refused with the kernel's errno, message and instruction", () => {
  checkRefusals(BAD_OBJ, BAD);
});

test("the host kernel gives the same verdicts and messages for kptr programs", { skip: hostSkip() }, () => {
  compareWithHost(join(OBJ, "kptr.bpf.o"), GOOD, []);
  compareWithHost(BAD_OBJ, [], BAD);
});
