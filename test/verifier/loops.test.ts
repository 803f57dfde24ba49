import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import {
  type BpfHandle,
  bpf_map_lookup_elem,
  bpf_map_update_elem,
  bpf_prog_test_run_opts,
} from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { objPath } from "../elf/helpers.js";

/**
 * Loops the verifier bounds without unrolling, from our clang-built objects through the loader:
 * bpf_loop and bpf_for_each_map_elem (callbacks whose address the loader relocates), the
 * open-coded numeric iterator (bpf_for / bpf_repeat over bpf_iter_num_*), may_goto (cond_break).
 */

function handle(): BpfHandle {
  const kernel = new Kernel({ subsystems: [] });
  return { kernel, process: kernel.newProcess() };
}

function bss(h: BpfHandle, obj: BpfObject): DataView {
  const m = obj.internalMap(".bss");
  assert.ok(m);
  const out = new Uint8Array(m.valueSize);
  assert.equal(bpf_map_lookup_elem(h, m.fd, new Uint8Array(4), out), 0);
  return new DataView(out.buffer);
}

function run(h: BpfHandle, obj: BpfObject, name: string): void {
  const p = obj.findProgram(name);
  assert.ok(p);
  const opts: { retval?: number } = {};
  assert.equal(bpf_prog_test_run_opts(h, p.fd, opts), 0);
  assert.equal(opts.retval, 0);
}

/** Open loops.bpf.o with only `name` loaded, its instructions patched by `patch`; the load error. */
function loadPatched(
  name: string,
  patch: (insns: { code: number; dst: number; off: number; imm: number; src: number }[]) => void,
): string {
  const h = handle();
  const obj = BpfObject.open(objPath("loops"));
  for (const p of obj.programs) p.setAutoload(p.name === name);
  const prog = obj.findProgram(name);
  assert.ok(prog);
  patch(prog.insns as never);
  try {
    obj.load(h);
  } catch (e) {
    return (e as Error).message;
  }
  return "";
}

test("loops.bpf.o: bpf_loop, bpf_for_each_map_elem and the numeric iterator verify and compute", () => {
  const h = handle();
  const obj = BpfObject.open(objPath("loops"));
  obj.load(h);
  for (const p of ["run_bpf_loop", "run_for_each", "run_iter"]) run(h, obj, p);
  const v = bss(h, obj);
  // loop_sum: squares below 10 (the callback stops at index 10: 11 calls), 11 in the high half.
  assert.equal(v.getBigUint64(0, true), (11n << 32n) + 285n);
  // each_sum: value * (key + 1) over the 8 elements, each_seen: 8 callbacks.
  assert.equal(v.getUint32(8, true), 8);
  assert.equal(v.getBigUint64(16, true), 204n);
  // iter_sum: 3 + ... + 12; repeat_count: 5.
  assert.equal(v.getBigUint64(24, true), 75n);
  assert.equal(v.getUint32(32, true), 5);
});

test("an iterator used after bpf_iter_num_destroy is refused: expected an initialized iter_num", () => {
  const msg = loadPatched("run_iter", (insns) => {
    // bpf_repeat's iterator is created at fp-16 instead of fp-8 (`r6 += -8` before its
    // bpf_iter_num_new): the loop's next call then finds bpf_for's destroyed iterator at fp-8.
    const adds = insns.map((x, k) => (x.code === 0x07 && x.dst === 6 && x.imm === -8 ? k : -1)).filter((k) => k >= 0);
    insns[adds[1]].imm = -16;
  });
  assert.match(msg, /expected an initialized iter_num as arg #0/);
});

/** run_iter with the first iterator's base (`r6 += -8` before bpf_for's bpf_iter_num_new) at `off`. */
function iterAt(off: number): string {
  return loadPatched("run_iter", (insns) => {
    const k = insns.findIndex((x) => x.code === 0x07 && x.dst === 6 && x.imm === -8);
    insns[k].imm = off;
  });
}

test("an iterator's slots are checked as stack writes before the stack grows (process_iter_arg)", () => {
  // Far below the frame: the new call's write is out of bounds, refused at once (a fuzzed object
  // once made the verifier allocate and copy 2M stack slots per state before refusing it).
  assert.match(iterAt(-16711688), /invalid write to stack R1 off=-16711688 size=8/);
  assert.match(iterAt(-520), /invalid write to stack R1 off=-520 size=8/);
  // Above the frame pointer the slot index is negative: stack_slot_obj_get_spi refuses it.
  assert.match(iterAt(8), /cannot pass in iter at an offset=8/);
  assert.match(iterAt(-12), /cannot pass in iter at an offset=-12/);
  // At fp+0 the slot index is 0: refused by the bounds check of the write.
  assert.match(iterAt(0), /invalid write to stack R1 off=0 size=8/);
  // The lowest slot in bounds is accepted as the iterator; the loop's destroy of fp-8 (not the
  // iterator any more) is then what is refused.
  const low = iterAt(-512);
  assert.doesNotMatch(low, /invalid write to stack|cannot pass in iter/);
  assert.match(low, /call bpf_iter_num_new#\d+ +; .*fp-512=iter_num\(ref_id=\d+,state=active/);
});

test("an iterator never destroyed is a leaked reference", () => {
  const msg = loadPatched("run_iter", (insns) => {
    // bpf_for's loop exit (`if r0 == 0 goto +1`, to the destroy) jumps to `return 0` instead.
    const k = insns.findIndex((x) => x.code === 0x15 && x.dst === 0 && x.imm === 0 && x.off === 1);
    insns[k].off = insns.length - 2 - (k + 1);
  });
  assert.match(msg, /Unreleased reference id=\d+ alloc_insn=\d+/);
});

test("may_goto.bpf.o (cond_break, clang 19): verifies and runs; the loop ends at its own bound", {
  skip: existsSync(objPath("may_goto")) ? false : "bpf/obj/may_goto.bpf.o not built (needs clang-19)",
}, () => {
  const h = handle();
  const obj = BpfObject.open(objPath("may_goto"));
  obj.load(h);
  const data = obj.internalMap(".data");
  assert.ok(data);
  const lim = new Uint8Array(8);
  new DataView(lim.buffer).setBigUint64(0, 1000n, true);
  assert.equal(bpf_map_update_elem(h, data.fd, new Uint8Array(4), lim, 0), 0);
  run(h, obj, "run_may_goto");
  assert.equal(bss(h, obj).getBigUint64(0, true), 1000n);
});

function hostSkip(): string | false {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return "needs root for bpf(2)";
  if (spawnSync("bpftool", ["version"]).status !== 0) return "bpftool is not installed";
  if (!existsSync("/sys/fs/bpf")) return "no bpffs";
  return false;
}

test("the host kernel loads the same objects (bpftool prog loadall)", { skip: hostSkip() }, () => {
  for (const name of ["loops", "may_goto"]) {
    if (!existsSync(objPath(name))) continue;
    const dir = mkdtempSync("/sys/fs/bpf/structops-loops-");
    try {
      const r = spawnSync("bpftool", ["prog", "loadall", objPath(name), join(dir, "p")], { encoding: "utf8" });
      if (r.status !== 0 && /Operation not permitted/.test(r.stderr)) return;
      assert.equal(r.status, 0, `${name}: ${r.stderr.split("\n").slice(-8).join("\n")}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
