/**
 * Direct packet access on our own programs: bpf/packet.bpf.c's XDP and tc parsers verify and,
 * run through BPF_PROG_TEST_RUN in each VM tier, read and rewrite real packet bytes;
 * bpf/packet_bad.bpf.c's programs are refused with 6.18's errno and messages, compared with the
 * host kernel where it can load them.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { BpfProg } from "../../src/kernel/bpf.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { BpfError, EACCES, EINVAL, ENOSPC } from "../../src/uapi/errno.js";
import type { Tier, VmProgram } from "../../src/vm/index.js";
import { repoRoot } from "./helpers.js";

const OBJ = join(repoRoot(), "bpf/obj/packet.bpf.o");
const BAD_OBJ = join(repoRoot(), "bpf/obj/packet_bad.bpf.o");
const LD_ABS_OBJ = join(repoRoot(), "bpf/obj/ld_abs.bpf.o");

/** packet_bad.bpf.c: errno and the log's last two lines, as Linux 6.18 gives them. */
const BAD: [string, number, string[]][] = [
  [
    "no_bounds_check",
    EACCES,
    ["invalid access to packet, off=12 size=2, R1(id=0,off=12,r=0)", "R1 offset is outside of the packet"],
  ],
  [
    "check_too_short",
    EACCES,
    ["invalid access to packet, off=23 size=1, R1(id=0,off=23,r=14)", "R1 offset is outside of the packet"],
  ],
  [
    "variable_offset_unchecked",
    EACCES,
    ["invalid access to packet, off=16 size=2, R2(id=1,off=16,r=0)", "R2 offset is outside of the packet"],
  ],
  ["write_xdp_md", EACCES, ["1: (63) *(u32 *)(r1 +0) = r2", "invalid bpf_context access off=0 size=4"]],
  ["socket_reads_data", EACCES, ["1: (61) r2 = *(u32 *)(r1 +80)", "invalid bpf_context access off=80 size=4"]],
  ["cgroup_skb_writes", EACCES, ["6: (73) *(u8 *)(r1 +0) = r2", "cannot write into packet"]],
  ["pkt_end_arithmetic", EACCES, ["2: (07) r1 += -4", "R1 pointer arithmetic on pkt_end prohibited"]],
  ["write_data_end", EACCES, ["3: (63) *(u32 *)(r1 +80) = r2", "invalid bpf_context access off=80 size=4"]],
];

function loadBad(name: string, path = BAD_OBJ): { errno: number; log: string[] } {
  const k = new Kernel({ verifier: true });
  const h = { kernel: k, process: k.newProcess() };
  const lines: string[] = [];
  const obj = BpfObject.open(path, { print: (_l, m) => lines.push(m) });
  for (const p of obj.programs) p.setAutoload(p.name === name);
  try {
    obj.load(h);
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    const text = lines.join("");
    const body = text.slice(text.indexOf("-- BEGIN PROG LOAD LOG --") + 25, text.indexOf("-- END PROG LOAD LOG --"));
    const log = body.split("\n").filter((l) => l && !l.startsWith("processed") && !l.startsWith(";"));
    return { errno: (e.context?.errno as number | undefined) ?? e.errno, log };
  }
  return { errno: 0, log: [] };
}

test("packet_bad: each rule refused with 6.18's errno and messages", () => {
  for (const [name, errno, last] of BAD) {
    const r = loadBad(name);
    assert.equal(r.errno, errno, `${name}: errno (log: ${r.log.slice(-2).join(" / ")})`);
    assert.deepEqual(r.log.slice(-2), last, name);
  }
});

/** A frame: Ethernet (IPv4 or not), IPv4 with `optWords` words of options, TCP to `dport`. */
function frame(dport: number, opts: { ipv4?: boolean; optWords?: number; ttl?: number } = {}): Uint8Array {
  const ihl = 5 + (opts.optWords ?? 0);
  const b = new Uint8Array(14 + ihl * 4 + 20 + 4);
  const dv = new DataView(b.buffer);
  b.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
  dv.setUint16(12, opts.ipv4 === false ? 0x86dd : 0x0800);
  b[14] = 0x40 | ihl;
  b[14 + 8] = opts.ttl ?? 64;
  b[14 + 9] = 6;
  const tcp = 14 + ihl * 4;
  dv.setUint16(tcp, 40000);
  dv.setUint16(tcp + 2, dport);
  return b;
}

interface RunAttr {
  prog_fd: number;
  data_in: Uint8Array;
  data_size_in: number;
  data_out?: Uint8Array;
  data_size_out?: number;
  ctx_in?: Uint8Array;
  ctx_size_in?: number;
  ctx_out?: Uint8Array;
  ctx_size_out?: number;
  retval?: number;
}

function rig(path = OBJ) {
  const k = new Kernel({ verifier: true });
  const h = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(path);
  obj.load(h);
  const run = (name: string, data: Uint8Array, extra: Partial<RunAttr> = {}): RunAttr => {
    const attr: RunAttr = {
      prog_fd: obj.findProgram(name)!.fd,
      data_in: data,
      data_size_in: data.length,
      data_out: new Uint8Array(data.length),
      ...extra,
    };
    assert.equal(k.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr), 0, name);
    return attr;
  };
  const setTier = (tier: Tier): void => {
    for (const p of obj.programs) {
      if (p.fd < 0) continue;
      const kp = h.process.files.get(p.fd).private_data as BpfProg;
      k.vm!.setTier(kp.vmProg as VmProgram, tier);
    }
  };
  return { k, h, obj, run, setTier };
}

for (const tier of ["interp", "jit", "wasm"] as const) {
  test(`xdp_parse (${tier}): headers at a variable offset, TTL rewritten in the frame`, () => {
    const { run, setTier } = rig();
    setTier(tier);
    const web = frame(80, { optWords: 2 });
    const r = run("xdp_parse", web);
    assert.equal(r.retval, 3, "XDP_TX");
    assert.equal(r.data_size_out, web.length);
    assert.equal(r.data_out![14 + 8], 63, "TTL decremented in place");
    assert.equal(web[14 + 8], 64, "data_in untouched");
    assert.equal(run("xdp_parse", frame(443)).retval, 2, "XDP_PASS: another port");
    assert.equal(run("xdp_parse", frame(80, { ipv4: false })).retval, 2, "XDP_PASS: not IPv4");
    // The TCP header ends past data_end: the program's own check passes the frame.
    assert.equal(run("xdp_parse", frame(80).subarray(0, 14 + 20 + 10)).retval, 2);
  });

  test(`xdp_meta (${tier}): metadata in front of data, from ctx_in`, () => {
    const { run, setTier } = rig();
    setTier(tier);
    const pkt = frame(80);
    const withMeta = new Uint8Array(4 + pkt.length);
    new DataView(withMeta.buffer).setUint32(0, 0xfeed, true);
    withMeta.set(pkt, 4);
    const md = new Uint8Array(24);
    const mv = new DataView(md.buffer);
    mv.setUint32(0, 4, true); // data: the metadata's length
    mv.setUint32(4, withMeta.length, true); // data_end
    const ctxOut = new Uint8Array(24);
    const r = run("xdp_meta", withMeta, { ctx_in: md, ctx_size_in: 24, ctx_out: ctxOut, ctx_size_out: 24 });
    assert.equal(r.retval, 2, "XDP_PASS");
    assert.deepEqual(r.data_out, withMeta, "data_out starts at data_meta");
    assert.equal(new DataView(ctxOut.buffer).getUint32(0, true), 4, "ctx_out.data: offset from data_meta");
    assert.equal(run("xdp_meta", pkt).retval, 0, "no metadata: XDP_ABORTED");
  });

  test(`tc_parse (${tier}): __sk_buff fields and a port rewritten`, () => {
    const { run, setTier } = rig();
    setTier(tier);
    const ssh = frame(22);
    const ctxIn = new Uint8Array(192);
    const ctxOut = new Uint8Array(192);
    const r = run("tc_parse", ssh, { ctx_in: ctxIn, ctx_size_in: 192, ctx_out: ctxOut, ctx_size_out: 192 });
    assert.equal(r.retval, 0, "TC_ACT_OK");
    assert.equal(new DataView(r.data_out!.buffer).getUint16(14 + 20 + 2), 2222, "destination port rewritten");
    const cv = new DataView(ctxOut.buffer);
    assert.equal(cv.getUint32(8, true), 22, "mark");
    assert.equal(cv.getUint32(48, true), ssh.length, "cb[0] = len (tc sees the frame from its Ethernet header)");
    assert.equal(run("tc_parse", frame(22, { ipv4: false })).retval, 2, "TC_ACT_SHOT");
  });
}

for (const tier of ["interp", "jit", "wasm"] as const) {
  test(`LD_ABS/LD_IND (${tier}): network byte order from the skb, a load past the end returns 0`, () => {
    const { run, setTier } = rig(LD_ABS_OBJ);
    setTier(tier);
    // A socket filter's offsets start at the network header; SKF_LL_OFF reaches the Ethernet one.
    assert.equal(run("sock_ld_abs", frame(80)).retval, (6 << 16) | 0x0800);
    assert.equal(run("tc_ld_ind", frame(8080, { optWords: 1 })).retval, 8080);
    assert.equal(run("tc_ld_past_end", frame(80)).retval, 0);
  });
}

test("LD_ABS in an XDP program: refused, only socket filters and tc have an skb", () => {
  const r = loadBad("xdp_ld_abs", LD_ABS_OBJ);
  assert.equal(r.errno, EINVAL);
  assert.deepEqual(r.log.slice(-2), [
    "1: (30) r0 = *(u8 *)skb[0]",
    "BPF_LD_[ABS|IND] instructions not allowed for this program type",
  ]);
});

test("test_run: __sk_buff fields the caller may not set, data_out too small", () => {
  const { k, h, obj } = rig();
  const fd = obj.findProgram("tc_parse")!.fd;
  const data = frame(22);
  const ctx = new Uint8Array(192);
  ctx[0] = 1; // len
  assert.throws(
    () =>
      k.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, {
        prog_fd: fd,
        data_in: data,
        data_size_in: data.length,
        ctx_in: ctx,
        ctx_size_in: 192,
      }),
    (e: BpfError) => e.errno === EINVAL,
  );
  const attr: RunAttr = {
    prog_fd: fd,
    data_in: data,
    data_size_in: data.length,
    data_out: new Uint8Array(10),
    data_size_out: 10,
  };
  assert.throws(
    () => k.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr),
    (e: BpfError) => e.errno === ENOSPC,
  );
  assert.equal(attr.data_size_out, data.length, "the packet's size is reported");
  assert.equal(attr.retval, 0, "the program ran");
  assert.throws(
    () => k.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, { prog_fd: fd, data_in: data, data_size_in: 13 }),
    (e: BpfError) => e.errno === EINVAL,
  );
});

const HOST_LOADER = join(repoRoot(), "test/fixtures/verifier/host_libbpf_load.py");

function hostSkip(): string | false {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "needs root for bpf(2)";
  if (!existsSync("/sys/kernel/btf/vmlinux")) return "no /sys/kernel/btf/vmlinux";
  const py = spawnSync("python3", ["-c", "import ctypes; ctypes.CDLL('libbpf.so.1')"], { encoding: "utf8" });
  if (py.status !== 0) return "python3 or libbpf.so.1 missing";
  return false;
}

test("the host kernel accepts packet.bpf.c and refuses packet_bad.bpf.c the same way", { skip: hostSkip() }, () => {
  const run = (obj: string, progs: string[]) => {
    const out = spawnSync("python3", [HOST_LOADER, obj, ...progs], { encoding: "utf8", maxBuffer: 1 << 26 });
    assert.equal(out.status, 0, out.stderr);
    return JSON.parse(out.stdout) as { prog: string; err: number; log: string }[];
  };
  const good = run(OBJ, ["xdp_parse", "xdp_meta", "tc_parse"]);
  if (good.every((g) => g.err === -1)) return; // bpf() refused here (EPERM): nothing to compare
  for (const g of good) assert.equal(g.err, 0, `${g.prog}: the host refused it:\n${g.log.slice(-300)}`);
  const bad = run(
    BAD_OBJ,
    BAD.map((b) => b[0]),
  );
  bad.forEach((r, i) => {
    const [name, errno, last] = BAD[i];
    assert.equal(r.err, -errno, `${name}: host errno`);
    const lines = r.log.split("\n").filter((l) => l && !l.startsWith("processed") && !l.startsWith(";"));
    assert.deepEqual(lines.slice(-2), last, `${name}: host messages`);
  });
});

const HOST_RUN = join(repoRoot(), "test/fixtures/verifier/host_test_run.py");
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

test("the host kernel's test runs give the same verdicts, packets and contexts", { skip: hostSkip() }, () => {
  const md = new Uint8Array(24);
  const pkt = frame(80);
  const withMeta = new Uint8Array(4 + pkt.length);
  new DataView(withMeta.buffer).setUint32(0, 0xfeed, true);
  withMeta.set(pkt, 4);
  new DataView(md.buffer).setUint32(0, 4, true);
  new DataView(md.buffer).setUint32(4, withMeta.length, true);
  const runs: [string, string, Uint8Array, Uint8Array?][] = [
    [OBJ, "xdp_parse", frame(80, { optWords: 2 })],
    [OBJ, "xdp_parse", frame(443)],
    [OBJ, "xdp_meta", withMeta, md],
    [OBJ, "tc_parse", frame(22), new Uint8Array(192)],
    [OBJ, "tc_parse", frame(22, { ipv4: false })],
    [LD_ABS_OBJ, "sock_ld_abs", frame(80)],
    [LD_ABS_OBJ, "tc_ld_ind", frame(8080, { optWords: 1 })],
    [LD_ABS_OBJ, "tc_ld_past_end", frame(80)],
  ];
  for (const [path, prog, data, ctx] of runs) {
    const out = spawnSync("python3", [HOST_RUN, path], {
      encoding: "utf8",
      input: JSON.stringify([{ prog, data: hex(data), ctx: ctx ? hex(ctx) : "" }]),
    });
    assert.equal(out.status, 0, out.stderr);
    const [host] = JSON.parse(out.stdout) as { err: number; retval: number; data: string; ctx?: string }[];
    if (host.err === -1) return; // bpf() refused here (EPERM): nothing to compare
    assert.equal(host.err, 0, `${prog}: the host's load or run failed`);
    const { run } = rig(path);
    const ctxOut = ctx ? new Uint8Array(ctx.length) : undefined;
    const ours = run(
      prog,
      data,
      ctx ? { ctx_in: ctx, ctx_size_in: ctx.length, ctx_out: ctxOut, ctx_size_out: ctx.length } : {},
    );
    assert.equal(ours.retval, host.retval, `${prog}: retval`);
    assert.equal(hex(ours.data_out!.subarray(0, ours.data_size_out)), host.data, `${prog}: data_out`);
    if (ctxOut) assert.equal(hex(ctxOut), host.ctx, `${prog}: ctx_out`);
  }
});
