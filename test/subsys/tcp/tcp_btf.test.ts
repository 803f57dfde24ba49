import assert from "node:assert/strict";
import { test } from "node:test";
import { Kernel } from "../../../src/kernel/kernel.js";
import { bpfTcpCaSubsystem } from "../../../src/subsys/tcp/bpf_tcp_ca.js";
import { TCP_KFUNC_PROTOS } from "../../../src/subsys/tcp/btf.js";
import { TcpConn } from "../../../src/subsys/tcp/tcp.js";
import { TcpKernel, tcpSubsystem } from "../../../src/subsys/tcp/tcp_init.js";
import { ManualClock, TCP_LAYOUTS } from "../../../src/subsys/tcp/tcp_sock.js";
import { BTF_KIND_FUNC, BTF_KIND_STRUCT } from "../../../src/uapi/btf.js";

function boot(): { k: Kernel; tcp: TcpKernel } {
  const tcp = new TcpKernel();
  const k = new Kernel({ subsystems: [tcpSubsystem(tcp), bpfTcpCaSubsystem(() => tcp.cong)] });
  return { k, tcp };
}

test("vmlinux BTF describes the TCP structs exactly as the TypeScript accessors lay them out", () => {
  const { k } = boot();
  const btf = k.btfVmlinux!;
  for (const name of ["tcp_sock", "inet_connection_sock", "sock", "ack_sample", "rate_sample", "tcp_congestion_ops"]) {
    const id = btf.findByNameKind(name, BTF_KIND_STRUCT);
    assert.ok(id > 0, name);
    const t = btf.typeById(id);
    assert.equal("size" in t ? t.size : -1, TCP_LAYOUTS.get(name)!.size, `sizeof(struct ${name})`);
    if (t.kind !== BTF_KIND_STRUCT) continue;
    for (const m of t.members) {
      const f = TCP_LAYOUTS.get(name)!.fields.get(m.name)!;
      assert.equal(m.bitOffset, f.bitOffset, `${name}.${m.name}`);
    }
  }
  const ops = btf.typeById(btf.findByNameKind("tcp_congestion_ops", BTF_KIND_STRUCT));
  assert.equal(
    ops.kind === BTF_KIND_STRUCT && ops.members.map((m) => m.name).join(","),
    "ssthresh,cong_avoid,set_state,cwnd_event,in_ack_event,pkts_acked,min_tso_segs,cong_control,undo_cwnd,sndbuf_expand,get_info,name,owner,list,key,flags,init,release",
  );
  // icsk_ack is an anonymous struct, as in Linux
  const icsk = btf.typeById(btf.findByNameKind("inet_connection_sock", BTF_KIND_STRUCT));
  const ack = icsk.kind === BTF_KIND_STRUCT ? icsk.members.find((m) => m.name === "icsk_ack") : undefined;
  assert.equal(btf.typeById(ack!.type).name, "");
  const value = btf.typeById(btf.findByNameKind("bpf_struct_ops_tcp_congestion_ops", BTF_KIND_STRUCT));
  assert.equal("size" in value ? value.size : 0, 256, "bpf_tcp_ca's value type: common + data at 64");
});

test("the kfuncs are BTF FUNCs of vmlinux and registered under those ids", () => {
  const { k } = boot();
  for (const { name } of TCP_KFUNC_PROTOS) {
    const id = k.btfVmlinux!.findByNameKind(name, BTF_KIND_FUNC);
    assert.ok(id > 0, name);
    assert.equal(k.kfuncs.get(id)?.name, name);
  }
});

test("sockets live in the kernel's VM memory once TCP is booted", () => {
  const { k, tcp } = boot();
  const clock = new ManualClock();
  const conn = new TcpConn({ clock, xmit: () => {}, setRtoTimer: () => {} }, tcp.cong, { flow: 0, alloc: tcp.alloc });
  tcp.registerSock(conn.sk, [conn.ackSample]);
  conn.sk.snd_cwnd = 77;
  const bytes = k.mem.bytes(conn.sk.addr + conn.sk.offsetof("snd_cwnd"), 4);
  assert.equal(new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true), 77);
  assert.equal(tcp.sockByAddr(conn.sk.addr), conn.sk);
  assert.equal(conn.sk.icsk_ca_ops.name, "cubic", "the default is cubic (CONFIG_DEFAULT_TCP_CONG)");
  // kfunc through the kernel's table, by address, as a BPF program calls it
  const kf = k.kfuncsByName.get("tcp_reno_ssthresh")!;
  const args = [BigInt(conn.sk.addr)];
  const r = kf.impl({ arg: (i) => args[i - 1] ?? 0n, argNum: (i) => Number(args[i - 1] ?? 0n) }, k);
  assert.equal(r, 38);
});

test("boot refuses a vmlinux BTF whose TCP layout differs from the accessors'", async () => {
  const { checkTcpLayouts } = await import("../../../src/subsys/tcp/tcp_init.js");
  const { BtfBuilder } = await import("../../../src/btf/builder.js");
  const { Btf } = await import("../../../src/btf/btf.js");
  const b = new BtfBuilder();
  const u32 = b.addInt("unsigned int", 4);
  b.addStruct("ack_sample", 12, [
    { name: "rtt_us", type: u32, bitOffset: 0 },
    { name: "pkts_acked", type: u32, bitOffset: 32 },
    { name: "in_flight", type: u32, bitOffset: 64 },
  ]);
  assert.throws(() => checkTcpLayouts(Btf.parse(b.build())), /struct ack_sample\.rtt_us: BTF bit offset 0/);
});
