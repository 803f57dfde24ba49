import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { bpf_map_get_next_key, bpf_map_lookup_elem } from "../../src/loader/bpf.js";
import { BpfCcHost } from "../../src/sim/bpf_cc.js";
import { DEFAULT_LINK, type SimOptions, Simulation } from "../../src/sim/sim.js";
import {
  CA_ACK_SLOWPATH,
  CA_ACK_WIN_UPDATE,
  CA_EVENT_ECN_IS_CE,
  CA_EVENT_ECN_NO_CE,
  CA_EVENT_TX_START,
  TCP_CA_CWR,
  TCP_CA_Open,
  TCP_CLOSE_WAIT,
  TCP_FIN_WAIT1,
  TCP_FIN_WAIT2,
  TCP_LAST_ACK,
} from "../../src/subsys/tcp/btf.js";
import type { TcpAck, TcpSegment } from "../../src/subsys/tcp/tcp.js";
import { DCTCP_MAX_ALPHA } from "../../src/subsys/tcp/tcp_dctcp.js";
import { bpfObj, repoRoot } from "./helpers.js";

/** bpf/tcp_ca_count.bpf.c's callbacks, as its map keys number them. */
const OP = {
  init: 1,
  release: 2,
  ssthresh: 3,
  cong_avoid: 4,
  set_state: 5,
  cwnd_event: 6,
  in_ack_event: 7,
  pkts_acked: 8,
  undo_cwnd: 9,
} as const;

/** The counter map: socket address -> "op/arg" -> calls. */
function countsBySocket(host: BpfCcHost): Map<number, Map<string, number>> {
  const obj = host.objects.find((o) => o.spec.endsWith("tcp_ca_count.bpf.o"))!.obj;
  const fd = obj.findMap("so_count_calls")!.fd;
  const out = new Map<number, Map<string, number>>();
  const key = new Uint8Array(16);
  const next = new Uint8Array(16);
  const val = new Uint8Array(8);
  let prev: Uint8Array | null = null;
  while (bpf_map_get_next_key(host.h, fd, prev, next) === 0) {
    key.set(next);
    assert.equal(bpf_map_lookup_elem(host.h, fd, key, val), 0);
    const k = new DataView(key.buffer);
    const sk = Number(k.getBigUint64(0, true));
    const m = out.get(sk) ?? new Map<string, number>();
    m.set(`${k.getUint32(8, true)}/${k.getUint32(12, true)}`, Number(new DataView(val.buffer).getBigUint64(0, true)));
    out.set(sk, m);
    prev = key.slice();
  }
  return out;
}
const calls = (m: Map<string, number> | undefined, op: number, arg?: number) =>
  [...(m ?? new Map<string, number>())]
    .filter(([k]) => (arg === undefined ? k.startsWith(`${op}/`) : k === `${op}/${arg}`))
    .reduce((s, [, n]) => s + n, 0);

const counting = existsSync(bpfObj("tcp_ca_count")) ? false : "bpf/obj/tcp_ca_count.bpf.o not built";
const ecnPath: SimOptions["link"] = { ...DEFAULT_LINK, buffer: { packets: 200 }, ecnThreshold: { packets: 20 } };

test("both sockets of a connection run the BPF CA: the sender's and the receiver's calls, counted in its map", {
  skip: counting,
}, () => {
  const host = new BpfCcHost();
  const cc = host.attach(bpfObj("tcp_ca_count"));
  assert.equal(cc, "so_count");
  const sim = new Simulation({ link: ecnPath, durationNs: 5e9, flows: [{ cc }], delayedAck: true, tcp: host.tcp });
  sim.run();
  const by = countsBySocket(host);
  const tx = by.get(sim.conns[0]!.sk.addr);
  const rx = by.get(sim.rsks[0]!.addr);
  assert.deepEqual([...by.keys()].sort(), [sim.conns[0]!.sk.addr, sim.rsks[0]!.addr].sort(), "two sockets called it");
  const r = sim.receivers[0]!;
  for (const m of [tx, rx]) {
    assert.equal(calls(m, OP.init), 1, "init at establishment");
    assert.equal(calls(m, OP.release), 1, "release at close");
  }
  // The sender: the window's callbacks, the first transmission, and CWR on echoed CE.
  assert.ok(calls(tx, OP.cong_avoid) > 0 && calls(tx, OP.ssthresh) > 0 && calls(tx, OP.pkts_acked) > 0);
  assert.equal(calls(tx, OP.cwnd_event, CA_EVENT_TX_START), 1);
  assert.ok(calls(tx, OP.set_state, TCP_CA_CWR) > 0);
  // The receiver: no window to run, no transmissions of data, one state: TCP_CA_Open as the accepted
  // child is made (tcp_ca_openreq_child) ...
  for (const op of [OP.ssthresh, OP.cong_avoid, OP.pkts_acked, OP.undo_cwnd]) {
    assert.equal(calls(rx, op), 0, `receiver op ${op}`);
  }
  assert.equal(calls(rx, OP.set_state), 1);
  assert.equal(calls(rx, OP.set_state, TCP_CA_Open), 1);
  assert.equal(calls(rx, OP.cwnd_event, CA_EVENT_TX_START), 0);
  // ... but every ECT data segment's CE state (it needs ECN), and in_ack_event on each slow-path segment.
  const ce = calls(rx, OP.cwnd_event, CA_EVENT_ECN_IS_CE);
  const noCe = calls(rx, OP.cwnd_event, CA_EVENT_ECN_NO_CE);
  assert.ok(ce > 0 && noCe > 0, `CE ${ce}, not CE ${noCe}`);
  assert.equal(ce + noCe, r.uniqueSegments, "one ECN event per new data segment");
  assert.ok(r.slowPath > 0, "CWR-flagged segments take the slow path");
  assert.equal(calls(rx, OP.in_ack_event), r.slowPath);
  assert.equal(calls(rx, OP.in_ack_event, CA_ACK_SLOWPATH), r.slowPath);
});

test("--rcv-cc: a receiver with its own CA; ECN stays off unless the sender asks for it", { skip: counting }, () => {
  const host = new BpfCcHost();
  const cc = host.attach(bpfObj("tcp_ca_count"));
  const sim = new Simulation({
    link: ecnPath,
    durationNs: 2e9,
    flows: [{ cc: "cubic", rcvCc: cc }],
    tcp: host.tcp,
  });
  sim.run();
  assert.equal(sim.conns[0]!.sk.icsk_ca_ops.name, "cubic");
  const by = countsBySocket(host);
  assert.deepEqual([...by.keys()], [sim.rsks[0]!.addr], "only the receiving socket runs so_count");
  const rx = by.get(sim.rsks[0]!.addr);
  assert.equal(calls(rx, OP.init), 1);
  assert.equal(calls(rx, OP.release), 1);
  // The listener's CA needs ECN, but a SYN without ECE|CWR is not answered with ECN (tcp_ecn_create_request).
  assert.equal(calls(rx, OP.cwnd_event), 0);
});

/** A run with the ACKs the sender receives and the CE mark of every segment the receiver takes. */
function ackTrace(o: SimOptions): { acks: TcpAck[]; ce: Map<number, boolean>; sim: Simulation } {
  const sim = new Simulation(o);
  const acks: TcpAck[] = [];
  const ce = new Map<number, boolean>();
  const rx = sim.receivers[0]!;
  const onSegment = rx.onSegment.bind(rx);
  rx.onSegment = (seg: TcpSegment) => {
    if (!ce.has(seg.idx)) ce.set(seg.idx, seg.ce);
    onSegment(seg);
  };
  const conn = sim.conns[0]!;
  const receiveAck = conn.receiveAck.bind(conn);
  conn.receiveAck = (a: TcpAck) => {
    acks.push(a);
    receiveAck(a);
  };
  sim.run();
  return { acks, ce, sim };
}

/** ACKs that cover new data yet echo a CE state other than that of a segment they acknowledge. */
function mismatches({ acks, ce }: ReturnType<typeof ackTrace>): number {
  let prev = 0;
  let bad = 0;
  for (const a of acks) {
    if (a.ack <= prev) continue;
    for (let i = prev; i < a.ack; i++) {
      if (ce.get(i) !== a.ece) {
        bad++;
        break;
      }
    }
    prev = a.ack;
  }
  return bad;
}

test("DCTCP's receiver echoes each segment's CE state exactly, delayed ACKs included (dctcp_ece_ack_update)", () => {
  const o: SimOptions = { link: ecnPath, durationNs: 5e9, flows: [{ cc: "dctcp" }], delayedAck: true, seed: 3 };
  const t = ackTrace(o);
  const r = t.sim.receivers[0]!;
  assert.ok(r.acksSent < r.uniqueSegments * 0.75, `delayed ACKs: ${r.acksSent} ACKs, ${r.uniqueSegments} segments`);
  const eces = t.acks.filter((a) => a.ece).length;
  assert.ok(eces > 0 && eces < t.acks.length);
  assert.equal(mismatches(t), 0);
  // Classic ECN (RFC 3168) latches ECE from a CE mark until the sender's CWR: not a per-segment echo.
  const reno = ackTrace({ ...o, flows: [{ cc: "reno" }], ecn: true });
  assert.ok(mismatches(reno) > 0);
});

// tcp_dctcp_echo_state.bpf.o echoes the prior state from ca->ce_state itself: its branch on that
// state is reached only with the event's CE state in a register that a comparison made exact, which
// the verifier must keep precise (backtrack_insn through `if w1 == w9`) or it hard-wires the branch.
for (const obj of ["tcp_dctcp", "tcp_dctcp_echo_state"]) {
  test(`a BPF DCTCP (${obj}) echoes CE per segment the same way: bpf_tcp_send_ack for the prior rcv_nxt, then ICSK_ACK_NOW`, {
    skip: existsSync(bpfObj(obj)) ? false : `bpf/obj/${obj}.bpf.o not built`,
  }, () => {
    const host = new BpfCcHost();
    const cc = host.attach(bpfObj(obj));
    const t = ackTrace({ link: ecnPath, durationNs: 5e9, flows: [{ cc }], delayedAck: true, seed: 3, tcp: host.tcp });
    const r = t.sim.receivers[0]!;
    assert.ok(r.acksSent < r.uniqueSegments * 0.75);
    assert.ok(t.acks.some((a) => a.ece));
    assert.equal(mismatches(t), 0);
    // Some ACKs were the program's own: ACKs for an earlier rcv_nxt than the receiver had.
    let prev = 0;
    let behind = 0;
    for (const a of t.acks) {
      if (a.sack.length === 0 && a.ack > prev && a.ack < t.ce.size && t.ce.get(a.ack) !== a.ece) behind++;
      prev = Math.max(prev, a.ack);
    }
    assert.ok(behind > 0, "bpf_tcp_send_ack sent the pending delayed ACK with the prior CE state");
  });
}

test("the receiving socket's DCTCP: in_ack_event decays its alpha per slow-path segment; get_info reports it", () => {
  const sim = new Simulation({ link: ecnPath, durationNs: 3e9, flows: [{ cc: "dctcp" }], delayedAck: true });
  const res = sim.run();
  const r = sim.receivers[0]!;
  assert.ok(r.slowPath > 0);
  // dctcp_update_alpha on a socket that delivered nothing: alpha -= min_not_zero(alpha, alpha >> 4).
  let alpha = DCTCP_MAX_ALPHA;
  for (let i = 0; i < r.slowPath; i++) alpha -= alpha >> 4 || alpha;
  const info = res.rcvCcInfo[0]?.info as { dctcp_enabled: number; dctcp_alpha: number } | undefined;
  assert.equal(info?.dctcp_enabled, 1);
  assert.equal(info?.dctcp_alpha, alpha);
  assert.ok(res.ccInfo[0] && res.rcvCcInfo[0] !== res.ccInfo[0]);
});

test("delayed ACKs as tcp_input.c: 16 quick ACKs first, then one per two full segments or the 40 ms timer", () => {
  const sim = new Simulation({
    link: { rateBps: 1e6, delayNs: 10e6, buffer: { packets: 100 } },
    durationNs: 3e9,
    // Kept open: a FIN would take the last segment's ACK along at once (the reader closes on EOF).
    flows: [{ cc: "reno", segments: 41, keepOpen: true }],
    delayedAck: true,
  });
  const acks: { t: number; ack: number }[] = [];
  const conn = sim.conns[0]!;
  const receiveAck = conn.receiveAck.bind(conn);
  conn.receiveAck = (a: TcpAck) => {
    acks.push({ t: sim.ev.now, ack: a.ack });
    receiveAck(a);
  };
  sim.run();
  const steps = acks.map((a, i) => a.ack - (i ? acks[i - 1]!.ack : 0));
  // Quick-ACK mode: the first 16 ACKs each acknowledge one segment.
  assert.deepEqual(steps.slice(0, 16), Array(16).fill(1));
  // Then one ACK per two full segments (12 ms apart at 1 Mbit/s: the timer never runs out between them) ...
  assert.deepEqual(steps.slice(16, -1), Array(12).fill(2));
  // ... and the 41st segment, alone, waits for the delayed-ACK timer: ato = TCP_ATO_MIN = 40 jiffies.
  assert.equal(steps.at(-1), 1);
  assert.equal(sim.receivers[0]!.delayedAcks, 1);
  const wait = acks.at(-1)!.t - acks.at(-2)!.t - 12e6; // less the segment's own serialisation
  assert.ok(wait > 39e6 && wait <= 40e6, `delayed by ${wait / 1e6} ms`);
  assert.equal(acks.at(-1)!.ack, 41);
});

/**
 * test/fixtures/tcp/host_both_ends.json: the host kernel's counts of the same object on both ends of a
 * loopback connection (fidelity/tcp_both_ends/capture.py). What a pure receiver and its sender get
 * holds there and in the simulator alike: set_state(TCP_CA_Open) once on the accepted socket before
 * its init. (On the host the receiver takes many more slow-path segments, as the sender's advertised
 * window keeps changing; the simulator has no receive windows.)
 */
function checkRoles(where: string, tx: Map<string, number>, rx: Map<string, number>): void {
  const n = (m: Map<string, number>, k: string) => m.get(k) ?? 0;
  const keys = (m: Map<string, number>, op: string) => [...m.keys()].filter((k) => k.startsWith(`${op}/`));
  for (const [role, m] of [
    ["sender", tx],
    ["receiver", rx],
  ] as const) {
    assert.equal(n(m, "init/0"), 1, `${where}: ${role} init`);
    assert.equal(n(m, "release/0"), 1, `${where}: ${role} release`);
  }
  assert.ok(n(tx, `cwnd_event/${CA_EVENT_TX_START}`) >= 1, `${where}: the sender starts transmitting`);
  assert.ok(n(tx, "pkts_acked/0") > 0 && n(tx, "cong_avoid/0") > 0, `${where}: the sender's window`);
  assert.equal(n(tx, `cwnd_event/${CA_EVENT_ECN_NO_CE}`) + n(tx, `cwnd_event/${CA_EVENT_ECN_IS_CE}`), 0, where);
  assert.equal(n(rx, `cwnd_event/${CA_EVENT_TX_START}`), 0, `${where}: the receiver sends no data`);
  assert.equal(n(rx, "ssthresh/0"), 0, where);
  assert.equal(n(rx, `set_state/${TCP_CA_Open}`), 1, `${where}: the accepted child starts Open`);
  assert.ok(n(rx, `cwnd_event/${CA_EVENT_ECN_NO_CE}`) > 0, `${where}: ECN negotiated, unmarked data segments`);
  assert.equal(n(rx, `cwnd_event/${CA_EVENT_ECN_IS_CE}`), 0, where);
  const acks = keys(rx, "in_ack_event");
  assert.ok(acks.length > 0, `${where}: the receiver's slow path`);
  for (const k of acks) assert.ok(Number(k.split("/")[1]) & CA_ACK_SLOWPATH, `${where}: receiver ${k}`);
}

test("the receiver's and the sender's calls as the host kernel makes them (tcp_ca_count on both ends)", {
  skip: counting,
}, () => {
  const fixture = JSON.parse(
    readFileSync(join(repoRoot(), "test", "fixtures", "tcp", "host_both_ends.json"), "utf8"),
  ) as { sockets: { role: string; calls: Record<string, number> }[] };
  const role = (r: string) => new Map(Object.entries(fixture.sockets.find((s) => s.role === r)!.calls));
  checkRoles("host", role("sender"), role("receiver"));
  const host = new BpfCcHost();
  const cc = host.attach(bpfObj("tcp_ca_count"));
  const sim = new Simulation({
    link: { ...DEFAULT_LINK, buffer: { packets: 1000 }, lossRate: 0.002 },
    durationNs: 3e9,
    flows: [{ cc }],
    delayedAck: true,
    tcp: host.tcp,
  });
  sim.run();
  // The map's numbered callbacks by name, as the capture writes them.
  const named = (m: Map<string, number>) =>
    new Map(
      [...m].map(([k, v]) => {
        const [op, arg] = k.split("/");
        return [`${Object.entries(OP).find(([, n]) => n === Number(op))![0]}/${arg}`, v] as const;
      }),
    );
  const by = countsBySocket(host);
  checkRoles("sim", named(by.get(sim.conns[0]!.sk.addr)!), named(by.get(sim.rsks[0]!.addr)!));
});

/** The host's and the simulator's counts by callback name ("pkts_acked/0"). */
function hostRole(r: string): Map<string, number> {
  const fixture = JSON.parse(
    readFileSync(join(repoRoot(), "test", "fixtures", "tcp", "host_both_ends.json"), "utf8"),
  ) as { sockets: { role: string; calls: Record<string, number> }[] };
  return new Map(Object.entries(fixture.sockets.find((s) => s.role === r)!.calls));
}
function byName(m: Map<string, number>): Map<string, number> {
  return new Map(
    [...m].map(([k, v]) => {
      const [op, arg] = k.split("/");
      return [`${Object.entries(OP).find(([, n]) => n === Number(op))![0]}/${arg}`, v] as const;
    }),
  );
}

test("the end of a connection as on the host: FIN, FIN-ACK, the receiver's CA acked once, both released", {
  skip: counting,
}, () => {
  const host = new BpfCcHost();
  const cc = host.attach(bpfObj("tcp_ca_count"));
  // 2 MB as the capture sends, then close() on both ends; a lossless path.
  const segments = Math.ceil(2_000_000 / 1448);
  const sim = new Simulation({
    link: { ...DEFAULT_LINK, rateBps: 100e6, delayNs: 1e6, buffer: { packets: 2000 } },
    durationNs: 3e9,
    flows: [{ cc, segments }],
    delayedAck: true,
    tcp: host.tcp,
  });
  const conn = sim.conns[0]!;
  const rconn = sim.rconns[0]!;
  const states: string[] = [];
  const released: string[] = [];
  const close = (c: typeof conn, who: string) => {
    const orig = c.close.bind(c);
    c.close = () => {
      if (!c.closed) released.push(`${who} ${c.sk.sk_state}`);
      orig();
    };
  };
  close(conn, "sender");
  close(rconn, "receiver");
  const shutdown = rconn.shutdown.bind(rconn);
  rconn.shutdown = () => {
    states.push(`receiver closes in ${rconn.sk.sk_state}`);
    shutdown();
    states.push(`receiver ${rconn.sk.sk_state}, sender ${conn.sk.sk_state}`);
  };
  sim.run();
  // The sender's FIN rode on its last segment; the reader's close() came in CLOSE_WAIT and sent its FIN
  // from LAST_ACK, the sender still in FIN_WAIT1 (the ACK of its FIN on the way) ...
  assert.equal(conn.finIdx, segments - 1);
  assert.deepEqual(states, [
    `receiver closes in ${TCP_CLOSE_WAIT}`,
    `receiver ${TCP_LAST_ACK}, sender ${TCP_FIN_WAIT1}`,
  ]);
  // ... the sender's socket went at TIME_WAIT (from FIN_WAIT2), the receiver's when its FIN was acked.
  assert.deepEqual(released, [`sender ${TCP_FIN_WAIT2}`, `receiver ${TCP_LAST_ACK}`]);
  assert.equal(rconn.una, 1);
  assert.equal(sim.receivers[0]!.uniqueSegments, segments);
  const by = countsBySocket(host);
  const tx = byName(by.get(conn.sk.addr)!);
  const rx = byName(by.get(sim.rsks[0]!.addr)!);
  const hostTx = hostRole("sender");
  const hostRx = hostRole("receiver");
  // The receiver's window callbacks run once, for the ACK of its FIN, as on the host.
  for (const k of ["init/0", "release/0", "set_state/0", "pkts_acked/0", "cong_avoid/0"]) {
    assert.equal(rx.get(k), hostRx.get(k), `receiver ${k}`);
  }
  for (const k of ["ssthresh/0", "undo_cwnd/0", `cwnd_event/${CA_EVENT_TX_START}`]) {
    assert.equal(rx.get(k), undefined, `receiver ${k}`);
    assert.equal(hostRx.get(k), undefined, `host receiver ${k}`);
  }
  // The ACK of its FIN moves its snd_una: slow path with a window update; every other one is a data
  // segment's slow path.
  const r = sim.receivers[0]!;
  assert.equal(rx.get(`in_ack_event/${CA_ACK_SLOWPATH | CA_ACK_WIN_UPDATE}`), 1);
  assert.equal(rx.get(`in_ack_event/${CA_ACK_SLOWPATH}`), r.slowPath);
  // The sender: released once, never told a state on a lossless path; cong_avoid on every ACK that
  // acknowledged data (the host's one more pkts_acked is its SYN-ACK's, a handshake not simulated).
  assert.equal(tx.get("init/0"), 1);
  assert.equal(tx.get("release/0"), 1);
  assert.equal(tx.get("set_state/0"), undefined);
  assert.equal(hostTx.get("set_state/0"), undefined);
  assert.equal(tx.get("pkts_acked/0"), tx.get("cong_avoid/0"));
  assert.equal(hostTx.get("pkts_acked/0"), hostTx.get("cong_avoid/0")! + 1);
});
