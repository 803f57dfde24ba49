import assert from "node:assert/strict";
import { test } from "node:test";
import { findSecDef, SEC_SLEEPABLE } from "../../src/loader/section_defs.js";
import { bpf_attach_type as A, bpf_prog_type as P } from "../../src/uapi/bpf.js";

test("SEC_DEF matching: program type and expected attach type by section name", () => {
  const cases: [string, number, number][] = [
    ["struct_ops", P.BPF_PROG_TYPE_STRUCT_OPS, 0],
    ["struct_ops/tcp_init", P.BPF_PROG_TYPE_STRUCT_OPS, 0],
    ["struct_ops.s/test_sleepable", P.BPF_PROG_TYPE_STRUCT_OPS, 0],
    ["kprobe/tcp_v4_connect", P.BPF_PROG_TYPE_KPROBE, 0],
    ["kretprobe/x", P.BPF_PROG_TYPE_KPROBE, 0],
    ["tracepoint/sched/sched_switch", P.BPF_PROG_TYPE_TRACEPOINT, 0],
    ["tp_btf/sched_switch", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_RAW_TP],
    ["fentry/tcp_sendmsg", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_FENTRY],
    ["fexit/tcp_sendmsg", P.BPF_PROG_TYPE_TRACING, A.BPF_TRACE_FEXIT],
    ["lsm/file_open", P.BPF_PROG_TYPE_LSM, A.BPF_LSM_MAC],
    ["tc", P.BPF_PROG_TYPE_SCHED_CLS, 0],
    ["tcx/ingress", P.BPF_PROG_TYPE_SCHED_CLS, A.BPF_TCX_INGRESS],
    ["xdp", P.BPF_PROG_TYPE_XDP, A.BPF_XDP],
    ["xdp.frags", P.BPF_PROG_TYPE_XDP, A.BPF_XDP],
    ["syscall", P.BPF_PROG_TYPE_SYSCALL, 0],
    ["sockops", P.BPF_PROG_TYPE_SOCK_OPS, A.BPF_CGROUP_SOCK_OPS],
    ["cgroup/connect4", P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, A.BPF_CGROUP_INET4_CONNECT],
    ["socket", P.BPF_PROG_TYPE_SOCKET_FILTER, 0],
  ];
  for (const [sec, type, attach] of cases) {
    const d = findSecDef(sec);
    assert.ok(d, sec);
    assert.deepEqual([d.progType, d.expectedAttachType], [type, attach], sec);
  }
});

test("SEC_DEF matching: `+` means exact or followed by '/', others are exact; sleepable flavours", () => {
  for (const sec of ["struct_opsx", "struct_ops.sx", "kprobex/foo", "xdpx", "syscall/x", "foo/bar", ""]) {
    assert.equal(findSecDef(sec), undefined, sec);
  }
  assert.ok((findSecDef("struct_ops.s/x")?.flags ?? 0) & SEC_SLEEPABLE);
  assert.ok((findSecDef("syscall")?.flags ?? 0) & SEC_SLEEPABLE);
  assert.equal((findSecDef("struct_ops/x")?.flags ?? 0) & SEC_SLEEPABLE, 0);
  assert.ok((findSecDef("fentry.s/x")?.flags ?? 0) & SEC_SLEEPABLE);
});
