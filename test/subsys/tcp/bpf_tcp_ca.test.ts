import assert from "node:assert/strict";
import { test } from "node:test";
import type { BtfComposite } from "../../../src/btf/types.js";
import { assemble } from "../../../src/isa/asm.js";
import { Kernel } from "../../../src/kernel/kernel.js";
import { type BpfStructOpsMap, bpfStructOpsVerifierTable } from "../../../src/kernel/struct_ops.js";
import { bpfStructOpsFind } from "../../../src/kernel/struct_ops_desc.js";
import { bpfTcpCaSubsystem } from "../../../src/subsys/tcp/bpf_tcp_ca.js";
import { TcpCongControl } from "../../../src/subsys/tcp/tcp_cong.js";
import { tcpReno } from "../../../src/subsys/tcp/tcp_reno.js";
import { type KernelAllocator, ManualClock, TCP_LAYOUTS, TcpSock } from "../../../src/subsys/tcp/tcp_sock.js";
import { BTF_KIND_STRUCT } from "../../../src/uapi/btf.js";
import { BpfError, EACCES, EEXIST, EINVAL, ENOTSUPP } from "../../../src/uapi/errno.js";
import { bpfCheck } from "../../../src/verifier/verifier.js";
import type { VmMemory } from "../../../src/vm/memory.js";
import { errno } from "../../kernel/struct_ops_util.js";
import {
  close,
  createMap,
  del,
  linkCreate,
  linkDetach,
  linkUpdate,
  loadProg,
  lookup,
  type Rig,
  update,
  Value,
  valueTypeOf,
} from "../dummy/struct_ops_fixture.js";

const CA = "tcp_congestion_ops";

interface TcpRig extends Rig {
  cong: TcpCongControl;
  clock: ManualClock;
  alloc: KernelAllocator;
}

function bootTcp(): TcpRig {
  const cong = new TcpCongControl(tcpReno());
  // bpf_tcp_ca declares the TCP types itself when no TCP subsystem did.
  const k = new Kernel({ subsystems: [bpfTcpCaSubsystem(() => cong)] });
  const mem = k.mem as VmMemory;
  const alloc: KernelAllocator = {
    alloc(size: number) {
      const region = mem.alloc(size, { perm: "rw", kind: "kobj", name: "tcp_sock" });
      return { view: mem.dv, offset: region.addr, addr: region.addr };
    },
  };
  return {
    k,
    proc: k.newProcess(),
    spy: { events: [], registered: new Map(), regs: 0, unregs: 0 },
    cong,
    clock: new ManualClock(),
    alloc,
  };
}

const off = (field: string) => TCP_LAYOUTS.get("tcp_sock")!.fields.get(field)!.offset;

/** init: snd_cwnd = cwnd; cong_avoid: snd_cwnd += 1; ssthresh: return ss; undo_cwnd: return snd_cwnd. */
function ccProgs(r: Rig, cwnd: number, ss = 7) {
  const c = off("snd_cwnd");
  return {
    init: loadProg(r, CA, "init", `ldxdw %r1, [%r1+0]\nstw [%r1+${c}], ${cwnd}\nmov %r0, 0\nexit`),
    cong_avoid: loadProg(
      r,
      CA,
      "cong_avoid",
      `ldxdw %r1, [%r1+0]\nldxw %r2, [%r1+${c}]\nadd %r2, 1\nstxw [%r1+${c}], %r2\nmov %r0, 0\nexit`,
    ),
    ssthresh: loadProg(r, CA, "ssthresh", `mov %r0, ${ss}\nexit`),
    undo_cwnd: loadProg(r, CA, "undo_cwnd", `ldxdw %r1, [%r1+0]\nldxw %r0, [%r1+${c}]\nexit`),
  };
}

function caValue(r: Rig, name: string, progs: Record<string, number>, flags = 0): Value {
  const v = new Value(r, CA).str("name", name).i32("flags", flags);
  for (const [m, fd] of Object.entries(progs)) v.u64(m, fd);
  return v;
}

test("tcp_congestion_ops value type: 256 bytes with data at 64 (as on the host kernel)", () => {
  const r = bootTcp();
  const vt = valueTypeOf(r, CA);
  assert.equal(vt.members[1].bitOffset, 512);
  assert.equal(
    vt.size,
    Math.ceil((64 + (r.k.btfVmlinux!.typeById(vt.members[1].type) as BtfComposite).size) / 64) * 64,
  );
});

test("legacy path: map update registers the BPF CC; a socket switches to it; delete unregisters; the socket pins the map", () => {
  const r = bootTcp();
  const fd = createMap(r, CA);
  assert.equal(update(r, fd, caValue(r, "bpf_legacy", ccProgs(r, 33))), 0);
  const ca = r.cong.tcp_ca_find("bpf_legacy");
  assert.ok(ca, "registered in tcp_cong");
  const sk = new TcpSock(r.clock, "s0", r.alloc);
  sk.sk_state = 1;
  r.cong.tcp_assign_congestion_control(sk);
  r.cong.tcp_set_congestion_control(sk, "bpf_legacy");
  assert.equal(sk.icsk_ca_ops, ca);
  assert.equal(sk.snd_cwnd, 33, "init ran in BPF");
  sk.icsk_ca_ops.cong_avoid!(sk, 0, 1);
  assert.equal(sk.snd_cwnd, 34);
  assert.equal(sk.icsk_ca_ops.ssthresh!(sk), 7);
  assert.equal(sk.icsk_ca_ops.undo_cwnd!(sk), 34);
  const size = valueTypeOf(r, CA).size;
  const v = lookup(r, fd, size);
  assert.equal(new DataView(v.buffer).getUint32(0, true), 2, "refcnt estimate: registration + one socket");
  assert.equal(del(r, fd), 0);
  assert.equal(r.cong.tcp_ca_find("bpf_legacy"), undefined, "unregistered");
  const map = r.proc.files.get(fd).private_data as BpfStructOpsMap;
  close(r, fd);
  r.k.quiesce();
  assert.equal(map.released, false, "the socket's reference keeps the map");
  sk.icsk_ca_ops.cong_avoid!(sk, 0, 1);
  assert.equal(sk.snd_cwnd, 35, "existing sockets keep running the old ops");
  r.cong.tcp_cleanup_congestion_control(sk);
  r.k.quiesce();
  assert.equal(map.released, true, "freed once the socket let go");
});

test("link path: register via LINK_CREATE, replace atomically with LINK_UPDATE, detach, close", () => {
  const r = bootTcp();
  const a = createMap(r, CA, { link: true });
  const b = createMap(r, CA, { link: true });
  const wrong = createMap(r, CA, { link: true });
  update(r, a, caValue(r, "bpf_ln", ccProgs(r, 11)));
  update(r, b, caValue(r, "bpf_ln", ccProgs(r, 22)));
  update(r, wrong, caValue(r, "bpf_wrong", ccProgs(r, 99)));
  assert.equal(r.cong.tcp_ca_find("bpf_ln"), undefined, "READY is not registered");
  const lfd = linkCreate(r, a);
  const caA = r.cong.tcp_ca_find("bpf_ln")!;
  const s1 = new TcpSock(r.clock, "s1", r.alloc);
  s1.sk_state = 1;
  r.cong.tcp_assign_congestion_control(s1);
  r.cong.tcp_set_congestion_control(s1, "bpf_ln");
  assert.equal(s1.snd_cwnd, 11);
  // update_wrong: another name -> EINVAL, nothing changes.
  assert.equal(
    errno(() => linkUpdate(r, lfd, wrong)),
    EINVAL,
  );
  assert.equal(r.cong.tcp_ca_find("bpf_ln"), caA);
  // update_ca: same name, swapped in one step.
  assert.equal(linkUpdate(r, lfd, b), 0);
  const caB = r.cong.tcp_ca_find("bpf_ln")!;
  assert.notEqual(caB, caA);
  const s2 = new TcpSock(r.clock, "s2", r.alloc);
  s2.sk_state = 1;
  r.cong.tcp_assign_congestion_control(s2);
  r.cong.tcp_set_congestion_control(s2, "bpf_ln");
  assert.equal(s2.snd_cwnd, 22, "new sockets get the new ops");
  s1.icsk_ca_ops.cong_avoid!(s1, 0, 1);
  assert.equal(s1.snd_cwnd, 12, "the old socket keeps the old ops");
  // A second link on a map whose name is registered -> EEXIST.
  assert.equal(
    errno(() => linkCreate(r, b)),
    EEXIST,
  );
  assert.equal(linkDetach(r, lfd), 0);
  assert.equal(r.cong.tcp_ca_find("bpf_ln"), undefined);
  const mapA = r.proc.files.get(a).private_data as BpfStructOpsMap;
  const mapB = r.proc.files.get(b).private_data as BpfStructOpsMap;
  for (const fd of [lfd, a, b, wrong]) close(r, fd);
  r.k.quiesce();
  assert.equal(mapA.released, false, "s1 pins map A");
  assert.equal(mapB.released, false, "s2 pins map B");
  r.cong.tcp_cleanup_congestion_control(s1);
  r.cong.tcp_cleanup_congestion_control(s2);
  r.k.quiesce();
  assert.equal(mapA.released, true);
  assert.equal(mapB.released, true);
});

test("init_member: name must be a valid non-empty object name; flags within TCP_CONG_MASK", () => {
  const r = bootTcp();
  const p = ccProgs(r, 1);
  const u = (v: Value) => errno(() => update(r, createMap(r, CA), v));
  assert.equal(u(caValue(r, "", p)), EINVAL);
  assert.equal(u(caValue(r, "bad-name", p)), EINVAL);
  assert.equal(u(caValue(r, "x".repeat(16), p)), EINVAL, "no NUL within 16 bytes");
  assert.equal(u(caValue(r, "ok", p, 0x80)), EINVAL);
  assert.equal(u(caValue(r, "ok", p, 0x3)), 0);
});

test("reg refuses a duplicate name (EEXIST); validate refuses missing required ops (EINVAL, incompl_cong_ops)", () => {
  const r = bootTcp();
  assert.equal(
    errno(() => update(r, createMap(r, CA), caValue(r, "reno", ccProgs(r, 1)))),
    EEXIST,
  );
  const { cong_avoid, ssthresh, init } = ccProgs(r, 1);
  assert.equal(
    errno(() => update(r, createMap(r, CA), caValue(r, "incompl", { cong_avoid, ssthresh, init }))),
    EINVAL,
  );
  // A link map is validated at update too, before it can become READY.
  assert.equal(
    errno(() => update(r, createMap(r, CA, { link: true }), caValue(r, "incompl", { cong_avoid, ssthresh }))),
    EINVAL,
  );
  assert.equal(r.cong.tcp_ca_find("incompl"), undefined);
});

test("owner, list and key must be zero in the value (MAPU-04)", () => {
  const r = bootTcp();
  const p = ccProgs(r, 1);
  assert.equal(
    errno(() => update(r, createMap(r, CA), caValue(r, "k1", p).i32("key", 5))),
    EINVAL,
  );
  assert.equal(
    errno(() => update(r, createMap(r, CA), caValue(r, "k2", p).u64("list", 1))),
    EINVAL,
  );
  const fd = createMap(r, CA);
  update(r, fd, caValue(r, "k3", p).u64("owner", 1));
  assert.equal(r.cong.tcp_ca_find("k3"), undefined, "a non-zero owner is rolled back");
});

test("get_info has no cfi stub: loading a program for it fails with ENOTSUPP (unsupp_cong_op)", () => {
  const r = bootTcp();
  let err: unknown;
  try {
    loadProg(r, CA, "get_info", "mov %r0, 0\nexit");
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof BpfError);
  assert.equal(err.errno, ENOTSUPP);
  assert.match(err.message, /attach to unsupported member get_info of struct tcp_congestion_ops/);
});

test("btf_struct_access: only whitelisted tcp_sock fields are writable", () => {
  const r = bootTcp();
  const btf = r.k.btfVmlinux!;
  const desc = bpfStructOpsFind(btf, btf.findByNameKind(CA, BTF_KIND_STRUCT))!;
  const access = desc.stOps.verifierOps!.btfStructAccess!;
  const tcpSock = btf.findByNameKind("tcp_sock", BTF_KIND_STRUCT);
  const sock = btf.findByNameKind("sock", BTF_KIND_STRUCT);
  const w = (id: number, o: number, size: number) => errno(() => access([], btf, id, o, size));
  assert.equal(w(tcpSock, off("snd_cwnd"), 4), 0);
  assert.equal(w(tcpSock, off("snd_ssthresh"), 4), 0);
  assert.equal(w(tcpSock, off("snd_cwnd"), 8), EACCES, "beyond the member");
  assert.equal(w(tcpSock, off("snd_una"), 4), EACCES, "no write support");
  const priv = off("inet_conn.icsk_ca_priv");
  assert.equal(w(tcpSock, priv + 16, 8), 0, "anywhere inside icsk_ca_priv");
  assert.equal(w(tcpSock, off("inet_conn.icsk_ack.pending"), 1), 0);
  assert.equal(w(sock, 0, 4), EACCES, "only read is supported");
  const log: string[] = [];
  assert.throws(() => access(log, btf, tcpSock, off("snd_una"), 4));
  assert.match(log[0], /no write support to tcp_sock at off/);
});

test("helpers: setsockopt/getsockopt are refused in release, allowed elsewhere", () => {
  const r = bootTcp();
  const btf = r.k.btfVmlinux!;
  const desc = bpfStructOpsFind(btf, btf.findByNameKind(CA, BTF_KIND_STRUCT))!;
  const proto = desc.stOps.verifierOps!.getFuncProto!;
  const idx = (m: string) => desc.type.members.findIndex((x) => x.name === m);
  const view = (m: string) => ({ type: 27, expectedAttachType: idx(m), attachBtfId: desc.typeId, sleepable: false });
  assert.equal(proto(49, view("release")), false);
  assert.equal(proto(57, view("release")), false);
  assert.equal(proto(49, view("init")), true);
  assert.equal(proto(116, view("release")), true, "tcp_send_ack");
  assert.equal(proto(1, view("init")), undefined, "base helpers are the core's");
});

test("verifier: a BPF CC may write snd_cwnd through its sock argument (promoted to tcp_sock), not snd_una", () => {
  const r = bootTcp();
  const btf = r.k.btfVmlinux!;
  const check = (member: string, asm: string) =>
    bpfCheck({
      insns: assemble(asm),
      progType: 27,
      expectedAttachType: (btf.typeById(btf.findByNameKind(CA, BTF_KIND_STRUCT)) as BtfComposite).members.findIndex(
        (m) => m.name === member,
      ),
      attachBtfId: btf.findByNameKind(CA, BTF_KIND_STRUCT),
      gpl: true,
      privileged: true,
      btf,
      structOps: bpfStructOpsVerifierTable(r.k),
    });
  const ok = check("init", `ldxdw %r1, [%r1+0]\nstw [%r1+${off("snd_cwnd")}], 10\nmov %r0, 0\nexit`);
  assert.equal(ok.error, undefined, ok.log);
  const bad = check("init", `ldxdw %r1, [%r1+0]\nstw [%r1+${off("snd_una")}], 10\nmov %r0, 0\nexit`);
  assert.equal(bad.error?.errno, EACCES);
  assert.match(bad.log, /no write support to tcp_sock at off/);
});

test("LINK_UPDATE to the map the link already has: success that changes nothing (no list re-insertion)", () => {
  const r = bootTcp();
  const a = createMap(r, CA, { link: true });
  const other = createMap(r, CA, { link: true });
  update(r, a, caValue(r, "bpf_same", ccProgs(r, 11)));
  update(r, other, caValue(r, "bpf_after", ccProgs(r, 12)));
  const lfd = linkCreate(r, a);
  const lother = linkCreate(r, other);
  const before = r.cong.tcp_get_available_congestion_control();
  const ca = r.cong.tcp_ca_find("bpf_same");
  const mapA = r.proc.files.get(a).private_data as BpfStructOpsMap;
  const refs = mapA.refcnt;
  assert.equal(linkUpdate(r, lfd, a), 0);
  assert.equal(r.cong.tcp_ca_find("bpf_same"), ca, "still the same registered ops");
  assert.equal(r.cong.tcp_get_available_congestion_control(), before, "the list is not reordered");
  assert.equal(mapA.refcnt, refs, "the new map's reference replaces the old one's");
  assert.equal(linkDetach(r, lfd), 0);
  assert.equal(r.cong.tcp_ca_find("bpf_same"), undefined);
  assert.ok(r.cong.tcp_ca_find("bpf_after"));
  close(r, lother);
});
