// cpu.max on the simulated machine (core.c tg_set_bandwidth, fair.c CFS bandwidth, ext.c
// scx_group_set_bandwidth): the writes the kernel refuses, the fair class holding a cgroup to its
// quota per period (throttled, then refilled by the period timer), and sched_ext's
// ops.cgroup_set_bandwidth called with (period_us, quota_us, burst_us) when a value changes, the
// limit in scx_cgroup_init_args. bpf/scx_cgw.bpf.c records both.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { RUNTIME_INF } from "../../../src/kernel/cgroup.js";
import { bpf_map_lookup_elem } from "../../../src/loader/bpf.js";
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

function machine(doc: object, cpus = 4): Machine {
  return new Machine({ cpus, workload: parseWorkload(JSON.stringify(doc)), seed: 1, subsystems: [schedExtSubsystem] });
}

function runtimeMs(m: Machine, ns: number): Map<string, number> {
  const met = schedMetrics(m, ns);
  assert.ok(met.cgroups);
  return new Map(met.cgroups.map((c) => [c.path, c.runtime_ms]));
}

describe("cpu.max", () => {
  it("writes: QUOTA [PERIOD] or max, read back; the kernel's refusals are EINVAL", () => {
    const m = machine({ cgroups: { "/a": {} }, tasks: { t: hog } });
    const cgr = m.sched.cgroup.root!;
    const a = cgr.lookup("/a")!;
    assert.equal(cgr.readMax(a), "max 100000");
    cgr.setMax(a, "20000 50000");
    assert.equal(cgr.readMax(a), "20000 50000");
    // The period is kept when only the quota is written.
    cgr.setMax(a, "30000");
    assert.equal(cgr.readMax(a), "30000 50000");
    const einval = (fn: () => void) => assert.throws(fn, (e: unknown) => e instanceof BpfError && e.errno === EINVAL);
    einval(() => cgr.setMax(cgr.cgrp, "max")); // the root has no cpu.max
    einval(() => cgr.setMax(a, "abc 100000"));
    einval(() => cgr.setMax(a, "999 100000")); // quota under 1 ms
    einval(() => cgr.setMax(a, "max 999")); // period under 1 ms
    einval(() => cgr.setMax(a, "max 1000001")); // period over 1 s
    einval(() => cgr.setMaxBurst(a, 30001n)); // burst over the quota
    assert.equal(cgr.readMax(a), "30000 50000", "a refused write changes nothing");
    cgr.setMax(a, "max");
    assert.equal(a.bw_quota_us, RUNTIME_INF);
    assert.throws(() => machine({ cgroups: { "/a": { max: "10 100000" } }, tasks: { t: hog } }), BpfError);
  });

  it("the fair class: a throttled cgroup gets its quota per period, the rest of the machine the remainder", () => {
    // 4 CPUs: /lim (50 ms per 100 ms: half a CPU) with three hogs, /free with one.
    const m = machine({
      cgroups: { "/lim": { max: "50000 100000" }, "/free": {} },
      tasks: { l: { instance: 3, cgroup: "/lim", ...hog }, f: { cgroup: "/free", ...hog } },
    });
    m.run(2e9);
    const rt = runtimeMs(m, 2e9);
    assert.ok(Math.abs(rt.get("/lim")! - 1000) < 20, `/lim ran ${rt.get("/lim")} ms of its 1000`);
    assert.ok(Math.abs(rt.get("/free")! - 2000) < 1, `/free ran ${rt.get("/free")} ms`);
    assert.deepEqual(m.violations, [], "throttled tasks are not work the idle CPUs could do");
    const b = m.sched.cgroup.bandwidth.stat(m.sched.cgroup.root!.lookup("/lim")!)!;
    assert.equal(b.nr_periods, 20);
    assert.ok(b.nr_throttled >= 19, `throttled in ${b.nr_throttled} of 20 periods`);
    // The entitlement the metrics give is capped by the quota too.
    const met = schedMetrics(m, 2e9);
    assert.equal(met.cgroups!.find((c) => c.path === "/lim")!.fair_share, 0.125);
  });

  it("a limit written mid-run applies from then; lifting it lets the group run free", () => {
    const m = machine({
      cgroups: { "/lim": {} },
      tasks: { l: { instance: 2, cgroup: "/lim", ...hog } },
      cgroup_events: [
        { at: 500e3, cgroup: "/lim", max: "25000 100000" },
        { at: 1500e3, cgroup: "/lim", max: "max" },
      ],
    });
    m.run(2e9);
    // 0.5 s on 2 CPUs, 1 s at a quarter CPU, 0.5 s on 2 CPUs.
    const rt = runtimeMs(m, 2e9).get("/lim")!;
    assert.ok(Math.abs(rt - 2250) < 30, `/lim ran ${rt} ms, expected about 2250`);
  });

  describe("sched_ext: ops.cgroup_set_bandwidth", { skip }, () => {
    it("called with (period_us, quota_us, burst_us) for a changed limit only; cgroup_init sees the limit", () => {
      const m = machine(
        {
          cgroups: { "/a": { max: "40000 80000" }, "/b": {} },
          tasks: { a: { instance: 2, cgroup: "/a", ...hog }, b: { cgroup: "/b", ...hog } },
        },
        2,
      );
      const h = new BpfSchedHost(m);
      const obj = BpfObject.open(OBJ);
      obj.load(h.h);
      const bssMap = obj.internalMap(".bss")!;
      const u64 = (name: string) => {
        const v = new Uint8Array(bssMap.valueSize);
        assert.equal(bpf_map_lookup_elem(h.h, bssMap.fd, new Uint8Array(4), v), 0);
        return new DataView(v.buffer).getBigUint64(varOffset(obj, ".bss", name), true);
      };
      const cgr = m.sched.cgroup.root!;
      const a = cgr.lookup("/a")!;
      const b = cgr.lookup("/b")!;
      h.attach("cgw", obj.findMap("cgw_ops")!);
      // cgroup_init runs parents first: /b last, with no limit; /a's limit was seen before it.
      assert.deepEqual(
        [u64("last_init_cgid"), u64("last_init_period"), u64("last_init_quota")],
        [BigInt(b.id), 100000n, RUNTIME_INF],
      );
      assert.equal(u64("nr_set_bandwidth"), 0n);
      cgr.setMax(b, "30000 60000");
      assert.equal(u64("nr_set_bandwidth"), 1n);
      assert.deepEqual(
        [u64("last_bw_cgid"), u64("last_bw_period"), u64("last_bw_quota"), u64("last_bw_burst")],
        [BigInt(b.id), 60000n, 30000n, 0n],
      );
      cgr.setMax(b, "30000 60000");
      assert.equal(u64("nr_set_bandwidth"), 1n, "the same limit again calls nothing");
      cgr.setMaxBurst(b, 5000n);
      assert.deepEqual([u64("nr_set_bandwidth"), u64("last_bw_burst")], [2n, 5000n]);
      // A refused write reaches no scheduler.
      assert.throws(() => cgr.setMax(a, "10 80000"), BpfError);
      assert.equal(u64("nr_set_bandwidth"), 2n);
      // A cgroup made while loaded: cgroup_init gets the default.
      const c = cgr.mkdir(cgr.cgrp, "c");
      assert.deepEqual([u64("last_init_cgid"), u64("last_init_quota")], [BigInt(c.id), RUNTIME_INF]);
      // Tasks of sched_ext are not throttled by the fair class: enforcing cpu.max is the scheduler's.
      m.run(1e9);
      h.collect();
      assert.deepEqual(h.exits, []);
      assert.equal(m.sched.cgroup.bandwidth.parked.size, 0);
      h.detach();
    });
  });
});
