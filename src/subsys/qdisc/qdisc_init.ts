/**
 * The packet scheduler of the simulated kernel (pktsched_init + bpf_qdisc_kfunc_init): declares
 * the scheduler's types in vmlinux BTF, registers the built-in kinds (pfifo_fast, pfifo, bfifo,
 * mq, htb, fq, fq_codel), the Qdisc_ops struct_ops type and its kfuncs, and owns the skbs, the
 * devices and the watchdog timers of one kernel. List it after the TCP subsystem (skb->sk is a
 * `struct sock *`).
 */
import type { BtfBuilder } from "../../btf/builder.js";
import type { MemRegion } from "../../kernel/bpf.js";
import {
  CLOCK_MONOTONIC,
  HRTIMER_MODE_ABS_PINNED,
  HRTIMER_NORESTART,
  type Hrtimer,
  hrtimer_cancel,
  hrtimer_setup,
  hrtimer_start,
} from "../../kernel/hrtimer.js";
import type { KernelBaseTypes } from "../../kernel/init.js";
import type { Kernel, Subsystem } from "../../kernel/kernel.js";
import { BTF_KIND_STRUCT } from "../../uapi/btf.js";
import type { VmMemory } from "../../vm/memory.js";
import { registerBpfQdisc } from "./bpf_qdisc.js";
import { declareQdiscTypes } from "./btf.js";
import { NetDevice, type NetDeviceEnv, type NetDeviceOpts } from "./netdevice.js";
import { Sched } from "./sch_api.js";
import { bfifo_qdisc_ops, pfifo_qdisc_ops } from "./sch_fifo.js";
import { fqQdiscOps } from "./sch_fq.js";
import { fqCodelQdiscOps } from "./sch_fq_codel.js";
import {
  type ExtAck,
  pfifo_fast_ops,
  type Qdisc,
  type QdiscLayout,
  type QdiscTimers,
  qdiscLayout,
} from "./sch_generic.js";
import { htbQdiscOps } from "./sch_htb.js";
import { mqQdiscOps } from "./sch_mq.js";
import { memberOffset, SkbPool, structSize } from "./skbuff.js";

/**
 * The watchdog's timers: the kernel's hrtimers (CLOCK_MONOTONIC, absolute, pinned), which fire as
 * the simulated clock moves past them (Kernel.setTimeNs).
 */
export class KernelHrtimers implements QdiscTimers {
  constructor(private readonly k: Kernel) {}
  now(): number {
    return Number(this.k.ktimeGetNs());
  }
  start(atNs: number, fn: () => void): unknown {
    const t = hrtimer_setup(
      this.k,
      () => {
        fn();
        return HRTIMER_NORESTART;
      },
      CLOCK_MONOTONIC,
      HRTIMER_MODE_ABS_PINNED,
    );
    hrtimer_start(t, BigInt(Math.max(0, Math.ceil(atNs))), HRTIMER_MODE_ABS_PINNED);
    return t;
  }
  cancel(handle: unknown): void {
    hrtimer_cancel(handle as Hrtimer);
  }
  /** Move the kernel clock to `ns` (never back), firing the timers due on the way. */
  advanceTo(ns: number): void {
    if (ns > this.now()) this.k.setTimeNs(BigInt(ns));
  }
}

/** One kernel's packet scheduler. */
export class QdiscKernel implements NetDeviceEnv {
  kernel?: Kernel;
  private s?: Sched;
  private p?: SkbPool;
  private layout?: QdiscLayout;
  private extack?: { region: MemRegion; current: ExtAck | null };
  private readonly qdiscs = new Map<number, Qdisc>();
  private ifindex = 1;
  /** The timers watchdogs run on (replace before creating qdiscs to drive them from elsewhere). */
  timers!: QdiscTimers;

  get k(): Kernel {
    if (!this.kernel) throw new Error("the qdisc subsystem is not booted");
    return this.kernel;
  }
  get sched(): Sched {
    if (!this.s) throw new Error("the qdisc subsystem is not booted");
    return this.s;
  }
  get pool(): SkbPool {
    if (!this.p) throw new Error("the qdisc subsystem is not booted");
    return this.p;
  }
  get mem(): VmMemory {
    return this.k.mem as unknown as VmMemory;
  }
  get btf() {
    const b = this.k.btfVmlinux;
    if (!b) throw new Error("no vmlinux BTF");
    return b;
  }
  get qdiscLayout(): QdiscLayout {
    if (!this.layout) throw new Error("the qdisc subsystem is not booted");
    return this.layout;
  }

  alloc(size: number, name: string): MemRegion {
    return this.k.mem.alloc(size, { perm: "rw", kind: "kobj", name });
  }
  free(region: MemRegion): void {
    const q = this.qdiscs.get(region.addr);
    if (q) this.qdiscs.delete(region.addr);
    this.k.mem.free(region);
  }

  qdiscByAddr(addr: number): Qdisc | undefined {
    return this.qdiscs.get(addr);
  }

  /** A device in this kernel (`ip link add`); veth and lo are IFF_NO_QUEUE. */
  addDevice(o: Omit<NetDeviceOpts, "ifindex"> & { ifindex?: number }): NetDevice {
    const dev = new NetDevice(this, { ...o, ifindex: o.ifindex ?? this.ifindex++ });
    this.sched.addDevice(dev);
    if (!dev.noQueue) this.sched.attachDefault(dev);
    return dev;
  }

  boot(k: Kernel): void {
    this.kernel = k;
    this.timers ??= new KernelHrtimers(k);
    this.layout = qdiscLayout(this.btf);
    this.p = new SkbPool(k);
    const sched = new Sched(this, this.p);
    this.s = sched;
    const origAlloc = sched.qdiscAlloc.bind(sched);
    sched.qdiscAlloc = (dev, txq, ops) => {
      const q = origAlloc(dev, txq, ops);
      this.qdiscs.set(q.addr, q);
      return q;
    };
    for (const ops of [
      pfifo_fast_ops,
      pfifo_qdisc_ops,
      bfifo_qdisc_ops,
      mqQdiscOps(sched),
      htbQdiscOps(sched, () => pfifo_qdisc_ops),
      fqQdiscOps({ pacingStatus: this.sockOff("sk_pacing_status"), pacingRate: this.sockOff("sk_pacing_rate") }),
      fqCodelQdiscOps(),
    ]) {
      sched.register_qdisc(ops);
    }
  }

  /** offsetof(struct sock, member) when TCP declared struct sock, else -1. */
  private sockOff(member: string): number {
    const sock = this.btf.findByNameKind("sock", BTF_KIND_STRUCT);
    if (sock < 0) return -1;
    try {
      return memberOffset(this.btf, sock, member);
    } catch {
      return -1;
    }
  }

  /** The `struct netlink_ext_ack` handed to a BPF init: one, reused. */
  extackAddr(extack: ExtAck): number {
    if (!this.extack) {
      const id = this.btf.findByNameKind("netlink_ext_ack", BTF_KIND_STRUCT);
      this.extack = { region: this.alloc(structSize(this.btf, id), "netlink_ext_ack"), current: null };
    }
    this.extack.current = extack;
    return this.extack.region.addr;
  }

  extackAt(addr: number): ExtAck {
    const e = this.extack;
    return e && e.region.addr === addr && e.current ? e.current : {};
  }

  skbByAddr(addr: number) {
    return this.pool.byAddr(addr);
  }
}

export function qdiscSubsystem(qk: QdiscKernel): Subsystem {
  return {
    name: "qdisc",
    declareTypes(b: BtfBuilder, base: KernelBaseTypes): void {
      declareQdiscTypes(b, base);
    },
    register(k: Kernel): void {
      qk.boot(k);
      registerBpfQdisc(k, () => qk);
    },
  };
}
