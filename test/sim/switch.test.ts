import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_LINK, Simulation } from "../../src/sim/sim.js";
import { tcpCubic } from "../../src/subsys/tcp/tcp_cubic.js";
import { tcpReno } from "../../src/subsys/tcp/tcp_reno.js";
import { count, type SpyCall, spyCc } from "../subsys/tcp/helpers.js";

test("live switch mid-run via tcp_update_congestion_control: old release and new init once, nothing lost to it", () => {
  const oldCalls: SpyCall[] = [];
  const newCalls: SpyCall[] = [];
  const v1 = spyCc(tcpReno(), oldCalls, "live_ca");
  const v2 = spyCc(tcpCubic(), newCalls, "live_ca");
  // A buffer large enough that neither algorithm overflows it in 20 s: any drop would be the switch's.
  const sim = new Simulation({
    link: { ...DEFAULT_LINK, buffer: { packets: 100_000 } },
    durationNs: 20e9,
    flows: [{ cc: v1 }],
    switches: [{ atNs: 10e9, to: v2 }],
  });
  let cwndBefore = 0;
  sim.ev.at(10e9 - 1, () => {
    cwndBefore = sim.conns[0]!.sk.snd_cwnd;
  });
  const r = sim.run();
  // The sender: old init at establishment, release at the switch; new init at the switch, release at
  // close. The receiver runs the old ops on its own socket from establishment to close (the accepted
  // child is set TCP_CA_Open before its init, tcp_ca_openreq_child).
  const tx = (calls: SpyCall[]) => calls.filter((c) => c.sk === "flow 0");
  const rx = (calls: SpyCall[]) => calls.filter((c) => c.sk === "flow 0 rx");
  assert.equal(count(tx(oldCalls), "init"), 1);
  assert.equal(count(tx(oldCalls), "release"), 1);
  assert.equal(count(tx(newCalls), "init"), 1);
  assert.equal(count(tx(newCalls), "release"), 1);
  assert.deepEqual(
    rx(oldCalls).map((c) => c.op),
    ["set_state", "init", "release"],
  );
  assert.equal(rx(newCalls).length, 0);
  assert.equal(newCalls[0]!.op, "init", "the new ops start with init");
  assert.equal(sim.cong.tcp_ca_find("live_ca"), v2, "the registry holds the new ops");
  assert.equal(sim.conns[0]!.sk.icsk_ca_ops, v2);
  // the switch keeps the connection's window and loses nothing
  assert.equal(r.metrics.flows[0]!.lossRate, 0);
  assert.equal(r.metrics.flows[0]!.retransmits, 0);
  const i = r.trace.t_ms.findIndex((t) => t >= 10_000);
  assert.ok(r.trace.flows[0]!.cwnd[i]! >= cwndBefore);
  // release is the last thing the old ops saw on the sender
  assert.equal(tx(oldCalls).at(-1)!.op, "release");
  assert.ok(newCalls.filter((c) => c.op === "cong_avoid").length > 0);
});

test("switching to a CA of another name re-selects it per socket (setsockopt) and leaves the registry alone", () => {
  const calls: SpyCall[] = [];
  const sim2 = new Simulation({
    link: DEFAULT_LINK,
    durationNs: 6e9,
    flows: [{ cc: spyCc(tcpCubic(), calls, "cubic_spy") }, { cc: "cubic" }],
    switches: [{ atNs: 3e9, to: { ...tcpReno(), name: "reno2" }, flows: [0] }],
  });
  sim2.run();
  assert.equal(sim2.conns[0]!.sk.icsk_ca_ops.name, "reno2");
  assert.equal(sim2.conns[1]!.sk.icsk_ca_ops.name, "cubic");
  // flow 0's sender switched away (one release); its receiver kept cubic_spy until close (another).
  assert.deepEqual(
    calls.filter((c) => c.op === "release").map((c) => c.sk),
    ["flow 0", "flow 0 rx"],
  );
});
