// BPF schedulers on the simulated machine, loaded and attached as structops sched does: the
// properties every scheduler should keep (work conservation, determinism, equal shares for equal
// hogs), live replacement (sched_ext refuses BPF_LINK_UPDATE: detach, then attach), and the exit
// a scheduler that breaks a rule takes, printed as the scx tools print it.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Kernel } from "../../../src/kernel/kernel.js";
import { Sched } from "../../../src/kernel/sched/core.js";
import { BpfSchedHost } from "../../../src/sim/sched/bpf_sched.js";
import { Machine } from "../../../src/sim/sched/machine.js";
import { schedMetrics } from "../../../src/sim/sched/metrics.js";
import { PRESETS } from "../../../src/sim/sched/workload.js";
import { schedExtSubsystem } from "../../../src/subsys/sched_ext/index.js";
import { OBJ_DIR } from "../../elf/helpers.js";

const obj = (name: string) => join(OBJ_DIR, "sim", `${name}.bpf.o`);
const hasClass = new Sched(new Kernel({ subsystems: [schedExtSubsystem] })).ext !== null;
const skip = !hasClass
  ? "the kernel's sched_ext has no ext scheduling class"
  : !existsSync(obj("scx_vtime"))
    ? "bpf/obj/sim/scx_*.bpf.o not built"
    : false;

function machine(preset: string, cpus: number, seed = 1): { m: Machine; h: BpfSchedHost } {
  const m = new Machine({
    cpus,
    workload: PRESETS[preset]!(cpus),
    seed,
    subsystems: [schedExtSubsystem],
    checkWorkConservation: true,
  });
  const h = new BpfSchedHost(m);
  m.onTick = () => h.collect();
  return { m, h };
}

describe("BPF schedulers on the machine", { skip }, () => {
  for (const [name, preset] of [
    ["scx_vtime", "interactive"],
    ["scx_fifo", "build"],
  ] as const) {
    it(`${name} on ${preset}: every task in ext, no CPU idle while a task waits over a tick, the same run for a seed`, () => {
      const run = () => {
        const { m, h } = machine(preset, 4, 5);
        h.attach(name, h.load(obj(name)));
        m.run(150e6);
        h.collect();
        assert.deepEqual(m.violations.slice(0, 3), []);
        assert.deepEqual(h.exits, []);
        assert.ok([...m.sched.tasks()].every((p) => p.sched_class === m.sched.ext));
        return JSON.stringify(schedMetrics(m, 150e6));
      };
      assert.equal(run(), run());
    });
  }

  it("scx_vtime: 8 equal hogs on 4 CPUs share them equally (within 5%)", () => {
    const { m, h } = machine("hogs", 4);
    h.attach("scx_vtime", h.load(obj("scx_vtime")));
    m.run(1e9);
    for (const p of m.all)
      assert.ok(Math.abs(p.se.sum_exec_runtime / 1e9 - 0.5) < 0.025, `${p.comm}: ${p.se.sum_exec_runtime}`);
  });

  // ext.c calls ops.dispatch before it re-enqueues a prev whose slice ran out: a scheduler that
  // always takes the shared DSQ's head there gives the heaviest hog every other slice only (50%
  // where its weight entitles it to 70%). scx_vtime keeps prev while it stays furthest behind.
  for (const [label, cpus, tasks, seconds] of [
    ["nice 0, 5 and 10 on 1 CPU", 1, [0, 5, 10], 10],
    ["mixed-nice (-5, 0, 5, 10) on 2 CPUs", 2, [-5, 0, 5, 10], 10],
  ] as const) {
    it(`scx_vtime: ${label}: every hog's CPU time within 5% of its weighted entitlement`, () => {
      const workload = {
        name: "nice",
        tasks: tasks.map((nice) => ({ ...PRESETS.hogs(1).tasks[0]!, name: `nice${nice}`, instances: 1, nice })),
      };
      const m = new Machine({ cpus, workload, seed: 1, subsystems: [schedExtSubsystem] });
      const h = new BpfSchedHost(m);
      h.attach("scx_vtime", h.load(obj("scx_vtime")));
      m.run(seconds * 1e9);
      const met = schedMetrics(m, seconds * 1e9);
      for (const t of met.tasks) {
        assert.ok(t.fair_share !== null);
        const err = Math.abs(t.share - t.fair_share) / t.fair_share;
        assert.ok(err < 0.05, `${t.name}: share ${t.share.toFixed(4)}, entitled to ${t.fair_share.toFixed(4)}`);
      }
      assert.deepEqual(h.exits, []);
    });
  }

  it("a live switch: BPF_LINK_UPDATE refused, the old scheduler unregisters (EXIT line), the new one runs every task", () => {
    const { m, h } = machine("interactive", 2);
    const a = h.load(obj("scx_vtime"));
    const b = h.load(obj("scx_fifo"));
    h.attach("vtime", a);
    m.at(50e6, () => h.switchTo("fifo", b));
    m.run(100e6);
    h.collect();
    assert.deepEqual(h.switches, [
      { at: 50e6, from: "vtime", to: "fifo", how: "BPF_LINK_UPDATE refused (EOPNOTSUPP): detach, then attach" },
    ]);
    assert.equal(h.exits.length, 1);
    assert.equal(h.exits[0]!.kindName, "SCX_EXIT_UNREG");
    assert.equal(h.exits[0]!.line, "EXIT: unregistered from user space");
    assert.equal(h.running, "fifo");
    assert.ok([...m.sched.tasks()].every((p) => p.sched_class === m.sched.ext));
    assert.deepEqual(m.violations.slice(0, 3), []);
  });

  it("detaching gives every task back to the fair class", () => {
    const { m, h } = machine("hogs", 2);
    h.attach("vtime", h.load(obj("scx_vtime")));
    m.at(50e6, () => h.switchTo("fair", null));
    m.run(100e6);
    assert.equal(h.switches[0]!.how, "detach");
    assert.ok([...m.sched.tasks()].every((p) => p.sched_class === m.sched.fair));
    assert.deepEqual(m.busyNs(), [100e6, 100e6]);
  });

  it("dispatching to a bogus DSQ ends the scheduler with an error exit; the machine runs on under fair", () => {
    const { m, h } = machine("hogs", 2);
    h.attach("ddsp_bogus", h.load(obj("scx_ddsp_bogus")));
    m.run(100e6);
    h.collect();
    assert.equal(h.exits.length, 1);
    assert.equal(h.exits[0]!.kindName, "SCX_EXIT_ERROR");
    assert.match(h.exits[0]!.line, /^EXIT: runtime error \(non-existent DSQ 0xcafef00d for hog-\d\[\d+\]\)$/);
    assert.ok([...m.sched.tasks()].every((p) => p.sched_class === m.sched.fair));
    assert.deepEqual(m.busyNs(), [100e6, 100e6]);
  });
});
