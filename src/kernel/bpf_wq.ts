/**
 * bpf_wq (the workqueue part of kernel/bpf/helpers.c): a `struct bpf_wq` in a map value (ARRAY,
 * HASH, LRU_HASH) becomes, at bpf_wq_init, a `struct bpf_work`; bpf_wq_set_callback_impl holds the
 * calling program for its callback, bpf_wq_start queues the work (once while it is pending). The
 * work runs as the kernel's deferred work does here: at the end of the current syscall, or at
 * Kernel.flushWork/quiesce. The callback (map, key, value) runs in process context: it may sleep,
 * under RCU-tasks-trace as sleepable programs do.
 */
import type { BtfBuilder } from "../btf/builder.js";
import { BPF_WORKQUEUE } from "../btf/record.js";
import { BTF_FUNC_GLOBAL } from "../uapi/btf.js";
import { BpfError, EBUSY, EINVAL, EPERM } from "../uapi/errno.js";
import type { BpfMap, BpfProg, MemRegion } from "./bpf.js";
import { bpf_map_free_timers, callingProg, elementKey } from "./bpf_timer.js";
import type { KernelBaseTypes } from "./init.js";
import type { Kernel } from "./kernel.js";
import { bpf_map_kaddr } from "./syscall_map.js";
import { bpf_prog_inc_not_zero, bpf_prog_put } from "./syscall_prog.js";

/** struct bpf_work. */
export class BpfWork {
  prog: BpfProg | null = null;
  callbackFn: bigint | null = null;
  /** Queued and not yet run (work_pending). */
  pending = false;
  freed = false;

  constructor(
    readonly k: Kernel,
    readonly map: BpfMap,
    readonly value: number,
    readonly key: MemRegion,
  ) {}
}

const states = new WeakMap<Kernel, Map<number, BpfWork>>();

/** The live workqueue items of a kernel, by the address of their struct bpf_wq. */
export function bpfWorks(k: Kernel): Map<number, BpfWork> {
  let s = states.get(k);
  if (!s) states.set(k, (s = new Map()));
  return s;
}

/** bpf_wq_work: the callback, sleepable, under RCU-tasks-trace. */
function bpf_wq_work(w: BpfWork): void {
  w.pending = false;
  const { k, prog } = w;
  const fn = w.callbackFn;
  if (w.freed || fn === null || !prog || !k.vm) return;
  const tok = k.rcu.rcuReadLockTrace();
  prog.active++;
  try {
    k.vm.invokeCallback(fn, [bpf_map_kaddr(w.map), w.key.addr, w.value]);
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    k.dmesg.push(`bpf_wq: callback of prog ${prog.id} stopped: ${e.message}`);
  } finally {
    prog.active--;
    k.rcu.rcuReadUnlock(tok);
  }
}

export function bpf_wq_init(k: Kernel, wqAddr: number, map: BpfMap | undefined, flags: number): number {
  if (flags) return -EINVAL;
  if (!map) return -EINVAL;
  const works = bpfWorks(k);
  if (works.has(wqAddr)) return -EBUSY;
  if (map.usercnt <= 0) return -EPERM;
  const rec = map.record;
  const value = wqAddr - (rec && !(rec instanceof BpfError) ? rec.wqOff : 0);
  const keyBytes = elementKey(map, value);
  const key = k.mem.alloc(Math.max(keyBytes.length, 1), { perm: "r", kind: "stack", name: "bpf_wq key" });
  k.mem.bytes(key.addr, keyBytes.length).set(keyBytes);
  works.set(wqAddr, new BpfWork(k, map, value, key));
  return 0;
}

export function bpf_wq_set_callback(k: Kernel, wqAddr: number, fn: bigint, flags: number, prog?: BpfProg): number {
  if (flags) return -EINVAL;
  const w = bpfWorks(k).get(wqAddr);
  if (!w) return -EINVAL;
  if (w.map.usercnt <= 0) return -EPERM;
  if (!prog) return -EINVAL;
  if (w.prog !== prog) {
    try {
      bpf_prog_inc_not_zero(prog);
    } catch (e) {
      if (e instanceof BpfError) return -e.errno;
      throw e;
    }
    if (w.prog) bpf_prog_put(w.prog);
    w.prog = prog;
  }
  w.callbackFn = fn;
  return 0;
}

export function bpf_wq_start(k: Kernel, wqAddr: number, flags: number): number {
  if (flags) return -EINVAL;
  const w = bpfWorks(k).get(wqAddr);
  if (!w?.prog) return -EINVAL;
  // schedule_work: a work already pending is not queued twice.
  if (!w.pending) {
    w.pending = true;
    k.scheduleWork(() => bpf_wq_work(w));
  }
  return 0;
}

/** bpf_wq_cancel_and_free: the element holding the work goes; pending work does not run. */
export function bpf_wq_cancel_and_free(k: Kernel, wqAddr: number): void {
  const works = bpfWorks(k);
  const w = works.get(wqAddr);
  if (!w) return;
  works.delete(wqAddr);
  w.freed = true;
  const prog = w.prog;
  w.prog = null;
  w.callbackFn = null;
  if (prog) bpf_prog_put(prog);
  k.rcu.callRcu(() => k.mem.free(w.key));
}

/** The map's last user reference: its workqueue items go (htab/array free_timers_and_wq). */
export function bpf_map_free_wq(map: BpfMap): void {
  const rec = map.record;
  if (!rec || rec instanceof BpfError || !(rec.fieldMask & BPF_WORKQUEUE)) return;
  for (const [addr, w] of [...bpfWorks(map.kernel)]) if (w.map === map) bpf_wq_cancel_and_free(map.kernel, addr);
}

/** array_map_free_timers_wq / htab_free_malloced_timers_and_wq: at the last user reference. */
export function bpf_map_free_timers_wq(map: BpfMap): void {
  bpf_map_free_timers(map);
  bpf_map_free_wq(map);
}

/** struct bpf_wq and the three kfuncs, as vmlinux BTF declares them. */
export function declareWqTypes(b: BtfBuilder, base: KernelBaseTypes): void {
  const wq = b.addStructAuto("bpf_wq", [{ name: "__opaque", type: b.addArray(base.u64, base.int, 2) }]);
  const wqp = b.addPtr(wq);
  const voidp = b.addPtr(0);
  const cb = b.addPtr(
    b.addFuncProto(base.int, [
      { name: "map", type: voidp },
      { name: "key", type: b.addPtr(base.int) },
      { name: "value", type: voidp },
    ]),
  );
  const fn = (name: string, params: [string, number][]) =>
    b.addFunc(
      name,
      b.addFuncProto(
        base.int,
        params.map(([n, type]) => ({ name: n, type })),
      ),
      BTF_FUNC_GLOBAL,
    );
  fn("bpf_wq_init", [
    ["wq", wqp],
    ["p__map", voidp],
    ["flags", base.u32],
  ]);
  fn("bpf_wq_set_callback_impl", [
    ["wq", wqp],
    ["callback_fn", cb],
    ["flags", base.u32],
    ["aux__prog", voidp],
  ]);
  fn("bpf_wq_start", [
    ["wq", wqp],
    ["flags", base.u32],
  ]);
}

export function registerWqKfuncs(k: Kernel): void {
  k.registerKfunc("bpf_wq_init", undefined, (c) =>
    bpf_wq_init(k, c.argNum(1), k.mapByAddr.get(c.argNum(2)), Number(c.arg(3) & 0xffffffffn)),
  );
  k.registerKfunc("bpf_wq_set_callback_impl", undefined, (c) =>
    bpf_wq_set_callback(k, c.argNum(1), c.arg(2), Number(c.arg(3) & 0xffffffffn), callingProg(k, c)),
  );
  k.registerKfunc("bpf_wq_start", undefined, (c) => bpf_wq_start(k, c.argNum(1), Number(c.arg(2) & 0xffffffffn)));
}
