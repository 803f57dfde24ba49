import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { type SimOptions, simulate } from "../../src/sim/sim.js";
import { bpfTcpCaSubsystem } from "../../src/subsys/tcp/bpf_tcp_ca.js";
import { TCP_KFUNC_PROTOS } from "../../src/subsys/tcp/btf.js";
import { TcpKernel, tcpSubsystem } from "../../src/subsys/tcp/tcp_init.js";
import { BTF_KIND_FUNC } from "../../src/uapi/btf.js";
import { bpfObj } from "./helpers.js";

function boot(): { tcp: TcpKernel; k: Kernel } {
  const tcp = new TcpKernel();
  const k = new Kernel({ subsystems: [tcpSubsystem(tcp), bpfTcpCaSubsystem(() => tcp.cong)] });
  return { tcp, k };
}

const KFUNCS = [
  "bbr_init",
  "bbr_main",
  "bbr_sndbuf_expand",
  "bbr_undo_cwnd",
  "bbr_cwnd_event",
  "bbr_ssthresh",
  "bbr_min_tso_segs",
  "bbr_set_state",
  "dctcp_init",
  "dctcp_update_alpha",
  "dctcp_cwnd_event",
  "dctcp_ssthresh",
  "dctcp_cwnd_undo",
  "dctcp_state",
];

test("the simulated kernel exports every bbr_* and dctcp_* kfunc the tcp_ca_kfunc selftest needs", () => {
  const { k } = boot();
  const names = new Set(TCP_KFUNC_PROTOS.map((p) => p.name));
  for (const n of KFUNCS) {
    assert.ok(names.has(n), n);
    const id = k.btfVmlinux!.findByNameKind(n, BTF_KIND_FUNC);
    assert.ok(id > 0, `${n} in vmlinux BTF`);
    assert.equal(k.kfuncs.get(id)?.name, n, `${n} registered under its BTF id`);
  }
});

const objs = ["tcp_ca_kfunc", "sim/tcp_ca_kfunc"].filter((o) => existsSync(bpfObj(o)));

test("tcp_ca_kfunc.bpf.o (all fourteen kfuncs called) loads and registers both CAs", {
  skip: objs.length ? false : "not built",
}, () => {
  for (const o of objs) {
    const { tcp, k } = boot();
    const obj = BpfObject.open(bpfObj(o));
    obj.load({ kernel: k, process: k.newProcess() });
    for (const m of ["so_bbr_kf", "so_dctcp_kf"]) obj.findMap(m)!.attachStructOps();
    assert.match(tcp.cong.tcp_get_available_congestion_control(), /so_bbr_kf so_dctcp_kf$/, o);
  }
});

function kfuncVsBuiltin(map: string, builtin: string, extra: Partial<SimOptions>) {
  const a = boot();
  const obj = BpfObject.open(bpfObj("tcp_ca_kfunc"));
  obj.load({ kernel: a.k, process: a.k.newProcess() });
  obj.findMap(map)!.attachStructOps();
  const base = (cc: string, tcp: TcpKernel): SimOptions => ({
    link: { rateBps: 12e6, delayNs: 20e6, buffer: { bytes: 60_000 } },
    durationNs: 6e9,
    flows: [{ cc }],
    seed: 5,
    tcp,
    ...extra,
  });
  const viaBpf = simulate(base(map, a.tcp));
  const viaTs = simulate(base(builtin, boot().tcp));
  return { viaBpf, viaTs };
}

test("BBR through the bbr_* kfuncs from BPF follows the built-in BBR's trace exactly (pacing included)", {
  skip: existsSync(bpfObj("tcp_ca_kfunc")) ? false : "not built",
}, () => {
  const { viaBpf, viaTs } = kfuncVsBuiltin("so_bbr_kf", "bbr", {});
  assert.deepEqual(viaBpf.trace.flows[0]!.cwnd, viaTs.trace.flows[0]!.cwnd);
  assert.deepEqual(viaBpf.trace.queue_bytes, viaTs.trace.queue_bytes);
  assert.ok(viaBpf.metrics.flows[0]!.retransmits > 0, "the shallow buffer makes BBR lose packets");
});

test("DCTCP through the dctcp_* kfuncs follows the built-in DCTCP's trace over an ECN-marking link", {
  skip: existsSync(bpfObj("tcp_ca_kfunc")) ? false : "not built",
}, () => {
  const { viaBpf, viaTs } = kfuncVsBuiltin("so_dctcp_kf", "dctcp", {
    link: { rateBps: 12e6, delayNs: 20e6, buffer: { bytes: 100_000 }, ecnThreshold: { packets: 15 } },
  });
  assert.deepEqual(viaBpf.trace.flows[0]!.cwnd, viaTs.trace.flows[0]!.cwnd);
  assert.ok(viaBpf.metrics.flows[0]!.ecnMarks > 0);
});

test("a CC written against a real vmlinux.h (SK_STORAGE map, ICSK_ACK_* names) builds against the simulated kernel's and runs", {
  skip: existsSync(bpfObj("sim/tcp_compat")) ? false : "not built",
}, () => {
  for (const o of ["tcp_compat", "sim/tcp_compat"]) {
    const { tcp, k } = boot();
    const obj = BpfObject.open(bpfObj(o));
    obj.load({ kernel: k, process: k.newProcess() });
    assert.equal(obj.findMap("so_compat_sk_stats")!.type, 24, "BPF_MAP_TYPE_SK_STORAGE");
    obj.findMap("so_compat")!.attachStructOps();
    const r = simulate({
      link: { rateBps: 12e6, delayNs: 20e6, buffer: { bytes: 30_000 } },
      durationNs: 3e9,
      flows: [{ cc: "so_compat" }],
      tcp,
    });
    assert.ok(r.metrics.utilisation > 0.8, `${o}: utilisation ${r.metrics.utilisation}`);
  }
});
