/**
 * What the kernel's `hotplug` selftest asserts, on our bpf/scx_hotplug.bpf.c: a CPU going offline
 * or online ends a scheduler with ops.cpu_online/cpu_offline through its own scx_bpf_exit()
 * (SCX_EXIT_UNREG_BPF, its restart code), and one without them with SCX_EXIT_UNREG_KERN and
 * SCX_ECODE_ACT_RESTART | SCX_ECODE_RSN_HOTPLUG; a scheduler attached with a hotplug sequence
 * that a CPU change has made stale ends the same way.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { BpfObject } from "../../../src/loader/object.js";
import { Machine } from "../../../src/sim/sched/machine.js";
import { PRESETS } from "../../../src/sim/sched/workload.js";
import {
  SCX_ECODE_ACT_RESTART,
  SCX_ECODE_RSN_HOTPLUG,
  SCX_EXIT_UNREG_BPF,
  SCX_EXIT_UNREG_KERN,
  schedExtSubsystem,
  scxState,
} from "../../../src/subsys/sched_ext/index.js";
import { exitRecord, readGlobal, type ScxBoot, scxObj } from "./helpers.js";

const skip = existsSync(scxObj("scx_hotplug")) ? false : "bpf/obj/sim/scx_hotplug.bpf.o not built";
const HP_EXIT_REASON = 1n;
const HP_ONLINING = 2n;

function boot(hotplugSeq?: bigint) {
  const m = new Machine({ cpus: 2, workload: PRESETS.hogs(2), subsystems: [schedExtSubsystem], seed: 1 });
  const st = scxState(m.kernel);
  assert.ok(st);
  const b: ScxBoot = { kernel: m.kernel, h: { kernel: m.kernel, process: m.kernel.newProcess() }, st };
  const obj = BpfObject.open(scxObj("scx_hotplug"));
  if (hotplugSeq !== undefined) {
    for (const name of ["cb_ops", "nocb_ops"]) obj.findMap(name)?.structOpsValue?.set("hotplug_seq", hotplugSeq);
  }
  obj.load(b.h);
  const attach = (map: string) => {
    const sm = obj.findMap(map);
    assert.ok(sm?.structOpsValue, map);
    return sm.attachStructOps();
  };
  return { m, b, obj, st, attach };
}

for (const onlining of [true, false]) {
  for (const cbs of [true, false]) {
    test(`hotplug: CPU 1 going ${onlining ? "online" : "offline"}, ${cbs ? "with" : "without"} cpu_online/cpu_offline`, {
      skip,
    }, () => {
      const { m, b, obj, st, attach } = boot();
      // the offline -> online path starts with the CPU offline
      if (onlining) m.sched.cpu_down(1);
      const seq = st.hotplugSeq;
      attach(cbs ? "cb_ops" : "nocb_ops");
      assert.equal(st.root?.name, cbs ? "hotplug_cb" : "hotplug_nocb");
      m.at(20e6, () => (onlining ? m.sched.cpu_up(1) : m.sched.cpu_down(1)));
      m.run(50e6);
      assert.equal(st.hotplugSeq, seq + 1n);
      assert.equal(st.root, null);
      const rec = exitRecord(b, obj);
      if (cbs) {
        assert.equal(rec.kind, SCX_EXIT_UNREG_BPF);
        assert.equal(rec.exit_code, SCX_ECODE_ACT_RESTART | HP_EXIT_REASON | (onlining ? HP_ONLINING : 0n));
        assert.equal(rec.msg, `cpu 1 went ${onlining ? "online" : "offline"}`);
        assert.equal(readGlobal(b, obj, "hp_cpu", ".data").getInt32(0, true), 1);
      } else {
        assert.equal(rec.kind, SCX_EXIT_UNREG_KERN);
        assert.equal(rec.exit_code, SCX_ECODE_ACT_RESTART | SCX_ECODE_RSN_HOTPLUG);
        assert.equal(rec.msg, `cpu 1 going ${onlining ? "online" : "offline"}, exiting scheduler`);
      }
      // every task is back in fair and keeps running where it may
      assert.ok(m.all.every((p) => p.sched_class === m.sched.fair));
      assert.equal(m.busyNs()[0], 50e6);
    });
  }
}

test("hotplug: a CPU gone offline between reading hotplug_seq and attaching ends the scheduler at attach", {
  skip,
}, () => {
  // the sequence userspace read, after some hotplug history (the selftest asserts it is not 0)
  const probe = boot();
  probe.m.sched.cpu_down(1);
  probe.m.sched.cpu_up(1);
  assert.equal(probe.st.hotplugSeq, 2n);
  const { m, b, obj, st, attach } = boot(2n);
  m.sched.cpu_down(1);
  m.sched.cpu_up(1);
  m.sched.cpu_down(1);
  const link = attach("nocb_ops");
  assert.ok(link);
  assert.equal(st.root, null);
  const rec = exitRecord(b, obj);
  assert.equal(rec.kind, SCX_EXIT_UNREG_KERN);
  assert.equal(rec.exit_code, SCX_ECODE_ACT_RESTART | SCX_ECODE_RSN_HOTPLUG);
  assert.equal(rec.msg, "expected hotplug seq 2 did not match actual 3");
});

test("hotplug: with the current sequence the scheduler attaches and runs", { skip }, () => {
  const { m, st, attach } = boot(2n);
  m.sched.cpu_down(1);
  m.sched.cpu_up(1);
  attach("nocb_ops");
  m.run(20e6);
  assert.equal(st.root?.name, "hotplug_nocb");
  assert.ok(m.all.every((p) => p.sched_class === m.sched.ext));
});
