/**
 * Workloads: rt-app's JSON where it fits (`tasks` by name with `instance`, `loop`, `priority`
 * as the nice value or, for SCHED_FIFO and SCHED_RR, the sched_priority, `policy`, `cpus`, `delay`, and events in order: `run`/`runtime` and
 * `sleep` in us, `resume` and `suspend`, `yield`, `fork`, optionally inside named `phases`, where
 * a phase's `cpus` changes the task's affinity as the phase starts),
 * plus presets. Durations may be jittered by a seeded fraction (`jitter`, our extension), so a
 * seed picks one of many runs of the same workload.
 *
 * Cgroups (our extension): `"cgroups": {"/a": {"weight": 200}, "/a/b": {}}` makes the hierarchy
 * (parents before children, `weight` is cpu.weight, 100 by default), a task's `"cgroup": "/a"`
 * starts its instances there (clone3's CLONE_INTO_CGROUP), and `"cgroup_events"` changes them
 * during the run: `{"at": us, "task": name, "cgroup": "/b"}` moves every live instance of a task
 * (a write to cgroup.procs), `{"at": us, "cgroup": "/a", "weight": 300}` writes cpu.weight.
 * A cgroup's `"max": "20000 100000"` (or an event's) writes cpu.max: QUOTA ("max": none) and
 * PERIOD in us, as `echo ... > cpu.max` does.
 */
import { BpfError, EINVAL } from "../../uapi/errno.js";

export type WorkEvent =
  | { kind: "run"; ns: number }
  | { kind: "sleep"; ns: number }
  | { kind: "resume"; target: string }
  | { kind: "suspend" }
  | { kind: "yield" }
  | { kind: "fork"; target: string }
  /** sched_setaffinity() to these CPUs (a phase's `cpus`). */
  | { kind: "affinity"; cpus: number[] };

export interface TaskTemplate {
  name: string;
  instances: number;
  /** -1: forever. */
  loop: number;
  nice: number;
  policy: number;
  /** sched_priority (1..99) of a SCHED_FIFO or SCHED_RR task (rt-app's `priority` for those). */
  rtPriority?: number;
  /** Allowed CPUs (undefined: all). */
  cpus?: number[];
  /** Start delay in ns. */
  delay: number;
  /** Seeded variation of run and sleep lengths, a fraction in [0, 1). */
  jitter: number;
  events: WorkEvent[];
  /** Only created by a fork event (rt-app: a task that some other task forks). */
  forkedOnly: boolean;
  /** The cgroup its instances start in (a path of `Workload.cgroups`; undefined: the parent's). */
  cgroup?: string;
}

/** A cgroup of the workload, by path. */
export interface CgroupSpec {
  path: string;
  weight: number;
  /** cpu.max as written ("QUOTA [PERIOD]"). */
  max?: string;
}

/** A timed change to the cgroups: a task's instances move, or a cgroup's cpu.weight is written. */
export type CgroupEvent =
  | { at: number; kind: "move"; task: string; cgroup: string }
  | { at: number; kind: "weight"; cgroup: string; weight: number }
  | { at: number; kind: "max"; cgroup: string; max: string };

/** A CPU taken offline or brought back at a time (ns), as `echo 0 > /sys/devices/system/cpu/cpuN/online` does. */
export interface HotplugEvent {
  at: number;
  cpu: number;
  online: boolean;
}

export interface Workload {
  name: string;
  tasks: TaskTemplate[];
  /** CPU hotplug during the run (our extension: `"hotplug": [{"at": us, "cpu": N, "online": false}]`). */
  hotplug?: HotplugEvent[];
  /** Cgroups made before the run, parents first. */
  cgroups?: CgroupSpec[];
  cgroupEvents?: CgroupEvent[];
}

const POLICIES: Record<string, number> = {
  SCHED_OTHER: 0,
  SCHED_NORMAL: 0,
  SCHED_FIFO: 1,
  SCHED_RR: 2,
  SCHED_BATCH: 3,
  SCHED_IDLE: 5,
  SCHED_EXT: 7,
};

function bad(msg: string): never {
  throw new BpfError(EINVAL, `workload: ${msg}`);
}

function num(v: unknown, what: string, min: number, max: number, int = true): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max || (int && !Number.isInteger(v))) {
    bad(`${what}: expected ${int ? "an integer" : "a number"} in ${min}..${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

const MAX_US = 3600e6;

/** Events of one object in key order; rt-app tells repeated kinds apart by a suffix (run0, run1). */
function parseEvents(o: Record<string, unknown>, where: string, names: Set<string>): WorkEvent[] {
  const out: WorkEvent[] = [];
  for (const [key, v] of Object.entries(o)) {
    const kind = key.replace(/\d+$/, "");
    if (kind === "run" || kind === "runtime") out.push({ kind: "run", ns: num(v, `${where}.${key}`, 0, MAX_US) * 1e3 });
    else if (kind === "sleep") out.push({ kind: "sleep", ns: num(v, `${where}.${key}`, 0, MAX_US) * 1e3 });
    else if (kind === "resume" || kind === "fork") {
      if (typeof v !== "string" || !names.has(v)) bad(`${where}.${key}: no task named ${JSON.stringify(v)}`);
      out.push({ kind, target: v });
    } else if (kind === "suspend") out.push({ kind: "suspend" });
    else if (kind === "yield") out.push({ kind: "yield" });
  }
  return out;
}

const TASK_KEYS = new Set([
  "instance",
  "loop",
  "priority",
  "policy",
  "cpus",
  "delay",
  "jitter",
  "phases",
  "forked",
  "cgroup",
]);

/** `"cgroups"` and `"cgroup_events"`: checked against each other and the task names. */
function parseCgroups(doc: Record<string, unknown>, tasks: TaskTemplate[]): Pick<Workload, "cgroups" | "cgroupEvents"> {
  const out: Pick<Workload, "cgroups" | "cgroupEvents"> = {};
  const paths = new Set(["/"]);
  if (doc.cgroups !== undefined) {
    if (!doc.cgroups || typeof doc.cgroups !== "object" || Array.isArray(doc.cgroups))
      bad('"cgroups" must be an object of paths');
    const entries = Object.entries(doc.cgroups as Record<string, unknown>);
    if (entries.length > 1000) bad("at most 1000 cgroups");
    out.cgroups = entries.map(([path, v]) => {
      if (!/^(\/[A-Za-z0-9_.-]+)+$/.test(path)) bad(`cgroup ${JSON.stringify(path)}: not a path like /a/b`);
      const parent = path.slice(0, path.lastIndexOf("/")) || "/";
      if (!paths.has(parent)) bad(`cgroup ${path}: its parent ${parent} is not listed before it`);
      if (paths.has(path)) bad(`cgroup ${path}: listed twice`);
      paths.add(path);
      if (!v || typeof v !== "object") bad(`cgroup ${path}: not an object`);
      const max = (v as { max?: unknown }).max;
      if (max !== undefined && (typeof max !== "string" || max.length > 64))
        bad(`cgroup ${path}: max must be a cpu.max string like "20000 100000"`);
      return {
        path,
        weight: num((v as { weight?: unknown }).weight ?? 100, `cgroup ${path}: weight`, 1, 10000),
        ...(max !== undefined ? { max } : {}),
      };
    });
  }
  for (const t of tasks)
    if (t.cgroup !== undefined && !paths.has(t.cgroup)) bad(`task ${t.name}: no cgroup ${JSON.stringify(t.cgroup)}`);
  const ev = doc.cgroup_events;
  if (ev === undefined) return out;
  if (!Array.isArray(ev) || ev.length > 10000) bad("cgroup_events must be an array of at most 10000 events");
  const names = new Set(tasks.map((t) => t.name));
  out.cgroupEvents = ev.map((e, i): CgroupEvent => {
    if (!e || typeof e !== "object") bad(`cgroup_events[${i}]: not an object`);
    const o = e as Record<string, unknown>;
    const at = num(o.at, `cgroup_events[${i}].at`, 0, MAX_US) * 1e3;
    if (typeof o.cgroup !== "string" || !paths.has(o.cgroup))
      bad(`cgroup_events[${i}].cgroup: no cgroup ${JSON.stringify(o.cgroup)}`);
    if (o.task !== undefined) {
      if (typeof o.task !== "string" || !names.has(o.task))
        bad(`cgroup_events[${i}].task: no task named ${JSON.stringify(o.task)}`);
      return { at, kind: "move", task: o.task, cgroup: o.cgroup };
    }
    if (o.cgroup === "/") bad(`cgroup_events[${i}]: the root cgroup has no weight or cpu.max`);
    if (o.max !== undefined) {
      if (typeof o.max !== "string" || o.max.length > 64)
        bad(`cgroup_events[${i}].max: a cpu.max string like "20000 100000"`);
      return { at, kind: "max", cgroup: o.cgroup, max: o.max };
    }
    return { at, kind: "weight", cgroup: o.cgroup, weight: num(o.weight, `cgroup_events[${i}].weight`, 1, 10000) };
  });
  return out;
}

/** Parse rt-app JSON text (the subset above). */
export function parseWorkload(text: string, name = "workload"): Workload {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    bad(`not JSON: ${(e as Error).message}`);
  }
  const tasksObj = (doc as { tasks?: unknown })?.tasks;
  if (!tasksObj || typeof tasksObj !== "object" || Array.isArray(tasksObj)) bad('no "tasks" object');
  const entries = Object.entries(tasksObj as Record<string, unknown>);
  if (entries.length === 0 || entries.length > 1000) bad("between 1 and 1000 task names");
  const names = new Set(entries.map(([n]) => n));
  const forked = new Set<string>();
  const tasks: TaskTemplate[] = [];
  for (const [tname, raw] of entries) {
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) bad(`task ${tname}: not an object`);
    const t = raw as Record<string, unknown>;
    const policyName = t.policy ?? "SCHED_OTHER";
    const policy = typeof policyName === "string" ? POLICIES[policyName] : undefined;
    if (policy === undefined)
      bad(
        `task ${tname}: policy ${JSON.stringify(policyName)} is not modelled (SCHED_OTHER, BATCH, IDLE, EXT, FIFO, RR)`,
      );
    const rt = policy === 1 || policy === 2;
    let cpus: number[] | undefined;
    if (t.cpus !== undefined) {
      if (!Array.isArray(t.cpus) || t.cpus.length === 0) bad(`task ${tname}: cpus must be a non-empty array`);
      cpus = t.cpus.map((c, i) => num(c, `task ${tname}: cpus[${i}]`, 0, 511));
    }
    let events: WorkEvent[] = [];
    if (t.phases !== undefined) {
      if (!t.phases || typeof t.phases !== "object") bad(`task ${tname}: phases must be an object`);
      for (const [ph, pv] of Object.entries(t.phases as Record<string, unknown>)) {
        if (!pv || typeof pv !== "object") bad(`task ${tname}: phase ${ph} is not an object`);
        const pl = (pv as { loop?: unknown }).loop ?? 1;
        const n = num(pl, `task ${tname}.${ph}.loop`, 1, 1e6);
        const evs = parseEvents(pv as Record<string, unknown>, `${tname}.${ph}`, names);
        const pc = (pv as { cpus?: unknown }).cpus;
        if (pc !== undefined) {
          if (!Array.isArray(pc) || pc.length === 0) bad(`task ${tname}.${ph}: cpus must be a non-empty array`);
          events.push({ kind: "affinity", cpus: pc.map((c, i) => num(c, `task ${tname}.${ph}: cpus[${i}]`, 0, 511)) });
        }
        for (let i = 0; i < n && events.length < 1e5; i++) events.push(...evs);
      }
    } else {
      const own = Object.fromEntries(Object.entries(t).filter(([k]) => !TASK_KEYS.has(k) && k !== "loop"));
      events = parseEvents(own, tname, names);
    }
    if (events.length === 0) bad(`task ${tname}: no events (run, sleep, resume, suspend, yield, fork)`);
    for (const e of events) if (e.kind === "fork") forked.add(e.target);
    tasks.push({
      name: tname,
      instances: num(t.instance ?? 1, `task ${tname}: instance`, 1, 10000),
      loop: num(t.loop ?? -1, `task ${tname}: loop`, -1, 1e9),
      nice: rt ? 0 : num(t.priority ?? 0, `task ${tname}: priority (nice)`, -20, 19),
      policy,
      ...(rt ? { rtPriority: num(t.priority ?? 1, `task ${tname}: priority (sched_priority)`, 1, 99) } : {}),
      cpus,
      delay: num(t.delay ?? 0, `task ${tname}: delay`, 0, MAX_US) * 1e3,
      jitter: num(t.jitter ?? 0, `task ${tname}: jitter`, 0, 0.99, false),
      events,
      forkedOnly: t.forked === true,
      ...(t.cgroup !== undefined
        ? { cgroup: typeof t.cgroup === "string" ? t.cgroup : bad(`task ${tname}: cgroup must be a path`) }
        : {}),
    });
  }
  for (const t of tasks) if (forked.has(t.name)) t.forkedOnly = true;
  if (tasks.every((t) => t.forkedOnly)) bad("every task is only forked: nothing starts");
  const cg = parseCgroups(doc as Record<string, unknown>, tasks);
  const hp = (doc as { hotplug?: unknown }).hotplug;
  if (hp === undefined) return { name, tasks, ...cg };
  if (!Array.isArray(hp) || hp.length > 1000) bad("hotplug must be an array of at most 1000 events");
  const hotplug = hp.map((e, i) => {
    if (!e || typeof e !== "object") bad(`hotplug[${i}]: not an object`);
    const o = e as Record<string, unknown>;
    if (typeof o.online !== "boolean") bad(`hotplug[${i}].online must be true or false`);
    return {
      at: num(o.at, `hotplug[${i}].at`, 0, MAX_US) * 1e3,
      cpu: num(o.cpu, `hotplug[${i}].cpu`, 0, 511),
      online: o.online as boolean,
    };
  });
  return { name, tasks, hotplug, ...cg };
}

/** Presets by name, sized to the machine. */
export const PRESETS: Record<string, (cpus: number) => Workload> = {
  /** Twice as many CPU hogs as CPUs, all nice 0. */
  hogs: (cpus) => ({
    name: "hogs",
    tasks: [tpl("hog", 2 * cpus, [{ kind: "run", ns: 1e9 }])],
  }),
  /** CPU hogs at nice -5, 0, 5 and 10, as many of each as CPUs / 2 (at least one). */
  "mixed-nice": (cpus) => ({
    name: "mixed-nice",
    tasks: [-5, 0, 5, 10].map((nice) => ({
      ...tpl(`nice${nice}`, Math.max(1, cpus >> 1), [{ kind: "run", ns: 1e9 }]),
      nice,
    })),
  }),
  /** One hog per CPU against as many interactive tasks (0.5 ms of work every 10 ms). */
  interactive: (cpus) => ({
    name: "interactive",
    tasks: [
      tpl("hog", cpus, [{ kind: "run", ns: 1e9 }]),
      {
        ...tpl(
          "ui",
          cpus,
          [
            { kind: "run", ns: 500e3 },
            { kind: "sleep", ns: 10e6 },
          ],
          0.2,
        ),
      },
    ],
  }),
  /** A make-like parent forking short compile jobs (2-8 ms of CPU each) every 1 ms. */
  build: () => ({
    name: "build",
    tasks: [
      tpl("make", 1, [
        { kind: "fork", target: "cc" },
        { kind: "run", ns: 100e3 },
        { kind: "sleep", ns: 900e3 },
      ]),
      { ...tpl("cc", 1, [{ kind: "run", ns: 5e6 }], 0.6), loop: 1, forkedOnly: true },
    ],
  }),
  /** Pairs of tasks passing a token through a pipe: 20 us of work, wake the peer, wait. */
  pipe: (cpus) => ({
    name: "pipe",
    tasks: Array.from({ length: Math.max(1, cpus >> 1) }, (_, i) => [
      tpl(`ping${i}`, 1, [{ kind: "run", ns: 20e3 }, { kind: "resume", target: `pong${i}` }, { kind: "suspend" }]),
      tpl(`pong${i}`, 1, [{ kind: "suspend" }, { kind: "run", ns: 20e3 }, { kind: "resume", target: `ping${i}` }]),
    ]).flat(),
  }),
};

function tpl(name: string, instances: number, events: WorkEvent[], jitter = 0): TaskTemplate {
  return { name, instances, loop: -1, nice: 0, policy: 0, delay: 0, jitter, events, forkedOnly: false };
}

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}
