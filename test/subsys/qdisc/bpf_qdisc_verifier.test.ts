import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../../src/isa/asm.js";
import { Kernel } from "../../../src/kernel/kernel.js";
import { bpfDummyStructOpsSubsystem } from "../../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { QdiscKernel, qdiscSubsystem } from "../../../src/subsys/qdisc/qdisc_init.js";
import { memberOffset, structId } from "../../../src/subsys/qdisc/skbuff.js";
import { TcpKernel, tcpSubsystem } from "../../../src/subsys/tcp/tcp_init.js";
import { bpf_cmd, bpf_prog_type } from "../../../src/uapi/bpf.js";
import { BTF_KIND_STRUCT } from "../../../src/uapi/btf.js";
import { BpfError, EACCES, EINVAL, errnoName } from "../../../src/uapi/errno.js";

/**
 * The verifier's view of Qdisc_ops programs (net/sched/bpf_qdisc.c's verifier ops, 6.18): the
 * referenced skb of enqueue, `to_free` typed as a trusted bpf_sk_buff_ptr, the write whitelist
 * with its messages, and the kfunc filter giving each member its kfuncs.
 */
const k = new Kernel({
  subsystems: [tcpSubsystem(new TcpKernel()), bpfDummyStructOpsSubsystem, qdiscSubsystem(new QdiscKernel())],
});
const proc = k.newProcess();
const btf = k.btfVmlinux!;
const opsId = btf.findByNameKind("Qdisc_ops", BTF_KIND_STRUCT);
const kf = (name: string) => k.kfuncsByName.get(name)!.btfId;
const Q = structId(btf, "Qdisc");
const SKB = structId(btf, "sk_buff");
const off = {
  limit: memberOffset(btf, Q, "limit"),
  flags: memberOffset(btf, Q, "flags"),
  qlen: memberOffset(btf, Q, "q") + memberOffset(btf, structId(btf, "qdisc_skb_head"), "qlen"),
  drops: memberOffset(btf, Q, "qstats") + memberOffset(btf, structId(btf, "gnet_stats_queue"), "drops"),
  qstatsEnd: memberOffset(btf, Q, "qstats") + 20,
  gsoSkb: memberOffset(btf, Q, "gso_skb"),
  tstamp: memberOffset(btf, SKB, "tstamp"),
  len: memberOffset(btf, SKB, "len"),
  cbData: memberOffset(btf, SKB, "cb") + memberOffset(btf, structId(btf, "qdisc_skb_cb"), "data"),
};

function load(member: string, asm: string, attachBtfId = opsId, logLevel = 1) {
  const t = btf.typeById(attachBtfId) as { members: { name: string }[] };
  const insns = assemble(asm);
  const logBuf = new Uint8Array(1 << 16);
  let fd: number;
  try {
    fd = k.bpf(proc, bpf_cmd.BPF_PROG_LOAD, {
      prog_type: bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS,
      insns,
      insn_cnt: insns.length,
      license: "GPL",
      prog_name: member,
      expected_attach_type: t.members.findIndex((m) => m.name === member),
      attach_btf_id: attachBtfId,
      log_level: logLevel,
      log_buf: logBuf,
      log_size: logBuf.length,
    });
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    fd = -e.errno;
  }
  const log = new TextDecoder().decode(logBuf.subarray(0, logBuf.indexOf(0)));
  const lines = log.split("\n").filter((l) => l && !l.startsWith("processed "));
  if (fd >= 0) k.close(proc, fd);
  return { fd, errno: fd < 0 ? errnoName(-fd) : "", msg: lines.at(-1) ?? "", log };
}
type R = ReturnType<typeof load>;
const ok = (r: R) => assert.ok(r.fd >= 0, r.log);
const refused = (r: R, errno: number, msg: string) => {
  assert.ok(r.fd < 0, `loaded:\n${r.log}`);
  assert.equal(r.errno, errnoName(errno), r.log);
  assert.equal(r.msg, msg, r.log);
};

/** enqueue: drop the skb onto to_free (r6 = ctx). */
const DROP = `ldxdw %r2, [%r6+16]
  ldxdw %r1, [%r6+0]
  call kfunc ${kf("bpf_qdisc_skb_drop")}`;

test("enqueue holds the skb as a reference: dropping it onto to_free loads, keeping it leaks", () => {
  ok(load("enqueue", `mov %r6, %r1\n${DROP}\nmov %r0, 1\nexit`));
  const leak = load("enqueue", "mov %r0, 0\nexit");
  refused(leak, EINVAL, "BPF_EXIT instruction in main prog would lead to reference leak");
  assert.match(leak.log, /^Unreleased reference id=1 alloc_insn=0$/m);
  // bpf_kfree_skb releases it as well (any member may call it).
  ok(load("enqueue", `ldxdw %r1, [%r1+0]\ncall kfunc ${kf("bpf_kfree_skb")}\nmov %r0, 1\nexit`));
});

test("to_free is a trusted struct bpf_sk_buff_ptr *; the kfunc refuses anything else", () => {
  const r = load("enqueue", `mov %r6, %r1\n${DROP}\nmov %r0, 1\nexit`, opsId, 2);
  assert.match(r.log, /R2_?w?=trusted_ptr_bpf_sk_buff_ptr\(\)/);
  // Passing the Qdisc where the list goes: a type mismatch.
  const bad = load(
    "enqueue",
    `mov %r6, %r1
     ldxdw %r2, [%r6+8]
     ldxdw %r1, [%r6+0]
     call kfunc ${kf("bpf_qdisc_skb_drop")}
     mov %r0, 1
     exit`,
  );
  assert.ok(bad.fd < 0, bad.log);
  assert.match(bad.msg, /expected pointer to STRUCT bpf_sk_buff_ptr but R2 has a pointer to STRUCT Qdisc/);
});

test("dequeue returns NULL or an skb reference; a Qdisc pointer is not one", () => {
  ok(load("dequeue", "mov %r0, 0\nexit"));
  const r = load("dequeue", "ldxdw %r0, [%r1+0]\nexit");
  assert.ok(r.fd < 0, r.log);
  assert.equal(r.errno, "EINVAL");
});

test("writes: Qdisc.limit, q.qlen and qstats, sk_buff.tstamp and cb data; nothing else", () => {
  const w = (member: string, reg: number, o: number, size = "w") =>
    load(member, `ldxdw %r2, [%r1+${reg}]\nmov %r3, 1\nstx${size} [%r2+${o}], %r3\nmov %r0, 0\nexit`);
  ok(w("init", 0, off.limit));
  ok(w("init", 0, off.qlen));
  ok(w("init", 0, off.drops));
  refused(w("init", 0, off.flags), EACCES, `no write support to Qdisc at off ${off.flags}`);
  refused(
    w("init", 0, off.limit, "dw"),
    EACCES,
    `write access at off ${off.limit} with size 8 beyond the member of Qdisc ended at ${off.limit + 4}`,
  );
  refused(
    w("init", 0, off.qstatsEnd - 2),
    EACCES,
    `write access at off ${off.qstatsEnd - 2} with size 4 beyond the member of Qdisc ended at ${off.qstatsEnd}`,
  );
  // enqueue's skb (arg 0, a reference) may have its departure time and cb data rewritten.
  const skbW = (o: number, size = "dw") =>
    load(
      "enqueue",
      `mov %r6, %r1
       ldxdw %r2, [%r1+0]
       mov %r3, 1
       stx${size} [%r2+${o}], %r3
       ${DROP}
       mov %r0, 1
       exit`,
    );
  ok(skbW(off.tstamp));
  ok(skbW(off.cbData + 4, "w"));
  refused(skbW(off.len, "w"), EACCES, `no write support to sk_buff at off ${off.len}`);
  // The to_free list is not writable.
  refused(
    load("enqueue", `mov %r6, %r1\nldxdw %r2, [%r1+16]\nmov %r3, 0\nstxdw [%r2+0], %r3\n${DROP}\nmov %r0, 1\nexit`),
    EACCES,
    "only read is supported",
  );
});

test("the kfunc filter: each member its own kfuncs, no other struct_ops type any", () => {
  const notAllowed = (name: string) => `calling kernel function ${name} is not allowed`;
  // bpf_qdisc_skb_drop: enqueue only.
  refused(
    load("dequeue", `mov %r1, 0\nmov %r2, 0\ncall kfunc ${kf("bpf_qdisc_skb_drop")}\nmov %r0, 0\nexit`),
    EACCES,
    notAllowed("bpf_qdisc_skb_drop"),
  );
  // bpf_qdisc_bstats_update: dequeue only.
  const bstats = `ldxdw %r1, [%r1+0]\nmov %r2, 0\ncall kfunc ${kf("bpf_qdisc_bstats_update")}`;
  refused(load("init", `${bstats}\nmov %r0, 0\nexit`), EACCES, notAllowed("bpf_qdisc_bstats_update"));
  // The watchdog: enqueue and dequeue, not reset.
  const wd = `ldxdw %r1, [%r1+0]\nmov %r2, 0\nmov %r3, 0\ncall kfunc ${kf("bpf_qdisc_watchdog_schedule")}\nmov %r0, 0\nexit`;
  ok(load("dequeue", wd));
  refused(load("reset", wd), EACCES, notAllowed("bpf_qdisc_watchdog_schedule"));
  // The prologue and epilogue kfuncs are for the kernel's own code.
  refused(
    load("init", `ldxdw %r1, [%r1+0]\nmov %r2, 0\ncall kfunc ${kf("bpf_qdisc_init_prologue")}\nmov %r0, 0\nexit`),
    EACCES,
    notAllowed("bpf_qdisc_init_prologue"),
  );
  // Another struct_ops type may not call the qdisc kfuncs at all.
  const dummy = btf.findByNameKind("bpf_dummy_ops", BTF_KIND_STRUCT);
  refused(
    load("test_1", `mov %r1, 0\ncall kfunc ${kf("bpf_skb_get_hash")}\nmov %r0, 0\nexit`, dummy),
    EACCES,
    notAllowed("bpf_skb_get_hash"),
  );
  // peek has no stub: it is not a member programs may implement.
  const peek = load("peek", "mov %r0, 0\nexit");
  assert.equal(peek.errno, "ENOTSUPP", peek.log);
});

test("KF_TRUSTED_ARGS: the qdisc kfuncs take the program's own pointers, not ones walked to", () => {
  const bstats = (skbFrom: string) =>
    load(
      "dequeue",
      `ldxdw %r6, [%r1+0]
       ${skbFrom}
       mov %r1, %r6
       call kfunc ${kf("bpf_qdisc_bstats_update")}
       mov %r0, 0
       exit`,
    );
  // sch->gso_skb is a plain (untrusted) pointer: refused where a trusted one goes.
  refused(bstats(`ldxdw %r2, [%r6+${off.gsoSkb}]`), EINVAL, "R2 must be referenced or trusted");
  const hash = load(
    "enqueue",
    `mov %r7, %r1
     ldxdw %r6, [%r1+8]
     ldxdw %r1, [%r6+${off.gsoSkb}]
     call kfunc ${kf("bpf_skb_get_hash")}
     mov %r6, %r7
     ${DROP}
     mov %r0, 1
     exit`,
  );
  refused(hash, EINVAL, "R1 must be referenced or trusted");
  // The enqueued skb (a reference) is fine.
  ok(
    load(
      "enqueue",
      `mov %r6, %r1
       ldxdw %r1, [%r6+0]
       call kfunc ${kf("bpf_skb_get_hash")}
       ${DROP}
       mov %r0, 1
       exit`,
    ),
  );
});
