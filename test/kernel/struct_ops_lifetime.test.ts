/**
 * Property test of struct_ops object lifetimes: random sequences of map create / update / delete,
 * link create / update / detach, fd close, open-by-id from a second process, subsystem
 * bpf_struct_ops_get/put and RCU readers (programs in flight), checking the invariants after every
 * step and that everything is freed once every reference is gone.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { BpfLink, BpfProg } from "../../src/kernel/bpf.js";
import type { Process } from "../../src/kernel/process.js";
import type { RcuToken } from "../../src/kernel/rcu.js";
import type { BpfStructOpsKdata, BpfStructOpsMap } from "../../src/kernel/struct_ops.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { BpfError } from "../../src/uapi/errno.js";
import {
  boot,
  createMap,
  linkCreate,
  loadProg,
  type Rig,
  TESTMOD,
  testmodValue,
  update,
} from "../subsys/dummy/struct_ops_fixture.js";

type Action =
  | { t: "create"; p: number; link: boolean }
  | { t: "update"; p: number; i: number; data: number }
  | { t: "delete"; p: number; i: number }
  | { t: "linkCreate"; p: number; i: number }
  | { t: "linkUpdate"; p: number; l: number; i: number; replace: number }
  | { t: "detach"; p: number; l: number }
  | { t: "close"; p: number; i: number }
  | { t: "openById"; p: number; i: number }
  | { t: "get"; data: number }
  | { t: "put"; i: number }
  | { t: "readerEnter" }
  | { t: "readerExit"; i: number }
  | { t: "gp" };

const p = fc.integer({ min: 0, max: 1 });
const idx = fc.nat(7);
const weighted = (weight: number, arbitrary: fc.Arbitrary<Action>) => ({ weight, arbitrary });
const data = fc.integer({ min: 1, max: 5 });
const action: fc.Arbitrary<Action> = fc.oneof(
  weighted(3, fc.record({ t: fc.constant("create" as const), p, link: fc.boolean() })),
  weighted(5, fc.record({ t: fc.constant("update" as const), p, i: idx, data })),
  weighted(1, fc.record({ t: fc.constant("delete" as const), p, i: idx })),
  weighted(4, fc.record({ t: fc.constant("linkCreate" as const), p, i: idx })),
  weighted(
    3,
    fc.record({ t: fc.constant("linkUpdate" as const), p, l: idx, i: idx, replace: fc.integer({ min: -1, max: 7 }) }),
  ),
  weighted(1, fc.record({ t: fc.constant("detach" as const), p, l: idx })),
  weighted(1, fc.record({ t: fc.constant("close" as const), p, i: idx })),
  weighted(1, fc.record({ t: fc.constant("openById" as const), p, i: idx })),
  weighted(2, fc.record({ t: fc.constant("get" as const), data })),
  weighted(2, fc.record({ t: fc.constant("put" as const), i: idx })),
  weighted(1, fc.record({ t: fc.constant("readerEnter" as const) })),
  weighted(1, fc.record({ t: fc.constant("readerExit" as const), i: idx })),
  weighted(1, fc.record({ t: fc.constant("gp" as const) })),
);

interface World {
  r: Rig;
  procs: Process[];
  maps: BpfStructOpsMap[];
  links: BpfLink[];
  progs: BpfProg[];
  held: BpfStructOpsKdata[];
  readers: { tok: RcuToken; step: number }[];
  /** Step at which each map's refcnt was first seen at 0. */
  zeroAt: Map<BpfStructOpsMap, number>;
  step: number;
}

function fdsOf(w: World, pi: number, kind: "map" | "link"): number[] {
  const proc = w.procs[pi];
  return proc.files.list().filter((fd) => proc.files.get(fd).kind === kind);
}

function attempt(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
  }
}

function as(w: World, pi: number): Rig {
  return { ...w.r, proc: w.procs[pi] };
}

function run(w: World, a: Action): void {
  const pick = <T>(xs: T[], i: number): T | undefined => (xs.length ? xs[i % xs.length] : undefined);
  switch (a.t) {
    case "create": {
      const fd = createMap(as(w, a.p), TESTMOD, { link: a.link });
      w.maps.push(w.procs[a.p].files.get(fd).private_data as BpfStructOpsMap);
      break;
    }
    case "update": {
      const fd = pick(fdsOf(w, a.p, "map"), a.i);
      if (fd === undefined) return;
      const rig = as(w, a.p);
      const prog = loadProg(rig, TESTMOD, "test_1", "mov %r0, 1\nexit");
      w.progs.push(w.procs[a.p].files.get(prog).private_data as BpfProg);
      attempt(() => update(rig, fd, testmodValue(rig, a.data, { test_1: prog })));
      w.procs[a.p].files.close(prog);
      break;
    }
    case "delete": {
      const fd = pick(fdsOf(w, a.p, "map"), a.i);
      if (fd !== undefined)
        attempt(() => w.r.k.bpf(w.procs[a.p], bpf_cmd.BPF_MAP_DELETE_ELEM, { map_fd: fd, key: new Uint8Array(4) }));
      break;
    }
    case "linkCreate": {
      const fd = pick(fdsOf(w, a.p, "map"), a.i);
      if (fd === undefined) return;
      attempt(() => {
        const lfd = linkCreate(as(w, a.p), fd);
        w.links.push(w.procs[a.p].files.get(lfd).private_data as BpfLink);
      });
      break;
    }
    case "linkUpdate": {
      const lfd = pick(fdsOf(w, a.p, "link"), a.l);
      const mfd = pick(fdsOf(w, a.p, "map"), a.i);
      if (lfd === undefined || mfd === undefined) return;
      const old = a.replace >= 0 ? pick(fdsOf(w, a.p, "map"), a.replace) : undefined;
      attempt(() =>
        w.r.k.bpf(w.procs[a.p], bpf_cmd.BPF_LINK_UPDATE, {
          link_fd: lfd,
          new_map_fd: mfd,
          flags: old !== undefined ? 1 << 2 : 0,
          old_map_fd: old ?? 0,
        }),
      );
      break;
    }
    case "detach": {
      const lfd = pick(fdsOf(w, a.p, "link"), a.l);
      if (lfd !== undefined) attempt(() => w.r.k.bpf(w.procs[a.p], bpf_cmd.BPF_LINK_DETACH, { link_fd: lfd }));
      break;
    }
    case "close": {
      const fds = w.procs[a.p].files.list();
      const fd = pick(fds, a.i);
      if (fd !== undefined) w.procs[a.p].files.close(fd);
      break;
    }
    case "openById": {
      // The other process opens one of the objects by id (maps and links are shared across processes).
      const objs = [...w.maps, ...w.links];
      const o = pick(objs, a.i);
      if (!o) return;
      const cmd = w.maps.includes(o as BpfStructOpsMap) ? bpf_cmd.BPF_MAP_GET_FD_BY_ID : bpf_cmd.BPF_LINK_GET_FD_BY_ID;
      const key = cmd === bpf_cmd.BPF_MAP_GET_FD_BY_ID ? "map_id" : "link_id";
      attempt(() => w.r.k.bpf(w.procs[a.p], cmd, { [key]: o.id }));
      break;
    }
    case "get": {
      const kdata = w.r.spy.registered.get(a.data);
      if (kdata?.owner.get()) w.held.push(kdata);
      break;
    }
    case "put": {
      if (!w.held.length) return;
      const [kdata] = w.held.splice(a.i % w.held.length, 1);
      kdata.owner.put();
      break;
    }
    case "readerEnter":
      w.readers.push({ tok: w.r.k.rcu.rcuReadLock(), step: w.step });
      break;
    case "readerExit": {
      if (!w.readers.length) return;
      const [rd] = w.readers.splice(a.i % w.readers.length, 1);
      w.r.k.rcu.rcuReadUnlock(rd.tok);
      break;
    }
    case "gp":
      w.r.k.advance();
      break;
  }
}

function check(w: World): void {
  const spy = w.r.spy;
  assert.equal(spy.regs - spy.unregs, spy.registered.size, "every reg is matched by at most one unreg");
  for (const m of w.maps) {
    assert.ok(m.refcnt >= 0 && m.usercnt >= 0, `map ${m.id}: refcnt ${m.refcnt}, usercnt ${m.usercnt}`);
    if (m.refcnt === 0 && !w.zeroAt.has(m)) w.zeroAt.set(m, w.step);
    if (m.released) {
      assert.equal(m.refcnt, 0, "freed while referenced");
      const z = w.zeroAt.get(m)!;
      assert.ok(!w.readers.some((rd) => rd.step <= z), "freed before an RCU reader that predates it left");
    } else {
      for (const l of m.links) assert.equal(l.prog.freed, false, "a live map's program was freed");
    }
  }
  for (const kdata of spy.registered.values()) {
    const m = w.maps.find((x) => x.kdata === kdata)!;
    assert.equal(m.released, false, "a registered value was freed");
  }
  for (const kdata of w.held) assert.equal(w.maps.find((x) => x.kdata === kdata)!.released, false);
  for (const l of w.links) if (l.freed) assert.equal(l.refcnt, 0);
}

function finish(w: World): void {
  for (const kdata of w.held.splice(0)) kdata.owner.put();
  for (const rd of w.readers.splice(0)) w.r.k.rcu.rcuReadUnlock(rd.tok);
  // Legacy registrations outlive their fds by design: unregister them through their ids.
  for (const m of w.maps) {
    if (m.state !== 1 || m.refcnt === 0) continue;
    const fd = w.r.k.bpf(w.procs[0], bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: m.id });
    w.r.k.bpf(w.procs[0], bpf_cmd.BPF_MAP_DELETE_ELEM, { map_fd: fd, key: new Uint8Array(4) });
  }
  for (const proc of w.procs) proc.files.closeAll();
  w.r.k.quiesce();
  check(w);
  assert.equal(w.r.spy.regs, w.r.spy.unregs, "every reg has its unreg");
  for (const m of w.maps)
    assert.equal(m.released, true, `map ${m.id} (state ${m.state}, refcnt ${m.refcnt}) not freed`);
  for (const l of w.links) assert.equal(l.freed, true, `link ${l.id} not freed`);
  for (const pr of w.progs) assert.equal(pr.freed, true, `prog ${pr.id} not freed`);
}

test("struct_ops lifetimes: random operation sequences keep refcounts, reg/unreg and frees consistent", () => {
  const seen = { regs: 0, linkRegs: 0, updates: 0, frees: 0 };
  fc.assert(
    fc.property(fc.array(action, { minLength: 20, maxLength: 80 }), (actions) => {
      const r = boot();
      const w: World = {
        r,
        procs: [r.proc, r.k.newProcess()],
        maps: [],
        links: [],
        progs: [],
        held: [],
        readers: [],
        zeroAt: new Map(),
        step: 0,
      };
      for (const a of actions) {
        w.step++;
        run(w, a);
        check(w);
      }
      finish(w);
      seen.regs += r.spy.regs;
      seen.linkRegs += r.spy.events.filter((e) => e.endsWith(":link") && e.startsWith("reg")).length;
      seen.updates += r.spy.events.filter((e) => e.startsWith("update")).length;
      seen.frees += w.maps.length;
    }),
    { numRuns: 150, seed: 0x5eed },
  );
  // The generator reaches the interesting paths: legacy and link registrations, link swaps.
  if (process.env.SO_STATS) console.log(seen);
  assert.ok(seen.regs > 50 && seen.linkRegs > 10 && seen.updates > 0 && seen.frees > 100, JSON.stringify(seen));
});
