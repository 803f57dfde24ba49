/**
 * The simulated machine: a booted kernel whose scheduler (src/kernel/sched) runs a workload on N
 * CPUs. An event queue steps the scheduler clock; each CPU's current task makes progress on its
 * `run` events while it holds the CPU, after a context-switch cost (and a migration cost when it
 * last ran elsewhere); ticks arrive at CONFIG_HZ on busy CPUs. Everything is ordered by (time,
 * sequence) and all variation comes from the seeded PRNG, so a seed gives one exact run.
 */

import { hrtimer_next_expiry } from "../../kernel/hrtimer.js";
import { Kernel, type Subsystem } from "../../kernel/kernel.js";
import { Sched, type SchedOptions } from "../../kernel/sched/core.js";
import type { Rq, SchedTask } from "../../kernel/sched/sched.js";
import { TASK_INTERRUPTIBLE, TASK_ON_RQ_QUEUED } from "../../kernel/sched/sched.js";
import { BpfError } from "../../uapi/errno.js";
import { EventQueue } from "../event_queue.js";
import { Prng } from "../prng.js";
import type { TaskTemplate, WorkEvent, Workload } from "./workload.js";

export interface MachineOptions {
  cpus: number;
  workload: Workload;
  seed?: number;
  /** CONFIG_HZ (default 1000). */
  hz?: number;
  /** ns a CPU spends switching before the next task makes progress. */
  csCost?: number;
  /** ns of extra work for a task that runs on another CPU than last time (cache refill). */
  migrationCost?: number;
  topology?: SchedOptions["topology"];
  /** Kernel subsystems to boot (the ext class's). */
  subsystems?: readonly Subsystem[];
  /** Record per-CPU run segments for a timeline. */
  timeline?: boolean;
  /** Check work conservation at every tick. */
  checkWorkConservation?: boolean;
}

/** What the machine keeps per task. */
export interface TaskRun {
  tpl: TaskTemplate;
  instance: number;
  ev: number;
  loops: number;
  /** ns of the current run event left. */
  remaining: number;
  /** Resumes received before the matching suspend. */
  pendingResume: number;
  suspended: boolean;
  /** When the task was last woken (-1: none pending). */
  wokenAt: number;
  lastCpu: number;
  latencies: number[];
  exited: boolean;
  forkedAt: number;
  exitedAt: number;
}

export interface Segment {
  cpu: number;
  start: number;
  end: number;
  pid: number;
  name: string;
}

export interface Violation {
  t: number;
  cpu: number;
  pid: number;
  waited: number;
}

interface CpuState {
  /** Bumped at every switch: completion events of an earlier occupant are stale. */
  gen: number;
  /** When curr started making progress (after the switch cost). */
  progressFrom: number;
  busyNs: number;
  since: number;
  segStart: number;
}

export class Machine {
  readonly kernel: Kernel;
  readonly sched: Sched;
  readonly q = new EventQueue();
  readonly prng: Prng;
  readonly csCost: number;
  readonly migrationCost: number;
  readonly segments: Segment[] = [];
  readonly violations: Violation[] = [];
  /** Every task the workload created, in creation order (exited ones included). */
  readonly all: SchedTask[] = [];
  private readonly cpuState: CpuState[] = [];
  private readonly byName = new Map<string, SchedTask[]>();
  private readonly dirty: number[] = [];
  private nextPid = 100;
  private readonly opts: MachineOptions;
  /** The kernel's clock when the machine started (machine time 0). */
  private base = 0n;
  /** Called at every tick after the scheduler's (a BPF scheduler's watchdog and the like). */
  onTick?: () => void;

  constructor(opts: MachineOptions) {
    this.opts = opts;
    this.kernel = new Kernel({
      nrCpus: opts.cpus,
      subsystems: opts.subsystems ?? [],
      config: { CONFIG_HZ: opts.hz ?? 1000 },
      prandomSeed: opts.seed ?? 1,
    });
    this.sched = new Sched(this.kernel, { topology: opts.topology });
    const cgr = this.sched.cgroup.root;
    for (const c of opts.workload.cgroups ?? []) {
      if (!cgr) throw new RangeError("cgroups need the kernel's BTF");
      const at = c.path.lastIndexOf("/");
      const cg = cgr.mkdir(cgr.lookup(c.path.slice(0, at) || "/")!, c.path.slice(at + 1));
      if (c.weight !== 100) cgr.setWeight(cg, c.weight);
      if (c.max !== undefined) cgr.setMax(cg, c.max);
    }
    this.prng = new Prng(opts.seed ?? 1);
    this.csCost = opts.csCost ?? 2000;
    this.migrationCost = opts.migrationCost ?? 20000;
    for (let c = 0; c < opts.cpus; c++)
      this.cpuState.push({ gen: 0, progressFrom: 0, busyNs: 0, since: 0, segStart: 0 });
    const base = this.kernel.ktimeGetNs();
    this.base = base;
    this.q.onTime = (now) => {
      this.sched.setNow(now);
      this.kernel.setTimeNs(base + BigInt(now));
    };
    this.sched.hooks.push({
      context_switch: (rq, prev, next) => this.switched(rq, prev, next),
      wakeup: (p) => {
        const r = p.user as TaskRun | null;
        if (r && r.wokenAt < 0) r.wokenAt = this.q.now;
      },
      stall: (rq, on) => this.stalled(rq, on),
    });
  }

  /** The tasks of a template by name (live and exited). */
  tasksNamed(name: string): readonly SchedTask[] {
    return this.byName.get(name) ?? [];
  }

  private jitter(ns: number, j: number): number {
    return j ? Math.round(ns * (1 + j * (2 * this.prng.next() - 1))) : ns;
  }

  private spawn(tpl: TaskTemplate, instance: number, parent: SchedTask | null): SchedTask {
    let cpus: Uint8Array | undefined;
    if (tpl.cpus) {
      cpus = new Uint8Array(this.opts.cpus);
      for (const c of tpl.cpus) if (c < this.opts.cpus) cpus[c] = 1;
      if (!cpus.includes(1))
        throw new RangeError(`task ${tpl.name}: cpus ${tpl.cpus.join(",")} are not on a ${this.opts.cpus}-CPU machine`);
    }
    const name = tpl.instances > 1 || tpl.forkedOnly ? `${tpl.name}-${instance}` : tpl.name;
    const run: TaskRun = {
      tpl,
      instance,
      ev: 0,
      loops: 0,
      remaining: 0,
      pendingResume: 0,
      suspended: false,
      wokenAt: -1,
      lastCpu: -1,
      latencies: [],
      exited: false,
      forkedAt: this.q.now,
      exitedAt: -1,
    };
    const pid = this.nextPid++;
    // The task's first event is prepared before it can run.
    const p = this.sched.fork(name, {
      parent,
      pid,
      nice: tpl.nice,
      policy: tpl.policy,
      cpus,
      user: run,
      rtPriority: tpl.rtPriority,
      cgroup: tpl.cgroup ? this.sched.cgroup.root?.lookup(tpl.cgroup) : undefined,
    });
    this.all.push(p);
    let list = this.byName.get(tpl.name);
    if (!list) this.byName.set(tpl.name, (list = []));
    list.push(p);
    return p;
  }

  private switched(rq: Rq, prev: SchedTask, next: SchedTask): void {
    const now = this.q.now;
    const st = this.cpuState[rq.cpu]!;
    // prev stops: what it ran counts against its run event.
    const pr = prev.user as TaskRun | null;
    if (pr && pr.remaining > 0) pr.remaining = Math.max(0, pr.remaining - Math.max(0, now - st.progressFrom));
    if (prev !== rq.idle) st.busyNs += now - st.since;
    if (this.opts.timeline && now > st.segStart && prev !== rq.idle) {
      this.segments.push({ cpu: rq.cpu, start: st.segStart, end: now, pid: prev.pid, name: prev.comm });
    }
    st.since = now;
    st.segStart = now;
    st.gen++;
    st.progressFrom = now + (next === rq.idle ? 0 : this.csCost);
    const nr = next.user as TaskRun | null;
    if (nr) {
      if (nr.wokenAt >= 0) {
        nr.latencies.push(now - nr.wokenAt);
        nr.wokenAt = -1;
      }
      if (nr.lastCpu >= 0 && nr.lastCpu !== rq.cpu && nr.remaining > 0) nr.remaining += this.migrationCost;
      nr.lastCpu = rq.cpu;
    }
    this.dirty.push(rq.cpu);
  }

  /** The CPU spins in irq context: what curr ran so far counts, its run event waits for the end. */
  private stalled(rq: Rq, on: boolean): void {
    const st = this.cpuState[rq.cpu]!;
    const now = this.q.now;
    const r = rq.curr.user as TaskRun | null;
    if (on) {
      if (r && r.remaining > 0) r.remaining = Math.max(0, r.remaining - Math.max(0, now - st.progressFrom));
      st.gen++;
      st.progressFrom = Number.POSITIVE_INFINITY;
    } else {
      st.progressFrom = Math.max(now, st.progressFrom === Number.POSITIVE_INFINITY ? now : st.progressFrom);
      st.gen++;
      this.dirty.push(rq.cpu);
    }
  }

  /** Give every CPU whose occupant changed its next step, until nothing changes. */
  private flush(): void {
    for (;;) {
      this.sched.schedule_pending();
      const cpu = this.dirty.shift();
      if (cpu === undefined) return;
      this.step(cpu);
    }
  }

  /** curr of `cpu` runs its events until one takes time (run) or takes it off the CPU. */
  private step(cpu: number): void {
    const rq = this.sched.cpu_rq(cpu);
    const p = rq.curr;
    const r = p.user as TaskRun | null;
    if (!r || r.exited || rq.stalled) return;
    const st = this.cpuState[cpu]!;
    // The task's own actions (wake-ups, forks) run on its CPU, as it.
    const k = this.kernel;
    const savedCpu = k.cpu;
    const savedTask = k.runningTask;
    k.cpu = cpu;
    k.runningTask = p.task;
    try {
      this.events(cpu, rq, p, r, st);
    } finally {
      k.cpu = savedCpu;
      k.runningTask = savedTask;
    }
  }

  private events(cpu: number, rq: Rq, p: SchedTask, r: TaskRun, st: CpuState): void {
    for (let guard = 0; guard < 10000; guard++) {
      if (r.remaining > 0) {
        const gen = st.gen;
        this.q.at(Math.max(st.progressFrom, this.q.now) + r.remaining, () => {
          if (st.gen !== gen || rq.curr !== p) return;
          r.remaining = 0;
          this.dirty.push(cpu);
          this.flush();
        });
        return;
      }
      const ev = this.nextEvent(p, r);
      if (!ev) {
        r.exited = true;
        r.exitedAt = this.q.now;
        this.sched.do_exit(p);
        return;
      }
      if (!this.exec(p, r, ev)) return;
    }
    throw new Error(`task ${p.pid}: 10000 events took no time`);
  }

  private nextEvent(p: SchedTask, r: TaskRun): WorkEvent | undefined {
    const evs = r.tpl.events;
    if (r.ev >= evs.length) {
      r.loops++;
      if (r.tpl.loop >= 0 && r.loops >= r.tpl.loop) return undefined;
      r.ev = 0;
    }
    void p;
    return evs[r.ev++];
  }

  /** Run one event as task p on its CPU; false when p no longer holds the CPU. */
  private exec(p: SchedTask, r: TaskRun, ev: WorkEvent): boolean {
    const s = this.sched;
    switch (ev.kind) {
      case "run":
        r.remaining = Math.max(1, this.jitter(ev.ns, r.tpl.jitter));
        return true;
      case "sleep": {
        const ns = this.jitter(ev.ns, r.tpl.jitter);
        if (ns <= 0) return true;
        this.q.after(ns, () => {
          // The timer fires on the CPU the task slept on.
          this.kernel.cpu = p.cpu;
          if (s.try_to_wake_up(p, TASK_INTERRUPTIBLE)) this.flush();
        });
        s.block(p);
        return false;
      }
      case "resume":
        for (const t of this.byName.get(ev.target) ?? []) {
          const tr = t.user as TaskRun;
          if (tr.exited) continue;
          if (tr.suspended) {
            tr.suspended = false;
            s.try_to_wake_up(t, TASK_INTERRUPTIBLE);
          } else tr.pendingResume++;
        }
        // A preemption the wake-up asked for happens when this CPU next reschedules.
        return true;
      case "suspend":
        if (r.pendingResume > 0) {
          r.pendingResume--;
          return true;
        }
        r.suspended = true;
        s.block(p);
        return false;
      case "yield": {
        const rq = s.task_rq(p);
        p.sched_class.yield_task?.(rq);
        s.schedule(rq);
        return rq.curr === p;
      }
      case "affinity": {
        const mask = new Uint8Array(this.opts.cpus);
        for (const c of ev.cpus) if (c < this.opts.cpus) mask[c] = 1;
        if (!mask.includes(1))
          throw new RangeError(`task ${p.comm}: cpus ${ev.cpus.join(",")} are not on a ${this.opts.cpus}-CPU machine`);
        // A running task leaving its CPU moves when the CPU next reschedules (after this event).
        s.set_cpus_allowed_ptr(p, mask);
        return true;
      }
      case "fork": {
        const tpl = this.opts.workload.tasks.find((t) => t.name === ev.target)!;
        this.spawn(tpl, this.tasksNamed(tpl.name).length, p);
        return true;
      }
    }
  }

  /** Run `fn` at machine time `t` (ns), then let the CPUs act on what it changed. */
  at(t: number, fn: () => void): void {
    this.q.at(t, () => {
      fn();
      this.flush();
    });
  }

  /** Run for `duration` ns of simulated time. */
  run(duration: number): void {
    for (const tpl of this.opts.workload.tasks) {
      if (tpl.forkedOnly) continue;
      for (let i = 0; i < tpl.instances; i++) {
        if (tpl.delay)
          this.q.at(tpl.delay, () => {
            this.spawn(tpl, i, null);
            this.flush();
          });
        else this.spawn(tpl, i, null);
      }
    }
    const cgr = this.sched.cgroup.root;
    for (const e of this.opts.workload.cgroupEvents ?? []) {
      this.at(e.at, () => {
        const cg = cgr?.lookup(e.cgroup);
        if (!cgr || !cg) return;
        if (e.kind === "weight") cgr.setWeight(cg, e.weight);
        else if (e.kind === "max") cgr.setMax(cg, e.max);
        else {
          const live = this.tasksNamed(e.task).filter((p) => !(p.user as TaskRun).exited);
          // A refused migration (ops.cgroup_prep_move's errno) leaves the tasks where they were.
          try {
            cgr.attach(
              live.map((p) => p.task),
              cg,
            );
          } catch (err) {
            if (!(err instanceof BpfError)) throw err;
          }
        }
      });
    }
    for (const e of this.opts.workload.hotplug ?? []) {
      if (e.cpu >= this.opts.cpus)
        throw new RangeError(`hotplug: cpu ${e.cpu} is not on a ${this.opts.cpus}-CPU machine`);
      this.at(e.at, () => (e.online ? this.sched.cpu_up(e.cpu) : this.sched.cpu_down(e.cpu)));
    }
    this.flush();
    const tick = this.sched.tick_nsec;
    const doTick = () => {
      for (let c = 0; c < this.opts.cpus; c++) {
        const rq = this.sched.cpu_rq(c);
        if (rq.curr !== rq.idle) this.sched.sched_tick(c);
      }
      this.onTick?.();
      if (this.opts.checkWorkConservation) this.checkWorkConservation();
      this.flush();
      if (this.q.now + tick <= duration) this.q.after(tick, doTick);
    };
    this.q.at(tick, doTick);
    this.runUntil(duration);
    this.finish();
  }

  /**
   * Step the event queue to `until`, stopping also at every hrtimer expiry (BPF timers, the
   * kernel's own): moving the kernel clock there fires it, then the CPUs honour what it asked.
   */
  runUntil(until: number): void {
    const q = this.q;
    const hr = this.kernel.hrtimerBase;
    for (;;) {
      let next = q.peekTime();
      if (hr.pending > 0) {
        const h = hrtimer_next_expiry(this.kernel);
        if (h !== null) {
          const at = Number(h - this.base);
          if (at < next && at <= until) {
            q.at(at, () => {
              // Moving the clock fired it, unless it was already there.
              this.kernel.setTimeNs(this.base + BigInt(q.now));
              this.flush();
            });
            next = at;
          }
        }
      }
      if (next > until) break;
      q.step();
    }
    if (until > q.now) {
      q.now = until;
      q.onTime?.(until);
    }
  }

  /** No CPU idle while a runnable task allowed on it has waited longer than a tick. */
  private checkWorkConservation(): void {
    const now = this.q.now;
    const tick = this.sched.tick_nsec;
    for (let c = 0; c < this.opts.cpus; c++) {
      if (!this.sched.idle_cpu(c)) continue;
      for (const p of this.sched.tasks()) {
        const lq = p.sched_info.last_queued;
        if (
          p.on_rq === TASK_ON_RQ_QUEUED &&
          !p.on_cpu &&
          lq >= 0 &&
          now - lq > tick &&
          p.cpus_mask[c] &&
          // A task of a cgroup out of cpu.max quota may not run anywhere.
          !this.sched.fair.bw?.parked.has(p)
        ) {
          this.violations.push({ t: now, cpu: c, pid: p.pid, waited: now - lq });
        }
      }
    }
  }

  /** Close the books: the running tasks' time counted up to now. */
  private finish(): void {
    const now = this.q.now;
    for (let c = 0; c < this.opts.cpus; c++) {
      const rq = this.sched.cpu_rq(c);
      this.sched.update_rq_clock(rq);
      rq.curr.sched_class.update_curr?.(rq);
      const st = this.cpuState[c]!;
      if (rq.curr !== rq.idle) {
        st.busyNs += now - st.since;
        if (this.opts.timeline && now > st.segStart) {
          this.segments.push({ cpu: c, start: st.segStart, end: now, pid: rq.curr.pid, name: rq.curr.comm });
        }
      }
      st.since = now;
      st.segStart = now;
    }
    for (const p of this.sched.tasks()) {
      if (p.sched_info.last_queued >= 0) {
        p.sched_info.run_delay += now - p.sched_info.last_queued;
        p.sched_info.last_queued = now;
      }
    }
  }

  /** ns each CPU spent running tasks. */
  busyNs(): number[] {
    return this.cpuState.map((s) => s.busyNs);
  }
}
