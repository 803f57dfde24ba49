import assert from "node:assert/strict";
import { test } from "node:test";
import { Simulation } from "../../../src/sim/sim.js";
import {
  CA_EVENT_ECN_IS_CE,
  CA_EVENT_ECN_NO_CE,
  ICSK_ACK_NOW,
  ICSK_ACK_TIMER,
  INET_DIAG_DCTCPINFO,
  TCP_ECN_DEMAND_CWR,
  TCP_ECN_OK,
} from "../../../src/subsys/tcp/btf.js";
import { TcpConn } from "../../../src/subsys/tcp/tcp.js";
import { TcpCongControl, tcp_get_cc_info } from "../../../src/subsys/tcp/tcp_cong.js";
import { DCTCP, DCTCP_MAX_ALPHA, tcpDctcp } from "../../../src/subsys/tcp/tcp_dctcp.js";
import { tcpReno } from "../../../src/subsys/tcp/tcp_reno.js";
import { ManualClock } from "../../../src/subsys/tcp/tcp_sock.js";

const host = { clock: new ManualClock(), xmit() {}, setRtoTimer() {} };
const DCTCP_INFO = 1 << (INET_DIAG_DCTCPINFO - 1);

test("without ECN negotiated, dctcp falls back to dctcp-reno and stops sending ECT", () => {
  const cong = new TcpCongControl(tcpReno());
  cong.tcp_register_congestion_control(tcpDctcp());
  const c = new TcpConn(host, cong, { flow: 0, segments: 0, ecn: false });
  cong.tcp_set_congestion_control(c.sk, "dctcp");
  assert.equal(cong.caNeedsEcn(c.sk), true, "ECT is forced on until init");
  c.establish();
  assert.equal(c.sk.icsk_ca_ops.name, "dctcp-reno");
  assert.equal(cong.caNeedsEcn(c.sk), false);
  assert.deepEqual(tcp_get_cc_info(c.sk, DCTCP_INFO)?.info.dctcp_enabled, 0);
});

test("a change of CE state on the receiver flushes the delayed ACK for the old state, then ACKs at once", () => {
  const acks: { rcv_nxt: number; demand: boolean }[] = [];
  const cong = new TcpCongControl(tcpReno());
  const dctcp = tcpDctcp({
    sendAck: (sk, rcv_nxt) => acks.push({ rcv_nxt, demand: (sk.ecn_flags & TCP_ECN_DEMAND_CWR) !== 0 }),
  });
  cong.tcp_register_congestion_control(dctcp);
  const c = new TcpConn(host, cong, { flow: 0, segments: 0, ecn: true });
  cong.tcp_set_congestion_control(c.sk, "dctcp");
  const sk = c.sk;
  sk.rcv_nxt = 1000;
  c.establish();
  sk.rcv_nxt = 2448;
  sk.icsk_ack_pending = ICSK_ACK_TIMER;
  dctcp.cwnd_event!(sk, CA_EVENT_ECN_IS_CE);
  assert.deepEqual(acks, [{ rcv_nxt: 1000, demand: false }], "the delayed ACK goes out for the old, CE-free state");
  assert.equal(sk.icsk_ack_pending & ICSK_ACK_NOW, ICSK_ACK_NOW);
  assert.equal(sk.ecn_flags & TCP_ECN_DEMAND_CWR, TCP_ECN_DEMAND_CWR);
  assert.equal(sk.inet_csk_ca().getUint32(DCTCP.prior_rcv_nxt, true), 2448);
  // Same state again: nothing forced.
  sk.icsk_ack_pending = 0;
  dctcp.cwnd_event!(sk, CA_EVENT_ECN_IS_CE);
  assert.equal(sk.icsk_ack_pending, 0);
  dctcp.cwnd_event!(sk, CA_EVENT_ECN_NO_CE);
  assert.equal(sk.ecn_flags & TCP_ECN_DEMAND_CWR, 0);
  assert.equal(sk.ecn_flags & TCP_ECN_OK, TCP_ECN_OK);
});

test("over an ECN-marking bottleneck alpha tracks the marked fraction and cwnd cuts are alpha/2, not half", () => {
  const sim = new Simulation({
    link: { rateBps: 12e6, delayNs: 10e6, buffer: { bytes: 200_000 }, ecnThreshold: { packets: 20 } },
    durationNs: 6e9,
    metricsFromNs: 2e9,
    flows: [{ cc: "dctcp" }],
    seed: 2,
  });
  const r = sim.run();
  const sk = sim.conns[0]!.sk;
  const info = tcp_get_cc_info(sk, DCTCP_INFO)!;
  assert.equal(info.attr, INET_DIAG_DCTCPINFO);
  assert.equal(info.info.dctcp_enabled, 1);
  assert.ok(
    info.info.dctcp_alpha! > 0 && info.info.dctcp_alpha! < DCTCP_MAX_ALPHA / 2,
    `alpha ${info.info.dctcp_alpha}`,
  );
  const m = r.metrics.flows[0]!;
  assert.ok(m.ecnMarks > 0);
  assert.equal(m.retransmits, 0, "marks, not drops, regulate it");
  assert.ok(r.metrics.utilisation > 0.95, `utilisation ${r.metrics.utilisation}`);
  // 20 packets of 1500 bytes at 12 Mbit/s are 20 ms of queue; DCTCP hovers around the threshold.
  assert.ok(r.metrics.p95QueueDelayMs < 30, `p95 ${r.metrics.p95QueueDelayMs} ms`);
});
