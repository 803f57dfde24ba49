import assert from "node:assert/strict";
import { test } from "node:test";
import { TCP_CLOSE, TCP_CONG_NON_RESTRICTED, TCP_ESTABLISHED } from "../../../src/subsys/tcp/btf.js";
import { jhash, TcpCongControl, type TcpCongestionOps, tcp_ca_key } from "../../../src/subsys/tcp/tcp_cong.js";
import { tcpCubic } from "../../../src/subsys/tcp/tcp_cubic.js";
import { tcpReno } from "../../../src/subsys/tcp/tcp_reno.js";
import { ManualClock, TcpSock } from "../../../src/subsys/tcp/tcp_sock.js";
import { BpfError, EBUSY, EEXIST, EINVAL, ENOENT, EPERM } from "../../../src/uapi/errno.js";
import { count, type SpyCall, spyCc } from "./helpers.js";

const errno = (e: number, msg?: RegExp) => (err: unknown) =>
  err instanceof BpfError && err.errno === e && (!msg || msg.test(err.message));

function fresh(): TcpCongControl {
  return new TcpCongControl(tcpReno());
}

test("reno is always registered and is the boot default", () => {
  const c = fresh();
  assert.equal(c.tcp_get_available_congestion_control(), "reno");
  assert.equal(c.tcp_get_default_congestion_control(), "reno");
  assert.equal(c.tcp_get_allowed_congestion_control(), "reno");
});

test("registering a CA without ssthresh, undo_cwnd or cong_avoid/cong_control is EINVAL", () => {
  const c = fresh();
  const base = tcpReno();
  for (const missing of ["ssthresh", "undo_cwnd"] as const) {
    const ca: TcpCongestionOps = { ...base, name: `no_${missing}`, [missing]: undefined };
    assert.throws(() => c.tcp_register_congestion_control(ca), errno(EINVAL, /does not implement required ops/));
  }
  const noAvoid: TcpCongestionOps = { ...base, name: "noavoid", cong_avoid: undefined };
  assert.throws(() => c.tcp_register_congestion_control(noAvoid), errno(EINVAL, /noavoid does not implement/));
  // cong_control stands in for cong_avoid
  c.tcp_register_congestion_control({ ...noAvoid, name: "ctl", cong_control: () => {} });
  assert.ok(c.tcp_ca_find("ctl"));
  assert.ok(c.log.some((l) => l.includes("noavoid does not implement required ops")));
});

test("a second CA with the same name is EEXIST", () => {
  const c = fresh();
  c.tcp_register_congestion_control(tcpCubic());
  assert.throws(() => c.tcp_register_congestion_control(tcpCubic()), errno(EEXIST, /cubic already registered/));
  assert.equal(c.tcp_get_available_congestion_control(), "reno cubic");
});

test("the key is jhash of the 16-byte NUL-padded name seeded with its length", () => {
  const c = fresh();
  const cubic = tcpCubic();
  c.tcp_register_congestion_control(cubic);
  assert.equal(cubic.key, tcp_ca_key("cubic"));
  assert.equal(c.tcp_ca_find_key(cubic.key!), cubic);
  assert.notEqual(tcp_ca_key("cubic"), tcp_ca_key("reno"));
  // lookup3's documented value for an empty key with initval 0
  assert.equal(jhash(new Uint8Array(0), 0), 0xdeadbeef);
});

test("setsockopt(TCP_CONGESTION): ENOENT for an unknown name, EPERM for a restricted CA unprivileged", () => {
  const c = fresh();
  c.tcp_register_congestion_control(tcpCubic());
  const sk = new TcpSock(new ManualClock());
  c.tcp_assign_congestion_control(sk);
  assert.throws(() => c.tcp_set_congestion_control(sk, "bbr9"), errno(ENOENT));
  assert.throws(() => c.tcp_set_congestion_control(sk, "cubic", true, false), errno(EPERM));
  c.tcp_set_allowed_congestion_control("reno cubic");
  c.tcp_set_congestion_control(sk, "cubic", true, false);
  assert.equal(sk.icsk_ca_ops.name, "cubic");
  assert.throws(() => c.tcp_set_allowed_congestion_control("reno vegas"), errno(ENOENT));
  assert.equal(c.tcp_get_allowed_congestion_control(), "reno cubic");
});

test("setting the default makes it allowed; new sockets get it, falling back to reno if it cannot be pinned", () => {
  const c = fresh();
  let alive = true;
  const cubic = { ...tcpCubic(), owner: { get: () => alive, put: () => {} } };
  c.tcp_register_congestion_control(cubic);
  assert.throws(() => c.tcp_set_default_congestion_control("nope"), errno(ENOENT));
  c.tcp_set_default_congestion_control("cubic");
  assert.ok(cubic.flags & TCP_CONG_NON_RESTRICTED);
  const sk = new TcpSock(new ManualClock());
  c.tcp_assign_congestion_control(sk);
  assert.equal(sk.icsk_ca_ops, cubic);
  alive = false;
  const sk2 = new TcpSock(new ManualClock());
  c.tcp_assign_congestion_control(sk2);
  assert.equal(sk2.icsk_ca_ops.name, "reno");
  assert.throws(() => c.tcp_set_congestion_control(sk2, "cubic"), errno(EBUSY));
});

test("init runs only on established sockets; release only after init; owner refs balance", () => {
  const c = fresh();
  const calls: SpyCall[] = [];
  let refs = 0;
  const spy = {
    ...spyCc(tcpReno(), calls, "spy"),
    owner: {
      get: () => {
        refs++;
        return true;
      },
      put: () => {
        refs--;
      },
    },
  };
  c.tcp_register_congestion_control(spy);
  const sk = new TcpSock(new ManualClock());
  c.tcp_assign_congestion_control(sk);
  sk.sk_state = TCP_CLOSE;
  c.tcp_set_congestion_control(sk, "spy");
  assert.equal(count(calls, "init"), 0, "no init before the connection exists");
  sk.sk_state = TCP_ESTABLISHED;
  c.tcp_init_congestion_control(sk);
  assert.equal(count(calls, "init"), 1);
  assert.equal(refs, 1);
  c.tcp_set_congestion_control(sk, "reno");
  assert.equal(count(calls, "release"), 1);
  assert.equal(refs, 0);
  c.tcp_cleanup_congestion_control(sk);
  assert.equal(count(calls, "release"), 1, "reno has no release; spy is not called again");
});

test("tcp_update_congestion_control: EINVAL unless the old one is registered under the same name", () => {
  const c = fresh();
  const v1 = tcpCubic({}, "ca_x");
  const v2 = tcpCubic({}, "ca_x");
  const other = tcpCubic({}, "ca_y");
  assert.throws(() => c.tcp_update_congestion_control(v2, v1), errno(EINVAL, /not registered/));
  c.tcp_register_congestion_control(v1);
  assert.throws(() => c.tcp_update_congestion_control(other, v1), errno(EINVAL, /not registered or non-unique key/));
  const stale = tcpCubic({}, "ca_x");
  stale.key = v1.key;
  assert.throws(() => c.tcp_update_congestion_control(v2, stale), errno(EINVAL, /invalid old congestion control/));
  c.tcp_update_congestion_control(v2, v1);
  assert.equal(c.tcp_ca_find("ca_x"), v2);
  assert.equal(c.tcp_get_available_congestion_control(), "reno ca_x");
});

test("after an update, existing sockets keep the old ops until they re-select the name", () => {
  const c = fresh();
  const calls: SpyCall[] = [];
  const v1 = spyCc(tcpReno(), calls, "ca");
  c.tcp_register_congestion_control(v1);
  const sk = new TcpSock(new ManualClock());
  c.tcp_assign_congestion_control(sk);
  c.tcp_set_congestion_control(sk, "ca");
  sk.sk_state = TCP_ESTABLISHED;
  c.tcp_init_congestion_control(sk);
  const calls2: SpyCall[] = [];
  const v2 = spyCc(tcpReno(), calls2, "ca");
  c.tcp_update_congestion_control(v2, v1);
  assert.equal(sk.icsk_ca_ops, v1, "Linux leaves running sockets on the old ops");
  c.tcp_set_congestion_control(sk, "ca");
  assert.equal(sk.icsk_ca_ops, v2);
  assert.equal(count(calls, "release"), 1);
  assert.equal(count(calls2, "init"), 1);
});
