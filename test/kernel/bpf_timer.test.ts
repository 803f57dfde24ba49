import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { bpfTimers } from "../../src/kernel/bpf_timer.js";
import { hrtimer_next_expiry } from "../../src/kernel/hrtimer.js";
import { Kernel } from "../../src/kernel/kernel.js";
import {
  type BpfHandle,
  bpf_map_delete_elem,
  bpf_map_lookup_elem,
  bpf_map_update_elem,
  bpf_prog_test_run_opts,
} from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { EBUSY, EDEADLK, EINVAL, EPERM } from "../../src/uapi/errno.js";
import { objPath } from "../elf/helpers.js";
import { repoRoot } from "../repo_root.js";

/**
 * bpf/timer.bpf.c on the simulated clock: timers armed from `syscall` programs fire when the
 * clock reaches their expiry, each callback seeing that time; deleting the element that holds a
 * timer cancels it; the helpers return what kernel/bpf/helpers.c returns.
 */

/** struct timer_state, the one .bss variable: every field 8 bytes, in this order. */
const ST = [
  "period_ns",
  "tick_limit",
  "session_key",
  "abs_expiry",
  "init_ret",
  "init_again_ret",
  "start_unset_ret",
  "set_cb_ret",
  "start_ret",
  "cancel_ret",
  "bad_flags_ret",
  "bad_clock_ret",
  "session_fired",
  "session_fired_key",
] as const;
type StField = (typeof ST)[number];

/** struct periodic: timer (16), period_ns, ticks, limit, at[8], cancel_self, cpu. */
const P_TICKS = 24;
const P_AT = 40;
const P_CANCEL_SELF = 104;
const P_CPU = 112;

function setup(nrCpus = 2) {
  const kernel = new Kernel({ nrCpus });
  const h: BpfHandle = { kernel, process: kernel.newProcess() };
  const obj = BpfObject.open(objPath("timer"));
  obj.load(h);
  const bss = obj.internalMap(".bss");
  assert.ok(bss);
  const read = (): Record<StField, bigint> => {
    const out = new Uint8Array(bss.valueSize);
    assert.equal(bpf_map_lookup_elem(h, bss.fd, new Uint8Array(4), out), 0);
    const dv = new DataView(out.buffer);
    return Object.fromEntries(ST.map((f, i) => [f, dv.getBigInt64(8 * i, true)])) as Record<StField, bigint>;
  };
  const write = (vals: Partial<Record<StField, bigint>>): void => {
    const out = new Uint8Array(bss.valueSize);
    assert.equal(bpf_map_lookup_elem(h, bss.fd, new Uint8Array(4), out), 0);
    const dv = new DataView(out.buffer);
    for (const [f, v] of Object.entries(vals)) dv.setBigInt64(8 * ST.indexOf(f as StField), v as bigint, true);
    assert.equal(bpf_map_update_elem(h, bss.fd, new Uint8Array(4), out, 0), 0);
  };
  const run = (name: string): number => {
    const p = obj.findProgram(name);
    assert.ok(p, name);
    const opts: { retval?: number } = {};
    assert.equal(bpf_prog_test_run_opts(h, p.fd, opts), 0);
    return opts.retval ?? -1;
  };
  const periodic = (key: number): DataView => {
    const m = obj.findMap("periodic");
    assert.ok(m);
    const out = new Uint8Array(m.valueSize);
    assert.equal(bpf_map_lookup_elem(h, m.fd, new Uint8Array([key, 0, 0, 0]), out), 0);
    return new DataView(out.buffer);
  };
  return { kernel, h, obj, read, write, run, periodic };
}

test("a periodic timer re-armed from its callback ticks at exact multiples of its period", () => {
  const { kernel: k, read, write, run, periodic } = setup();
  k.setTimeNs(1_000_000n);
  write({ period_ns: 250_000n, tick_limit: 5n });
  assert.equal(run("start_periodic"), 0);
  const s = read();
  assert.equal(s.bad_clock_ret, BigInt(-EINVAL), "CLOCK_PROCESS_CPUTIME_ID is not a timer clock");
  assert.equal(s.init_ret, 0n);
  assert.equal(s.init_again_ret, BigInt(-EBUSY), "a timer is initialized once");
  assert.equal(s.start_unset_ret, BigInt(-EINVAL), "no callback yet");
  assert.equal(s.set_cb_ret, 0n);
  assert.equal(s.bad_flags_ret, BigInt(-EINVAL), "unknown start flags");
  assert.equal(s.start_ret, 0n);
  assert.equal(hrtimer_next_expiry(k), 1_250_000n);
  // Nothing fires before the clock moves; one jump runs every expiry on the way, in order.
  assert.equal(periodic(0).getBigUint64(P_TICKS, true), 0n);
  k.setTimeNs(1_600_000n);
  assert.equal(periodic(0).getBigUint64(P_TICKS, true), 2n);
  k.setTimeNs(10_000_000n);
  const v = periodic(0);
  assert.equal(v.getBigUint64(P_TICKS, true), 5n, "stops after tick_limit ticks");
  const at = [0, 1, 2, 3, 4].map((i) => v.getBigUint64(P_AT + 8 * i, true));
  assert.deepEqual(at, [1_250_000n, 1_500_000n, 1_750_000n, 2_000_000n, 2_250_000n]);
  assert.equal(v.getBigInt64(P_CANCEL_SELF, true), BigInt(-EDEADLK), "a callback cannot cancel its own timer");
  assert.equal(hrtimer_next_expiry(k), null);
  assert.equal(k.ktimeGetNs(), 10_000_000n);
});

test("bpf_timer_cancel from a program: 1 while armed, and the callback is dropped (start is -EINVAL after)", () => {
  const { kernel: k, read, write, run, periodic } = setup();
  write({ period_ns: 1_000n, tick_limit: 100n });
  run("start_periodic");
  k.setTimeNs(3_500n);
  assert.equal(periodic(0).getBigUint64(P_TICKS, true), 3n);
  run("cancel_periodic");
  assert.equal(read().cancel_ret, 1n);
  k.setTimeNs(100_000n);
  assert.equal(periodic(0).getBigUint64(P_TICKS, true), 3n, "cancelled: no more ticks");
  run("cancel_periodic");
  assert.equal(read().cancel_ret, 0n, "nothing armed");
  // The program reference went with the callback.
  const t = [...bpfTimers(k).values()][0];
  assert.equal(t.prog, null);
});

test("BPF_F_TIMER_ABS fires at the absolute time; BPF_F_TIMER_CPU_PIN runs the callback on the arming CPU", () => {
  const { kernel: k, write, read, run, periodic } = setup(4);
  k.setTimeNs(5_000n);
  write({ abs_expiry: 123_456n });
  // A syscall program runs on the caller's CPU (test_run takes no CPU for it).
  assert.equal(
    k.onCpu(3, () => run("start_abs_pinned")),
    0,
  );
  assert.equal(read().start_ret, 0n);
  k.setTimeNs(123_455n);
  assert.equal(periodic(1).getBigUint64(P_TICKS, true), 0n);
  k.setTimeNs(200_000n);
  const v = periodic(1);
  assert.equal(v.getBigUint64(P_TICKS, true), 1n);
  assert.equal(v.getBigUint64(P_AT, true), 123_456n);
  assert.equal(v.getUint32(P_CPU, true), 3);
});

test("deleting the element (from a program or user space) cancels its timer; the callback gets the element's key", () => {
  const { kernel: k, h, obj, read, write, run } = setup();
  write({ session_key: 7n });
  assert.equal(run("arm_session"), 0);
  write({ session_key: 9n });
  assert.equal(run("arm_session"), 0);
  write({ session_key: 11n });
  assert.equal(run("arm_session"), 0);
  assert.equal(read().start_ret, 0n);
  assert.equal(bpfTimers(k).size, 3);
  // 9 from a program, 11 from user space; 7 stays.
  write({ session_key: 9n });
  assert.equal(run("drop_session"), 0);
  const sessions = obj.findMap("sessions");
  assert.ok(sessions);
  assert.equal(bpf_map_delete_elem(h, sessions.fd, new Uint8Array([11, 0, 0, 0])), 0);
  assert.equal(bpfTimers(k).size, 1);
  k.setTimeNs(5_000_000n);
  const s = read();
  assert.equal(s.session_fired, 1n, "only the element still in the map fired");
  assert.equal(s.session_fired_key, 7n);
});

test("the map's last user reference cancels its timers and releases the callback's program", () => {
  const { kernel: k, h, obj, write, run } = setup();
  write({ period_ns: 1_000n, tick_limit: 1000n });
  run("start_periodic");
  const prog = [...bpfTimers(k).values()][0].prog;
  assert.ok(prog);
  const refsArmed = prog.refcnt;
  k.setTimeNs(2_000n);
  // Closing every fd: the map's user count drops to zero, its timers go, and with them the
  // reference the callback held on the program; then program and maps are freed.
  obj.close();
  k.quiesce();
  assert.equal(bpfTimers(k).size, 0);
  assert.equal(hrtimer_next_expiry(k), null);
  assert.ok(refsArmed >= 2);
  assert.ok(prog.freed, "the program is freed once the timer no longer holds it");
  k.setTimeNs(1_000_000n);
  void h;
});

/** host_timer.py's steps on the simulated kernel, sleeps as clock moves: the same JSON shape. */
function ourSequence(): Record<string, unknown> {
  const { kernel: k, h, obj, read, write, run, periodic } = setup();
  const out: Record<string, unknown> = {};
  const sleep = (ns: bigint) => k.setTimeNs(k.ktimeGetNs() + ns);
  const stateOf = () => Object.fromEntries(Object.entries(read()).map(([f, v]) => [f, Number(v)]));
  write({ period_ns: 2_000_000n, tick_limit: 5n });
  run("start_periodic");
  out.start = stateOf();
  sleep(200_000_000n);
  const p = periodic(0);
  out.periodic = {
    ticks: Number(p.getBigUint64(P_TICKS, true)),
    at: [0, 1, 2, 3, 4, 5, 6, 7].map((i) => Number(p.getBigUint64(P_AT + 8 * i, true))),
    cancel_self: Number(p.getBigInt64(P_CANCEL_SELF, true)),
  };
  run("cancel_periodic");
  out.cancel_done = Number(read().cancel_ret);
  run("restart_periodic");
  out.restart_after_cancel = Number(read().start_ret);
  write({ period_ns: 10_000_000_000n, tick_limit: 5n });
  run("start_abs_pinned");
  const pm = obj.findMap("periodic");
  assert.ok(pm);
  assert.equal(bpf_map_update_elem(h, pm.fd, new Uint8Array(4), new Uint8Array(pm.valueSize), 0), 0);
  run("start_periodic");
  out.reinit_after_update = Number(read().init_ret);
  run("cancel_periodic");
  out.cancel_armed = Number(read().cancel_ret);
  for (const key of [7n, 9n, 11n]) {
    write({ session_key: key });
    run("arm_session");
  }
  write({ session_key: 9n });
  out.drop = run("drop_session");
  const sessions = obj.findMap("sessions");
  assert.ok(sessions);
  out.user_delete = bpf_map_delete_elem(h, sessions.fd, new Uint8Array([11, 0, 0, 0]));
  sleep(50_000_000n);
  const s = read();
  out.session_fired = Number(s.session_fired);
  out.session_fired_key = Number(s.session_fired_key);
  k.close(h.process, pm.fd);
  run("start_periodic");
  out.init_without_users = Number(read().init_ret);
  return out;
}

const HOST_TIMER = join(repoRoot(), "test/kernel/fixtures/host_timer.py");

function hostSkip(): string | false {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "needs root for bpf(2)";
  const py = spawnSync("python3", ["-c", "import ctypes; ctypes.CDLL('libbpf.so.1')"], { encoding: "utf8" });
  if (py.status !== 0) return "python3 or libbpf.so.1 missing";
  return false;
}

test("the host kernel runs timer.bpf.o to the same results (its ticks at least a period apart)", {
  skip: hostSkip(),
}, (t) => {
  const r = spawnSync("python3", [HOST_TIMER, objPath("timer")], { encoding: "utf8" });
  if (r.status === 3) {
    t.skip("bpf() refused the object here");
    return;
  }
  assert.equal(r.status, 0, r.stderr);
  const host = JSON.parse(r.stdout) as Record<string, unknown> & { periodic: { at: number[] } };
  const ours = ourSequence() as typeof host;
  // Real time: the host's ticks are a period apart or a little more; ours exactly.
  const hostAt = host.periodic.at.slice(0, 5);
  for (let i = 1; i < 5; i++) assert.ok(hostAt[i] - hostAt[i - 1] >= 2_000_000, `host tick ${i}`);
  const oursAt = ours.periodic.at.slice(0, 5);
  for (let i = 1; i < 5; i++) assert.equal(oursAt[i] - oursAt[i - 1], 2_000_000);
  const strip = (o: typeof host) => ({ ...o, periodic: { ...o.periodic, at: o.periodic.at.map((x) => x !== 0) } });
  assert.deepEqual(strip(ours), strip(host));
});

test("a map no user space holds any more: bpf_timer_init is -EPERM (nothing would ever cancel the timer)", () => {
  const { kernel: k, h, obj, read, write, run } = setup();
  const m = obj.findMap("periodic");
  assert.ok(m);
  // The programs still hold the map, but user space's last fd goes: usercnt drops to zero.
  k.close(h.process, m.fd);
  write({ period_ns: 1_000n, tick_limit: 3n });
  assert.equal(run("start_periodic"), 0);
  assert.equal(read().init_ret, BigInt(-EPERM));
  assert.equal(bpfTimers(k).size, 0);
});
