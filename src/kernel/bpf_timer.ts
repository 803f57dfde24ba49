/**
 * bpf_timer (the timer part of kernel/bpf/helpers.c): a `struct bpf_timer` in a map value
 * (ARRAY, HASH, LRU_HASH) becomes, at bpf_timer_init, a `struct bpf_hrtimer` holding an hrtimer
 * (src/kernel/hrtimer.ts, softirq mode), the map, the value and, from bpf_timer_set_callback,
 * the program whose subprogram is the callback (a reference to it is held until the callback is
 * dropped: bpf_timer_cancel, the element's delete or update, or the map's last user reference).
 * The callback runs as an async callback: (map, key, value), r0 0, on the timer's CPU, with the
 * clock at the timer's expiry, when the simulated clock passes it.
 *
 * The kernel keeps the `struct bpf_hrtimer *` in the value's 16 opaque bytes; programs cannot
 * read them (the verifier refuses loads and stores there), so here the timer is found by the
 * field's address and the bytes stay zero, as user space sees them.
 */
import type { BtfBuilder } from "../btf/builder.js";
import { BPF_TIMER } from "../btf/record.js";
import { BPF_F_TIMER_ABS, BPF_F_TIMER_CPU_PIN, bpf_func_id as F } from "../uapi/bpf.js";
import { BpfError, EBUSY, EDEADLK, EINVAL, EPERM } from "../uapi/errno.js";
import type { BpfMap, BpfProg, MemRegion } from "./bpf.js";
import {
  CLOCK_BOOTTIME,
  CLOCK_MONOTONIC,
  CLOCK_REALTIME,
  HRTIMER_MODE_ABS_SOFT,
  HRTIMER_MODE_PINNED,
  HRTIMER_MODE_REL_SOFT,
  HRTIMER_NORESTART,
  type Hrtimer,
  hrtimer_cancel,
  hrtimer_setup,
  hrtimer_start,
} from "./hrtimer.js";
import type { KernelBaseTypes } from "./init.js";
import type { HelperArgs, Kernel } from "./kernel.js";
import { bpf_map_kaddr } from "./syscall_map.js";
import { bpf_prog_inc_not_zero, bpf_prog_put } from "./syscall_prog.js";

/** MAX_CLOCKS: the clock id is the low 4 bits of bpf_timer_init's flags. */
const MAX_CLOCKS = 16;

/** struct bpf_hrtimer (struct bpf_async_cb + the hrtimer). */
export class BpfHrtimer {
  prog: BpfProg | null = null;
  /** The callback's function address (a BPF_PSEUDO_FUNC value), or null. */
  callbackFn: bigint | null = null;
  /** Callbacks of other timers cancelling this one now (bpf_timer_cancel's deadlock check). */
  cancelling = 0;
  readonly timer: Hrtimer;

  constructor(
    readonly k: Kernel,
    readonly map: BpfMap,
    /** The map value holding the struct bpf_timer. */
    readonly value: number,
    /** The callback's key argument: a copy of the element's key in VM memory. */
    readonly key: MemRegion,
    readonly flags: number,
  ) {
    this.timer = hrtimer_setup(k, () => bpf_timer_cb(this), flags & (MAX_CLOCKS - 1), HRTIMER_MODE_REL_SOFT);
  }
}

interface TimerState {
  /** Live timers by the address of their struct bpf_timer. */
  readonly byAddr: Map<number, BpfHrtimer>;
  /** hrtimer_running: per CPU, the timer whose callback runs there. */
  readonly running: (BpfHrtimer | null)[];
}

const states = new WeakMap<Kernel, TimerState>();

function timerState(k: Kernel): TimerState {
  let s = states.get(k);
  if (!s) {
    s = { byAddr: new Map(), running: [] };
    states.set(k, s);
  }
  return s;
}

/** The live timers of a kernel (for tests and introspection). */
export function bpfTimers(k: Kernel): ReadonlyMap<number, BpfHrtimer> {
  return timerState(k).byAddr;
}

function runningHere(k: Kernel): BpfHrtimer | null {
  return timerState(k).running[k.cpu] ?? null;
}

/** The key of the element whose value is at `value`, as the callback receives it. */
export function elementKey(map: BpfMap, value: number): Uint8Array {
  const m = map as BpfMap & {
    elemAddr?: (i: number) => number;
    elem_size?: number;
    elems?: Map<string, { key: Uint8Array; value: MemRegion }>;
  };
  if (m.elemAddr && m.elem_size) {
    // bpf_timer_cb: idx = (value - array->value) / array->elem_size.
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, (value - m.elemAddr(0)) / m.elem_size, true);
    return key;
  }
  for (const e of m.elems?.values() ?? []) if (e.value.addr === value) return e.key;
  return new Uint8Array(map.key_size);
}

/** bpf_timer_cb: run the callback (map, key, value) under RCU, as the timer's CPU. */
function bpf_timer_cb(t: BpfHrtimer): number {
  const { k, prog } = t;
  const fn = t.callbackFn;
  if (fn === null || !prog || !k.vm) return HRTIMER_NORESTART;
  const st = timerState(k);
  const cpu = k.cpu;
  st.running[cpu] = t;
  const tok = k.rcu.rcuReadLock();
  prog.active++;
  try {
    k.vm.invokeCallback(fn, [bpf_map_kaddr(t.map), t.key.addr, t.value]);
  } catch (e) {
    // A verified callback cannot fault; if the VM stops one (its budget), the kernel's log says so.
    if (!(e instanceof BpfError)) throw e;
    k.dmesg.push(`bpf_timer: callback of prog ${prog.id} stopped: ${e.message}`);
  } finally {
    prog.active--;
    k.rcu.rcuReadUnlock(tok);
    st.running[cpu] = null;
  }
  // Frees the callback deferred (its element's delete, a dropped program) run now.
  if (!k.current && !k.rcu.readLockHeld()) k.flushWork();
  return HRTIMER_NORESTART;
}

/** drop_prog_refcnt: the callback and the reference to its program go. */
function dropProgRefcnt(t: BpfHrtimer): void {
  const prog = t.prog;
  if (!prog) return;
  t.prog = null;
  t.callbackFn = null;
  bpf_prog_put(prog);
}

/** bpf_timer_init(timer, map, flags): the clock id in flags; -EBUSY if already initialized. */
export function bpf_timer_init(k: Kernel, timerAddr: number, map: BpfMap | undefined, flags: bigint): number {
  const clockid = Number(flags & BigInt(MAX_CLOCKS - 1));
  if (
    flags >= BigInt(MAX_CLOCKS) ||
    // as timerfd, except that the _ALARM clocks are not supported
    (clockid !== CLOCK_MONOTONIC && clockid !== CLOCK_REALTIME && clockid !== CLOCK_BOOTTIME)
  )
    return -EINVAL;
  if (!map) return -EINVAL;
  const st = timerState(k);
  if (st.byAddr.has(timerAddr)) return -EBUSY;
  // Maps with timers must be held by user space or pinned: nothing else would ever cancel them.
  if (map.usercnt <= 0) return -EPERM;
  const rec = map.record;
  const timerOff = rec && !(rec instanceof BpfError) ? rec.timerOff : 0;
  const value = timerAddr - timerOff;
  const keyBytes = elementKey(map, value);
  const key = k.mem.alloc(Math.max(keyBytes.length, 1), { perm: "r", kind: "stack", name: "bpf_timer key" });
  k.mem.bytes(key.addr, keyBytes.length).set(keyBytes);
  st.byAddr.set(timerAddr, new BpfHrtimer(k, map, value, key, Number(flags)));
  return 0;
}

/** bpf_timer_set_callback(timer, callback_fn): the calling program is held while the callback is set. */
export function bpf_timer_set_callback(k: Kernel, timerAddr: number, fn: bigint, prog: BpfProg | undefined): number {
  const t = timerState(k).byAddr.get(timerAddr);
  if (!t) return -EINVAL;
  if (t.map.usercnt <= 0) return -EPERM;
  if (!prog) return -EINVAL;
  if (t.prog !== prog) {
    // One reference per program, whichever of its subprograms is the callback.
    try {
      bpf_prog_inc_not_zero(prog);
    } catch (e) {
      if (e instanceof BpfError) return -e.errno;
      throw e;
    }
    if (t.prog) bpf_prog_put(t.prog);
    t.prog = prog;
  }
  t.callbackFn = fn;
  return 0;
}

/** bpf_timer_start(timer, nsecs, flags): relative, or BPF_F_TIMER_ABS; BPF_F_TIMER_CPU_PIN pins it. */
export function bpf_timer_start(k: Kernel, timerAddr: number, nsecs: bigint, flags: bigint): number {
  if (flags & ~BigInt(BPF_F_TIMER_ABS | BPF_F_TIMER_CPU_PIN)) return -EINVAL;
  const t = timerState(k).byAddr.get(timerAddr);
  if (!t?.prog) return -EINVAL;
  let mode = flags & BigInt(BPF_F_TIMER_ABS) ? HRTIMER_MODE_ABS_SOFT : HRTIMER_MODE_REL_SOFT;
  if (flags & BigInt(BPF_F_TIMER_CPU_PIN)) mode |= HRTIMER_MODE_PINNED;
  // ns_to_ktime: the u64 is a signed ktime_t.
  hrtimer_start(t.timer, BigInt.asIntN(64, nsecs), mode);
  return 0;
}

/**
 * bpf_timer_cancel(timer): drops the callback and its program, dequeues the timer; 1 if it was
 * queued. -EDEADLK from the timer's own callback, or from a callback whose own timer another
 * callback is cancelling.
 */
export function bpf_timer_cancel(k: Kernel, timerAddr: number): number {
  const t = timerState(k).byAddr.get(timerAddr);
  if (!t) return -EINVAL;
  const cur = runningHere(k);
  if (cur === t) return -EDEADLK;
  let inc = false;
  if (cur) {
    t.cancelling++;
    inc = true;
    if (cur.cancelling) {
      t.cancelling--;
      return -EDEADLK;
    }
  }
  try {
    dropProgRefcnt(t);
    return hrtimer_cancel(t.timer);
  } finally {
    if (inc) t.cancelling--;
  }
}

/**
 * bpf_timer_cancel_and_free: the element holding the timer goes (delete, update, the map's last
 * user reference). From inside a timer callback the hrtimer is cancelled once the callback is
 * done (the kernel's delete_work), as cancelling would wait for it.
 */
export function bpf_timer_cancel_and_free(k: Kernel, timerAddr: number): void {
  const st = timerState(k);
  const t = st.byAddr.get(timerAddr);
  if (!t) return;
  st.byAddr.delete(timerAddr);
  dropProgRefcnt(t);
  const free = () => {
    if (t.timer.base.running !== t.timer) hrtimer_cancel(t.timer);
    k.rcu.callRcu(() => k.mem.free(t.key));
  };
  if (st.running[k.cpu]) {
    // Not yet: a callback runs. Its own timer is not re-armed (the callback sees no timer any
    // more), and an hrtimer armed before the delete is cancelled when the work runs.
    k.scheduleWork(() => {
      hrtimer_cancel(t.timer);
      k.rcu.callRcu(() => k.mem.free(t.key));
    });
    return;
  }
  free();
}

/** array_map_free_timers_wq / htab_free_malloced_timers: every timer of the map goes. */
export function bpf_map_free_timers(map: BpfMap): void {
  const rec = map.record;
  if (!rec || rec instanceof BpfError || !(rec.fieldMask & BPF_TIMER)) return;
  const st = timerState(map.kernel);
  for (const [addr, t] of [...st.byAddr]) if (t.map === map) bpf_timer_cancel_and_free(map.kernel, addr);
}

/** The BpfProg of the program making a helper call (the kernel passes prog->aux in r3). */
export function callingProg(k: Kernel, c: HelperArgs): BpfProg | undefined {
  const vmProg = (c as { prog?: unknown }).prog;
  for (const p of k.prog_idr.values()) if (p.vmProg === vmProg) return p;
  return undefined;
}

export function registerTimerHelpers(k: Kernel): void {
  k.registerHelper(F.BPF_FUNC_timer_init, (c) =>
    bpf_timer_init(k, c.argNum(1), k.mapByAddr.get(c.argNum(2)), c.arg(3)),
  );
  k.registerHelper(F.BPF_FUNC_timer_set_callback, (c) =>
    bpf_timer_set_callback(k, c.argNum(1), c.arg(2), callingProg(k, c)),
  );
  k.registerHelper(F.BPF_FUNC_timer_start, (c) => bpf_timer_start(k, c.argNum(1), c.arg(2), c.arg(3)));
  k.registerHelper(F.BPF_FUNC_timer_cancel, (c) => bpf_timer_cancel(k, c.argNum(1)));
}

/** struct bpf_timer and the bpf_timer_start flags, as include/uapi/linux/bpf.h gives vmlinux BTF. */
export function declareTimerTypes(b: BtfBuilder, base: KernelBaseTypes): void {
  b.addStructAuto("bpf_timer", [{ name: "__opaque", type: b.addArray(base.u64, base.int, 2) }]);
  b.addEnum("", 4, [
    { name: "BPF_F_TIMER_ABS", val: BPF_F_TIMER_ABS },
    { name: "BPF_F_TIMER_CPU_PIN", val: BPF_F_TIMER_CPU_PIN },
  ]);
}
