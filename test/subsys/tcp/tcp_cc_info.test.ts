import assert from "node:assert/strict";
import { test } from "node:test";
import { Kernel } from "../../../src/kernel/kernel.js";
import { Simulation } from "../../../src/sim/sim.js";
import { bpfTcpCaSubsystem } from "../../../src/subsys/tcp/bpf_tcp_ca.js";
import { TCP_ENUMS } from "../../../src/subsys/tcp/btf.js";
import { TcpKernel, tcpSubsystem } from "../../../src/subsys/tcp/tcp_init.js";
import {
  BTF_KIND_ENUM,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_PTR,
  BTF_KIND_STRUCT,
  BTF_KIND_UNION,
} from "../../../src/uapi/btf.js";

function vmlinux() {
  const tcp = new TcpKernel();
  const k = new Kernel({ subsystems: [tcpSubsystem(tcp), bpfTcpCaSubsystem(() => tcp.cong)] });
  return k.btfVmlinux!;
}

const sizeOf = (t: unknown) => (t as { size: number }).size;
const names = (t: unknown) => (t as { members: { name: string }[] }).members.map((m) => m.name);

test("vmlinux BTF: get_info's info argument is union tcp_cc_info, whose members are what the CAs fill", () => {
  const btf = vmlinux();
  const union = btf.findByNameKind("tcp_cc_info", BTF_KIND_UNION);
  assert.ok(union > 0);
  assert.deepEqual(names(btf.typeById(union)), ["vegas", "dctcp", "bbr"]);
  const ops = btf.typeById(btf.findByNameKind("tcp_congestion_ops", BTF_KIND_STRUCT)) as unknown as {
    members: { name: string; type: number }[];
  };
  const ptr = btf.typeById(ops.members.find((m) => m.name === "get_info")!.type) as unknown as {
    kind: number;
    type: number;
  };
  assert.equal(ptr.kind, BTF_KIND_PTR);
  const proto = btf.typeById(ptr.type) as unknown as { kind: number; params: { name: string; type: number }[] };
  assert.equal(proto.kind, BTF_KIND_FUNC_PROTO);
  const info = btf.typeById(proto.params[3]!.type) as unknown as { kind: number; type: number };
  assert.equal(info.kind, BTF_KIND_PTR);
  assert.equal(info.type, union, "a pointer to the union itself, not a forward declaration");

  // What bbr and dctcp's get_info return carries exactly the uapi struct's members.
  const sim = new Simulation({
    link: { rateBps: 12e6, delayNs: 10e6, buffer: { bytes: 30_000 } },
    durationNs: 1e9,
    flows: [{ cc: "bbr" }, { cc: "dctcp" }],
  });
  const r = sim.run();
  assert.deepEqual(
    Object.keys(r.ccInfo[0]!.info),
    names(btf.typeById(btf.findByNameKind("tcp_bbr_info", BTF_KIND_STRUCT))),
  );
  assert.deepEqual(
    Object.keys(r.ccInfo[1]!.info),
    names(btf.typeById(btf.findByNameKind("tcp_dctcp_info", BTF_KIND_STRUCT))),
  );
  assert.equal(r.ccInfo[0]!.size, sizeOf(btf.typeById(btf.findByNameKind("tcp_bbr_info", BTF_KIND_STRUCT))));
  assert.equal(r.ccInfo[1]!.size, sizeOf(btf.typeById(btf.findByNameKind("tcp_dctcp_info", BTF_KIND_STRUCT))));
});

test("vmlinux BTF names what real CC sources use: enum inet_csk_ack_state_t's ICSK_ACK_* and INET_DIAG_*", () => {
  const btf = vmlinux();
  for (const e of ["inet_csk_ack_state_t", "inet_diag_attr"]) {
    const id = btf.findByNameKind(e, BTF_KIND_ENUM);
    assert.ok(id > 0, e);
    const want = TCP_ENUMS.find((x) => x.name === e)!.values.map(([n, v]) => ({ name: n, val: v }));
    const got = (btf.typeById(id) as unknown as { values: { name: string; val: number }[] }).values.map((v) => ({
      name: v.name,
      val: Number(v.val),
    }));
    assert.deepEqual(got, want);
  }
  const ack = TCP_ENUMS.find((x) => x.name === "inet_csk_ack_state_t")!.values;
  assert.deepEqual(ack, [
    ["ICSK_ACK_SCHED", 1],
    ["ICSK_ACK_TIMER", 2],
    ["ICSK_ACK_PUSHED", 4],
    ["ICSK_ACK_PUSHED2", 8],
    ["ICSK_ACK_NOW", 16],
    ["ICSK_ACK_NOMEM", 32],
  ]);
});
