import assert from "node:assert/strict";
import { test } from "node:test";
import {
  tcp_cong_avoid_ai,
  tcp_is_cwnd_limited,
  tcp_reno_cong_avoid,
  tcp_reno_ssthresh,
  tcp_reno_undo_cwnd,
  tcp_slow_start,
} from "../../../src/subsys/tcp/tcp_reno.js";
import { ManualClock, TcpSock } from "../../../src/subsys/tcp/tcp_sock.js";

function sock(cwnd: number, ssthresh: number): TcpSock {
  const sk = new TcpSock(new ManualClock());
  sk.snd_cwnd = cwnd;
  sk.snd_ssthresh = ssthresh;
  sk.snd_cwnd_clamp = 0xffffffff;
  return sk;
}

test("tcp_slow_start grows by the acked count up to ssthresh and returns the leftover", () => {
  const sk = sock(10, 14);
  assert.equal(tcp_slow_start(sk, 3), 0);
  assert.equal(sk.snd_cwnd, 13);
  assert.equal(tcp_slow_start(sk, 3), 2);
  assert.equal(sk.snd_cwnd, 14);
  sk.snd_cwnd_clamp = 12;
  sk.snd_cwnd = 10;
  tcp_slow_start(sk, 5);
  assert.equal(sk.snd_cwnd, 12, "clamped");
});

test("tcp_cong_avoid_ai adds one per w acked, carrying credits, applying old credits gently", () => {
  const sk = sock(10, 5);
  for (let i = 0; i < 9; i++) tcp_cong_avoid_ai(sk, 10, 1);
  assert.equal(sk.snd_cwnd, 10);
  assert.equal(sk.snd_cwnd_cnt, 9);
  tcp_cong_avoid_ai(sk, 10, 1);
  assert.equal(sk.snd_cwnd, 11);
  assert.equal(sk.snd_cwnd_cnt, 0);
  tcp_cong_avoid_ai(sk, 10, 25);
  assert.equal(sk.snd_cwnd, 13);
  assert.equal(sk.snd_cwnd_cnt, 5);
  sk.snd_cwnd_cnt = 40; // accumulated at a higher w
  tcp_cong_avoid_ai(sk, 20, 1);
  assert.equal(sk.snd_cwnd, 14);
  assert.equal(sk.snd_cwnd_cnt, 1);
});

test("tcp_reno_cong_avoid does nothing unless cwnd-limited; ssthresh halves (min 2); undo takes max(cwnd, prior)", () => {
  const sk = sock(10, 100);
  sk.max_packets_out = 5;
  sk.is_cwnd_limited = 0;
  assert.equal(tcp_is_cwnd_limited(sk), false);
  tcp_reno_cong_avoid(sk, 0, 4);
  assert.equal(sk.snd_cwnd, 10);
  sk.is_cwnd_limited = 1;
  tcp_reno_cong_avoid(sk, 0, 4);
  assert.equal(sk.snd_cwnd, 14);
  sk.snd_cwnd = 3;
  assert.equal(tcp_reno_ssthresh(sk), 2);
  sk.snd_cwnd = 31;
  assert.equal(tcp_reno_ssthresh(sk), 15);
  sk.prior_cwnd = 40;
  assert.equal(tcp_reno_undo_cwnd(sk), 40);
});
