/**
 * The simulated kernel's clocks, driven by the event queue: ktime in ns (with a boot offset so
 * tcp_mstamp is never 0) and jiffies at CONFIG_HZ starting at INITIAL_JIFFIES, as Linux does.
 */
import { INITIAL_JIFFIES_OFFSET, type KernelClock } from "../subsys/tcp/tcp_sock.js";
import type { EventQueue } from "./event_queue.js";

export const BOOT_OFFSET_NS = 1_000_000_000;

export class SimClock implements KernelClock {
  readonly HZ: number;
  private readonly q: EventQueue;
  private readonly initialJiffies: number;

  constructor(q: EventQueue, HZ = 1000) {
    if (!Number.isInteger(HZ) || HZ < 24 || HZ > 1_000_000) throw new Error(`CONFIG_HZ=${HZ}: not a valid tick rate`);
    this.q = q;
    this.HZ = HZ;
    this.initialJiffies = INITIAL_JIFFIES_OFFSET(HZ);
  }

  ktime_get_ns(): number {
    // Event times may be fractional (serialisation at 7 Mbit/s, timers at HZ=300); ktime counts whole ns.
    return BOOT_OFFSET_NS + Math.floor(this.q.now);
  }

  jiffies(): number {
    // Exact in doubles: ns * HZ stays far below 2^53 for any simulated time.
    return this.initialJiffies + Math.floor((this.ktime_get_ns() * this.HZ) / 1e9);
  }
}

/** The kernel's own clock as TCP's clock: when the simulation runs on a booted Kernel, BPF helpers
 * (bpf_jiffies64, bpf_ktime_get_ns) and the TCP stack must see the same time. */
export interface KernelTimeSource {
  readonly config: Record<string, number | string | boolean>;
  ktimeGetNs(): bigint;
  setTimeNs(ns: bigint): void;
  readonly jiffies: bigint;
}

export class KernelDrivenClock implements KernelClock {
  readonly HZ: number;
  constructor(
    private readonly k: KernelTimeSource,
    q: EventQueue,
  ) {
    this.HZ = Number(k.config.CONFIG_HZ ?? 1000);
    const start = k.ktimeGetNs();
    const base = start > BigInt(BOOT_OFFSET_NS) ? start : BigInt(BOOT_OFFSET_NS);
    k.setTimeNs(base);
    // Whole ns, as SimClock counts them, so a booted kernel and a plain simulation see the same jiffies.
    q.onTime = (now) => k.setTimeNs(base + BigInt(Math.floor(now)));
  }
  ktime_get_ns(): number {
    return Number(this.k.ktimeGetNs());
  }
  jiffies(): number {
    return Number(this.k.jiffies);
  }
}
