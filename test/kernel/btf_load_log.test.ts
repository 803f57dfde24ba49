import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { bootKernel } from "../../fuzz/kernel.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { BpfError, EEXIST, EINVAL } from "../../src/uapi/errno.js";
import { hostSkipReason } from "../verifier/host_log.js";

/**
 * BTF_LOAD's log is what a developer reads when the kernel refuses BTF: the header as read, then
 * the first problem in kernel/bpf/btf.c's words and layout ("[id] KIND name <details> <msg>", a
 * member's "\tname type_id=.. bits_offset=.. <msg>" under its struct). Each blob below is built
 * by hand with one problem; the host kernel, where it can run, gives the same errno and lines.
 */
const STRS = "\0int\0.bss\0v\0f\0s\0x\0";
const S = { int: 1, bss: 5, v: 10, f: 12, s: 14, x: 16 };
const INT = [S.int, 1 << 24, 4, 0x01000020]; // [1] int, signed 32 bits

function blob(types: number[], strLenDelta = 0): Uint8Array {
  const strs = new TextEncoder().encode(STRS);
  const out = new Uint8Array(24 + types.length * 4 + strs.length);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, 0xeb9f, true);
  out[2] = 1;
  dv.setUint32(4, 24, true);
  dv.setUint32(8, 0, true);
  dv.setUint32(12, types.length * 4, true);
  dv.setUint32(16, types.length * 4, true);
  dv.setUint32(20, strs.length + strLenDelta, true);
  for (const [i, w] of types.entries()) dv.setUint32(24 + i * 4, w >>> 0, true);
  out.set(strs, 24 + types.length * 4);
  return out;
}

const CASES: { name: string; btf: Uint8Array; errno: number; last: string[] }[] = [
  {
    name: "a string section running past the end",
    btf: blob(INT, 4),
    errno: EINVAL,
    last: ["btf_total_size: 58", "Total section length too long"],
  },
  {
    name: "an array indexed by a type that does not exist",
    btf: blob([...INT, 0, 3 << 24, 0, 1, 5, 16]),
    errno: EINVAL,
    last: ["[2] ARRAY (anon) type_id=1 index_type_id=5 nr_elems=16 Invalid index"],
  },
  {
    name: "an array of void",
    btf: blob([...INT, 0, 3 << 24, 0, 0, 1, 16]),
    errno: EINVAL,
    last: ["[2] ARRAY (anon) type_id=0 index_type_id=1 nr_elems=16 Invalid elem"],
  },
  {
    name: "two consts referring to each other",
    btf: blob([...INT, 0, 10 << 24, 3, 0, 10 << 24, 2]),
    errno: EEXIST,
    last: ["[2] CONST (anon) type_id=3 Loop detected"],
  },
  {
    name: "a data section of size 0",
    btf: blob([...INT, S.v, 14 << 24, 1, 1, S.bss, (15 << 24) | 1, 0, 2, 0, 4]),
    errno: EINVAL,
    last: ["[3] DATASEC .bss size=0 vlen=1 size == 0"],
  },
  {
    name: "a variable past the end of its data section",
    btf: blob([...INT, S.v, 14 << 24, 1, 1, S.bss, (15 << 24) | 1, 4, 2, 4, 4]),
    errno: EINVAL,
    last: ["[3] DATASEC .bss size=4 vlen=1", "\t type_id=2 offset=4 size=4 Invalid offset"],
  },
  {
    name: "an extern function (libbpf rewrites those before loading)",
    btf: blob([...INT, 0, 13 << 24, 1, S.f, (12 << 24) | 2, 2]),
    errno: EINVAL,
    last: ["[3] FUNC f type_id=2 Invalid func linkage"],
  },
  {
    name: "a global function with an unnamed argument",
    btf: blob([...INT, 0, (13 << 24) | 1, 1, 0, 1, S.f, (12 << 24) | 1, 2]),
    errno: EINVAL,
    last: ["[3] FUNC f type_id=2 Invalid arg#1"],
  },
  {
    name: "an extern variable (libbpf turns .kconfig and .ksyms ones into allocated ones)",
    btf: blob([...INT, S.v, 14 << 24, 1, 2]),
    errno: EINVAL,
    last: ["[2] VAR v type_id=1 linkage=2 Linkage not supported"],
  },
  {
    name: "a struct member whose name offset is past the strings",
    btf: blob([...INT, S.s, (4 << 24) | 1, 4, 999, 1, 0]),
    errno: EINVAL,
    last: [
      "[2] STRUCT s size=4 vlen=1",
      "\t(invalid-name-offset) type_id=1 bits_offset=0 Invalid member name_offset:999",
    ],
  },
  {
    name: "an enum of three bytes",
    btf: blob([...INT, S.s, (6 << 24) | 1, 3, S.x, 1]),
    errno: EINVAL,
    last: ["[2] ENUM s size=3 vlen=1 Unexpected size"],
  },
  {
    name: "a struct member of type void",
    btf: blob([...INT, S.s, (4 << 24) | 1, 4, S.x, 0, 0]),
    errno: EINVAL,
    last: ["[2] STRUCT s size=4 vlen=1", "\tx type_id=0 bits_offset=0 Invalid type_id"],
  },
];

function ours(b: Uint8Array): { errno: number; log: string } {
  const k = bootKernel();
  const p = k.newProcess({ comm: "btf" });
  const buf = new Uint8Array(1 << 16);
  try {
    k.bpf(p, bpf_cmd.BPF_BTF_LOAD, {
      btf: b,
      btf_size: b.length,
      btf_log_buf: buf,
      btf_log_size: buf.length,
      btf_log_level: 1,
    });
    return { errno: 0, log: "" };
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    const z = buf.indexOf(0);
    return { errno: e.errno, log: new TextDecoder().decode(buf.subarray(0, z)) };
  }
}

const tail = (log: string, n: number) => log.replace(/\n+$/, "").split("\n").slice(-n);

for (const c of CASES) {
  test(`BTF_LOAD: ${c.name}`, () => {
    const r = ours(c.btf);
    assert.equal(r.errno, c.errno);
    assert.deepEqual(tail(r.log, c.last.length), c.last);
    // the header is logged first, as btf_verifier_log_hdr prints it
    assert.match(r.log, /^magic: 0xeb9f\nversion: 1\nflags: 0x0\nhdr_len: 24\ntype_off: 0\n/);
  });
}

const LOADER = `
import ctypes, json, sys, struct, os
libc = ctypes.CDLL(None, use_errno=True)
out = []
for h in json.load(sys.stdin):
    b = bytes.fromhex(h); buf = ctypes.create_string_buffer(b); log = ctypes.create_string_buffer(1 << 16)
    attr = ctypes.create_string_buffer(64)
    struct.pack_into("<QQIII", attr, 0, ctypes.addressof(buf), ctypes.addressof(log), len(b), len(log), 1)
    r = libc.syscall(321, 18, attr, 64); err = ctypes.get_errno() if r < 0 else 0
    if r >= 0: os.close(r)
    out.append({"errno": err, "log": log.value.decode(errors="replace")})
print(json.dumps(out))
`;

test("the host kernel logs each the same: errno and its last lines", (t) => {
  const skip = hostSkipReason();
  if (skip) return t.skip(skip);
  const r = spawnSync("python3", ["-c", LOADER], {
    input: JSON.stringify(CASES.map((c) => Buffer.from(c.btf).toString("hex"))),
  });
  assert.equal(r.status, 0, r.stderr?.toString());
  const host: { errno: number; log: string }[] = JSON.parse(r.stdout.toString());
  CASES.forEach((c, i) => {
    assert.equal(host[i].errno, c.errno, c.name);
    assert.deepEqual(tail(host[i].log, c.last.length), c.last, c.name);
  });
});
