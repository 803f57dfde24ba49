import assert from "node:assert/strict";
import { test } from "node:test";
import { Simulation } from "../../../src/sim/sim.js";
import { ICSK_CA_PRIV_SIZE, INET_DIAG_BBRINFO, SK_PACING_NEEDED, SK_PACING_NONE } from "../../../src/subsys/tcp/btf.js";
import { TcpConn, type TcpSegment } from "../../../src/subsys/tcp/tcp.js";
import {
  BBR,
  BBR_DRAIN,
  BBR_PROBE_BW,
  BBR_STARTUP,
  BBR_UNIT,
  bbr_high_gain,
  bbr_pacing_gain,
  tcpBbr,
} from "../../../src/subsys/tcp/tcp_bbr.js";
import { TcpCongControl, type TcpCongestionOps, tcp_get_cc_info } from "../../../src/subsys/tcp/tcp_cong.js";
import { tcpReno } from "../../../src/subsys/tcp/tcp_reno.js";
import { ManualClock } from "../../../src/subsys/tcp/tcp_sock.js";

const MS = 1e6;

function run(
  cc: string | TcpCongestionOps,
  bufferBytes: number,
  durationNs = 8e9,
  onXmit?: (s: TcpSegment, t: number) => void,
) {
  const sim = new Simulation({
    link: { rateBps: 12e6, delayNs: 30 * MS, buffer: { bytes: bufferBytes } },
    durationNs,
    flows: [{ cc }],
    seed: 3,
    metricsFromNs: durationNs / 2,
  });
  if (onXmit) {
    const send = sim.link.send.bind(sim.link);
    sim.link.send = (seg: TcpSegment) => {
      onXmit(seg, sim.ev.now);
      send(seg);
    };
  }
  const r = sim.run();
  return { sim, r };
}

test("struct bbr fills icsk_ca_priv exactly (104 bytes), as tcp_bbr.c's BUILD_BUG_ON demands", () => {
  assert.equal(BBR.size, ICSK_CA_PRIV_SIZE);
  assert.equal(bbr_high_gain, 739);
  assert.deepEqual(bbr_pacing_gain, [320, 192, 256, 256, 256, 256, 256, 256]);
});

test("bbr is a module: not listed until a socket asks for it, then registered once", () => {
  const cong = new TcpCongControl(tcpReno());
  cong.tcp_add_module("bbr", () => tcpBbr());
  assert.equal(cong.tcp_get_available_congestion_control(), "reno");
  const c = new TcpConn({ clock: new ManualClock(), xmit() {}, setRtoTimer() {} }, cong, { flow: 0 });
  cong.tcp_set_congestion_control(c.sk, "bbr");
  assert.equal(c.sk.icsk_ca_ops.name, "bbr");
  assert.equal(cong.tcp_get_available_congestion_control(), "reno bbr");
  // Without CAP_NET_ADMIN nothing is loaded.
  const cong2 = new TcpCongControl(tcpReno());
  cong2.tcp_add_module("bbr", () => tcpBbr());
  const c2 = new TcpConn({ clock: new ManualClock(), xmit() {}, setRtoTimer() {} }, cong2, { flow: 0 });
  assert.throws(() => cong2.tcp_set_congestion_control(c2.sk, "bbr", true, false), { code: "ENOENT" });
});

test("init asks for pacing and starts in STARTUP at high gain; sndbuf is 3 x cwnd worth (sndbuf_expand)", () => {
  const bbr = tcpBbr();
  const seen: string[] = [];
  const ops: TcpCongestionOps = {
    ...bbr,
    name: "bbr_spy",
    sndbuf_expand: (sk) => {
      seen.push("sndbuf_expand");
      return bbr.sndbuf_expand!(sk);
    },
  };
  const cong = new TcpCongControl(tcpReno());
  cong.tcp_register_congestion_control(ops);
  const c = new TcpConn({ clock: new ManualClock(), xmit() {}, setRtoTimer() {} }, cong, { flow: 0, segments: 0 });
  cong.tcp_set_congestion_control(c.sk, "bbr_spy");
  assert.equal(c.sk.sk_pacing_status, SK_PACING_NONE);
  c.establish();
  assert.equal(c.sk.sk_pacing_status, SK_PACING_NEEDED);
  const b = bbr.bbr(c.sk);
  assert.equal(b.bit("mode"), BBR_STARTUP);
  assert.equal(b.get("min_rtt_us"), 0xffffffff, "tcp_min_rtt before any sample");
  // No RTT yet: pace at high_gain * 10 packets per nominal 1 ms, less 1%.
  const bw = Math.floor((10 * 2 ** 24) / 1000);
  const expected = Number((((BigInt(bw) * 1448n * 739n) >> 8n) * 990000n) >> 24n);
  assert.equal(c.sk.sk_pacing_rate, expected);
  assert.deepEqual(seen, ["sndbuf_expand"]);
  // per-MSS truesize 4096 + 256 bytes, 10 segments (the initial window), factor 3.
  assert.equal(c.sk.sk_sndbuf, 3 * 10 * 4352);
});

test("BBR leaves STARTUP through DRAIN into PROBE_BW, keeps a short queue where CUBIC fills the buffer", () => {
  const modes = new Set<number>();
  const bbr = tcpBbr();
  const spy: TcpCongestionOps = {
    ...bbr,
    cong_control(sk, ack, flag, rs) {
      bbr.cong_control!(sk, ack, flag, rs);
      modes.add(bbr.bbr(sk).bit("mode"));
    },
  };
  const deep = 400_000; // ~4.4 BDPs
  const b = run(spy, deep);
  const c = run("cubic", deep);
  assert.ok(modes.has(BBR_STARTUP) && modes.has(BBR_DRAIN) && modes.has(BBR_PROBE_BW), `modes ${[...modes]}`);
  assert.ok(b.r.metrics.utilisation > 0.9, `bbr utilisation ${b.r.metrics.utilisation}`);
  assert.ok(
    b.r.metrics.p95QueueDelayMs * 3 < c.r.metrics.p95QueueDelayMs,
    `bbr p95 ${b.r.metrics.p95QueueDelayMs} ms vs cubic ${c.r.metrics.p95QueueDelayMs} ms`,
  );
  // get_info as ss -ti shows it: bw in bytes/s near the link rate, min RTT of the 60 ms path.
  const info = tcp_get_cc_info(b.sim.conns[0]!.sk, 1 << (INET_DIAG_BBRINFO - 1));
  assert.ok(info);
  assert.equal(info.attr, INET_DIAG_BBRINFO);
  const bwBytes = info.info.bbr_bw_hi! * 2 ** 32 + info.info.bbr_bw_lo!;
  assert.ok(bwBytes > 1.3e6 && bwBytes < 1.6e6, `bbr_bw ${bwBytes} B/s`);
  assert.ok(info.info.bbr_min_rtt! >= 60_000 && info.info.bbr_min_rtt! < 62_000, `min_rtt ${info.info.bbr_min_rtt}`);
  assert.equal(info.info.bbr_cwnd_gain, 2 * BBR_UNIT);
  assert.equal(tcp_get_cc_info(b.sim.conns[0]!.sk, 0), undefined, "nothing asked for, nothing given");
});

test("the sender honours sk_pacing_rate: BBR paced sends 2 segments per slot; unpaced, its 2 x BDP cwnd queues", () => {
  const variant = (pace: boolean) => {
    const bbr = tcpBbr();
    const ops: TcpCongestionOps = {
      ...bbr,
      name: "bbr_variant",
      init(sk) {
        bbr.init!(sk);
        // As if the stack ignored the request (no fq, no internal pacing).
        if (!pace) sk.sk_pacing_status = SK_PACING_NONE;
      },
    };
    const slots = new Map<number, number>();
    const { r } = run(ops, 400_000, 8e9, (_s, t) => {
      if (t > 2e9) slots.set(t, (slots.get(t) ?? 0) + 1);
    });
    return { r, maxSlot: Math.max(...slots.values()), slots: slots.size };
  };
  const paced = variant(true);
  const unpaced = variant(false);
  // 12 Mbit/s: pacing rate >= 150 kB/s, so bbr_min_tso_segs is 2, above tcp_tso_autosize's 1.
  assert.equal(paced.maxSlot, 2);
  assert.ok(paced.r.metrics.utilisation > 0.95);
  assert.ok(
    paced.r.metrics.p95QueueDelayMs * 3 < unpaced.r.metrics.p95QueueDelayMs,
    `p95 queueing ${paced.r.metrics.p95QueueDelayMs} ms paced, ${unpaced.r.metrics.p95QueueDelayMs} ms not`,
  );
});

test("min_tso_segs is asked on every tcp_write_xmit (tcp_tso_segs)", () => {
  const bbr = tcpBbr();
  let calls = 0;
  let xmits = 0;
  const spy: TcpCongestionOps = {
    ...bbr,
    min_tso_segs(sk) {
      calls++;
      return bbr.min_tso_segs!(sk);
    },
  };
  run(spy, 60_000, 1e9, () => xmits++);
  assert.ok(calls > 100 && xmits > 100, `${calls} calls, ${xmits} segments`);
});
