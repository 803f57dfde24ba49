import assert from "node:assert/strict";
import { test } from "node:test";
import { type BpfStructOpsMap, bpfStructOpsMapOps } from "../../src/kernel/struct_ops.js";
import { objGetInfo } from "../../src/kernel/syscall.js";
import {
  BPF_EXIST,
  BPF_F_LINK,
  BPF_F_LOCK,
  BPF_F_RDONLY,
  BPF_NOEXIST,
  bpf_cmd,
  bpf_map_type,
} from "../../src/uapi/bpf.js";
import {
  E2BIG,
  EBADF,
  EBUSY,
  EEXIST,
  EINPROGRESS,
  EINVAL,
  ENOENT,
  ENOTSUPP,
  EOPNOTSUPP,
  EPERM,
} from "../../src/uapi/errno.js";
import { RET_INTEGER } from "../../src/verifier/helper_protos.js";
import {
  boot,
  createMap,
  del,
  KEY0,
  loadProg,
  lookup,
  type Rig,
  TESTMOD,
  testmodValue,
  typeId,
  update,
  userBtfFd,
  Value,
  valueTypeOf,
} from "../subsys/dummy/struct_ops_fixture.js";
import { errno, mapOf } from "./struct_ops_util.js";

const VALUE_SIZE = (r: Rig) => valueTypeOf(r, TESTMOD).size;
const stateOf = (b: Uint8Array) => new DataView(b.buffer).getUint32(4, true);
const refcntOf = (b: Uint8Array) => new DataView(b.buffer).getUint32(0, true);

function createAttr(r: Rig, over: Record<string, unknown> = {}) {
  const vt = valueTypeOf(r, TESTMOD);
  return {
    map_type: bpf_map_type.BPF_MAP_TYPE_STRUCT_OPS,
    key_size: 4,
    value_size: vt.size,
    max_entries: 1,
    map_flags: 0,
    btf_fd: userBtfFd(r),
    btf_vmlinux_value_type_id: vt.id,
    ...over,
  };
}

test("MAP_CREATE: alloc_check rules (key_size 4, max_entries 1, flags, value type id) -> EINVAL", () => {
  const r = boot();
  const c = (o: Record<string, unknown>) => errno(() => r.k.bpf(r.proc, bpf_cmd.BPF_MAP_CREATE, createAttr(r, o)));
  assert.equal(c({ key_size: 8 }), EINVAL);
  assert.equal(c({ max_entries: 2 }), EINVAL);
  assert.equal(c({ map_flags: BPF_F_RDONLY }), EINVAL);
  assert.equal(c({ map_flags: 1 }), EINVAL);
  assert.equal(c({ btf_vmlinux_value_type_id: 0 }), EINVAL);
  assert.equal(c({ map_flags: BPF_F_LINK }), 0);
  assert.ok(c({}) === 0);
});

test("MAP_CREATE: unregistered value type -> ENOTSUPP (524); value_size mismatch -> EINVAL; no CAP_BPF -> EPERM", () => {
  const r = boot();
  const c = (o: Record<string, unknown>, proc = r.proc) =>
    errno(() => r.k.bpf(proc, bpf_cmd.BPF_MAP_CREATE, createAttr(r, o)));
  assert.equal(c({ btf_vmlinux_value_type_id: typeId(r.k, TESTMOD) }), ENOTSUPP);
  assert.equal(c({ value_size: VALUE_SIZE(r) - 8 }), EINVAL);
  const unpriv = r.k.newProcess({ caps: [] });
  r.k.sysctl.unprivilegedBpfDisabled = 0;
  assert.equal(c({}, unpriv), EPERM);
  // alloc_check runs before the capability check.
  assert.equal(c({ key_size: 8 }, unpriv), EINVAL);
});

test("MAP_CREATE: btf_fd must be a user BTF (kernel BTF -> EACCES, bad fd -> EBADF)", () => {
  const r = boot();
  const c = (o: Record<string, unknown>) => errno(() => r.k.bpf(r.proc, bpf_cmd.BPF_MAP_CREATE, createAttr(r, o)));
  assert.equal(c({ btf_fd: 999 }), EBADF);
  const vmlinuxFd = r.k.bpf(r.proc, bpf_cmd.BPF_BTF_GET_FD_BY_ID, { btf_id: r.k.btfVmlinuxObj!.id });
  assert.equal(c({ btf_fd: vmlinuxFd }), 13 /* EACCES */);
});

test("map info: btf_vmlinux_id is the id of the BTF holding the type, value type id kept", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  const info = objGetInfo(r.proc, fd);
  assert.equal(info.btf_vmlinux_id, r.k.btfVmlinuxObj!.id);
  assert.equal(info.btf_vmlinux_value_type_id, valueTypeOf(r, TESTMOD).id);
  assert.equal(info.type, bpf_map_type.BPF_MAP_TYPE_STRUCT_OPS);
});

test("UPDATE: flags must be 0 (BPF_NOEXIST/BPF_EXIST/BPF_F_LOCK -> EINVAL), key must be 0 (E2BIG)", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  const v = testmodValue(r, 1);
  assert.equal(
    errno(() => update(r, fd, v, KEY0, BPF_NOEXIST)),
    EINVAL,
  );
  assert.equal(
    errno(() => update(r, fd, v, KEY0, BPF_EXIST)),
    EINVAL,
  );
  assert.equal(
    errno(() => update(r, fd, v, KEY0, BPF_F_LOCK)),
    EINVAL,
  );
  assert.equal(
    errno(() => update(r, fd, v, new Uint8Array([1, 0, 0, 0]))),
    E2BIG,
  );
  assert.equal(r.spy.regs, 0);
  assert.equal(update(r, fd, v), 0);
});

test("UPDATE: holes must be zero (value padding and inside data), user state/refcnt must be zero", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  const pad = testmodValue(r, 1);
  pad.bytes[20] = 1; // between common (8 bytes) and data (at 64)
  assert.equal(
    errno(() => update(r, fd, pad)),
    EINVAL,
  );
  const inner = testmodValue(r, 1);
  inner.bytes[inner.off("data") + 4] = 1; // padding between int data and the owner pointer
  assert.equal(
    errno(() => update(r, fd, inner)),
    EINVAL,
  );
  const st = testmodValue(r, 1);
  st.dv.setUint32(4, 1, true);
  assert.equal(
    errno(() => update(r, fd, st)),
    EINVAL,
  );
  const rc = testmodValue(r, 1);
  rc.dv.setUint32(0, 1, true);
  assert.equal(
    errno(() => update(r, fd, rc)),
    EINVAL,
  );
  assert.equal(r.spy.regs, 0);
});

test("UPDATE: non-func members init_member does not handle must be zero -> EINVAL, rolled back to INIT", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  const v = testmodValue(r, 1).i32("zeroed", 5);
  assert.equal(
    errno(() => update(r, fd, v)),
    EINVAL,
  );
  assert.deepEqual(lookup(r, fd, VALUE_SIZE(r)), new Uint8Array(VALUE_SIZE(r)));
  assert.equal(mapOf(r, fd).links.length, 0);
  // INIT again: a correct value now succeeds.
  assert.equal(update(r, fd, testmodValue(r, 1)), 0);
});

test("UPDATE: each prog must be STRUCT_OPS, for this type, for this member index (else EINVAL); bad fd EBADF", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  const t2 = loadProg(r, TESTMOD, "test_2", "mov %r0, 2\nexit");
  const dummy = loadProg(r, "bpf_dummy_ops", "test_1", "mov %r0, 0\nexit");
  const sock = r.k.bpf(r.proc, bpf_cmd.BPF_PROG_LOAD, {
    prog_type: 1,
    insns: [
      { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
      { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
    ],
    insn_cnt: 2,
    license: "GPL",
  });
  assert.equal(
    errno(() => update(r, fd, testmodValue(r, 1, { test_1: t2 }))),
    EINVAL,
    "expected_attach_type != member index",
  );
  assert.equal(
    errno(() => update(r, fd, testmodValue(r, 1, { test_1: dummy }))),
    EINVAL,
    "attach_btf_id of another type",
  );
  assert.equal(
    errno(() => update(r, fd, testmodValue(r, 1, { test_1: sock }))),
    EINVAL,
    "not a struct_ops program",
  );
  assert.equal(
    errno(() => update(r, fd, testmodValue(r, 1, { test_1: 77 }))),
    EBADF,
  );
  assert.equal(
    errno(() => update(r, fd, testmodValue(r, 1, { test_1: fd }))),
    EINVAL,
    "a map fd",
  );
  assert.equal(r.spy.regs, 0);
});

test("UPDATE (non-link): validate, reg(kdata, NULL), +1 map ref, INUSE; lookup shows prog ids, state, refcnt", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  const t1 = loadProg(r, TESTMOD, "test_1", "mov %r0, 42\nexit");
  const t2 = loadProg(r, TESTMOD, "test_2", "mov %r0, 2\nexit");
  const map = mapOf(r, fd);
  const before = map.refcnt;
  assert.equal(update(r, fd, testmodValue(r, 9, { test_1: t1, test_2: t2 })), 0);
  assert.deepEqual(r.spy.events, ["validate", "reg:9:map"]);
  assert.equal(map.refcnt, before + 1);
  const out = new Value(r, TESTMOD);
  out.bytes.set(lookup(r, fd, VALUE_SIZE(r)));
  assert.equal(stateOf(out.bytes), 1 /* INUSE */);
  assert.equal(refcntOf(out.bytes), 1, "refcnt - usercnt: the registration's reference");
  const prog1 = r.proc.files.get(t1).private_data as { id: number };
  const prog2 = r.proc.files.get(t2).private_data as { id: number };
  assert.equal(out.getU64("test_1"), BigInt(prog1.id), "prog ids, not fds");
  assert.equal(out.getU64("test_2"), BigInt(prog2.id));
  assert.equal(out.dv.getInt32(out.off("data"), true), 9, "init_member-handled members keep the user's bytes");
  assert.equal(out.getU64("owner"), 0n, "the module slot stays 0 in the user view");
  // The kernel view: trampolines in func slots, BPF_MODULE_OWNER in the owner slot.
  const kdata = r.spy.registered.get(9)!;
  assert.equal(kdata.func("test_1")!.call(), 42);
  assert.equal(kdata.func("test_ptr"), undefined);
  assert.equal(kdata.view.getBigUint64(kdata.desc.memberOffsets[4], true), 0xdead000000000000n + (0xeb9fn << 2n));
  // Subsystem users count in the refcnt estimate.
  assert.equal(kdata.owner.get(), true);
  assert.equal(refcntOf(lookup(r, fd, VALUE_SIZE(r))), 2);
  kdata.owner.put();
  assert.equal(refcntOf(lookup(r, fd, VALUE_SIZE(r))), 1);
});

test("UPDATE: a second update -> EBUSY (INUSE); the map registers once", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  update(r, fd, testmodValue(r, 1));
  assert.equal(
    errno(() => update(r, fd, testmodValue(r, 2))),
    EBUSY,
  );
  assert.equal(r.spy.regs, 1);
});

test("UPDATE: validate failure -> its errno, full rollback (progs released, state INIT)", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  const t2 = loadProg(r, TESTMOD, "test_2", "mov %r0, 2\nexit");
  const prog = r.proc.files.get(t2).private_data as { refcnt: number };
  const rc = prog.refcnt;
  const v = new Value(r, TESTMOD).u64("test_2", t2).i32("data", 3);
  assert.equal(
    errno(() => update(r, fd, v)),
    EINVAL,
  );
  assert.equal(prog.refcnt, rc, "the prog reference taken by update is dropped");
  assert.equal(mapOf(r, fd).state, 0);
  assert.equal(mapOf(r, fd).kdata.funcs.filter(Boolean).length, 0);
  assert.equal(r.spy.regs, 0);
});

test("UPDATE: reg failure (EEXIST) rolls back; the map can be updated again", () => {
  const r = boot();
  const a = createMap(r, TESTMOD);
  const b = createMap(r, TESTMOD);
  update(r, a, testmodValue(r, 5));
  assert.equal(
    errno(() => update(r, b, testmodValue(r, 5))),
    EEXIST,
  );
  assert.equal(mapOf(r, b).state, 0);
  assert.equal(mapOf(r, b).refcnt, 1, "no registration reference after a failed reg");
  assert.equal(update(r, b, testmodValue(r, 6)), 0);
});

test("UPDATE: a non-zero module slot rolls back without registering (the stale-err quirk)", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  const t1 = loadProg(r, TESTMOD, "test_1", "mov %r0, 42\nexit");
  const prog = r.proc.files.get(t1).private_data as { refcnt: number };
  const rc = prog.refcnt;
  const v = testmodValue(r, 1, { test_1: t1 }).u64("owner", 0x1234);
  const ret = update(r, fd, v);
  // The kernel returns init_member's stale 1 (from `data`, the member before `owner`), and the
  // syscall passes it through (bpf_map_update_value returns the map op's value).
  assert.equal(ret, 1);
  assert.equal(r.spy.regs, 0, "no reg");
  assert.equal(mapOf(r, fd).state, 0, "back to INIT");
  assert.equal(prog.refcnt, rc);
  assert.deepEqual(lookup(r, fd, VALUE_SIZE(r)), new Uint8Array(VALUE_SIZE(r)));
});

test("UPDATE (BPF_F_LINK): validate, READY, no reg and no extra ref; second update EBUSY; delete EOPNOTSUPP", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD, { link: true });
  const map = mapOf(r, fd);
  const rc = map.refcnt;
  assert.equal(update(r, fd, testmodValue(r, 1)), 0);
  assert.deepEqual(r.spy.events, ["validate"]);
  assert.equal(map.state, 3 /* READY */);
  assert.equal(map.refcnt, rc);
  assert.equal(stateOf(lookup(r, fd, VALUE_SIZE(r))), 3);
  assert.equal(
    errno(() => update(r, fd, testmodValue(r, 1))),
    EBUSY,
  );
  assert.equal(
    errno(() => del(r, fd)),
    EOPNOTSUPP,
  );
});

test("UPDATE: init_member errors propagate (bpf_dummy_ops -> EOPNOTSUPP)", () => {
  const r = boot();
  const fd = createMap(r, "bpf_dummy_ops");
  const t1 = loadProg(r, "bpf_dummy_ops", "test_1", "mov %r0, 0\nexit");
  const v = new Value(r, "bpf_dummy_ops").u64("test_1", t1);
  assert.equal(
    errno(() => update(r, fd, v)),
    EOPNOTSUPP,
  );
});

test("DELETE: INUSE -> unreg, TOBEFREE; again EINPROGRESS; update EBUSY; INIT -> ENOENT; key ignored", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  assert.equal(
    errno(() => del(r, fd)),
    ENOENT,
  );
  update(r, fd, testmodValue(r, 4));
  const map = mapOf(r, fd);
  const rc = map.refcnt;
  assert.equal(del(r, fd, new Uint8Array([9, 9, 9, 9])), 0);
  assert.deepEqual(r.spy.events.slice(-1), ["unreg:4:map"]);
  assert.equal(map.refcnt, rc - 1);
  assert.equal(map.state, 2 /* TOBEFREE */);
  assert.equal(stateOf(lookup(r, fd, VALUE_SIZE(r))), 2);
  assert.equal(
    errno(() => del(r, fd)),
    EINPROGRESS,
  );
  assert.equal(
    errno(() => update(r, fd, testmodValue(r, 4))),
    EBUSY,
  );
  assert.equal(r.spy.unregs, 1);
});

test("LOOKUP: INIT gives zeros; key != 0 -> ENOENT; GET_NEXT_KEY yields only 0; FREEZE -> ENOTSUPP", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  const size = VALUE_SIZE(r);
  const v = new Uint8Array(size).fill(0xaa);
  r.k.bpf(r.proc, bpf_cmd.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: KEY0, value: v });
  assert.deepEqual(v, new Uint8Array(size));
  assert.equal(
    errno(() => lookup(r, fd, size, new Uint8Array([1, 0, 0, 0]))),
    ENOENT,
  );
  const next = new Uint8Array(4).fill(7);
  assert.equal(r.k.bpf(r.proc, bpf_cmd.BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key: null, next_key: next }), 0);
  assert.deepEqual(next, new Uint8Array(4));
  assert.equal(
    errno(() => r.k.bpf(r.proc, bpf_cmd.BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key: KEY0, next_key: next })),
    ENOENT,
  );
  next.fill(7);
  r.k.bpf(r.proc, bpf_cmd.BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key: new Uint8Array([5, 0, 0, 0]), next_key: next });
  assert.deepEqual(next, new Uint8Array(4));
  assert.equal(
    errno(() => r.k.bpf(r.proc, bpf_cmd.BPF_MAP_FREEZE, { map_fd: fd })),
    ENOTSUPP,
  );
});

test("program-side lookup of a struct_ops map -> EINVAL", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  assert.equal(
    errno(() => bpfStructOpsMapOps.map_lookup_elem(mapOf(r, fd), KEY0)),
    EINVAL,
  );
});

test("legacy lifetime: closing every fd keeps an INUSE map registered; delete frees it after RCU + RCU-tasks", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  const t1 = loadProg(r, TESTMOD, "test_1", "mov %r0, 42\nexit");
  update(r, fd, testmodValue(r, 8, { test_1: t1 }));
  const map = mapOf(r, fd);
  const prog = r.proc.files.get(t1).private_data as { refcnt: number; freed: boolean };
  r.proc.files.close(fd);
  r.proc.files.close(t1);
  r.k.quiesce();
  assert.equal(map.freed, false);
  assert.equal(r.spy.registered.has(8), true, "still registered");
  // Reachable through its id.
  const fd2 = r.k.bpf(r.proc, bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: map.id });
  const kdata = r.spy.registered.get(8)!;
  // A subsystem user (a socket) holds a reference across the delete.
  assert.equal(kdata.owner.get(), true);
  assert.equal(del(r, fd2), 0);
  r.proc.files.close(fd2);
  r.k.quiesce();
  assert.equal(map.released, false, "a subsystem reference keeps the map");
  assert.equal(kdata.func("test_1")!.call(), 42, "and its trampolines usable");
  // The last reference drops inside a program run: freeing waits for both grace periods.
  const tok = r.k.rcu.rcuReadLock();
  kdata.owner.put();
  r.k.flushWork();
  r.k.rcu.advance();
  assert.equal(map.released, false, "not freed while an RCU reader that predates the free is inside");
  r.k.rcu.rcuReadUnlock(tok);
  r.k.quiesce();
  assert.equal(map.released, true);
  assert.equal(prog.freed, true, "the map's program references are dropped with it");
  assert.equal(kdata.owner.get(), false, "bpf_struct_ops_get fails once the refcnt reached 0");
});

test("seq_show prints the value through the BTF pretty-printer (prog ids, state)", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  update(r, fd, testmodValue(r, 77));
  const out = bpfStructOpsMapOps.map_seq_show_elem!(mapOf(r, fd), KEY0);
  assert.match(out, /"data": 77/);
  assert.match(out, /"state": "BPF_STRUCT_OPS_STATE_INUSE"/);
  assert.match(out, /"test_1": 0x1/, "the prog id, from the user view");
  assert.ok(out.endsWith("\n"));
  assert.equal(
    bpfStructOpsMapOps.map_seq_show_elem!(mapOf(r, fd), new Uint8Array([1, 0, 0, 0])),
    "",
    "silent for a bad key",
  );
});

for (const sleepable of [false, true]) {
  test(`a ${sleepable ? "sleepable " : ""}program dropping the last reference to its own map is not freed under it`, () => {
    // bpf_tcp_cc_x->init() switching the socket to tcp_cc_y: the put happens inside the program.
    const r = boot();
    let inside: boolean | undefined;
    let map: BpfStructOpsMap | undefined;
    let kd: { owner: { put(): void } } | undefined;
    // An id structops does not implement (bpf_tcp_raw_check_syncookie_ipv6).
    const HELPER = 207;
    // A private helper: its prototype tells the verifier it takes no arguments.
    const proto = { name: "test_put_owner", funcId: HELPER, retType: RET_INTEGER, argTypes: [] };
    r.k.registerHelper(
      HELPER,
      () => {
        kd!.owner.put();
        // Other CPUs make progress meanwhile: deferred work and grace periods run.
        r.k.flushWork();
        r.k.rcu.advance();
        r.k.rcu.advance();
        inside = map!.released;
        return 0;
      },
      proto,
    );
    const fd = createMap(r, TESTMOD);
    const prog = loadProg(r, TESTMOD, "test_1", `call ${HELPER}\nmov %r0, 7\nexit`, { sleepable });
    update(r, fd, testmodValue(r, 1, { test_1: prog }));
    map = mapOf(r, fd);
    const kdata = r.spy.registered.get(1)!;
    kd = kdata;
    const op = kdata.func("test_1")!;
    assert.equal(kdata.owner.get(), true, "the socket's reference");
    del(r, fd);
    r.proc.files.close(fd);
    r.proc.files.close(prog);
    r.k.quiesce();
    assert.equal(map.released, false);
    assert.equal(op.call(), 7);
    assert.equal(inside, false, "not freed while its program runs");
    r.k.quiesce();
    assert.equal(map.released, true, "freed once it returned and the grace periods passed");
  });
}
