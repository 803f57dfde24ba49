import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/builder.js";
import { decodeInsns, encodeInsns, type Insn, ldImm64 } from "../../src/isa/insn.js";
import type { MapCreateAttr } from "../../src/kernel/bpf_attr.js";
import { CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON, CAP_SYS_ADMIN } from "../../src/kernel/capability.js";
import {
  BPF_F_NO_PREALLOC,
  BPF_F_RDONLY,
  BPF_F_RDONLY_PROG,
  BPF_F_WRONLY,
  BPF_F_WRONLY_PROG,
  BPF_F_ZERO_SEED,
  bpf_cmd,
  bpf_map_type,
} from "../../src/uapi/bpf.js";
import { BTF_KIND_STRUCT } from "../../src/uapi/btf.js";
import { BpfError, EINVAL } from "../../src/uapi/errno.js";
import { boot as bootDummy, valueTypeOf } from "../subsys/dummy/struct_ops_fixture.js";
import { host, hostOps, type MapOp, mapCreateBytes, ourOps, skip } from "./host_oracle.js";
import { boot, userBtf } from "./util.js";

const VMLINUX = "/sys/kernel/btf/vmlinux";

test("MAP_CREATE errnos equal the host kernel's for a table of valid and invalid attributes", { skip }, () => {
  const T = bpf_map_type;
  const A = { map_type: T.BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: 8, max_entries: 4 };
  const H = { ...A, map_type: T.BPF_MAP_TYPE_HASH };
  const cases: (MapCreateAttr & { tail?: [number, number] })[] = [
    A,
    H,
    { ...H, map_flags: BPF_F_NO_PREALLOC },
    { ...A, key_size: 8 },
    { ...A, max_entries: 0 },
    { ...A, value_size: 0 },
    { ...A, map_flags: BPF_F_NO_PREALLOC },
    { ...A, map_flags: BPF_F_RDONLY | BPF_F_WRONLY },
    { ...A, map_flags: BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG },
    { ...A, map_flags: BPF_F_RDONLY_PROG },
    { ...A, map_flags: 1 << 30 },
    { ...H, key_size: 0 },
    { ...H, max_entries: 0 },
    { ...H, map_flags: 1 << 30 },
    { ...H, map_flags: BPF_F_ZERO_SEED },
    { ...H, map_extra: 1 },
    { ...A, map_name: "bad-name" },
    { ...A, map_name: "sixteen_chars_xx" },
    { ...A, map_name: "fifteen_chars_x" },
    { ...A, map_type: 999 },
    { ...A, map_type: T.BPF_MAP_TYPE_SK_STORAGE, max_entries: 0, map_flags: BPF_F_NO_PREALLOC },
    { ...A, btf_key_type_id: 1 },
    { ...A, btf_vmlinux_value_type_id: 1 },
    { ...A, btf_key_type_id: 1, btf_value_type_id: 1 }, // btf_fd 0: stdin, not a BTF
    { ...A, tail: [100, 1] },
  ];
  for (const c of cases) {
    const { k, p } = boot();
    let ours = 0;
    try {
      const { tail: _tail, ...attr } = c;
      const extra = c.tail ? { extra: { [`byte${c.tail[0]}`]: c.tail[1] } } : {};
      k.bpf(p, bpf_cmd.BPF_MAP_CREATE, { ...attr, ...extra });
    } catch (e) {
      if (!(e instanceof BpfError)) throw e;
      ours = -e.errno;
    }
    assert.equal(ours, host(bpf_cmd.BPF_MAP_CREATE, mapCreateBytes(c)), JSON.stringify(c));
  }
});

test("element commands on ARRAY and HASH give the host kernel's results and errnos, step by step", { skip }, () => {
  const T = bpf_map_type;
  const k1 = "01000000";
  const k2 = "02000000";
  const k3 = "03000000";
  const k9 = "09000000";
  const v = (n: number) => `${n.toString(16).padStart(2, "0")}00000000000000`;
  const seqs: MapOp[][] = [
    [
      ["create", T.BPF_MAP_TYPE_ARRAY, 4, 8, 2, 0],
      ["lookup", k1],
      ["update", k1, v(5), 0],
      ["update", k1, v(6), 1],
      ["update", k1, v(7), 2],
      ["update", k2, v(7), 0],
      ["update", k1, v(7), 3],
      ["update", k1, v(7), 4],
      ["lookup", k1],
      ["lookup", k9],
      ["delete", k1],
      ["next", null],
      ["next", "00000000"],
      ["next", k1],
      ["next", k9],
      ["freeze"],
      ["update", k1, v(8), 0],
      ["freeze"],
      ["lookup", k1],
    ],
    ...[BPF_F_RDONLY, BPF_F_WRONLY, BPF_F_RDONLY_PROG].map((flags): MapOp[] => [
      ["create", T.BPF_MAP_TYPE_ARRAY, 4, 8, 2, flags],
      ["update", k1, v(5), 0],
      ["lookup", k1],
      ["next", null],
      ["delete", k1],
      ["freeze"],
      ["update", k1, v(6), 0],
      ["lookup", k1],
    ]),
    ...[0, BPF_F_NO_PREALLOC].map((flags): MapOp[] => [
      ["create", T.BPF_MAP_TYPE_HASH, 4, 8, 2, flags],
      ["lookup", k1],
      ["next", null],
      ["update", k1, v(1), 2],
      ["update", k1, v(1), 1],
      ["update", k1, v(2), 1],
      ["update", k1, v(3), 2],
      ["update", k2, v(4), 0],
      ["update", k3, v(5), 0],
      ["update", k2, v(6), 0],
      ["update", k3, v(5), 4],
      ["lookup", k1],
      ["lookup", k2],
      ["delete", k9],
      ["delete", k1],
      ["delete", k1],
      ["update", k3, v(5), 1],
      ["next", k9],
    ]),
  ];
  for (const seq of seqs) {
    const ours = ourOps(seq);
    const theirs = hostOps(seq);
    // A hash map's key order follows its buckets in the kernel: the last step (a key that is not
    // there restarts the walk) must succeed in both, whichever key comes first.
    if (seq[0][1] === T.BPF_MAP_TYPE_HASH) {
      const last = ours.length - 1;
      assert.deepEqual(ours.slice(0, last), theirs.slice(0, last), JSON.stringify(seq));
      assert.equal((ours[last] as unknown[])[0], 0);
      assert.equal((theirs[last] as unknown[])[0], 0);
    } else {
      assert.deepEqual(ours, theirs, JSON.stringify(seq));
    }
  }
});

test("PROG_LOAD errnos equal the host kernel's (socket filters, with our verifier on)", { skip }, () => {
  const hex = (insns: Insn[]) => Buffer.from(encodeInsns(insns)).toString("hex");
  const ret0 = hex([
    { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
    { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
  ]);
  const ldMap = (imm: number, hi = 0) => {
    const [a, b] = ldImm64(1, 0n, 1);
    return hex([{ ...a, imm }, { ...b, imm: hi }, ...decodeInsns(Buffer.from(ret0, "hex"))]);
  };
  const seq: MapOp[] = [
    ["create", bpf_map_type.BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0],
    ["prog", 1, ret0, "GPL", "ok", 0],
    ["prog", 1, ret0, "Proprietary", "ok", 0],
    ["prog", 1, "", "GPL", "ok", 0],
    ["prog", 1, ret0, "GPL", "bad-name", 0],
    ["prog", 1, ret0, "GPL", "sixteen_chars_xx", 0],
    ["prog", 1, ret0, "GPL", "ok", 1 << 20],
    ["prog", 999, ret0, "GPL", "ok", 0],
    ["prog", 1, ldMap(0x7fffffff), "GPL", "map", 0],
    ["prog", 1, ldMap(77), "GPL", "badfd", 0],
    ["prog", 1, ldMap(0x7fffffff, 1), "GPL", "hi", 0],
    ["prog", 1, ret0.slice(0, 16), "GPL", "noexit", 0],
    ["prog", 1, ret0, "GPL", "sleepy", 16],
    ["prog", 26, ret0, "GPL", "notarget", 0],
  ];
  assert.deepEqual(ourOps(seq), hostOps(seq));
});

test("program fdinfo equals the host kernel's (type, jited, tag, memlock, counters, verified_insns)", { skip }, () => {
  const insns = [
    { code: 0xb7, dst: 0, src: 0, off: 0, imm: 3 },
    { code: 0x07, dst: 0, src: 0, off: 0, imm: 4 },
    { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
  ];
  const r = spawnSync(
    "python3",
    [
      "-c",
      `import ctypes,struct
libc=ctypes.CDLL(None,use_errno=True)
ins=bytes.fromhex("${Buffer.from(encodeInsns(insns)).toString("hex")}")
ib=ctypes.create_string_buffer(ins,len(ins));lb=ctypes.create_string_buffer(b"GPL")
a=struct.pack("<IIQQ",1,len(ins)//8,ctypes.addressof(ib),ctypes.addressof(lb)).ljust(128,b"\\0")
fd=libc.syscall(321,5,ctypes.create_string_buffer(a,128),128)
print(open(f"/proc/self/fdinfo/{fd}").read(),end="")`,
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  const { k, p } = boot({ verifier: true });
  const fd = k.bpf(p, bpf_cmd.BPF_PROG_LOAD, { prog_type: 1, insns, insn_cnt: 3, license: "GPL" });
  const lines = (t: string) =>
    t
      .trimEnd()
      .split("\n")
      .filter((l) => !/^(pos|mnt_id|ino|prog_id):/.test(l));
  assert.deepEqual(lines(k.fdinfo(p, fd)), lines(r.stdout));
});

test("SK_STORAGE creation errnos equal the host kernel's", { skip }, () => {
  const SK = bpf_map_type.BPF_MAP_TYPE_SK_STORAGE;
  const NP = BPF_F_NO_PREALLOC;
  // userBtf(): [1] int, [2] long, [3] struct val { long a; }
  const btf = Buffer.from(userBtf()).toString("hex");
  const seq: MapOp[] = [
    ["btf", btf],
    ["create_btf", SK, 4, 8, 0, NP, 1, 3],
    ["create_btf", SK, 4, 8, 0, 0, 1, 3],
    ["create_btf", SK, 4, 8, 1, NP, 1, 3],
    ["create_btf", SK, 8, 8, 0, NP, 1, 3],
    ["create_btf", SK, 4, 0, 0, NP, 1, 3],
    ["create_btf", SK, 4, 8, 0, NP, 0, 3],
    ["create_btf", SK, 4, 8, 0, NP, 2, 3],
    ["create_btf", SK, 4, 8, 0, NP | (1 << 9), 1, 3],
    ["create_btf", SK, 4, 8, 0, NP | (1 << 3), 1, 3],
    ["create_btf", SK, 4, 1 << 16, 0, NP, 1, 3],
    ["create_btf", bpf_map_type.BPF_MAP_TYPE_HASH, 4, 8, 4, 0, 1, 3],
    ["create_btf", bpf_map_type.BPF_MAP_TYPE_HASH, 4, 8, 4, 0, 2, 3],
    ["create_btf", bpf_map_type.BPF_MAP_TYPE_HASH, 4, 4, 4, 0, 1, 3],
    ["create_btf", bpf_map_type.BPF_MAP_TYPE_HASH, 4, 8, 4, 0, 0, 3],
    ["create_btf", bpf_map_type.BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0, 1, 2],
    ["create_btf", bpf_map_type.BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0, 1, 99],
    ["create_btf", SK, 4, 4, 0, NP, 1, 3],
  ];
  assert.deepEqual(ourOps(seq), hostOps(seq));
});

test("global-data BTF (keyless DATASEC arrays) and array key types: errnos equal the host kernel's", { skip }, () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, 1); // [1]
  const x = b.addVar("x", int, 1); // [2]
  b.addDatasec(".rodata", 8, [{ type: x, offset: 0, size: 4 }]); // [3]
  b.addTypedef("u32_t", int); // [4]
  b.addInt("short", 2, 1); // [5]
  const blob = Buffer.from(b.build()).toString("hex");
  const A = bpf_map_type.BPF_MAP_TYPE_ARRAY;
  const seq: MapOp[] = [
    ["btf", blob],
    ["create_btf", A, 4, 8, 1, 0, 0, 3],
    ["create_btf", A, 4, 8, 2, 0, 0, 3],
    ["create_btf", A, 4, 4, 1, 0, 0, 3],
    ["create_btf", bpf_map_type.BPF_MAP_TYPE_HASH, 4, 8, 1, 0, 0, 3],
    ["create_btf", A, 4, 4, 3, 0, 4, 1],
    ["create_btf", A, 4, 4, 3, 0, 1, 4],
    ["create_btf", A, 4, 8, 1, 0, 1, 3],
    ["create_btf", A, 2, 4, 3, 0, 5, 1],
    ["create_btf", A, 4, 4, 3, 0, 2, 1],
  ];
  assert.deepEqual(ourOps(seq), hostOps(seq));
});

test("BTF_LOAD errnos equal the host kernel's for good, truncated and corrupted blobs", { skip }, () => {
  const good = Buffer.from(userBtf());
  const badMagic = Buffer.from(good);
  badMagic[0] ^= 0xff;
  const badVersion = Buffer.from(good);
  badVersion[2] = 9;
  const badStrLen = Buffer.from(good);
  badStrLen.writeUInt32LE(badStrLen.readUInt32LE(20) + 1000, 20);
  const badFlags = Buffer.from(good);
  badFlags[3] = 1;
  const bigEndian = Buffer.from(good);
  bigEndian.writeUInt16BE(0xeb9f, 0);
  const longHdr = Buffer.concat([
    good.subarray(0, 4),
    Buffer.from([28, 0, 0, 0]),
    good.subarray(8, 24),
    Buffer.from([0, 0, 0, 1]),
    good.subarray(24),
  ]);
  const blobs = [
    good,
    good.subarray(0, 6),
    good.subarray(0, 20),
    good.subarray(0, 24),
    good.subarray(0, good.length - 3),
    badMagic,
    badVersion,
    badFlags,
    bigEndian,
    longHdr,
    badStrLen,
  ];
  for (const blob of blobs) {
    const seq: MapOp[] = [["btf", blob.toString("hex")]];
    assert.deepEqual(ourOps(seq), hostOps(seq), blob.toString("hex").slice(0, 48));
  }
});

test("PROG_TEST_RUN of a syscall program equals the host kernel's: retval, ctx written back, errnos", { skip }, () => {
  const hex = (insns: Insn[]) => Buffer.from(encodeInsns(insns)).toString("hex");
  // r2 = *(u64 *)(r1 + 0); r2 += 5; *(u64 *)(r1 + 8) = r2; r0 = r2; exit
  const prog = hex([
    { code: 0x79, dst: 2, src: 1, off: 0, imm: 0 },
    { code: 0x07, dst: 2, src: 0, off: 0, imm: 5 },
    { code: 0x7b, dst: 1, src: 2, off: 8, imm: 0 },
    { code: 0xbf, dst: 0, src: 2, off: 0, imm: 0 },
    { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
  ]);
  const ctx = Buffer.alloc(16);
  ctx.writeBigUInt64LE(37n, 0);
  const seq: MapOp[] = [
    ["create", bpf_map_type.BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0],
    ["prog", 31, prog, "GPL", "notsleepable", 0],
    ["prog", 31, prog, "GPL", "sys", 16],
    ["testrun", ctx.toString("hex"), 0, 0],
    ["testrun", ctx.toString("hex"), 2, 0],
    ["testrun", ctx.toString("hex"), 0, 16],
  ];
  assert.deepEqual(ourOps(seq), hostOps(seq));
});

test("LINK_CREATE / LINK_UPDATE / LINK_DETACH errnos on bad fds and kinds equal the host kernel's", { skip }, () => {
  const ret0 = Buffer.from(
    encodeInsns([
      { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
      { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
    ]),
  ).toString("hex");
  const L = bpf_cmd;
  const seq: MapOp[] = [
    ["create", bpf_map_type.BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0],
    ["prog", 1, ret0, "GPL", "f", 0],
    ["link", L.BPF_LINK_DETACH, "none", 0, 0, 0],
    ["link", L.BPF_LINK_DETACH, "map", 0, 0, 0],
    ["link", L.BPF_LINK_DETACH, "prog", 0, 0, 0],
    ["link", L.BPF_LINK_DETACH, "map", 1, 0, 0],
    ["link", L.BPF_LINK_UPDATE, "map", 0, 1, 0],
    ["link", L.BPF_LINK_UPDATE, "prog", 0, 0, 0],
    ["link", L.BPF_LINK_UPDATE, "none", 0, 0, 0],
    ["link", L.BPF_LINK_CREATE, "prog", 0, 37, 0],
    ["link", L.BPF_LINK_CREATE, "none", 0, 37, 0],
    ["link", L.BPF_LINK_CREATE, "map", 0, 37, 0],
    ["link", L.BPF_LINK_CREATE, "map", 0, 44, 0],
  ];
  assert.deepEqual(ourOps(seq), hostOps(seq));
});

test("capabilities: the host kernel and ours refuse and allow the same things for the same capability sets", {
  skip,
}, () => {
  const ret0 = Buffer.from(
    encodeInsns([
      { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
      { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
    ]),
  ).toString("hex");
  const A = bpf_map_type;
  const P = { SOCKET_FILTER: 1, KPROBE: 2, XDP: 6, TRACEPOINT: 5 };
  const round = (caps: number[]): MapOp[] => [
    ["caps", caps],
    ["create", A.BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0],
    ["create", A.BPF_MAP_TYPE_HASH, 4, 8, 1, 0],
    ["prog", P.SOCKET_FILTER, ret0, "GPL", "f", 0],
    ["prog", P.KPROBE, ret0, "GPL", "kp", 0],
    ["prog", P.TRACEPOINT, ret0, "GPL", "tp", 0],
    ["prog", P.XDP, ret0, "GPL", "xdp", 0],
    ["nextid", bpf_cmd.BPF_MAP_GET_NEXT_ID],
    ["nextid", bpf_cmd.BPF_PROG_GET_NEXT_ID],
  ];
  // Capabilities only ever go down within one process, so each set runs in a fresh one.
  for (const caps of [
    [CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN],
    [CAP_BPF],
    [CAP_BPF, CAP_PERFMON],
    [CAP_BPF, CAP_NET_ADMIN],
    [CAP_SYS_ADMIN],
    [CAP_NET_ADMIN],
    [],
  ]) {
    const seq = round(caps);
    assert.deepEqual(ourOps(seq), hostOps(seq), `caps ${JSON.stringify(caps)}`);
  }
});

test("a struct_ops MAP_CREATE with btf_fd 0 (stdin) is EINVAL on the host kernel and here", {
  skip: skip || (existsSync(VMLINUX) ? false : `no ${VMLINUX}`),
}, () => {
  const r = bootDummy();
  const vt = valueTypeOf(r, "bpf_dummy_ops");
  const attr = {
    map_type: bpf_map_type.BPF_MAP_TYPE_STRUCT_OPS,
    key_size: 4,
    value_size: vt.size,
    max_entries: 1,
    btf_fd: 0,
    btf_vmlinux_value_type_id: vt.id,
  };
  let ours = 0;
  try {
    r.k.bpf(r.proc, bpf_cmd.BPF_MAP_CREATE, attr);
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    ours = -e.errno;
  }
  const hostBtf = Btf.parse(new Uint8Array(readFileSync(VMLINUX)));
  const hostVt = hostBtf.typeById(hostBtf.findByNameKind("bpf_struct_ops_bpf_dummy_ops", BTF_KIND_STRUCT));
  const hostAttr = { ...attr, value_size: (hostVt as { size: number }).size };
  const hostId = hostBtf.findByNameKind("bpf_struct_ops_bpf_dummy_ops", BTF_KIND_STRUCT);
  assert.equal(ours, host(bpf_cmd.BPF_MAP_CREATE, mapCreateBytes({ ...hostAttr, btf_vmlinux_value_type_id: hostId })));
  assert.equal(ours, -EINVAL);
});
