import assert from "node:assert/strict";
import { test } from "node:test";
import { BPF_F_TEST_RUN_ON_CPU, bpf_cmd, bpf_func_id, bpf_prog_type } from "../../src/uapi/bpf.js";
import { EACCES, EINVAL, ENOTSUPP, EPERM } from "../../src/uapi/errno.js";
import { type FuncProto, RET_INTEGER } from "../../src/verifier/helper_protos.js";
import { add64, boot, call, exit, ldxDw, mov64, mov64r, retProg, throwsErrno } from "./util.js";

const C = bpf_cmd;
const P = bpf_prog_type;

function load(k: ReturnType<typeof boot>["k"], p: ReturnType<typeof boot>["p"], prog_type: number, insns = retProg(7)) {
  // Syscall programs must be sleepable.
  const prog_flags = prog_type === P.BPF_PROG_TYPE_SYSCALL ? 16 : 0;
  return k.bpf(p, C.BPF_PROG_LOAD, { prog_type, insns, insn_cnt: insns.length, license: "GPL", prog_flags });
}

/** The verifier prototype of a private helper that only takes time: no arguments, an int back. */
function timeProto(funcId: number): FuncProto {
  return { name: `test_take_time_${funcId}`, funcId, retType: RET_INTEGER, argTypes: [] };
}

test("PROG_TEST_RUN returns r0 in retval; the syscall type copies its ctx back", () => {
  const { k, p } = boot();
  const fd = load(k, p, P.BPF_PROG_TYPE_SYSCALL);
  const attr: { prog_fd: number; retval?: number } = { prog_fd: fd };
  assert.equal(k.bpf(p, C.BPF_PROG_TEST_RUN, attr), 0);
  assert.equal(attr.retval, 7);
  // *(u64 *)(r1 + 0) += 1; r0 = *(u64 *)(r1 + 0)
  const inc = [ldxDw(2, 1, 0), add64(2, 1), { code: 0x7b, dst: 1, src: 2, off: 0, imm: 0 }, ldxDw(0, 1, 0), exit()];
  const fd2 = load(k, p, P.BPF_PROG_TYPE_SYSCALL, inc);
  const ctx = new Uint8Array(8);
  ctx[0] = 41;
  const a2: { prog_fd: number; ctx_in: Uint8Array; ctx_size_in: number; retval?: number } = {
    prog_fd: fd2,
    ctx_in: ctx,
    ctx_size_in: 8,
  };
  k.bpf(p, C.BPF_PROG_TEST_RUN, a2);
  assert.equal(a2.retval, 42);
  assert.equal(ctx[0], 42, "ctx copied back to the caller");
  throwsErrno(() => k.bpf(p, C.BPF_PROG_TEST_RUN, { prog_fd: fd, repeat: 2 }), EINVAL);
  throwsErrno(
    () => k.bpf(p, C.BPF_PROG_TEST_RUN, { prog_fd: fd, data_in: new Uint8Array(14), data_size_in: 14 }),
    EINVAL,
  );
});

test("generic checks: ctx_in and ctx_size_in together; raw_tp's own: no cpu without BPF_F_TEST_RUN_ON_CPU, unknown flags ignored", () => {
  const { k, p } = boot();
  const fd = load(k, p, P.BPF_PROG_TYPE_RAW_TRACEPOINT);
  throwsErrno(() => k.bpf(p, C.BPF_PROG_TEST_RUN, { prog_fd: fd, ctx_size_in: 8 }), EINVAL, /together/);
  throwsErrno(() => k.bpf(p, C.BPF_PROG_TEST_RUN, { prog_fd: fd, ctx_in: new Uint8Array(8) }), EINVAL, /together/);
  throwsErrno(() => k.bpf(p, C.BPF_PROG_TEST_RUN, { prog_fd: fd, ctx_out: new Uint8Array(8) }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_PROG_TEST_RUN, { prog_fd: fd, cpu: 1 }), EINVAL, /cpu/);
  // raw_tp ignores flag bits it does not know (6.18 returns 0 here too).
  const unknown: { prog_fd: number; flags: number; retval?: number } = { prog_fd: fd, flags: 1 << 5 };
  k.bpf(p, C.BPF_PROG_TEST_RUN, unknown);
  assert.equal(unknown.retval, 7);
  const attr: { prog_fd: number; cpu: number; flags: number; retval?: number } = {
    prog_fd: fd,
    cpu: 0,
    flags: BPF_F_TEST_RUN_ON_CPU,
  };
  k.bpf(p, C.BPF_PROG_TEST_RUN, attr);
  assert.equal(attr.retval, 7);
  const noRun = load(k, p, P.BPF_PROG_TYPE_KPROBE);
  throwsErrno(() => k.bpf(p, C.BPF_PROG_TEST_RUN, { prog_fd: noRun }), ENOTSUPP);
});

test("skb-style test_run: repeat, duration from the simulated clock, data_out", () => {
  const { k, p } = boot();
  // ktime_get_ns() is deterministic: the clock moves only when the simulator moves it.
  // The call clobbers r1-r5: the ctx pointer is kept in r7 across it. Then the first packet
  // byte is written through __sk_buff's data, checked against data_end.
  const insns = [
    mov64r(7, 1),
    call(bpf_func_id.BPF_FUNC_ktime_get_ns),
    mov64r(6, 0),
    { code: 0x61, dst: 2, src: 7, off: 76, imm: 0 }, // r2 = skb->data
    { code: 0x61, dst: 3, src: 7, off: 80, imm: 0 }, // r3 = skb->data_end
    mov64r(4, 2),
    add64(4, 1),
    { code: 0x2d, dst: 4, src: 3, off: 1, imm: 0 }, // if r4 > r3 goto +1
    { code: 0x72, dst: 2, src: 0, off: 0, imm: 0x55 }, // *(u8 *)(r2 + 0) = 0x55
    mov64r(0, 6),
    exit(),
  ];
  const fd = load(k, p, P.BPF_PROG_TYPE_SCHED_CLS, insns);
  k.setTimeNs(5_000n);
  const data_in = new Uint8Array(14).fill(1);
  const data_out = new Uint8Array(14);
  const attr = { prog_fd: fd, data_in, data_size_in: 14, data_out, repeat: 3 } as {
    prog_fd: number;
    data_in: Uint8Array;
    data_size_in: number;
    data_out: Uint8Array;
    repeat: number;
    retval?: number;
    duration?: number;
    data_size_out?: number;
  };
  k.bpf(p, C.BPF_PROG_TEST_RUN, attr);
  assert.equal(attr.retval, 5000);
  assert.equal(attr.duration, 0, "no simulated time passed during the runs");
  assert.equal(attr.data_size_out, 14);
  assert.equal(data_out[0], 0x55);
  assert.equal(data_in[0], 1, "data_in is copied, not modified");
  assert.equal(k.objGetInfo(p, fd).run_cnt, 0, "no statistics unless kernel.bpf_stats_enabled");
  throwsErrno(() => k.bpf(p, C.BPF_PROG_TEST_RUN, { prog_fd: fd, data_in, data_size_in: 10 }), EINVAL);
});

test("duration is the mean simulated time per run", () => {
  const { k, p } = boot();
  // A helper that takes 100 ns of simulated time.
  k.registerHelper(
    250,
    () => {
      k.advanceTimeNs(100);
      return 0;
    },
    timeProto(250),
  );
  const fd = load(k, p, P.BPF_PROG_TYPE_SCHED_CLS, [call(250), mov64(0, 0), exit()]);
  const attr: { prog_fd: number; data_in: Uint8Array; repeat: number; duration?: number } = {
    prog_fd: fd,
    data_in: new Uint8Array(64),
    repeat: 4,
  };
  k.bpf(p, C.BPF_PROG_TEST_RUN, { ...attr, data_size_in: 64 });
  k.sysctl.bpfStatsEnabled = 1;
  const a2 = { ...attr, data_size_in: 64 } as typeof attr & { data_size_in: number };
  k.bpf(p, C.BPF_PROG_TEST_RUN, a2);
  assert.equal(a2.duration, 100);
  assert.equal(k.ktimeGetNs(), 800n);
  const info = k.objGetInfo(p, fd);
  assert.equal(info.run_cnt, 4, "counted only while statistics were on");
  assert.equal(info.run_time_ns, 400n);
  assert.match(k.fdinfo(p, fd), /run_time_ns:\t400\nrun_cnt:\t4\n/);
});

test("BPF_ENABLE_STATS: statistics are on while its fd is open; CAP_SYS_ADMIN only; unknown type EINVAL", () => {
  const { k, p } = boot();
  k.registerHelper(
    251,
    () => {
      k.advanceTimeNs(7);
      return 0;
    },
    timeProto(251),
  );
  const fd = load(k, p, P.BPF_PROG_TYPE_SYSCALL, [call(251), mov64(0, 0), exit()]);
  const run = () => k.bpf(p, C.BPF_PROG_TEST_RUN, { prog_fd: fd });
  run();
  const stats = k.bpf(p, C.BPF_ENABLE_STATS, { type: 0 });
  run();
  run();
  k.close(p, stats);
  run();
  const info = k.objGetInfo(p, fd);
  assert.equal(info.run_cnt, 2);
  assert.equal(info.run_time_ns, 14n);
  throwsErrno(() => k.bpf(p, C.BPF_ENABLE_STATS, { type: 1 }), EINVAL);
  const u = k.newProcess({ caps: [] });
  throwsErrno(() => k.bpf(u, C.BPF_ENABLE_STATS, { type: 0 }), EPERM);
});

test("skb programs read struct __sk_buff: len and protocol as test_run fills them, u32 fields at most", () => {
  const { k, p } = boot();
  // __sk_buff's u32 fields are read with at most 4 bytes
  throwsErrno(
    () => load(k, p, P.BPF_PROG_TYPE_SOCKET_FILTER, [ldxDw(0, 1, 8), exit()]),
    EACCES,
    /invalid bpf_context access off=8 size=8/,
  );
  const ldxW = (dst: number, src: number, off: number) => ({ code: 0x61, dst, src, off, imm: 0 });
  // r0 = skb->len << 16 | skb->protocol
  const insns = [
    ldxW(0, 1, 0),
    { code: 0x67, dst: 0, src: 0, off: 0, imm: 16 },
    ldxW(2, 1, 16),
    { code: 0x4f, dst: 0, src: 2, off: 0, imm: 0 },
    exit(),
  ];
  const data_in = new Uint8Array(20).fill(2);
  data_in.set([0x08, 0x00], 12);
  for (const [type, len] of [
    [P.BPF_PROG_TYPE_SCHED_CLS, 20],
    [P.BPF_PROG_TYPE_SOCKET_FILTER, 20 - 14],
  ] as const) {
    const fd = load(k, p, type, insns);
    const attr: { prog_fd: number; data_in: Uint8Array; data_size_in: number; retval?: number } = {
      prog_fd: fd,
      data_in,
      data_size_in: 20,
    };
    k.bpf(p, C.BPF_PROG_TEST_RUN, attr);
    // tc sees the frame from its Ethernet header, a socket filter after it; protocol is big-endian.
    assert.equal(attr.retval, (len << 16) | 0x0008, `prog type ${type}`);
  }
});

test("skb test runs free the skb, then the context (bpf_prog_test_run_skb's order): each run finds its context where the last had it", () => {
  const { k, p } = boot();
  // A privileged socket filter may return its context pointer (r0 = r1): the run's retval is the
  // low half of the context's address, the same run after run when nothing else allocated.
  const insns = [mov64r(0, 1), exit()];
  const fd = k.bpf(p, C.BPF_PROG_LOAD, {
    prog_type: bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER,
    insns,
    insn_cnt: insns.length,
    license: "GPL",
  });
  const retvals: number[] = [];
  for (let i = 0; i < 4; i++) {
    const attr = { prog_fd: fd, data_in: new Uint8Array(64), data_size_in: 64, retval: 0 };
    k.bpf(p, C.BPF_PROG_TEST_RUN, attr);
    retvals.push(attr.retval);
  }
  assert.deepEqual(retvals, [retvals[0], retvals[0], retvals[0], retvals[0]]);
});
