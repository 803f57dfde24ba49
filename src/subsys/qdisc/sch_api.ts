/**
 * net/sched/sch_api.c: the qdisc registry (register_qdisc / unregister_qdisc, qdisc_lookup_ops by
 * kind), `net.core.default_qdisc`, and the tc operations the selftests use: RTM_NEWQDISC (create
 * a qdisc and graft it as the root or under a parent class), RTM_DELQDISC, RTM_NEWTCLASS, and
 * qdisc_create_dflt for classful parents (mq) creating their children.
 */
import { BpfError, EEXIST, EINVAL, ENOENT, EOPNOTSUPP } from "../../uapi/errno.js";
import type { NetDevice, NetdevQueue } from "./netdevice.js";
import {
  type ExtAck,
  pfifo_fast_ops,
  Qdisc,
  type QdiscOps,
  type QdiscOpt,
  qdisc_destroy,
  TC_H_MAJ,
  TC_H_MAKE,
  TC_H_ROOT,
  TC_H_UNSPEC,
} from "./sch_generic.js";
import type { SkbPool } from "./skbuff.js";

/** A tc failure: the kernel's errno and the extack message tc prints. */
export class TcError extends BpfError {}

function fail(errno: number, msg: string, extack?: ExtAck): never {
  if (extack) extack.msg = msg;
  throw new TcError(errno, msg);
}

/** The packet scheduler of one kernel (one network namespace). */
export class Sched {
  /** qdisc_base: the registered kinds, newest first as register_qdisc links them. */
  private readonly kinds: QdiscOps[] = [];
  /** default_qdisc_ops (net.core.default_qdisc). */
  defaultQdiscOps: QdiscOps = pfifo_fast_ops;
  readonly devices = new Map<string, NetDevice>();
  private nextHandle = 0x8000;

  constructor(
    readonly env: import("./netdevice.js").NetDeviceEnv,
    readonly pool: SkbPool,
  ) {}

  /** register_qdisc(): EEXIST for a kind already registered. */
  register_qdisc(ops: QdiscOps): void {
    if (this.kinds.some((q) => q.id === ops.id)) throw new BpfError(EEXIST, `qdisc ${ops.id} is already registered`);
    this.kinds.unshift(ops);
  }

  /** unregister_qdisc(): ENOENT when not registered. A default_qdisc that goes falls back to pfifo_fast. */
  unregister_qdisc(ops: QdiscOps): void {
    const i = this.kinds.indexOf(ops);
    if (i < 0) throw new BpfError(ENOENT, `qdisc ${ops.id} is not registered`);
    this.kinds.splice(i, 1);
    if (this.defaultQdiscOps === ops) this.defaultQdiscOps = pfifo_fast_ops;
  }

  /** qdisc_lookup_default / qdisc_lookup_ops by kind. */
  lookupOps(kind: string): QdiscOps | undefined {
    return this.kinds.find((q) => q.id === kind);
  }

  kindNames(): string[] {
    return this.kinds.map((q) => q.id);
  }

  /** sysctl net.core.default_qdisc = name (qdisc_set_default): ENOENT for an unknown kind. */
  setDefaultQdisc(name: string): void {
    const ops = this.lookupOps(name);
    if (!ops) throw new BpfError(ENOENT, `net.core.default_qdisc: no qdisc ${name}`);
    this.defaultQdiscOps = ops;
  }

  get defaultQdisc(): string {
    return this.defaultQdiscOps.id;
  }

  addDevice(dev: NetDevice): NetDevice {
    if (this.devices.has(dev.name)) throw new BpfError(EEXIST, `device ${dev.name} exists`);
    this.devices.set(dev.name, dev);
    return dev;
  }

  device(name: string): NetDevice {
    const d = this.devices.get(name);
    if (!d) throw new TcError(ENOENT, `Cannot find device "${name}"`);
    return d;
  }

  /** qdisc_alloc_handle(): the next free automatic handle (8001:, 8002:, ...). */
  private allocHandle(dev: NetDevice): number {
    for (let i = 0; i < 0x10000; i++) {
      const h = TC_H_MAKE(this.nextHandle++ << 16, 0);
      if (this.nextHandle > 0xffff) this.nextHandle = 0x8000;
      if (!dev.qdiscLookup(h)) return h;
    }
    throw new TcError(EINVAL, "no free qdisc handle");
  }

  /** qdisc_alloc(): a zeroed struct Qdisc bound to its device queue. */
  qdiscAlloc(dev: NetDevice, txq: NetdevQueue, ops: QdiscOps): Qdisc {
    const env = this.env;
    const region = env.alloc(env.qdiscLayout.size, `Qdisc ${ops.id}`);
    const sch = new Qdisc(env.mem, region, ops, dev, txq, this.pool, env.timers, env.qdiscLayout);
    sch.flags = ops.static_flags ?? 0;
    return sch;
  }

  /**
   * qdisc_create(): look the kind up (pinning its owner), allocate, init; a failed init runs
   * ->destroy as qdisc_create does and the error goes back with its extack message.
   */
  qdiscCreate(
    dev: NetDevice,
    txq: NetdevQueue,
    parent: number,
    handle: number,
    kind: string,
    opt: QdiscOpt | undefined,
    extack: ExtAck,
  ): Qdisc {
    const ops = this.lookupOps(kind);
    if (!ops || (ops.owner && !ops.owner.get())) fail(ENOENT, "Specified qdisc kind is unknown", extack);
    const sch = this.qdiscAlloc(dev, txq, ops);
    sch.parent = parent;
    sch.handle = handle || this.allocHandle(dev);
    const err = ops.init ? ops.init(sch, opt, extack) : 0;
    if (err) {
      ops.destroy?.(sch);
      sch.watchdog.cancel();
      ops.owner?.put();
      this.env.mem.bytes(sch.addr, sch.L.size).fill(0);
      fail(-err, extack.msg ?? `qdisc ${kind}: init failed`, extack);
    }
    return sch;
  }

  /**
   * qdisc_create_dflt(): a child a classful qdisc makes for itself (mq per tx queue). Errors are
   * swallowed (the caller sees null), as the kernel's returns NULL.
   */
  qdiscCreateDflt(dev: NetDevice, txq: NetdevQueue, ops: QdiscOps, parentId: number, extack: ExtAck): Qdisc | null {
    if (ops.owner && !ops.owner.get()) return null;
    const sch = this.qdiscAlloc(dev, txq, ops);
    sch.parent = parentId;
    const err = ops.init ? ops.init(sch, undefined, extack) : 0;
    if (err) {
      ops.destroy?.(sch);
      sch.watchdog.cancel();
      ops.owner?.put();
      return null;
    }
    return sch;
  }

  /** get_default_qdisc_ops(): the sysctl's kind for real tx queues, pfifo_fast past them. */
  defaultOpsFor(dev: NetDevice, ntx: number): QdiscOps {
    return ntx < dev.numTxQueues ? this.defaultQdiscOps : pfifo_fast_ops;
  }

  /**
   * tc qdisc add/replace dev D (root | parent X:Y) [handle H:] KIND [opts]: RTM_NEWQDISC.
   * Returns the new qdisc.
   */
  tcQdiscAdd(
    devName: string,
    o: { parent: number; handle?: number; kind: string; opt?: QdiscOpt },
    extack: ExtAck = {},
  ): Qdisc {
    const dev = this.device(devName);
    const handle = o.handle ?? 0;
    if (o.parent === TC_H_ROOT) {
      const sch = this.qdiscCreate(dev, dev.queues[0]!, TC_H_ROOT, handle, o.kind, o.opt, extack);
      this.graftRoot(dev, sch);
      return sch;
    }
    const p = dev.qdiscLookup(TC_H_MAJ(o.parent));
    if (!p) fail(ENOENT, "Failed to find specified qdisc", extack);
    const cops = p.ops.cl_ops;
    if (!cops) fail(EINVAL, "Parent qdisc is not classful", extack);
    if (!cops.find(p, o.parent)) fail(ENOENT, "Specified class not found", extack);
    const txq = p.ops.id === "mq" ? (dev.queues[(o.parent & 0xffff) - 1] ?? dev.queues[0]!) : p.devQueue;
    const sch = this.qdiscCreate(dev, txq, o.parent, handle, o.kind, o.opt, extack);
    this.hashAdd(dev, sch);
    const old = cops.graft(p, o.parent, sch, extack);
    if (old) this.qdiscPut(dev, old);
    return sch;
  }

  /** tc qdisc del dev D (root | parent X:Y): the qdisc goes (reset, destroy); the root falls back to the default. */
  tcQdiscDel(devName: string, parent: number, extack: ExtAck = {}): void {
    const dev = this.device(devName);
    if (parent === TC_H_ROOT) {
      if (!dev.qdisc) fail(ENOENT, "Cannot delete qdisc with handle of zero.", extack);
      this.graftRoot(dev, null);
      return;
    }
    const p = dev.qdiscLookup(TC_H_MAJ(parent));
    if (!p?.ops.cl_ops) fail(ENOENT, "Failed to find qdisc with specified classid", extack);
    const old = p.ops.cl_ops.graft(p, parent, null, extack);
    if (old) this.qdiscPut(dev, old);
  }

  /** tc class add dev D parent X: classid X:Y KIND [opts]: RTM_NEWTCLASS. */
  tcClassAdd(devName: string, o: { parent: number; classid: number; opt?: QdiscOpt }, extack: ExtAck = {}): void {
    const dev = this.device(devName);
    const p = dev.qdiscLookup(TC_H_MAJ(o.parent));
    if (!p) fail(ENOENT, "Failed to find specified qdisc", extack);
    const change = p.ops.cl_ops?.change;
    if (!change) fail(EOPNOTSUPP, "Qdisc not classful", extack);
    const err = change(p, o.classid, o.opt ?? {}, extack);
    if (err) fail(-err, extack.msg ?? "class change failed", extack);
  }

  /** The root graft (dev_graft_qdisc on every tx queue, or ->attach for mq); the old root is put. */
  graftRoot(dev: NetDevice, sch: Qdisc | null): void {
    const old = dev.qdisc;
    dev.qdisc = sch;
    for (const txq of dev.queues) txq.qdisc = sch;
    if (sch?.ops.attach) sch.ops.attach(sch);
    if (old) this.qdiscPut(dev, old);
    if (!sch && !dev.noQueue) this.attachDefault(dev);
  }

  /** attach_default_qdiscs(): mq on a multiqueue device, else the default qdisc as root. */
  attachDefault(dev: NetDevice): void {
    const extack: ExtAck = {};
    if (dev.isMultiqueue() && this.lookupOps("mq")) {
      this.tcQdiscAdd(dev.name, { parent: TC_H_ROOT, kind: "mq" }, extack);
      return;
    }
    const sch = this.qdiscCreateDflt(dev, dev.queues[0]!, this.defaultQdiscOps, TC_H_ROOT, extack);
    if (!sch) return;
    dev.qdisc = sch;
    for (const txq of dev.queues) txq.qdisc = sch;
  }

  hashAdd(dev: NetDevice, sch: Qdisc): void {
    if (sch.handle !== TC_H_UNSPEC) dev.hash.set(TC_H_MAJ(sch.handle), sch);
  }

  /** qdisc_put(): the last reference destroys the qdisc (children of a classful one first). */
  qdiscPut(dev: NetDevice, sch: Qdisc): void {
    if (--sch.refcnt > 0) return;
    if (dev.hash.get(TC_H_MAJ(sch.handle)) === sch) dev.hash.delete(TC_H_MAJ(sch.handle));
    for (const txq of dev.queues) if (txq.qdisc === sch) txq.qdisc = null;
    qdisc_destroy(sch);
    this.env.free(sch.region);
  }
}
