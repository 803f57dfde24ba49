import assert from "node:assert/strict";
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
import { EBUSY, EDEADLK, EINVAL } from "../../src/uapi/errno.js";
import { objPath } from "../elf/helpers.js";

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
