import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { BpfCcHost } from "../../src/sim/bpf_cc.js";
import { DEFAULT_LINK, type SimOptions, Simulation, simulate } from "../../src/sim/sim.js";
import { bpfTcpCaSubsystem } from "../../src/subsys/tcp/bpf_tcp_ca.js";
import { TcpKernel, tcpSubsystem } from "../../src/subsys/tcp/tcp_init.js";
import { bpfObj } from "./helpers.js";

const OBJ = bpfObj;

function bootWith(obj: string, map: string): { tcp: TcpKernel; detach(): void } {
  const tcp = new TcpKernel();
  const k = new Kernel({ subsystems: [tcpSubsystem(tcp), bpfTcpCaSubsystem(() => tcp.cong)] });
  const o = BpfObject.open(OBJ(obj));
  o.load({ kernel: k, process: k.newProcess() });
  const link = o.findMap(map)!.attachStructOps();
  return { tcp, detach: () => link.detach() };
}

const scenario = (cc: string): SimOptions => ({ link: DEFAULT_LINK, durationNs: 10e9, flows: [{ cc }] });

/** Load and attach, or say why not (the object is not built, or the loader cannot load it yet). */
function tryBoot(obj: string, map: string): { env?: ReturnType<typeof bootWith>; why: string | false } {
  if (!existsSync(OBJ(obj))) return { why: `bpf/obj/${obj}.bpf.o not built` };
  try {
    return { env: bootWith(obj, map), why: false };
  } catch (e) {
    return { why: `the loader cannot load ${obj}.bpf.o yet: ${(e as Error).message}` };
  }
}
const reno = tryBoot("tcp_reno", "so_reno");

test("a BPF Reno (struct_ops, run by the VM) drives the simulated TCP to the built-in Reno's exact trace", {
  skip: reno.why,
}, () => {
  const { tcp, detach } = reno.env!;
  const bpf = simulate({ ...scenario("so_reno"), tcp });
  const ts = simulate(scenario("reno"));
  assert.deepEqual(bpf.trace.flows[0]!.cwnd, ts.trace.flows[0]!.cwnd);
  assert.deepEqual(bpf.trace.flows[0]!.ssthresh, ts.trace.flows[0]!.ssthresh);
  assert.equal(bpf.metrics.flows[0]!.cc, "so_reno");
  detach();
  assert.equal(tcp.cong.tcp_ca_find("so_reno"), undefined);
});

const cubic = tryBoot("tcp_cubic", "so_cubic");

test("a BPF CUBIC (kfuncs, bpf_jiffies64 on the simulated kernel clock) fills the default bottleneck", {
  skip: cubic.why,
}, () => {
  const { tcp, detach } = cubic.env!;
  const r = simulate({ link: DEFAULT_LINK, durationNs: 30e9, flows: [{ cc: "so_cubic" }], metricsFromNs: 5e9, tcp });
  assert.equal(r.metrics.flows[0]!.cc, "so_cubic");
  assert.ok(r.metrics.utilisation >= 0.9, `utilisation ${r.metrics.utilisation}`);
  assert.equal(r.metrics.flows[0]!.rtos, 0);
  // the kernel's clock followed the simulation: 30 s after boot
  assert.ok(Number(tcp.kernel!.ktimeGetNs()) >= 30e9);
  // beta = 0.7 after each loss
  const f = r.trace.flows[0]!;
  const cut = f.ssthresh.findIndex((x, i) => i > 0 && x !== f.ssthresh[i - 1] && f.ssthresh[i - 1]! < 0x7fffffff);
  assert.ok(cut > 0);
  assert.ok(Math.abs(f.ssthresh[cut]! / f.cwnd[cut - 1]! - 0.7) < 0.03);
  detach();
});

test("BPF CUBIC (bpf/tcp_cubic.bpf.c, HyStart included) and the built-in CUBIC give the same trace", {
  skip: cubic.why,
}, () => {
  // The default scenario: 12 Mbit/s, 30 ms, 45 KB, 30 s, seed 1. A fresh kernel so that nothing ran before.
  const host = new BpfCcHost();
  const name = host.attach(bpfObj("tcp_cubic"));
  const opts: SimOptions = { link: DEFAULT_LINK, durationNs: 30e9, flows: [{ cc: name }], seed: 1 };
  const bpf = simulate({ ...opts, tcp: host.tcp });
  const ts = simulate({ ...opts, flows: [{ cc: "cubic" }] });
  const b = bpf.trace.flows[0]!;
  const t = ts.trace.flows[0]!;
  assert.equal(b.cwnd.length, 3001);
  for (let i = 0; i < b.cwnd.length; i++) {
    assert.equal(b.cwnd[i], t.cwnd[i], `cwnd at ${bpf.trace.t_ms[i]} ms`);
    assert.equal(b.ssthresh[i], t.ssthresh[i], `ssthresh at ${bpf.trace.t_ms[i]} ms`);
  }
  // and so does everything downstream of the window: RTTs, flight size, CA states, the queue
  assert.deepEqual(b.ca_state, t.ca_state);
  assert.deepEqual(b.srtt_ms, t.srtt_ms);
  assert.deepEqual(b.inflight, t.inflight);
  assert.deepEqual(bpf.trace.queue_pkts, ts.trace.queue_pkts);
  assert.deepEqual(bpf.metrics.flows[0]!.retransmits, ts.metrics.flows[0]!.retransmits);
  // HyStart ended slow start before the first loss: ssthresh was set while the CA state was still Open.
  const first = t.ssthresh.findIndex((x) => x < 0x7fffffff);
  assert.ok(first > 0 && t.ca_state[first] === 0, "HyStart exit (ssthresh = cwnd in state Open)");
  assert.equal(b.ssthresh[first], b.cwnd[first]);
  // Every callback ran as BPF: the program counted its ACK samples in .bss.
  const bss = host.globals(bpfObj("tcp_cubic"))!;
  assert.equal(bss.getBigUint64(0, true), 2n, "so_cubic_inits: both ends of the one connection run it");
  assert.ok(bss.getBigUint64(8, true) > 10_000n, "so_cubic_acked_calls");
  // The interpreter tier runs the same programs to the same trace.
  const host2 = new BpfCcHost();
  host2.attach(bpfObj("tcp_cubic"));
  host2.setTier("interp");
  const interp = simulate({ ...opts, tcp: host2.tcp });
  assert.deepEqual(interp.trace.flows[0]!.cwnd, t.cwnd);
  assert.deepEqual(interp.trace.flows[0]!.ssthresh, t.ssthresh);
});

test("BPF CUBIC keeps the same struct bictcp bytes in icsk_ca_priv as the built-in CUBIC on the same kernel clock", {
  skip: cubic.why,
}, () => {
  // Both on a booted kernel, so jiffies (last_time, epoch_start) and tcp_mstamp have the same origin.
  const snapshots = (cc: (h: BpfCcHost) => string): string[] => {
    const host = new BpfCcHost();
    const sim = new Simulation({ link: DEFAULT_LINK, durationNs: 20e9, flows: [{ cc: cc(host) }], tcp: host.tcp });
    const out: string[] = [];
    for (let t = 0.5e9; t < 20e9; t += 0.5e9) {
      sim.ev.at(t, () => {
        const v = sim.conns[0]!.sk.inet_csk_ca();
        out.push(Buffer.from(v.buffer, v.byteOffset, 60).toString("hex"));
      });
    }
    sim.run();
    return out;
  };
  const bpf = snapshots((h) => h.attach(bpfObj("tcp_cubic")));
  const ts = snapshots(() => "cubic");
  assert.equal(bpf.length, 39);
  assert.deepEqual(bpf, ts);
  assert.ok(new Set(bpf).size > 30, "the state evolves");
});

test("BPF CUBIC equals the built-in CUBIC on other paths: CONFIG_HZ 100/250/300, random loss, two flows, delayed ACKs, 7 Mbit/s", {
  skip: cubic.why,
}, () => {
  const cases: { HZ: number; o: Partial<SimOptions> }[] = [
    { HZ: 250, o: { link: { ...DEFAULT_LINK, lossRate: 0.01 } } },
    { HZ: 100, o: {} },
    { HZ: 300, o: { flows: [{ cc: "" }, { cc: "", startNs: 2e9 }] } },
    { HZ: 1000, o: { delayedAck: true, link: { rateBps: 100e6, delayNs: 10e6, buffer: { packets: 1000 } } } },
    // 7 Mbit/s: fractional-ns serialisation times; both clocks count whole ns
    { HZ: 1000, o: { seed: 7, link: { rateBps: 7e6, delayNs: 2e6, buffer: { bytes: 60_000 }, lossRate: 0.02 } } },
  ];
  for (const { HZ, o } of cases) {
    const host = new BpfCcHost({ CONFIG_HZ: HZ });
    const name = host.attach(bpfObj("tcp_cubic"));
    const base = { link: DEFAULT_LINK, durationNs: 10e9, flows: [{ cc: "" }], seed: 1, HZ, ...o } as SimOptions;
    const flows = (cc: string) => base.flows.map((f) => ({ ...f, cc }));
    const bpf = simulate({ ...base, flows: flows(name), tcp: host.tcp });
    const ts = simulate({ ...base, flows: flows("cubic") });
    const what = `HZ=${HZ} ${JSON.stringify(o)}`;
    bpf.trace.flows.forEach((f, i) => {
      assert.deepEqual(f.cwnd, ts.trace.flows[i]!.cwnd, what);
      assert.deepEqual(f.ssthresh, ts.trace.flows[i]!.ssthresh, what);
    });
  }
});

const dctcp = tryBoot("tcp_dctcp", "so_dctcp");

test("a BPF DCTCP (TCP_CONG_NEEDS_ECN, per-segment CE echo) holds the queue at the marking threshold", {
  skip: dctcp.why,
}, () => {
  const { tcp, detach } = dctcp.env!;
  const K = 10;
  const r = simulate({
    link: { ...DEFAULT_LINK, buffer: { packets: 200 }, ecnThreshold: { packets: K } },
    durationNs: 20e9,
    flows: [{ cc: "so_dctcp" }],
    metricsFromNs: 5e9,
    tcp,
  });
  const f = r.metrics.flows[0]!;
  assert.ok(f.ecnMarks > 0);
  assert.equal(f.lossRate, 0);
  assert.ok(r.metrics.utilisation >= 0.9, `utilisation ${r.metrics.utilisation}`);
  // 1 ms per packet at 12 Mbit/s: the p95 queueing delay is about the threshold
  assert.ok(r.metrics.p95QueueDelayMs <= K + 4, `p95 queueing delay ${r.metrics.p95QueueDelayMs} ms`);
  detach();
});

test("BPF DCTCP with ECN, marking at 20 packets on the default link: after slow start the queue stays below 20 + 3 packets, the link stays full", {
  skip: dctcp.why,
}, () => {
  const host = new BpfCcHost();
  const name = host.attach(bpfObj("tcp_dctcp"));
  const K = 20;
  const sim = new Simulation({
    link: { ...DEFAULT_LINK, ecnThreshold: { packets: K } }, // 45 KB: 30 packets of buffer
    durationNs: 20e9,
    flows: [{ cc: name }],
    ecn: true,
    metricsFromNs: 2e9,
    tcp: host.tcp,
  });
  const SLOW_START_END = 1e9; // slow start ends at about 0.2 s (the first marks)
  let droppedAtEnd = -1;
  sim.ev.at(SLOW_START_END, () => {
    droppedAtEnd = sim.link.counters(0).dropped;
  });
  const r = sim.run();
  const f = r.metrics.flows[0]!;
  assert.equal(f.cc, "so_dctcp");
  assert.ok(f.ecnMarks > 0, "the queue crossed the threshold and DCTCP reacted to CE");
  // The true maximum over every packet (not the 10 ms samples): its queueing delay in packet times.
  const pktNs = (1500 * 8 * 1e9) / DEFAULT_LINK.rateBps!;
  const qd = sim.queueDelays[0]!;
  let maxPkts = 0;
  for (let i = 0; i < qd.length; i += 2) if (qd[i]! >= SLOW_START_END) maxPkts = Math.max(maxPkts, qd[i + 1]! / pktNs);
  assert.ok(maxPkts < K + 3, `max queue after slow start ${maxPkts.toFixed(1)} packets`);
  const from = r.trace.t_ms.findIndex((t) => t >= SLOW_START_END / 1e6);
  assert.ok(Math.max(...r.trace.queue_pkts.slice(from)) < K + 3);
  assert.equal(sim.link.counters(0).dropped, droppedAtEnd, "no drop after slow start");
  assert.ok(r.metrics.utilisation >= 0.95, `utilisation ${r.metrics.utilisation}`);
});

test("BPF_LINK_UPDATE mid-run: a second load of the same CA replaces it in the registry; flows re-select it", {
  skip: cubic.why,
}, async () => {
  const host = new BpfCcHost();
  const name = host.attach(bpfObj("tcp_cubic"));
  const v1 = host.tcp.cong.tcp_ca_find(name)!;
  const apply = host.prepareSwitch(bpfObj("tcp_cubic"));
  const sim = new Simulation({
    link: { ...DEFAULT_LINK, buffer: { packets: 100_000 } },
    durationNs: 8e9,
    flows: [{ cc: name }],
    switches: [{ atNs: 4e9, apply }],
    tcp: host.tcp,
  });
  let before: unknown;
  sim.ev.at(4e9 - 1, () => {
    before = sim.conns[0]!.sk.icsk_ca_ops;
  });
  const r = sim.run();
  const v2 = host.tcp.cong.tcp_ca_find(name)!;
  assert.equal(before, v1);
  assert.notEqual(v2, v1, "tcp_update_congestion_control swapped the registered ops");
  assert.equal(sim.conns[0]!.sk.icsk_ca_ops, v2);
  assert.equal(host.tcp.cong.tcp_get_available_congestion_control(), "reno cubic so_cubic");
  assert.equal(r.metrics.flows[0]!.lossRate, 0, "nothing lost to the switch");
});

const RENO_LINK = bpfObj("tcp_reno_link");
const CUBIC_LINK = bpfObj("tcp_cubic_link");
const linkObjs = [RENO_LINK, CUBIC_LINK].every(existsSync) ? false : "bpf/obj/tcp_{reno,cubic}_link.bpf.o not built";

test("live switch at 10 s, BPF Reno -> BPF CUBIC by BPF_LINK_UPDATE: release and init once each, no loss, the trace shows it", {
  skip: linkObjs,
}, () => {
  const host = new BpfCcHost();
  const name = host.attach(RENO_LINK);
  assert.equal(name, "so_cc");
  const apply = host.prepareSwitch(CUBIC_LINK);
  const counters = () => ({
    renoInit: host.global(RENO_LINK, "so_cc_inits"),
    renoRelease: host.global(RENO_LINK, "so_cc_releases"),
    cubicInit: host.global(CUBIC_LINK, "so_cubic_inits"),
    cubicRelease: host.global(CUBIC_LINK, "so_cc_releases"),
  });
  // A buffer neither algorithm overflows in 20 s: any drop or retransmission would be the switch's.
  const sim = new Simulation({
    link: { ...DEFAULT_LINK, buffer: { packets: 100_000 } },
    durationNs: 20e9,
    flows: [{ cc: name }],
    switches: [{ atNs: 10e9, apply }],
    tcp: host.tcp,
    describeCc: (ops) => host.describe(ops),
  });
  let before: ReturnType<typeof counters> | undefined;
  let after: ReturnType<typeof counters> | undefined;
  let cwndBefore = 0;
  sim.ev.at(10e9 - 1, () => {
    before = counters();
    cwndBefore = sim.conns[0]!.sk.snd_cwnd;
  });
  sim.ev.at(10e9 + 1, () => {
    after = counters();
  });
  const r = sim.run();
  // Both ends of the connection run the CA: the sender's and the receiver's init.
  assert.deepEqual(before, { renoInit: 2n, renoRelease: 0n, cubicInit: 0n, cubicRelease: 0n });
  // At the switch (setsockopt on the sender): the old ops' release once, the new ops' init once.
  assert.deepEqual(after, { renoInit: 2n, renoRelease: 1n, cubicInit: 1n, cubicRelease: 0n });
  // At the end both ends close: the sender releases the new ops, the receiver the old ones it kept.
  assert.deepEqual(counters(), { renoInit: 2n, renoRelease: 2n, cubicInit: 1n, cubicRelease: 1n });
  const f = r.metrics.flows[0]!;
  assert.equal(f.lossRate, 0, "nothing lost to the switch");
  assert.equal(f.retransmits, 0);
  assert.equal(f.rtos, 0);
  // The trace's cc field changes exactly at 10 s; the window carries over.
  const cc = r.trace.flows[0]!.cc;
  const at = r.trace.t_ms.indexOf(10_000);
  assert.ok(cc.slice(0, at).every((x) => x === "so_cc (tcp_reno_link.bpf.o)"));
  assert.ok(cc.slice(at).every((x) => x === "so_cc (tcp_cubic_link.bpf.o)"));
  assert.ok(r.trace.flows[0]!.cwnd[at]! >= cwndBefore);
  // BPF_LINK_UPDATE replaced the registered ops in place: one so_cc, now the CUBIC object's.
  assert.equal(host.tcp.cong.tcp_get_available_congestion_control(), "reno cubic so_cc");
  assert.equal(host.describe(host.tcp.cong.tcp_ca_find("so_cc")!), "so_cc (tcp_cubic_link.bpf.o)");
});
