/**
 * A deterministic network simulation: TCP senders from src/subsys/tcp (calling their congestion-control
 * ops exactly where Linux does) share one bottleneck towards receiving sockets that run their own
 * congestion control (receiver.ts); ACKs return over an uncongested path. Same options and seed give
 * byte-identical results.
 */

import type { NetDevice } from "../subsys/qdisc/netdevice.js";
import { KernelHrtimers, type QdiscKernel } from "../subsys/qdisc/qdisc_init.js";
import type { QdiscStats } from "../subsys/qdisc/sch_generic.js";
import type { SkbStats } from "../subsys/qdisc/skbuff.js";
import { TCP_CA_Open, TCP_CLOSE, TCP_CONG_NEEDS_ECN, TCP_ESTABLISHED } from "../subsys/tcp/btf.js";
import { type TcpAck, TcpConn, type TcpHost, type TcpSegment } from "../subsys/tcp/tcp.js";
import { tcpBbr } from "../subsys/tcp/tcp_bbr.js";
import {
  type TcpCcInfo,
  TcpCongControl,
  type TcpCongestionOps,
  tcp_get_cc_info,
  tcp_set_ca_state,
} from "../subsys/tcp/tcp_cong.js";
import { tcpCubic } from "../subsys/tcp/tcp_cubic.js";
import { tcpDctcp } from "../subsys/tcp/tcp_dctcp.js";
import type { TcpKernel } from "../subsys/tcp/tcp_init.js";
import { tcp_pace_kick } from "../subsys/tcp/tcp_output.js";
import { tcpReno } from "../subsys/tcp/tcp_reno.js";
import { type KernelAllocator, type KernelClock, TcpSock } from "../subsys/tcp/tcp_sock.js";
import { tcp_write_timer } from "../subsys/tcp/tcp_timer.js";
import { KernelDrivenClock, SimClock } from "./clock.js";
import { EventQueue } from "./event_queue.js";
import { Bottleneck, type LinkConfig } from "./link.js";
import { mahimahiRateBps } from "./mahimahi.js";
import { computeMetrics, type SimMetrics } from "./metrics.js";
import { Prng } from "./prng.js";
import { EventQueueTimers, QdiscBottleneck } from "./qdisc_link.js";
import { Receiver } from "./receiver.js";

export interface FlowSpec {
  /** A registered CA name, or ops to register (if new) and use. */
  cc: string | TcpCongestionOps;
  /** Start time, ns. */
  startNs?: number;
  /** Segments to send (Infinity: bulk); with a finite count the application closes after writing them
   * (FIN, FIN-ACK, each socket's CA released as the socket is destroyed). */
  segments?: number;
  /** With finite `segments`: the application keeps the connection open after writing them (no FIN). */
  keepOpen?: boolean;
  /** Close at this time (ns) even if data remains. */
  stopNs?: number;
  /** The receiving socket's CA (setsockopt(TCP_CONGESTION) on the listener); default the sender's. */
  rcvCc?: string | TcpCongestionOps;
}

export interface SwitchSpec {
  atNs: number;
  /** The new ops. With the same name as the running CA: tcp_update_congestion_control then each socket
   * re-selects it (setsockopt), so old release and new init run once per socket; otherwise setsockopt. */
  to?: TcpCongestionOps;
  /** Instead of `to`: change the registry at the switch time (e.g. BPF_LINK_UPDATE) and return the ops
   * the sockets re-select by name. */
  apply?: () => TcpCongestionOps;
  /** Which flows switch (default all). */
  flows?: number[];
}

/** A SYN with MSS, SACK-permitted, timestamps and window scale: 20 + 40 bytes. */
const SYN_WIRE_BYTES = 60;

export interface SimOptions {
  link: LinkConfig;
  durationNs: number;
  flows: FlowSpec[];
  seed?: number;
  HZ?: number;
  mss?: number;
  wireBytes?: number;
  delayedAck?: boolean;
  /** SO_RCVBUF on every receiving socket (bytes, as passed to setsockopt): its window limits the sender. */
  rcvbuf?: number;
  /** Negotiate ECN on every flow (CAs with TCP_CONG_NEEDS_ECN always do). */
  ecn?: boolean;
  /** Trace sampling period, ns (default 10 ms). */
  sampleNs?: number;
  /** Metrics are computed over [metricsFromNs, duration] (default: from 0). */
  metricsFromNs?: number;
  switches?: SwitchSpec[];
  /** Extra CAs registered in the simulated kernel (besides reno and cubic). */
  register?: TcpCongestionOps[];
  /** The trace's cc label of some ops (e.g. which BPF object they came from); default their name. */
  describeCc?: (ops: TcpCongestionOps) => string | undefined;
  /** Called about once per simulated second (progress bars). */
  onProgress?: (nowNs: number, durationNs: number) => void;
  /** Kernel memory for the sockets (a VmMemory region); default plain ArrayBuffers. */
  alloc?: KernelAllocator;
  /** Run on a booted kernel's TCP: its registry (BPF CCs attached through struct_ops are there), its
   * memory for the sockets, which are registered so BPF kfuncs and helpers find them by address. */
  tcp?: TcpKernel;
  /**
   * Send through the kernel's packet scheduler instead of the droptail queue: the bottleneck is a
   * net_device whose root qdisc `attach` sets up (needs `tcp` from the same kernel).
   */
  qdisc?: SimQdisc;
}

export interface SimQdisc {
  readonly qk: QdiscKernel;
  /** `tc qdisc add dev D root ...`: put the scheduler on the bottleneck's device. */
  attach(dev: NetDevice): void;
}

/** What the packet scheduler reports at the end (`tc -s qdisc show` and the skb accounting). */
export interface SimQdiscReport {
  kind: string;
  stats: QdiscStats;
  skbs: SkbStats;
}

export interface FlowTrace {
  cwnd: number[];
  ssthresh: number[];
  srtt_ms: number[];
  /** Packets in flight (tcp_packets_in_flight) and the same in bytes of payload. */
  inflight: number[];
  inflight_bytes: number[];
  ca_state: number[];
  /** sk_pacing_rate, bytes/s (TCP_INFO's tcpi_pacing_rate). */
  pacing_rate: number[];
  /** The congestion control the socket runs at each sample (its name, or SimOptions.describeCc's label). */
  cc: string[];
}

export interface SimTrace {
  t_ms: number[];
  queue_bytes: number[];
  queue_pkts: number[];
  flows: FlowTrace[];
  /** Per-flow throughput at the receiver (unique data, wire bits/s) in 100 ms bins starting at 0. */
  throughput_bps: number[][];
  /**
   * Per flow, in the same 100 ms bins: the mean queueing delay (ms) of its packets that left the
   * bottleneck's queue in the bin (null where none did).
   */
  queue_delay_ms: (number | null)[][];
  /** Per flow, in the same bins: packets the bottleneck dropped (its queue or qdisc; not random loss). */
  drops: number[][];
}

export interface SimResult {
  metrics: SimMetrics;
  trace: SimTrace;
  events: number;
  /** What each sender's CA reported through get_info at the end (inet_diag's view, `ss -ti`). */
  ccInfo: (TcpCcInfo | undefined)[];
  /** The same for each receiving socket's CA. */
  rcvCcInfo: (TcpCcInfo | undefined)[];
  /** With SimOptions.qdisc: the root qdisc's counters and the kernel's skb accounting. */
  qdisc?: SimQdiscReport;
}

/** The default scenario (Pantheon's): 12 Mbit/s, 30 ms one-way, 45 KB droptail, 30 s. */
export const DEFAULT_LINK: LinkConfig = {
  rateBps: 12e6,
  delayNs: 30e6,
  buffer: { bytes: 45_000 },
};

export class Simulation {
  readonly ev = new EventQueue();
  readonly clock: KernelClock;
  readonly prng: Prng;
  readonly cong: TcpCongControl;
  readonly link: Bottleneck | QdiscBottleneck;
  readonly conns: TcpConn[] = [];
  readonly receivers: Receiver[] = [];
  /** The receiving socket of each flow, running its own CA (init, ECN events, release). */
  readonly rsks: TcpSock[] = [];
  /** The receiving socket's send side (its FIN and the ACK of it). */
  readonly rconns: TcpConn[] = [];
  readonly queueDelays: number[][] = [];
  /** Per flow: drops per 100 ms bin. */
  private readonly dropBins: number[][] = [];
  readonly trace: SimTrace;
  private readonly rtoAt = new Map<TcpConn, number>();
  /** __tcp_send_ack for each receiving socket (DCTCP's CE echo sends one from its CA). */
  private readonly ackSenders = new WeakMap<TcpSock, (rcv_nxt: number) => void>();
  private readonly opts: SimOptions;

  constructor(opts: SimOptions) {
    this.opts = opts;
    const k = opts.tcp?.kernel;
    this.clock = k ? new KernelDrivenClock(k, this.ev) : new SimClock(this.ev, opts.HZ ?? 1000);
    this.prng = new Prng(opts.seed ?? 1);
    if (opts.tcp) {
      this.cong = opts.tcp.cong;
      if (!this.cong.tcp_ca_find("cubic")) this.cong.tcp_register_congestion_control(tcpCubic());
    } else {
      this.cong = new TcpCongControl(tcpReno());
      this.cong.tcp_register_congestion_control(tcpCubic());
      this.cong.tcp_add_module("bbr", () => tcpBbr(this.prng.u32()));
      this.cong.tcp_add_module("dctcp", () =>
        tcpDctcp({ sendAck: (sk, rcv_nxt) => this.ackSenders.get(sk)?.(rcv_nxt) }),
      );
    }
    for (const ca of opts.register ?? []) this.cong.tcp_register_congestion_control(ca);
    const deliver = (seg: TcpSegment) => this.receivers[seg.flow]!.onSegment(seg);
    this.link = opts.qdisc
      ? this.qdiscLink(opts.qdisc, deliver)
      : new Bottleneck(this.ev, opts.link, this.prng, deliver);
    // (time, delay) pairs, flattened
    this.link.onDequeue = (seg, d) => {
      this.queueDelays[seg.flow]!.push(this.ev.now, d);
    };
    this.link.onDrop = (seg) => {
      const bins = this.dropBins[seg.flow]!;
      const bin = Math.floor(this.ev.now / 1e8);
      while (bins.length <= bin) bins.push(0);
      bins[bin]!++;
    };
    this.trace = {
      t_ms: [],
      queue_bytes: [],
      queue_pkts: [],
      flows: [],
      throughput_bps: [],
      queue_delay_ms: [],
      drops: [],
    };
    for (const [i, f] of opts.flows.entries()) this.addFlow(f, i);
    for (const s of opts.switches ?? []) this.ev.at(s.atNs, () => this.switchCa(s));
  }

  /** The bottleneck device with its qdisc; skbs carry the sender's socket, flow hash and EDT. */
  private qdiscLink(q: SimQdisc, deliver: (seg: TcpSegment) => void): QdiscBottleneck {
    if (!this.opts.tcp) throw new Error("a qdisc needs the simulation to run on a booted kernel (SimOptions.tcp)");
    const qk = q.qk;
    qk.timers = new EventQueueTimers(this.ev, new KernelHrtimers(qk.k));
    const dev = qk.addDevice({ name: `sim${qk.sched.devices.size}`, noQueue: true });
    q.attach(dev);
    return new QdiscBottleneck(this.ev, this.opts.link, this.prng, deliver, qk, dev, (seg) => {
      const sk = this.conns[seg.flow]!.sk;
      // skb->hash from the socket's txhash, skb->tstamp = tcp_wstamp_ns (EDT), skb->sk.
      return { sk: sk.addr, hash: flowHash(seg.flow), tstamp: BigInt(Math.max(0, Math.floor(sk.tcp_wstamp_ns))) };
    });
  }

  /** The simulated host of every sender: transmit into the bottleneck, one lazily re-armed RTO timer each. */
  private host(): TcpHost {
    return {
      clock: this.clock,
      xmit: (seg: TcpSegment) => this.link.send(seg),
      setRtoTimer: (conn: TcpConn, delay: number) => {
        const at = delay < 0 ? -1 : this.ev.now + delay;
        const had = this.rtoAt.get(conn);
        this.rtoAt.set(conn, at);
        // Re-arming later reuses the pending event, which re-checks the deadline when it fires.
        if (at >= 0 && (had === undefined || had < 0 || at < had)) this.ev.at(at, () => this.rtoFire(conn));
      },
      setPacingTimer: (conn: TcpConn, delay: number) => {
        this.ev.after(delay, () => {
          if (!conn.closed) tcp_pace_kick(conn);
        });
      },
      // The sender's ACK of the receiver's FIN, over the path's propagation delay.
      sendAck: (conn: TcpConn, tsecr: number) => {
        const peer = this.rconns[conn.flow]!;
        const a: TcpAck = { flow: conn.flow, ack: peer.finIdx + 1, sack: [], ece: false, tsecr };
        this.ev.after(this.opts.link.delayNs, () => peer.receiveAck(a));
      },
    };
  }

  private rtoFire(conn: TcpConn): void {
    const at = this.rtoAt.get(conn) ?? -1;
    if (at < 0) return;
    if (at > this.ev.now) {
      this.ev.at(at, () => this.rtoFire(conn));
      return;
    }
    this.rtoAt.set(conn, -1);
    tcp_write_timer(conn);
  }

  private resolve(cc: string | TcpCongestionOps): TcpCongestionOps {
    if (typeof cc !== "string") {
      const have = this.cong.tcp_ca_find(cc.name);
      if (have === cc) return cc;
      if (!have) {
        this.cong.tcp_register_congestion_control(cc);
        return cc;
      }
      throw new Error(`congestion control '${cc.name}' is already registered with other ops`);
    }
    const have = this.cong.tcp_ca_find_autoload(cc);
    if (!have)
      throw new Error(
        `unknown congestion control '${cc}' (available: ${this.cong.tcp_get_available_congestion_control()})`,
      );
    return have;
  }

  private addFlow(f: FlowSpec, i: number): void {
    const ca = this.resolve(f.cc);
    const needsEcn = (ca.flags & TCP_CONG_NEEDS_ECN) !== 0;
    const conn = new TcpConn(this.host(), this.cong, {
      flow: i,
      mss: this.opts.mss,
      wireBytes: this.opts.wireBytes,
      segments: 0,
      isn: this.prng.u32(),
      ecn: this.opts.ecn || needsEcn,
      alloc: this.opts.alloc ?? this.opts.tcp?.alloc,
    });
    this.opts.tcp?.registerSock(conn.sk, [conn.ackSample], [conn.rateSample]);
    // setsockopt(TCP_CONGESTION) before connect(): init runs at establishment.
    this.cong.tcp_set_congestion_control(conn.sk, ca.name);
    this.conns.push(conn);
    this.queueDelays.push([]);
    this.dropBins.push([]);
    // The receiving socket: its own CA (the sender's unless rcvCc names another) gets init at
    // establishment, in_ack_event on slow-path segments, the ECN receive events, and release at close.
    const rcvCa = f.rcvCc !== undefined ? this.resolve(f.rcvCc) : ca;
    // A full socket (tcp_init_sock) whose send side carries only its FIN, over the uncongested path back.
    const alloc = this.opts.alloc ?? this.opts.tcp?.alloc;
    const rsk = new TcpSock(this.clock, `flow ${i} rx`, alloc);
    const rconn = new TcpConn({ ...this.host(), xmit: (seg) => this.receivers[i]!.sendFin(seg.tsval) }, this.cong, {
      flow: i,
      mss: conn.sk.mss_cache,
      wireBytes: this.opts.wireBytes,
      segments: 0,
      // Not drawn from the PRNG, which would move every later draw.
      isn: (conn.isn ^ 0x5a5a5a5a) >>> 0,
      ecn: this.opts.ecn || needsEcn,
      alloc,
      sk: rsk,
    });
    // The accepted socket inherits the listener's CA (setsockopt(TCP_CONGESTION) on the listener).
    this.cong.tcp_set_congestion_control(rsk, rcvCa.name);
    this.rsks.push(rsk);
    this.rconns.push(rconn);
    const rx = new Receiver(
      this.ev,
      {
        flow: i,
        delayedAck: this.opts.delayedAck,
        rcvbuf: this.opts.rcvbuf,
        sk: rsk,
        isn: conn.isn,
        mss: conn.sk.mss_cache,
        // The reader sees end of file and closes its socket, after this segment's processing.
        onFin: () => this.ev.after(0, () => rconn.shutdown()),
      },
      (a: TcpAck) => this.ev.after(this.opts.link.delayNs, () => conn.receiveAck(a)),
    );
    this.receivers.push(rx);
    this.opts.tcp?.registerSock(rsk, [rconn.ackSample], [rconn.rateSample]);
    this.opts.tcp?.setAckSender(rsk, (rcv_nxt) => rx.sendAckFor(rcv_nxt));
    this.ackSenders.set(rsk, (rcv_nxt) => rx.sendAckFor(rcv_nxt));
    this.trace.flows.push({
      cwnd: [],
      ssthresh: [],
      srtt_ms: [],
      inflight: [],
      inflight_bytes: [],
      ca_state: [],
      pacing_rate: [],
      cc: [],
    });
    this.ev.at(f.startNs ?? 0, () => {
      if (rx.win) conn.setPeerWindow(rx.win.synWindow(), rx.win.rcvWscale);
      conn.establish(this.handshakeRttUs());
      // tcp_create_openreq_child: the child starts in TCP_CA_Open (tcp_ca_openreq_child tells its CA),
      // then tcp_init_transfer runs its CA's init.
      rsk.sk_state = TCP_ESTABLISHED;
      rx.establish((2 * this.opts.link.delayNs) / 1000);
      rconn.mstampRefresh();
      rsk.lsndtime = rconn.jiffies32();
      rsk.snd_cwnd_stamp = rconn.jiffies32();
      tcp_set_ca_state(rsk, TCP_CA_Open);
      this.cong.tcp_init_congestion_control(rsk);
      const segments = f.segments ?? Number.POSITIVE_INFINITY;
      conn.write(segments);
      if (Number.isFinite(segments) && !f.keepOpen) conn.shutdown();
    });
    if (f.stopNs !== undefined) this.ev.at(f.stopNs, () => this.closeFlow(i));
  }

  /**
   * The SYN's and SYN-ACK's round trip: both propagation delays plus the SYN's transmission over the
   * bottleneck (none over tbf's infinitely fast device, nor over a trace's whole-packet opportunities).
   */
  private handshakeRttUs(): number {
    const l = this.opts.link;
    const synNs = l.tbf || l.trace ? 0 : (SYN_WIRE_BYTES * 8 * 1e9) / l.rateBps;
    return (2 * l.delayNs + synNs) / 1000;
  }

  /** Both ends are destroyed (at the stop time, or the run's end): each releases its own CA. */
  private closeFlow(i: number): void {
    this.conns[i]!.close();
    this.rconns[i]!.close();
  }

  private switchCa(s: SwitchSpec): void {
    let to: TcpCongestionOps;
    if (s.apply) {
      to = s.apply();
    } else {
      if (!s.to) throw new Error("a switch needs `to` or `apply`");
      to = s.to;
      const running = this.cong.tcp_ca_find(to.name);
      if (running && running !== to) this.cong.tcp_update_congestion_control(to, running);
      else if (!running) this.cong.tcp_register_congestion_control(to);
    }
    this.conns.forEach((c, i) => {
      if (c.closed || (s.flows && !s.flows.includes(i))) return;
      this.cong.tcp_set_congestion_control(c.sk, to.name);
    });
  }

  private readonly ccLabels = new WeakMap<TcpCongestionOps, string>();
  private ccLabel(ops: TcpCongestionOps): string {
    let l = this.ccLabels.get(ops);
    if (l === undefined) this.ccLabels.set(ops, (l = this.opts.describeCc?.(ops) ?? ops.name));
    return l;
  }

  private sample(): void {
    const t = this.trace;
    t.t_ms.push(this.ev.now / 1e6);
    t.queue_bytes.push(this.link.queueBytes);
    t.queue_pkts.push(this.link.queuePackets);
    this.conns.forEach((c, i) => {
      const ft = t.flows[i]!;
      const sk = c.sk;
      // Sending: established, or closed by the application with data or its FIN outstanding.
      const active =
        !c.closed &&
        sk.sk_state !== TCP_CLOSE &&
        (sk.sk_state === TCP_ESTABLISHED || sk.packets_out > 0 || c.nxt < c.appLimit);
      ft.cwnd.push(active ? sk.snd_cwnd : 0);
      ft.ssthresh.push(active ? Math.min(sk.snd_ssthresh, 0x7fffffff) : 0);
      ft.srtt_ms.push(active ? sk.srtt_us / 8 / 1000 : 0);
      ft.inflight.push(active ? c.inFlight() : 0);
      ft.inflight_bytes.push(active ? c.inFlight() * sk.mss_cache : 0);
      ft.ca_state.push(sk.icsk_ca_state);
      ft.pacing_rate.push(active ? sk.sk_pacing_rate : 0);
      ft.cc.push(this.ccLabel(sk.icsk_ca_ops));
    });
  }

  run(): SimResult {
    const dur = this.opts.durationNs;
    const sampleNs = this.opts.sampleNs ?? 10e6;
    for (let t = 0; t <= dur; t += sampleNs) this.ev.at(t, () => this.sample());
    for (let t = 1e9; t < dur; t += 1e9) this.ev.at(t, () => this.opts.onProgress?.(t, dur));
    this.ev.runUntil(dur);
    const ccInfo = this.conns.map((c) => tcp_get_cc_info(c.sk));
    const rcvCcInfo = this.rsks.map((sk) => tcp_get_cc_info(sk));
    for (let i = 0; i < this.conns.length; i++) this.closeFlow(i);
    const nbins = Math.ceil(dur / 1e8);
    this.trace.throughput_bps = this.receivers.map((r) =>
      Array.from({ length: nbins }, (_, i) => (r.rxBins[i] ?? 0) * 8 * 10),
    );
    this.trace.queue_delay_ms = this.queueDelays.map((pairs) => meanPerBin(pairs, nbins));
    this.trace.drops = this.dropBins.map((bins) => Array.from({ length: nbins }, (_, i) => bins[i] ?? 0));
    const rateBps = this.opts.link.trace ? mahimahiRateBps(this.opts.link.trace) : this.opts.link.rateBps;
    const metrics = computeMetrics({
      fromNs: this.opts.metricsFromNs ?? 0,
      toNs: dur,
      rateBps,
      conns: this.conns,
      receivers: this.receivers,
      link: this.link,
      queueDelays: this.queueDelays,
    });
    const link = this.link;
    metrics.flows.forEach((f, i) => {
      f.drops = link.counters(i).dropped;
    });
    if (link instanceof QdiscBottleneck) {
      const root = link.dev.qdisc;
      const qdisc: SimQdiscReport = {
        kind: root?.id ?? "noqueue",
        stats: root
          ? root.stats()
          : { qlen: 0, backlog: 0, drops: 0, requeues: 0, overlimits: 0, bytes: 0, packets: 0 },
        skbs: { ...link.qk.pool.stats },
      };
      return { metrics, trace: this.trace, events: this.ev.executed, ccInfo, rcvCcInfo, qdisc };
    }
    return { metrics, trace: this.trace, events: this.ev.executed, ccInfo, rcvCcInfo };
  }
}

/** Mean of (time ns, value ns) pairs per 100 ms bin of their time, in ms; null for an empty bin. */
function meanPerBin(pairs: number[], nbins: number): (number | null)[] {
  const sum = new Float64Array(nbins);
  const n = new Uint32Array(nbins);
  for (let k = 0; k < pairs.length; k += 2) {
    const b = Math.min(nbins - 1, Math.floor(pairs[k]! / 1e8));
    sum[b]! += pairs[k + 1]!;
    n[b]!++;
  }
  return Array.from(n, (c, i) => (c ? sum[i]! / c / 1e6 : null));
}

/** skb->hash of a flow's packets (the socket's sk_txhash): a fixed mix of the flow number, never 0. */
export function flowHash(flow: number): number {
  let x = (flow + 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0 || 1;
}

/** Build and run a simulation. */
export function simulate(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}
