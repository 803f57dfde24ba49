import assert from "node:assert/strict";
import { test } from "node:test";
import { percentile } from "../../src/sim/metrics.js";
import { DEFAULT_LINK, simulate } from "../../src/sim/sim.js";
import {
  CA_ACK_ECE,
  CA_EVENT_ECN_IS_CE,
  CA_EVENT_ECN_NO_CE,
  TCP_CONG_NEEDS_ECN,
  TCP_ECN_DEMAND_CWR,
} from "../../src/subsys/tcp/btf.js";
import type { TcpCongestionOps } from "../../src/subsys/tcp/tcp_cong.js";
import { tcp_reno_cong_avoid, tcp_reno_undo_cwnd } from "../../src/subsys/tcp/tcp_reno.js";
import type { TcpSock } from "../../src/subsys/tcp/tcp_sock.js";

/**
 * A DCTCP-like controller written in TypeScript against the same ops a BPF one implements: alpha is the
 * EWMA (g = 1/16) of the fraction of CE-echoed deliveries per window, kept in icsk_ca_priv like
 * bpf_dctcp.c, and ssthresh cuts cwnd by alpha/2.
 */
function dctcpLike(): TcpCongestionOps {
  const DCTCP_MAX_ALPHA = 1024;
  // icsk_ca_priv: u32 old_delivered @0, old_delivered_ce @4, next_seq @8, dctcp_alpha @12
  const priv = (sk: TcpSock) => sk.inet_csk_ca();
  return {
    name: "dctcp_ts",
    flags: TCP_CONG_NEEDS_ECN,
    init(sk) {
      const p = priv(sk);
      p.setUint32(0, sk.delivered, true);
      p.setUint32(4, sk.delivered_ce, true);
      p.setUint32(8, sk.snd_nxt, true);
      p.setUint32(12, DCTCP_MAX_ALPHA, true);
    },
    in_ack_event(sk, flags) {
      void (flags & CA_ACK_ECE);
      const p = priv(sk);
      // once per window of data
      if (((sk.snd_una - p.getUint32(8, true)) | 0) < 0) return;
      const delivered = sk.delivered - p.getUint32(0, true);
      const ce = sk.delivered_ce - p.getUint32(4, true);
      let alpha = p.getUint32(12, true);
      alpha -= Math.min(alpha, alpha >>> 4);
      if (delivered > 0 && ce > 0) alpha = Math.min(alpha + Math.floor((ce << 10) / delivered / 16), DCTCP_MAX_ALPHA);
      p.setUint32(12, alpha, true);
      p.setUint32(0, sk.delivered, true);
      p.setUint32(4, sk.delivered_ce, true);
      p.setUint32(8, sk.snd_nxt, true);
    },
    ssthresh(sk) {
      const alpha = priv(sk).getUint32(12, true);
      return Math.max(sk.snd_cwnd - ((sk.snd_cwnd * alpha) >>> 11), 2);
    },
    // On the receiving socket: echo the CE state of each segment, not a latch until CWR (dctcp_ece_ack_update).
    cwnd_event(sk, ev) {
      if (ev === CA_EVENT_ECN_IS_CE) sk.ecn_flags = sk.ecn_flags | TCP_ECN_DEMAND_CWR;
      else if (ev === CA_EVENT_ECN_NO_CE) sk.ecn_flags = sk.ecn_flags & ~TCP_ECN_DEMAND_CWR;
      else return;
      events.push({ ev, sk: sk.name });
    },
    cong_avoid: tcp_reno_cong_avoid,
    undo_cwnd: tcp_reno_undo_cwnd,
  };
}
const events: { ev: number; sk: string }[] = [];

test("ECN marking: a DCTCP-like controller keeps the queue near the marking threshold without drops", () => {
  const K = 10;
  const r = simulate({
    link: { ...DEFAULT_LINK, buffer: { packets: 200 }, ecnThreshold: { packets: K } },
    durationNs: 30e9,
    flows: [{ cc: dctcpLike() }],
    metricsFromNs: 5e9,
  });
  const f = r.metrics.flows[0]!;
  assert.ok(f.ecnMarks > 0, "CE marks were set");
  assert.equal(f.lossRate, 0, "no drops: ECN signals congestion instead");
  const from = r.trace.t_ms.findIndex((t) => t >= 5000);
  const q = r.trace.queue_pkts.slice(from);
  const p95 = percentile(q, 95);
  assert.ok(p95 <= K + 4, `p95 queue ${p95} packets, threshold ${K}`);
  assert.ok(Math.max(...q) <= K + 8, `max queue ${Math.max(...q)}`);
  assert.ok(r.metrics.utilisation >= 0.9, `utilisation ${r.metrics.utilisation}`);
  // the receiving socket got both ECN events (only CAs with TCP_CONG_NEEDS_ECN do)
  assert.ok(events.some((e) => e.ev === CA_EVENT_ECN_IS_CE && e.sk === "flow 0 rx"));
  assert.ok(events.some((e) => e.ev === CA_EVENT_ECN_NO_CE && e.sk === "flow 0 rx"));
});

test("classic ECN: a Reno flow with ECN halves on ECE (CWR) instead of losing packets", () => {
  const r = simulate({
    link: { ...DEFAULT_LINK, buffer: { packets: 200 }, ecnThreshold: { packets: 20 } },
    durationNs: 20e9,
    flows: [{ cc: "reno" }],
    ecn: true,
  });
  const f = r.metrics.flows[0]!;
  assert.ok(f.ecnMarks > 0);
  assert.equal(f.lossRate, 0);
  assert.equal(f.retransmits, 0);
  // CWR state (2) was entered
  assert.ok(r.trace.flows[0]!.ca_state.includes(2));
  // and the queue stays bounded by the threshold plus one window's growth
  assert.ok(Math.max(...r.trace.queue_pkts) < 200);
});
