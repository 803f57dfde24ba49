import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import { BpfError, EACCES, EINVAL, ENOTSUPP, errnoName } from "../../src/uapi/errno.js";
import type { VerifierResult } from "../../src/verifier/env.js";
import { bpfCheck } from "../../src/verifier/verifier.js";
import { structOpsEnv, tcpBtf, tcpStructOps } from "./tcp_btf.js";

const t = tcpBtf();
const run = (member: string, asm: string, extra = {}): VerifierResult =>
  bpfCheck(structOpsEnv(t, member, assemble(asm), extra));

function rejected(r: VerifierResult, errno: number, msg: string, insn: number): void {
  assert.equal(r.ok, false, r.log);
  assert.ok(r.error instanceof BpfError);
  assert.equal(r.error.message, msg, r.log);
  assert.equal(errnoName(r.error.errno), errnoName(errno));
  assert.equal(r.error.context.insn, insn);
}

test("ssthresh reads snd_cwnd through its typed socket argument", () => {
  const r = run(
    "ssthresh",
    `ldxdw %r1, [%r1]
     ldxw %r0, [%r1+${t.off.snd_cwnd}]
     rsh %r0, 1
     exit`,
  );
  assert.equal(r.ok, true, r.log);
  // The `struct sock *` argument is promoted to tcp_sock (bpf_tcp_ca's is_valid_access).
  // btf_ctx_access names the argument's struct, so the state follows on its own line (6.18).
  assert.match(
    r.log,
    /^0: \(79\) r1 = \*\(u64 \*\)\(r1 \+0\)\nfunc 'ssthresh' arg0 has btf_id \d+ type STRUCT 'sock'\n1: R1=trusted_ptr_tcp_sock\(\)\n/m,
  );
  assert.equal(r.attachFuncName, "ssthresh");
});

test("writes are allowed where bpf_tcp_ca allows them", () => {
  const r = run(
    "cong_avoid",
    `ldxdw %r1, [%r1]
     stw [%r1+${t.off.snd_cwnd}], 10
     stw [%r1+${t.off.snd_ssthresh}], 20
     stdw [%r1+${t.off.icsk_ca_priv + 16}], 1
     stdw [%r1+${t.off.sk_pacing_rate}], 1
     exit`,
  );
  assert.equal(r.ok, true, r.log);
});

test("a write elsewhere in tcp_sock is refused with the subsystem's reason", () => {
  const r = run(
    "cong_avoid",
    `ldxdw %r1, [%r1]
     stw [%r1+${t.off.srtt_us}], 10
     exit`,
  );
  rejected(r, EACCES, `no write support to tcp_sock at off ${t.off.srtt_us}`, 1);
});

test("a pointer field read gives a new typed pointer, readable in turn", () => {
  const r = run(
    "ssthresh",
    `ldxdw %r1, [%r1]
     ldxdw %r2, [%r1+${t.off.listener}]
     ldxw %r0, [%r2+20]
     exit`,
  );
  assert.equal(r.ok, true, r.log);
  // 6.18: a pointer walked out of a trusted one is untrusted unless the kernel lists the member.
  assert.match(r.log, /R2=untrusted_ptr_sock\(\)/);
});

test("reads past the end of the struct are refused", () => {
  const r = run(
    "ssthresh",
    `ldxdw %r1, [%r1]
     ldxdw %r0, [%r1+4096]
     exit`,
  );
  rejected(r, EACCES, "access beyond struct tcp_sock at off 4096 size 8", 1);
});

test("the context has one u64 per argument of the member", () => {
  const ok = run(
    "cong_avoid",
    `ldxdw %r2, [%r1+8]
     ldxdw %r3, [%r1+16]
     exit`,
  );
  assert.equal(ok.ok, true, ok.log);
  const r = run(
    "ssthresh",
    `ldxdw %r2, [%r1+8]
     mov %r0, 1
     exit`,
  );
  rejected(r, EACCES, "invalid bpf_context access off=8 size=8", 0);
  assert.match(r.log, /func 'ssthresh' doesn't have 2-th argument/);
  const w = run(
    "ssthresh",
    `stdw [%r1], 0
     mov %r0, 1
     exit`,
  );
  rejected(w, EACCES, "invalid bpf_context access off=0 size=8", 0);
});

test("a nullable argument must be checked before it is dereferenced", () => {
  const bad = run(
    "cong_control",
    `ldxdw %r1, [%r1+24]
     ldxw %r0, [%r1]
     exit`,
  );
  rejected(bad, EACCES, "R1 invalid mem access 'trusted_ptr_or_null_'", 1);
  const good = run(
    "cong_control",
    `ldxdw %r1, [%r1+24]
     jeq %r1, 0, out
     ldxw %r0, [%r1]
     out:
     exit`,
  );
  assert.equal(good.ok, true, good.log);
});

test("a void member may exit with R0 unset; a u32 member may not", () => {
  assert.equal(run("init", "exit").ok, true);
  rejected(run("ssthresh", "exit"), EACCES, "R0 !read_ok", 0);
});

test("struct_ops programs must be GPL-compatible", () => {
  rejected(
    run("ssthresh", "mov %r0, 0\nexit", { gpl: false }),
    EINVAL,
    "struct ops programs must have a GPL compatible license",
    0,
  );
});

test("attach_btf_id must be a registered struct_ops type", () => {
  rejected(
    run("ssthresh", "mov %r0, 0\nexit", { attachBtfId: t.tcpSock }),
    ENOTSUPP,
    `attach_btf_id ${t.tcpSock} is not a supported struct`,
    0,
  );
});

test("expected_attach_type must be a function-pointer member", () => {
  rejected(run("name", "mov %r0, 0\nexit"), EINVAL, `attach to invalid member name(@idx ${t.member.name})`, 0);
  rejected(run("nope", "mov %r0, 0\nexit"), EINVAL, "attach to invalid member idx 99", 0);
});

test("unsupported members (no cfi stub, as TCP's get_info) give ENOTSUPP", () => {
  const r = run("get_info", "mov %r0, 0\nexit");
  rejected(r, ENOTSUPP, "attach to unsupported member get_info of struct tcp_congestion_ops", 0);
  assert.equal(r.error?.errno, 524);
});

test("check_member's refusal is passed on with its errno", () => {
  const info = tcpStructOps(t);
  info.checkMember = (_idx, prog) =>
    prog.sleepable ? new BpfError(EINVAL, "attach to unsupported member init of struct tcp_congestion_ops") : undefined;
  const r = bpfCheck(structOpsEnv(t, "init", assemble("exit"), { sleepable: true }, info));
  rejected(r, EINVAL, "attach to unsupported member init of struct tcp_congestion_ops", 0);
  assert.equal(bpfCheck(structOpsEnv(t, "init", assemble("exit"), {}, info)).ok, true);
});

test("helpers: tcp_send_ack takes the tcp_sock; setsockopt is not for release", () => {
  const ack = run(
    "cong_avoid",
    `ldxdw %r1, [%r1]
     mov %r2, 0
     call 116
     exit`,
  );
  assert.equal(ack.ok, true, ack.log);
  // The same bpf_setsockopt call: refused in release, allowed in init.
  const setsockopt = `ldxdw %r1, [%r1]
     mov %r2, 6
     mov %r3, 13
     stdw [%r10-8], 0
     mov %r4, %r10
     add %r4, -8
     mov %r5, 8
     call 49
     exit`;
  const rel = run("release", setsockopt);
  rejected(rel, EINVAL, "program of this type cannot use helper bpf_setsockopt#49", 7);
  const init = run("init", setsockopt);
  assert.equal(init.ok, true, init.log);
});

test("helper arguments: a scalar where the socket goes is refused", () => {
  const r = run(
    "cong_avoid",
    `mov %r1, 0
     mov %r2, 0
     call 116
     exit`,
  );
  rejected(r, EACCES, "R1 type=scalar expected=ptr_, trusted_ptr_, rcu_ptr_", 2);
});

test("kfuncs: allowed ones are checked against their BTF prototype", () => {
  const ok = run(
    "cong_avoid",
    `ldxdw %r1, [%r1]
     mov %r2, 1
     call runtime ${t.kfuncSlowStart}
     exit`,
  );
  assert.equal(ok.ok, true, ok.log);
  assert.match(ok.log, /call tcp_slow_start#/);
  const scalarArg = run(
    "cong_avoid",
    `mov %r1, 0
     mov %r2, 1
     call runtime ${t.kfuncSlowStart}
     exit`,
  );
  rejected(scalarArg, EINVAL, "arg#0 expected pointer to btf or socket", 2);
  const notAllowed = run(
    "cong_avoid",
    `mov %r1, 0
     call runtime ${t.kfuncNotAllowed}
     exit`,
  );
  rejected(notAllowed, EACCES, "calling kernel function bpf_obj_new_impl is not allowed", 1);
});

test("sk_storage helpers take an sk_storage map and the socket; other maps are refused", () => {
  const base = {
    maps: [
      { type: 24, keySize: 4, valueSize: 8, maxEntries: 0, flags: 1 },
      { type: 2, keySize: 4, valueSize: 8, maxEntries: 1, flags: 0 },
    ],
  };
  const prog = (map: number) =>
    bpfCheck(
      structOpsEnv(
        t,
        "cong_avoid",
        assemble(`ldxdw %r2, [%r1]
         lddw %r1, map_fd(${map})
         mov %r3, 0
         mov %r4, 1
         call 107
         jeq %r0, 0, out
         stdw [%r0], 1
         out:
         exit`),
        { ...base, ldImm64Aux: [undefined, { kind: "map_ptr", map }] as never },
      ),
    );
  const ok = prog(0);
  assert.equal(ok.ok, true, ok.log);
  const bad = prog(1);
  rejected(bad, EINVAL, "cannot pass map_type 2 into func bpf_sk_storage_get#107", 5);
});
