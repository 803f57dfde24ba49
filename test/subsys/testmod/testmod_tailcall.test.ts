/**
 * BPF_MAP_TYPE_PROG_ARRAY and bpf_tail_call on our own programs (bpf/testmod_tailcall.bpf.c,
 * bpf/testmod_tailcall_bad.bpf.c), in each VM tier: the callee replaces the caller, an index past
 * max_entries or an empty slot falls through, at most MAX_TAIL_CALL_CNT (33) tail calls a run, a
 * tail call from a subprogram returns to that subprogram's caller, and pro_epilogue's "tailcall"
 * case (only the callee's epilogue runs: 10001, 20002). Then the map's syscall side (fds in, ids
 * out, the owner's compatibility check) and what the verifier refuses.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Handle } from "../../../src/cli/bpf_info.js";
import { mapJson, mapPlain } from "../../../src/cli/map.js";
import type { BpfProg } from "../../../src/kernel/bpf.js";
import {
  bpf_map_delete_elem,
  bpf_map_lookup_elem,
  bpf_map_update_elem,
  bpf_prog_test_run_opts,
} from "../../../src/loader/bpf.js";
import type { BpfObject } from "../../../src/loader/object.js";
import { bpfMapAttachStructOps } from "../../../src/loader/struct_ops_attach.js";
import { BPF_ANY, BPF_NOEXIST, MAX_TAIL_CALL_CNT } from "../../../src/uapi/bpf.js";
import { E2BIG, EACCES, EINVAL, ENOENT } from "../../../src/uapi/errno.js";
import type { Tier, VmProgram } from "../../../src/vm/index.js";
import { bootTestmod, bss32, bssVar, errOf, openObj, skipFor, type TestmodRig } from "./helpers.js";

const u32 = (v: number): Uint8Array => new Uint8Array(new Uint32Array([v]).buffer);

function kprog(r: TestmodRig, obj: BpfObject, name: string): BpfProg {
  return r.proc.files.get(obj.findProgram(name)!.fd).private_data as BpfProg;
}

function setTier(r: TestmodRig, obj: BpfObject, tier: Tier): void {
  for (const p of obj.programs) if (p.fd >= 0) r.k.vm!.setTier(kprog(r, obj, p.name).vmProg as VmProgram, tier);
}

/** Run a syscall program whose context is { index }: its return. */
function run(r: TestmodRig, obj: BpfObject, prog: string, index: number): number {
  const ctx = new Uint8Array(8);
  new DataView(ctx.buffer).setUint32(0, index, true);
  const opts: { retval?: number; ctx_in?: Uint8Array } = { ctx_in: ctx };
  assert.equal(bpf_prog_test_run_opts(r.h, obj.findProgram(prog)!.fd, opts), 0);
  return opts.retval! | 0;
}

function put(r: TestmodRig, obj: BpfObject, map: string, slot: number, prog: string): number {
  return bpf_map_update_elem(r.h, obj.findMap(map)!.fd, u32(slot), u32(obj.findProgram(prog)!.fd), BPF_ANY);
}

for (const tier of ["interp", "jit", "wasm"] as const) {
  test(`bpf_tail_call (${tier}): the callee replaces the caller; past max_entries or an empty slot falls through`, {
    skip: skipFor("testmod_tailcall"),
  }, () => {
    const r = bootTestmod();
    const { obj } = openObj("testmod_tailcall");
    obj.load(r.h);
    setTier(r, obj, tier);
    // Nothing stored yet: every tail call falls through.
    assert.equal(run(r, obj, "tc_entry", 0), -1);
    assert.equal(put(r, obj, "jmp", 0, "tc_leaf"), 0);
    assert.equal(put(r, obj, "jmp", 2, "tc_leaf"), 0);
    assert.equal(run(r, obj, "tc_entry", 0), 100);
    assert.equal(run(r, obj, "tc_entry", 2), 102);
    assert.equal(run(r, obj, "tc_entry", 1), -1, "empty slot");
    assert.equal(run(r, obj, "tc_entry", 4), -1, "index == max_entries");
    assert.equal(run(r, obj, "tc_entry", 0xffffffff), -1);
    // A tail call in a subprogram: the callee's r0 comes back to the subprogram's caller.
    assert.equal(run(r, obj, "tc_sub", 2), 1102);
    assert.equal(run(r, obj, "tc_sub", 3), 1010, "falls through: the subprogram returns index + 7");
    // Deleting a slot empties it.
    assert.equal(bpf_map_delete_elem(r.h, obj.findMap("jmp")!.fd, u32(2)), 0);
    assert.equal(run(r, obj, "tc_entry", 2), -1);
  });

  test(`bpf_tail_call (${tier}): at most ${MAX_TAIL_CALL_CNT} tail calls a run`, {
    skip: skipFor("testmod_tailcall"),
  }, () => {
    const r = bootTestmod();
    const { obj } = openObj("testmod_tailcall");
    obj.load(r.h);
    setTier(r, obj, tier);
    assert.equal(put(r, obj, "jmp", 1, "tc_count"), 0);
    // tc_count calls itself: the first run and 33 more, then the 34th tail call falls through.
    assert.equal(run(r, obj, "tc_count", 1), MAX_TAIL_CALL_CNT + 1);
    // Entered by a tail call, it has 32 left.
    bssVar(r, obj, "runs", 4, 0);
    assert.equal(run(r, obj, "tc_entry", 1), MAX_TAIL_CALL_CNT);
    // The count is per run: a new run starts afresh.
    bssVar(r, obj, "runs", 4, 0);
    assert.equal(run(r, obj, "tc_count", 1), MAX_TAIL_CALL_CNT + 1);
    assert.equal(bss32(r, obj, "runs"), MAX_TAIL_CALL_CNT + 1);
  });

  test(`pro_epilogue tailcall (${tier}): only the callee's epilogue runs`, {
    skip: skipFor("testmod_tailcall"),
  }, () => {
    const r = bootTestmod();
    const { obj } = openObj("testmod_tailcall");
    obj.load(r.h);
    setTier(r, obj, tier);
    // libbpf filled slot 0 from `.values = { [0] = &plus_one_epilogue }`.
    const slot = new Uint8Array(4);
    assert.equal(bpf_map_lookup_elem(r.h, obj.findMap("epi_jmp")!.fd, u32(0), slot), 0);
    assert.equal(new DataView(slot.buffer).getUint32(0, true), kprog(r, obj, "plus_one_epilogue").id);
    const link = bpfMapAttachStructOps(obj.findMap("epi_tail")!, r.h);
    // plus_one: a = 1; its epilogue: a += 10000, return 2 * a. tail_epilogue's own epilogue never runs.
    assert.equal(run(r, obj, "run_epilogue", 0), 20002);
    assert.equal(bssVar(r, obj, "final_a", 8), 10001);
    link.detach();
  });
}

test("PROG_ARRAY from userspace: fds in, ids out, ENOENT for an empty slot, E2BIG past the end, BPF_ANY only", {
  skip: skipFor("testmod_tailcall"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_tailcall");
  obj.load(r.h);
  const fd = obj.findMap("jmp")!.fd;
  const value = new Uint8Array(4);
  assert.equal(bpf_map_lookup_elem(r.h, fd, u32(0), value), -ENOENT);
  assert.equal(put(r, obj, "jmp", 0, "tc_leaf"), 0);
  assert.equal(bpf_map_lookup_elem(r.h, fd, u32(0), value), 0);
  assert.equal(new DataView(value.buffer).getUint32(0, true), kprog(r, obj, "tc_leaf").id);
  assert.equal(put(r, obj, "jmp", 4, "tc_leaf"), -E2BIG);
  assert.equal(bpf_map_update_elem(r.h, fd, u32(1), u32(obj.findProgram("tc_leaf")!.fd), BPF_NOEXIST), -EINVAL);
  // A map fd is not a program.
  assert.equal(bpf_map_update_elem(r.h, fd, u32(1), u32(fd), BPF_ANY), -EINVAL);
  assert.equal(bpf_map_delete_elem(r.h, fd, u32(1)), -ENOENT);
  assert.equal(bpf_map_delete_elem(r.h, fd, u32(9)), -E2BIG);
  // The slot holds the program: closing the program's fd does not free it.
  const leaf = kprog(r, obj, "tc_leaf");
  const refs = leaf.refcnt;
  assert.equal(put(r, obj, "jmp", 3, "tc_leaf"), 0);
  assert.equal(leaf.refcnt, refs + 1);
  assert.equal(bpf_map_delete_elem(r.h, fd, u32(3)), 0);
  assert.equal(leaf.refcnt, refs);
});

test("PROG_ARRAY owner: the first program fixes the type and attach point; another is refused (EINVAL)", {
  skip: skipFor("testmod_tailcall"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_tailcall");
  obj.load(r.h);
  // jmp's owner is a syscall program (tc_entry used it at load): a struct_ops program is refused.
  assert.equal(put(r, obj, "jmp", 0, "plus_one_epilogue"), -EINVAL);
  // epi_jmp's owner is test_epilogue's struct_ops program: a syscall program is refused.
  assert.equal(put(r, obj, "epi_jmp", 0, "tc_leaf"), -EINVAL);
  assert.equal(put(r, obj, "epi_jmp", 0, "plus_one_epilogue"), 0);
});

test("PROG_ARRAY owner in the fdinfo and bpftool's map show (owner_prog_type, owner_jited)", {
  skip: skipFor("testmod_tailcall"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_tailcall");
  obj.load(r.h);
  const h: Handle = {
    bpf: (cmd, attr) => r.k.bpf(r.proc, cmd, attr as never),
    fdinfo: (fd) => r.k.fdinfo(r.proc, fd),
    close: (fd) => r.k.close(r.proc, fd),
    object: (fd) => r.proc.files.get(fd).private_data,
  };
  const fd = obj.findMap("epi_jmp")!.fd;
  assert.match(r.k.fdinfo(r.proc, fd), /frozen:\t0\nowner_prog_type:\t27\nowner_jited:\t1\n$/);
  const id = (r.proc.files.get(fd).private_data as { id: number }).id;
  const m = mapJson(h, id);
  assert.deepEqual(Object.keys(m).slice(-4), ["bytes_memlock", "owner_prog_type", "owner_jited", "frozen"]);
  assert.equal(m.owner_prog_type, "struct_ops");
  assert.equal(m.owner_jited, true);
  assert.match(mapPlain(m), /memlock \d+B\n\towner_prog_type struct_ops {2}owner jited\n$/);
});

test("PROG_ARRAY: the last user reference empties it (programs and array do not hold each other)", {
  skip: skipFor("testmod_tailcall"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_tailcall");
  obj.load(r.h);
  assert.equal(put(r, obj, "jmp", 1, "tc_count"), 0);
  const count = kprog(r, obj, "tc_count");
  obj.close();
  r.k.rcu.quiesce();
  assert.equal(count.freed, true, "the slot let go of its program");
});

/** Load one program of testmod_tailcall_bad alone: the error and libbpf's messages (the verifier log). */
function loadAlone(name: string): { errno: number; log: string } {
  const r = bootTestmod();
  const { obj, log } = openObj("testmod_tailcall_bad");
  for (const p of obj.programs) p.setAutoload(p.name === name);
  try {
    obj.load(r.h);
    return { errno: 0, log: log.join("\n") };
  } catch (e) {
    return { errno: (e as { errno: number }).errno, log: `${log.join("\n")}\n${(e as Error).message}` };
  }
}

test("verifier: a PROG_ARRAY goes to bpf_tail_call only; no tail call holding an RCU lock", {
  skip: skipFor("testmod_tailcall_bad"),
}, () => {
  const lookup = loadAlone("lookup_prog_array");
  assert.equal(lookup.errno, EINVAL);
  assert.match(lookup.log, /cannot pass map_type 3 into func bpf_map_lookup_elem#1/);
  const rcu = loadAlone("tail_in_rcu");
  assert.equal(rcu.errno, EINVAL);
  assert.match(rcu.log, /tail_call cannot be used inside bpf_rcu_read_lock-ed region/);
});

test("verifier: a subprogram that tail calls may have at most 255 bytes of stack above it", {
  skip: skipFor("testmod_tailcall_bad"),
}, () => {
  const deep = loadAlone("deep_stack");
  assert.equal(deep.errno, EACCES);
  assert.match(deep.log, /tail_calls are not allowed when call stack of previous frames is \d+ bytes\. Too large/);
  assert.equal(loadAlone("shallow_stack").errno, 0);
});

test("refcounted_fail__tail_call: a program handed a __ref task cannot tail call (EINVAL)", {
  skip: skipFor("testmod_tailcall_bad"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_tailcall_bad");
  // The syscall programs stay out; the map brings its program in.
  for (const p of obj.programs) if (p.name !== "ref_tail") p.setAutoload(false);
  obj.findMap("ref_tail_ops")!.setAutocreate(true);
  const e = errOf(() => obj.load(r.h));
  assert.equal(e.errno, EINVAL);
  assert.match(e.message, /program with __ref argument cannot tail call/);
});
