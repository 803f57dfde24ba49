// Cgroups on the simulated machine: the workload's hierarchy, tasks started in and moved between
// cgroups, cpu.weight written during the run; the fair class's shares by cgroup weight (the
// baseline), and bpf/scx_cgw.bpf.c, our cgroup-weighted scheduler, with the cgroup ops ext.c
// calls (cgroup_init for every group at attach and for one made while it runs, prep_move and
// move for a migration, cancel_move when prep_move refuses, set_weight, cgroup_exit at detach).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { bpf_map_lookup_elem, bpf_map_update_elem } from "../../../src/loader/bpf.js";
import { BpfObject } from "../../../src/loader/object.js";
import { BpfSchedHost } from "../../../src/sim/sched/bpf_sched.js";
import { Machine } from "../../../src/sim/sched/machine.js";
import { schedMetrics } from "../../../src/sim/sched/metrics.js";
import { parseWorkload } from "../../../src/sim/sched/workload.js";
import { schedExtSubsystem } from "../../../src/subsys/sched_ext/index.js";
import { BpfError, EINVAL } from "../../../src/uapi/errno.js";
import { OBJ_DIR } from "../../elf/helpers.js";
import { varOffset } from "../../subsys/sched_ext/helpers.js";

const OBJ = join(OBJ_DIR, "sim", "scx_cgw.bpf.o");
const skip = existsSync(OBJ) ? false : "bpf/obj/sim/scx_cgw.bpf.o not built";

const hog = { run: 1e6 };
/** 2 CPUs: /a (weight 100) and /b (weight 300), three hogs each; /c empty. */
const WORKLOAD = JSON.stringify({
  cgroups: { "/a": { weight: 100 }, "/b": { weight: 300 }, "/c": {} },
  tasks: { a: { instance: 3, cgroup: "/a", ...hog }, b: { instance: 3, cgroup: "/b", ...hog } },
});

function machine(text: string, cpus = 2): Machine {
  return new Machine({ cpus, workload: parseWorkload(text), seed: 1, subsystems: [schedExtSubsystem] });
}

/** Each cgroup's share of the machine against its entitlement (metrics' water-filling by weight). */
function shares(m: Machine, ns: number): Map<string, { share: number; fair: number }> {
  const met = schedMetrics(m, ns);
  assert.ok(met.cgroups);
  return new Map(met.cgroups.map((c) => [c.path, { share: c.share, fair: c.fair_share ?? 0 }]));
}

function within5(got: Map<string, { share: number; fair: number }>, want: Record<string, number>): void {
  for (const [path, w] of Object.entries(want)) {
    const g = got.get(path);
    assert.ok(g, path);
    assert.ok(Math.abs(g.fair - w) < 1e-3, `${path}: entitled to ${g.fair}, expected ${w}`);
    assert.ok(Math.abs(g.share - w) / w < 0.05, `${path}: share ${g.share}, entitled to ${w}`);
  }
}

describe("cgroups on the machine", () => {
  it("workload cgroups: paths, weights and task names are checked", () => {
    const err = (text: string) => {
      try {
        parseWorkload(text);
      } catch (e) {
        assert.ok(e instanceof BpfError && e.errno === EINVAL);
        return e.message;
      }
      return "";
    };
    assert.match(err(JSON.stringify({ cgroups: { "/a/b": {} }, tasks: { t: hog } })), /parent \/a is not listed/);
    assert.match(err(JSON.stringify({ cgroups: { "/a": { weight: 0 } }, tasks: { t: hog } })), /weight/);
    assert.match(err(JSON.stringify({ tasks: { t: { cgroup: "/x", ...hog } } })), /no cgroup "\/x"/);
    assert.match(
      err(
        JSON.stringify({
          cgroups: { "/a": {} },
          tasks: { t: hog },
          cgroup_events: [{ at: 1, task: "u", cgroup: "/a" }],
        }),
      ),
      /no task named "u"/,
    );
  });

  it("the fair class: cgroups of weight 100 and 300 get 1/4 and 3/4 of the machine (within 5%)", () => {
    const m = machine(WORKLOAD);
    m.run(2e9);
    within5(shares(m, 2e9), { "/a": 0.25, "/b": 0.75 });
    // Without cgroups the same six hogs share equally: the weights are what changed it.
    const flat = machine(JSON.stringify({ tasks: { a: { instance: 3, ...hog }, b: { instance: 3, ...hog } } }));
    flat.run(1e9);
    for (const p of flat.all) assert.ok(Math.abs(p.se.sum_exec_runtime / 1e9 - 1 / 3) < 0.02, p.comm);
  });

  it("the fair class: a nested group's share compounds with its parent's; a weight written mid-run applies", () => {
    const m = machine(
      JSON.stringify({
        cgroups: { "/p": { weight: 100 }, "/p/x": { weight: 100 }, "/p/y": { weight: 300 }, "/q": { weight: 100 } },
        tasks: {
          x: { instance: 2, cgroup: "/p/x", ...hog },
          y: { instance: 2, cgroup: "/p/y", ...hog },
          q: { instance: 2, cgroup: "/q", ...hog },
        },
      }),
    );
    m.run(2e9);
    within5(shares(m, 2e9), { "/p/x": 0.125, "/p/y": 0.375, "/q": 0.5 });
  });

  describe("scx_cgw", { skip }, () => {
    function attach(text: string, cpus = 2) {
      const m = machine(text, cpus);
      const h = new BpfSchedHost(m);
      m.onTick = () => h.collect();
      h.attach("cgw", h.load(OBJ));
      return { m, h };
    }

    it("cgroups of weight 100 and 300 get 1/4 and 3/4 of the machine (within 5%)", () => {
      const { m, h } = attach(WORKLOAD);
      m.run(2e9);
      h.collect();
      assert.deepEqual(h.exits, []);
      assert.ok([...m.sched.tasks()].every((p) => p.sched_class === m.sched.ext));
      within5(shares(m, 2e9), { "/a": 0.25, "/b": 0.75 });
    });

    it("the cgroup ops: init at attach and at mkdir, prep_move/move, cancel_move on a refusal, set_weight, exit at detach", () => {
      const m = machine(
        JSON.stringify({
          cgroups: { "/a": { weight: 100 }, "/b": { weight: 300 }, "/c": {} },
          tasks: { a: { instance: 2, cgroup: "/a", ...hog }, b: { instance: 2, cgroup: "/b", ...hog } },
          cgroup_events: [
            { at: 100e3, task: "a", cgroup: "/c" },
            { at: 200e3, cgroup: "/b", weight: 500 },
            { at: 300e3, cgroup: "/b", weight: 500 },
          ],
        }),
      );
      const h = new BpfSchedHost(m);
      const obj = BpfObject.open(OBJ);
      obj.load(h.h);
      const bssMap = obj.internalMap(".bss")!;
      const bss = () => {
        const v = new Uint8Array(bssMap.valueSize);
        assert.equal(bpf_map_lookup_elem(h.h, bssMap.fd, new Uint8Array(4), v), 0);
        return new DataView(v.buffer);
      };
      const off = (name: string) => varOffset(obj, ".bss", name);
      const u64 = (name: string) => Number(bss().getBigUint64(off(name), true));
      h.attach("cgw", obj.findMap("cgw_ops")!);
      const cgr = m.sched.cgroup.root!;
      assert.equal(u64("nr_cgroup_init"), 4, "the root, /a, /b, /c");
      m.run(1e9);
      const a0 = m.tasksNamed("a")[0]!;
      assert.equal(u64("nr_prep_move"), 2);
      assert.equal(u64("nr_move"), 2, "one move per task");
      assert.deepEqual(
        [u64("last_move_pid"), u64("last_move_from"), u64("last_move_to")],
        [m.tasksNamed("a")[1]!.pid, cgr.lookup("/a")!.id, cgr.lookup("/c")!.id],
      );
      assert.equal(cgr.taskCgroup(a0.task), cgr.lookup("/c"));
      assert.equal(u64("nr_set_weight"), 1, "a write of the same weight calls nothing");
      assert.deepEqual([u64("last_weight_cgid"), u64("last_weight")], [cgr.lookup("/b")!.id, 500]);
      // A cgroup made while the scheduler runs is initialised then; a refused migration is cancelled.
      const d = cgr.mkdir(cgr.cgrp, "d");
      assert.equal(u64("nr_cgroup_init"), 5);
      const v = new Uint8Array(bssMap.valueSize);
      assert.equal(bpf_map_lookup_elem(h.h, bssMap.fd, new Uint8Array(4), v), 0);
      const b = m.tasksNamed("b");
      new DataView(v.buffer).setBigUint64(off("deny_pid"), BigInt(b[1]!.pid), true);
      assert.equal(bpf_map_update_elem(h.h, bssMap.fd, new Uint8Array(4), v, 0), 0);
      assert.throws(
        () =>
          cgr.attach(
            b.map((p) => p.task),
            d,
          ),
        (e: unknown) => e instanceof BpfError && e.errno === 16,
      );
      assert.equal(u64("nr_cancel_move"), 1, "the first task was prepared, the second refused: one cancel");
      assert.equal(cgr.taskCgroup(b[0]!.task), cgr.lookup("/b"));
      cgr.rmdir(d);
      assert.equal(u64("nr_cgroup_exit"), 1);
      h.detach();
      assert.equal(u64("nr_cgroup_exit"), 5, "every initialised group exits");
      assert.equal(h.exits.length, 1);
      assert.equal(h.exits[0]!.kindName, "SCX_EXIT_UNREG");
    });
  });
});
