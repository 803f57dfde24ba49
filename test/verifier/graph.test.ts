import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { bpfGraph } from "../../src/kernel/bpf_graph.js";
import { Kernel } from "../../src/kernel/kernel.js";
import {
  type BpfTestRunOpts,
  bpf_map_lookup_elem,
  bpf_map_update_elem,
  bpf_prog_test_run_opts,
} from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { EACCES, EINVAL } from "../../src/uapi/errno.js";
import { repoRoot } from "./helpers.js";
import { loadOne } from "./object_verdicts.js";

const OBJ = join(repoRoot(), "bpf/obj");
const GOOD = ["list_push_pop", "rbtree_order", "refcount_two_owners", "leave_in_map", "list_many"];

/**
 * What Linux 6.18 answers for each program of bpf/graph_bad.bpf.c: errno, the last line of the
 * log (and the one before it where the kernel explains), the instruction it stopped at. Taken
 * from the host kernel; the host test below checks they still agree.
 */
const BAD: [string, number, string[], number][] = [
  ["push_without_lock", EINVAL, ["bpf_spin_lock at off=0 must be held for bpf_list_head"], 20],
  [
    "leak_obj_new",
    EINVAL,
    ["Unreleased reference id=2 alloc_insn=3", "BPF_EXIT instruction in main prog would lead to reference leak"],
    8,
  ],
  ["double_drop", EINVAL, ["R1 must be referenced or trusted"], 11],
  ["use_after_push", EACCES, ["R8 invalid mem access 'scalar'"], 26],
  ["exit_with_lock", EINVAL, ["BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region"], 11],
  ["call_under_lock", EINVAL, ["function calls are not allowed while holding a lock"], 11],
  ["touch_lock", EACCES, ["bpf_spin_lock cannot be accessed directly by load/store"], 8],
  [
    "pop_under_other_lock",
    EINVAL,
    ["held lock and object are not in the same allocation", "bpf_spin_lock at off=0 must be held for bpf_list_head"],
    14,
  ],
  ["touch_list_head", EACCES, ["bpf_list_head cannot be accessed directly by load/store"], 8],
  ["unlock_unlocked", EINVAL, ["bpf_spin_unlock without taking a lock"], 9],
  // Refused when the map is bound to the program, before any instruction is walked.
  ["socket_with_lock_map", EINVAL, ["socket filter progs cannot use bpf_spin_lock yet"], -1],
  ["kprobe_with_list_map", EINVAL, ["tracing progs cannot use bpf_{list_head,rb_root} yet"], -1],
];

function kernel() {
  const k = new Kernel({ verifier: true });
  return { k, h: { kernel: k, process: k.newProcess() } };
}

/** Our verdict for one program of graph_bad: errno, log lines, the error's instruction. */
const loadBad = (name: string) => loadOne(join(OBJ, "graph_bad.bpf.o"), name);

test("graph programs verify and check themselves: lists, an rbtree, an object with two owners", () => {
  const { k, h } = kernel();
  const obj = BpfObject.open(join(OBJ, "graph.bpf.o"));
  obj.load(h);
  for (const name of [...GOOD, "list_push_pop"]) {
    const opts: BpfTestRunOpts = { data_in: new Uint8Array(64) };
    assert.equal(bpf_prog_test_run_opts(h, obj.findProgram(name)?.fd ?? -1, opts), 0, name);
    assert.equal(opts.retval, 0, `${name} failed its check at line ${opts.retval} of bpf/graph.bpf.c`);
  }
  k.quiesce();
  // leave_in_map left one item in the map's second bucket; everything else was dropped.
  assert.equal(bpfGraph(k).objs.size, 1);
  // The map goes with the object: the kernel frees what its lists still hold.
  k.exit(h.process);
  k.quiesce();
  assert.equal(bpfGraph(k).objs.size, 0);
  assert.equal(bpfGraph(k).allocated, bpfGraph(k).freed);
});

test("a map value with a list from userspace: an update keeps the list head and frees what it held", () => {
  const { k, h } = kernel();
  const obj = BpfObject.open(join(OBJ, "graph.bpf.o"));
  obj.load(h);
  const opts: BpfTestRunOpts = { data_in: new Uint8Array(64) };
  assert.equal(bpf_prog_test_run_opts(h, obj.findProgram("leave_in_map")?.fd ?? -1, opts), 0);
  assert.equal(opts.retval, 0);
  const fd = obj.findMap("buckets")?.fd ?? -1;
  const key = new Uint8Array([1, 0, 0, 0]);
  const value = new Uint8Array(32);
  const dv = new DataView(value.buffer);
  // struct gbucket { bpf_spin_lock lock; bpf_list_head items; long pushed; }. As on the host,
  // the lookup copies the head's pointers out as they are (one item: next == prev == its node).
  assert.equal(bpf_map_lookup_elem(h, fd, key, value), 0);
  assert.equal(dv.getUint32(0, true), 0);
  assert.ok(dv.getBigUint64(8, true) !== 0n && dv.getBigUint64(8, true) === dv.getBigUint64(16, true));
  assert.equal(dv.getBigInt64(24, true), 1n);
  k.quiesce();
  assert.equal(bpfGraph(k).objs.size, 1);
  // A new value for the element: user bytes never land on the lock or the list head, and what
  // the list held is dropped (bpf_obj_free_fields after copy_map_value).
  assert.equal(bpf_map_update_elem(h, fd, key, new Uint8Array(32).fill(0xff), 0), 0);
  k.quiesce();
  assert.equal(bpfGraph(k).objs.size, 0);
  assert.equal(bpf_map_lookup_elem(h, fd, key, value), 0);
  assert.equal(dv.getUint32(0, true), 0);
  assert.equal(dv.getUint32(4, true), 0xffffffff, "the padding takes the new bytes");
  assert.notEqual(dv.getBigUint64(8, true), 0xffffffffffffffffn);
  assert.equal(dv.getBigInt64(24, true), -1n);
  // The list still works after the update: push and pop again.
  assert.equal(bpf_prog_test_run_opts(h, obj.findProgram("list_push_pop")?.fd ?? -1, opts), 0);
  assert.equal(opts.retval, 0);
});

test("graph_bad: each program refused with the kernel's errno, message and instruction", () => {
  for (const [name, errno, msgs, insn] of BAD) {
    const r = loadBad(name);
    assert.equal(r.errno, errno, `${name}: errno (log: ${r.log.slice(-2).join(" / ")})`);
    assert.deepEqual(r.log.slice(-msgs.length), msgs, name);
    if (insn >= 0) assert.equal(r.insn, insn, `${name}: insn`);
  }
});

const HOST_LOADER = join(repoRoot(), "test/fixtures/verifier/host_libbpf_load.py");

function hostSkip(): string | false {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "needs root for bpf(2)";
  if (!existsSync("/sys/kernel/btf/vmlinux")) return "no /sys/kernel/btf/vmlinux";
  const py = spawnSync("python3", ["-c", "import ctypes; ctypes.CDLL('libbpf.so.1')"], { encoding: "utf8" });
  if (py.status !== 0) return "python3 or libbpf.so.1 missing";
  return false;
}

test("the host kernel gives the same verdicts and messages", { skip: hostSkip() }, () => {
  const run = (obj: string, progs: string[]) => {
    const out = spawnSync("python3", [HOST_LOADER, join(OBJ, obj), ...progs], { encoding: "utf8", maxBuffer: 1 << 26 });
    assert.equal(out.status, 0, out.stderr);
    return JSON.parse(out.stdout) as { prog: string; err: number; log: string }[];
  };
  const good = run("graph.bpf.o", GOOD);
  if (good.every((g) => g.err === -1)) return; // bpf() refused here (EPERM): nothing to compare
  for (const g of good)
    assert.equal(g.err, 0, `${g.prog}: the host refused it:\n${g.log.split("\n").slice(-4).join("\n")}`);
  const bad = run(
    "graph_bad.bpf.o",
    BAD.map((b) => b[0]),
  );
  bad.forEach((r, i) => {
    const [name, errno, msgs] = BAD[i];
    assert.equal(r.err, -errno, `${name}: host errno`);
    const lines = r.log.split("\n").filter((l) => l && !l.startsWith("processed"));
    assert.deepEqual(lines.slice(-msgs.length), msgs, `${name}: host message`);
    const ours = loadBad(name);
    assert.deepEqual(ours.log.slice(-msgs.length), lines.slice(-msgs.length), `${name}: ours and the host's`);
  });
});
