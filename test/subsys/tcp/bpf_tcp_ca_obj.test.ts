/**
 * A clang-built BPF congestion control (bpf/obj/tcp_reno.bpf.o) registered through struct_ops by
 * the libbpf-like loader, then driven by the TCP stack's ops calls: its decisions match the
 * TypeScript Reno's on the same socket states.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { Kernel, type Subsystem } from "../../../src/kernel/kernel.js";
import { BpfObject } from "../../../src/loader/object.js";
import { bpfMapAttachStructOps } from "../../../src/loader/struct_ops_attach.js";
import { bpfTcpCaSubsystem } from "../../../src/subsys/tcp/bpf_tcp_ca.js";
import { registerTcpBpf } from "../../../src/subsys/tcp/bpf_tcp_ca_kfuncs.js";
import { TcpCongControl } from "../../../src/subsys/tcp/tcp_cong.js";
import { tcpReno } from "../../../src/subsys/tcp/tcp_reno.js";
import { type KernelAllocator, ManualClock, TcpSock } from "../../../src/subsys/tcp/tcp_sock.js";
import type { VmMemory } from "../../../src/vm/memory.js";

const OBJ = "bpf/obj/tcp_reno.bpf.o";

function setup() {
  const cong = new TcpCongControl(tcpReno());
  const socks = new Map<number, TcpSock>();
  const kf: Subsystem = {
    name: "tcp_bpf",
    register: (k) => registerTcpBpf(k, { cong, sockByAddr: (a) => socks.get(a) }),
  };
  const k = new Kernel({ subsystems: [bpfTcpCaSubsystem(() => cong), kf] });
  const proc = k.newProcess();
  const mem = k.mem as VmMemory;
  const alloc: KernelAllocator = {
    alloc(size: number) {
      const region = mem.alloc(size, { perm: "rw", kind: "kobj", name: "tcp_sock" });
      return { view: mem.dv, offset: region.addr, addr: region.addr };
    },
  };
  const clock = new ManualClock();
  const sock = (name: string): TcpSock => {
    const sk = new TcpSock(clock, name, alloc);
    socks.set(sk.addr, sk);
    sk.sk_state = 1;
    cong.tcp_assign_congestion_control(sk);
    return sk;
  };
  return { k, proc, cong, sock };
}

const skip = (() => {
  if (!existsSync(OBJ)) return `${OBJ} is missing`;
  try {
    const { k, proc } = setup();
    BpfObject.open(OBJ).load({ kernel: k, process: proc });
    return false;
  } catch (e) {
    return `${OBJ} does not load yet: ${(e as Error).message}`;
  }
})();

test("tcp_reno.bpf.o: registered through struct_ops, a socket switched to it behaves like the TypeScript Reno", {
  skip,
}, () => {
  const { k, proc, cong, sock } = setup();
  const obj = BpfObject.open(OBJ);
  obj.load({ kernel: k, process: proc });
  const link = bpfMapAttachStructOps(obj.findMap("so_reno")!, { kernel: k, process: proc });
  assert.ok(cong.tcp_ca_find("so_reno"));
  const bpfSk = sock("bpf");
  const tsSk = sock("ts");
  cong.tcp_set_congestion_control(bpfSk, "so_reno");
  const reno = tcpReno();
  for (const sk of [bpfSk, tsSk]) {
    sk.snd_cwnd = 10;
    sk.snd_ssthresh = 20;
    sk.max_packets_out = 10;
  }
  // Slow start then congestion avoidance, ACK by ACK.
  for (let i = 0; i < 40; i++) {
    bpfSk.icsk_ca_ops.cong_avoid!(bpfSk, 0, 2);
    reno.cong_avoid!(tsSk, 0, 2);
    assert.equal(bpfSk.snd_cwnd, tsSk.snd_cwnd, `ack ${i}: cwnd`);
    assert.equal(bpfSk.snd_cwnd_cnt, tsSk.snd_cwnd_cnt, `ack ${i}: cwnd_cnt`);
    bpfSk.max_packets_out = tsSk.max_packets_out = bpfSk.snd_cwnd;
  }
  assert.equal(bpfSk.icsk_ca_ops.ssthresh!(bpfSk), reno.ssthresh!(tsSk));
  bpfSk.prior_cwnd = tsSk.prior_cwnd = 50;
  assert.equal(bpfSk.icsk_ca_ops.undo_cwnd!(bpfSk), reno.undo_cwnd!(tsSk));
  link.detach();
  assert.equal(cong.tcp_ca_find("so_reno"), undefined);
  cong.tcp_cleanup_congestion_control(bpfSk);
});
