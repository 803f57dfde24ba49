/**
 * The tc and XDP packet helpers (net/core/filter.c): bpf/packet_helpers.bpf.c's programs run
 * through BPF_PROG_TEST_RUN and change the packet, the context and the verdict as 6.18 does
 * (checked here on the bytes, and against the host kernel's own test runs where it can run them);
 * bpf/packet_helpers_bad.bpf.c's programs are refused with 6.18's errno and messages.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import type { BpfProg } from "../../src/kernel/bpf.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { EACCES, EINVAL } from "../../src/uapi/errno.js";
import type { Tier, VmProgram } from "../../src/vm/index.js";
import { repoRoot } from "./helpers.js";
import { checkRefusals, compareWithHost, hostSkip } from "./object_verdicts.js";

const OBJ = join(repoRoot(), "bpf/obj/packet_helpers.bpf.o");
const BAD_OBJ = join(repoRoot(), "bpf/obj/packet_helpers_bad.bpf.o");

const BAD: [string, number, string[], number][] = [
  ["stale_after_store", EACCES, ["14: (71) r0 = *(u8 *)(r6 +0)", "R6 invalid mem access 'scalar'"], 14],
  ["stale_after_adjust_head", EACCES, ["8: (71) r0 = *(u8 *)(r6 +0)", "R6 invalid mem access 'scalar'"], 8],
  [
    "xdp_skb_helper",
    EINVAL,
    ["7: (85) call bpf_skb_store_bytes#9", "program of this type cannot use helper bpf_skb_store_bytes#9"],
    7,
  ],
  [
    "socket_store_bytes",
    EINVAL,
    ["7: (85) call bpf_skb_store_bytes#9", "program of this type cannot use helper bpf_skb_store_bytes#9"],
    7,
  ],
  ["load_into_packet", EACCES, ["8: (85) call bpf_skb_load_bytes#26", "helper access to the packet is not allowed"], 8],
  ["csum_diff_null", EACCES, ["5: (85) call bpf_csum_diff#28", "R1 type=scalar expected=fp"], 5],
];

test("packet_helpers_bad: stale packet pointers, foreign helpers, NULL memory refused as 6.18 does", () => {
  checkRefusals(BAD_OBJ, BAD);
});

test("packet_helpers_bad: the host kernel refuses them the same way", { skip: hostSkip() }, () => {
  compareWithHost(BAD_OBJ, [], BAD);
});

/** Ethernet + IPv4 (valid header checksum, 192.168.0.1 -> .2) + TCP (checksum 0x1234) + 6 bytes. */
function frame(l4 = 6): Uint8Array {
  const b = new Uint8Array(60);
  const dv = new DataView(b.buffer);
  b.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
  dv.setUint16(12, 0x0800);
  b[14] = 0x45;
  dv.setUint16(16, 46);
  b[22] = 64;
  b[23] = l4;
  dv.setUint32(26, 0xc0a80001);
  dv.setUint32(30, 0xc0a80002);
  dv.setUint16(24, ~onesSum(b.subarray(14, 34)) & 0xffff);
  dv.setUint16(34, 40000);
  dv.setUint16(36, 80);
  dv.setUint16(50, 0x1234);
  for (let i = 54; i < 60; i++) b[i] = i;
  return b;
}

/** RFC 1071: the folded ones' complement sum of big-endian 16-bit words. */
function onesSum(b: Uint8Array, seed = 0): number {
  let s = seed;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}
const be16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;

interface Run {
  retval: number;
  data: Uint8Array;
  ctx?: Uint8Array;
}

function rig() {
  const k = new Kernel({ verifier: true });
  const h = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(OBJ);
  obj.load(h);
  const run = (name: string, data: Uint8Array, ctx?: Uint8Array): Run => {
    const attr: Record<string, unknown> = {
      prog_fd: obj.findProgram(name)!.fd,
      data_in: data,
      data_size_in: data.length,
      data_out: new Uint8Array(data.length + 256),
      data_size_out: data.length + 256,
    };
    if (ctx) {
      const ctxOut = new Uint8Array(ctx.length);
      Object.assign(attr, { ctx_in: ctx, ctx_size_in: ctx.length, ctx_out: ctxOut, ctx_size_out: ctx.length });
    }
    assert.equal(k.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr), 0, name);
    const out = attr.data_out as Uint8Array;
    return {
      retval: (attr.retval as number) >>> 0,
      data: out.subarray(0, attr.data_size_out as number),
      ctx: attr.ctx_out as Uint8Array | undefined,
    };
  };
  const setTier = (tier: Tier): void => {
    for (const p of obj.programs) {
      const kp = h.process.files.get(p.fd).private_data as BpfProg;
      k.vm!.setTier(kp.vmProg as VmProgram, tier);
    }
  };
  return { run, setTier };
}

for (const tier of ["interp", "wasm"] as const) {
  test(`tc_nat (${tier}): address stored, IPv4 and TCP checksums fixed by the csum_replace helpers`, () => {
    const { run, setTier } = rig();
    setTier(tier);
    const before = frame();
    const r = run("tc_nat", before);
    assert.equal(r.retval, 2, "the old address's low byte");
    assert.deepEqual([...r.data.subarray(30, 34)], [10, 0, 0, 2]);
    assert.equal(onesSum(r.data.subarray(14, 34)), 0xffff, "the IPv4 header checksum holds");
    // RFC 1624: the TCP checksum covers the pseudo header's addresses.
    const expect = ~onesSum(new Uint8Array([0x3f, 0x57, 0xff, 0xfd, 10, 0, 0, 2]), ~0x1234 & 0xffff) & 0xffff;
    assert.equal(be16(r.data, 50), expect, "TCP checksum");
    const udp = run("tc_nat", frame(17));
    assert.equal(be16(udp.data, 50), 0x1234, "not TCP: the L4 checksum is left alone");
  });

  test(`xdp_adjust (${tier}): head, tail and metadata moved`, () => {
    const { run, setTier } = rig();
    setTier(tier);
    const f = frame();
    const r = run("xdp_adjust", f);
    assert.equal(r.retval, 2, "XDP_PASS");
    const dv = new DataView(r.data.buffer, r.data.byteOffset);
    assert.equal(dv.getUint32(0, true), 0xfeedf00d, "metadata before data");
    assert.equal(dv.getUint32(4, true), 62, "bpf_xdp_get_buff_len after -4 + 2 bytes");
    assert.equal(r.data.length, 8 + 62, "data_out runs from data_meta to data_end");
    assert.deepEqual([...r.data.subarray(8, 20)], [...f.subarray(0, 12)], "MAC addresses moved to the new head");
    assert.deepEqual([...r.data.subarray(20, 26)], [0x81, 0, 0, 0x2a, 8, 0], "802.1Q tag");
    assert.deepEqual([...r.data.subarray(26)], [...f.subarray(14, 58)], "the rest, two bytes trimmed");
  });
}

test("tc helpers: csum_diff, errors, resizing, adjust_room, change_proto, VLAN, hash, redirect", () => {
  const { run } = rig();
  const f = frame();
  const diff = run("tc_csum_diff", f);
  assert.deepEqual([...diff.data.subarray(26, 34)], [192, 168, 0, 1, 10, 0, 0, 2]);
  assert.equal(onesSum(diff.data.subarray(14, 34)), 0xffff, "checksum fixed from the folded diff");
  // The diff is the folded sum of ~old and new, in the words' memory order (little-endian).
  const words = [0x3f, 0x57, 0xff, 0xfe, 0x3f, 0x57, 0xff, 0xfd, 0xc0, 0xa8, 0, 1, 10, 0, 0, 2];
  const sum = onesSum(new Uint8Array(words));
  assert.equal(diff.retval, ((sum & 0xff) << 8) | (sum >>> 8));
  // Odd lengths: bpf_csum_diff sums bytes, not words (6.18's csum_from32to16 fold).
  assert.equal(run("tc_csum_odd", f).retval >>> 16, 0xfdfc);
  const errs = run("tc_errors", f);
  assert.equal(errs.retval, 0x3fff, "every error answered as the kernel does");
  assert.deepEqual(errs.data, f, "and nothing written");

  const eth = [2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 8, 0x88, 0xb5];
  const resized = run("tc_resize", f);
  assert.equal(resized.retval, 60 + 6 + 14 - 2);
  assert.deepEqual([...resized.data], [...eth, ...f, 0, 0, 0, 0], "head pushed, tail grown zeroed then trimmed");

  const room = run("tc_adjust_room", f);
  const tag = [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11];
  assert.equal(room.retval, 64);
  assert.deepEqual(
    [...room.data],
    [...f.subarray(0, 14), ...f.subarray(18, 34), ...tag, ...f.subarray(34)],
    "8 bytes after the IPv4 header, 4 taken after the MAC header",
  );

  const proto = run("tc_change_proto", f);
  assert.equal(proto.retval, (80 << 16) | 60, "IPv6 is 20 bytes longer");
  assert.deepEqual(proto.data, f);

  const vlan = run("tc_vlan", f);
  assert.equal(vlan.retval, (1 << 28) | (100 << 16) | (200 << 8) | 64, "present, tci, then the first tag in the frame");
  assert.deepEqual(vlan.data, f, "the popped tag leaves the frame as it was");

  assert.equal(run("tc_hash", f).retval, 1);
  const mark = (m: number) => {
    const c = new Uint8Array(192);
    c[8] = m;
    return c;
  };
  assert.equal(run("tc_redirect", f, mark(0)).retval, 7, "TC_ACT_REDIRECT");
  assert.equal(run("tc_redirect", f, mark(1)).retval, 2, "an unknown flag: TC_ACT_SHOT");
  assert.equal(run("sock_relative", f).retval, (64 << 16) | (1 << 8) | 0x45, "net, mac and data offsets");
  const xerr = run("xdp_errors", f);
  assert.equal(xerr.retval, 0x1ff);
  assert.deepEqual([...xerr.data], [7, 7, 7, 7, ...f.subarray(4), 0, 0, 0]);
  assert.equal(run("xdp_redirect", f).retval, 4, "XDP_REDIRECT");
});

const HOST_RUN = join(repoRoot(), "test/fixtures/verifier/host_test_run.py");
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

test("the host kernel's test runs give the same verdicts, packets and contexts", { skip: hostSkip() }, () => {
  const skbCtx = (mark: number) => {
    const c = new Uint8Array(192);
    c[8] = mark;
    return c;
  };
  const runs: [string, Uint8Array, Uint8Array?][] = [
    ...["tc_nat", "tc_csum_diff", "tc_csum_odd", "tc_errors", "tc_resize", "tc_adjust_room", "tc_change_proto"].map(
      (p): [string, Uint8Array, Uint8Array] => [p, frame(), skbCtx(0)],
    ),
    ["tc_vlan", frame(), skbCtx(0)],
    ["tc_hash", frame(), skbCtx(0)],
    ["tc_nat", frame(17)],
    ["tc_redirect", frame(), skbCtx(0)],
    ["tc_redirect", frame(), skbCtx(1)],
    ["sock_relative", frame()],
    ["xdp_adjust", frame()],
    ["xdp_errors", frame()],
    ["xdp_redirect", frame()],
  ];
  const out = spawnSync("python3", [HOST_RUN, OBJ], {
    encoding: "utf8",
    input: JSON.stringify(runs.map(([prog, data, ctx]) => ({ prog, data: hex(data), ctx: ctx ? hex(ctx) : "" }))),
  });
  assert.equal(out.status, 0, out.stderr);
  const host = JSON.parse(out.stdout) as { err: number; retval: number; data: string; ctx?: string }[];
  if (host.every((x) => x.err === -1)) return; // bpf() refused here (EPERM): nothing to compare
  const { run } = rig();
  runs.forEach(([prog, data, ctx], i) => {
    assert.equal(host[i].err, 0, `${prog}: the host's load or run failed`);
    const ours = run(prog, data, ctx);
    assert.equal(ours.retval, host[i].retval, `${prog}: retval`);
    assert.equal(hex(ours.data), host[i].data, `${prog}: data_out`);
    if (ctx) assert.equal(hex(ours.ctx!), host[i].ctx, `${prog}: ctx_out`);
  });
});
