import assert from "node:assert/strict";
import { test } from "node:test";
import { ICSK_CA_PRIV_SIZE, layoutTcpTypes } from "../../../src/subsys/tcp/btf.js";
import { ManualClock, TCP_LAYOUTS, TcpSock } from "../../../src/subsys/tcp/tcp_sock.js";

test("struct tcp_congestion_ops has the kernel 6.18 layout (member offsets and 192-byte size)", () => {
  const l = layoutTcpTypes().get("tcp_congestion_ops")!;
  const want: [string, number][] = [
    ["ssthresh", 0],
    ["cong_avoid", 8],
    ["set_state", 16],
    ["cwnd_event", 24],
    ["in_ack_event", 32],
    ["pkts_acked", 40],
    ["min_tso_segs", 48],
    ["cong_control", 56],
    ["undo_cwnd", 64],
    ["sndbuf_expand", 72],
    ["get_info", 80],
    ["name", 88],
    ["owner", 104],
    ["list", 112],
    ["key", 128],
    ["flags", 132],
    ["init", 136],
    ["release", 144],
  ];
  for (const [m, off] of want) assert.equal(l.fields.get(m)?.offset, off, m);
  assert.equal(l.size, 192);
});

test("icsk_ca_priv is 13 u64 and 8-byte aligned; bitfields share their storage unit", () => {
  const l = TCP_LAYOUTS.get("tcp_sock")!;
  const priv = l.fields.get("inet_conn.icsk_ca_priv")!;
  assert.equal(priv.size, ICSK_CA_PRIV_SIZE);
  assert.equal(priv.offset % 8, 0);
  const st = l.fields.get("inet_conn.icsk_ca_state")!;
  const init = l.fields.get("inet_conn.icsk_ca_initialized")!;
  assert.equal(st.bits, 5);
  assert.equal(init.bitOffset, st.bitOffset + 5);
  const lim = l.fields.get("is_cwnd_limited")!;
  assert.equal(lim.bits, 1);
  assert.equal(lim.bitOffset % 8, 5, "chrono_type:2, repair:1, tcp_usec_ts:1, is_sack_reneg:1 come first");
});

test("the layout differs from the host kernel's (CO-RE is required), with Linux member names", () => {
  const l = TCP_LAYOUTS.get("tcp_sock")!;
  // In the host's vmlinux snd_cwnd is deep inside tcp_sock (> 1 KiB); here it follows inet_connection_sock.
  const cwnd = l.fields.get("snd_cwnd")!.offset;
  assert.equal(cwnd, TCP_LAYOUTS.get("inet_connection_sock")!.size);
  assert.ok(l.size < 1024);
});

test("TcpSock fields are plain reads and writes of kernel memory at the BTF offsets", () => {
  const sk = new TcpSock(new ManualClock());
  sk.snd_cwnd = 0x12345678;
  const off = sk.offsetof("snd_cwnd");
  assert.equal(sk.mem.view.getUint32(sk.mem.offset + off, true), 0x12345678);
  sk.is_cwnd_limited = 1;
  sk.icsk_ca_state = 4;
  sk.icsk_ca_initialized = 1;
  assert.equal(sk.icsk_ca_state, 4);
  assert.equal(sk.is_cwnd_limited, 1);
  const u = sk.mem.view.getUint8(sk.mem.offset + sk.offsetof("inet_conn.icsk_ca_state"));
  assert.equal(u, 4 | (1 << 5));
  sk.tcp_mstamp = 2 ** 40 + 7;
  assert.equal(sk.tcp_mstamp, 2 ** 40 + 7);
  sk.undo_retrans = -1;
  assert.equal(sk.undo_retrans, -1);
  sk.sk_pacing_rate = 12_000_000_000;
  assert.equal(sk.sk_pacing_rate, 12_000_000_000);
  sk.icsk_ack_pending = 3;
  assert.equal(sk.mem.view.getUint8(sk.mem.offset + sk.offsetof("inet_conn.icsk_ack.pending")), 3);
  const priv = sk.inet_csk_ca();
  priv.setUint32(100, 0xabcdef, true);
  assert.equal(sk.mem.view.getUint32(sk.mem.offset + sk.offsetof("inet_conn.icsk_ca_priv") + 100, true), 0xabcdef);
  sk.clear_ca_priv();
  assert.equal(priv.getUint32(100, true), 0);
});
