/**
 * A `.rodata` DATASEC with no variables (clang's home for local struct initialisers, as in the
 * kernel's bpf_qdisc_fq selftest) is valid BTF: the kernel loads it, so the object's BTF goes in
 * and the object loads with it. bpf/rodata_consts.bpf.c has one; a hand-built blob checks the
 * kernel's answer, compared with the host kernel where it can run BTF_LOAD.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { hostSkipReason } from "../verifier/host_log.js";

const OBJ = "bpf/obj/sim/rodata_consts.bpf.o";
const skip = existsSync(OBJ) ? false : `${OBJ} is missing (run bpf/build.sh)`;

/** [1] int, [2] DATASEC .rodata size=24 vlen=0. */
function emptyDatasecBtf(): Uint8Array {
  const strs = new TextEncoder().encode("\0int\0.rodata\0");
  const types = [1, 1 << 24, 4, 0x01000020, 5, 15 << 24, 24];
  const out = new Uint8Array(24 + types.length * 4 + strs.length);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, 0xeb9f, true);
  out[2] = 1;
  dv.setUint32(4, 24, true);
  dv.setUint32(12, types.length * 4, true);
  dv.setUint32(16, types.length * 4, true);
  dv.setUint32(20, strs.length, true);
  for (const [i, w] of types.entries()) dv.setUint32(24 + i * 4, w, true);
  out.set(strs, 24 + types.length * 4);
  return out;
}

function simLoad(): { fd: number } {
  const k = new Kernel();
  const proc = k.newProcess();
  const btf = emptyDatasecBtf();
  const attr = { btf, btf_size: btf.length, btf_log_buf: new Uint8Array(4096), btf_log_size: 4096, btf_log_level: 1 };
  return { fd: k.bpf(proc, bpf_cmd.BPF_BTF_LOAD, attr) as number };
}

test("BTF_LOAD: a DATASEC without variables is accepted", () => {
  assert.ok(simLoad().fd > 0);
});

const LOADER = `
import ctypes, sys, struct, os, json
libc = ctypes.CDLL(None, use_errno=True)
b = bytes.fromhex(sys.stdin.read()); buf = ctypes.create_string_buffer(b); log = ctypes.create_string_buffer(1 << 16)
attr = ctypes.create_string_buffer(64)
struct.pack_into("<QQIII", attr, 0, ctypes.addressof(buf), ctypes.addressof(log), len(b), len(log), 1)
r = libc.syscall(321, 18, attr, 64); err = ctypes.get_errno() if r < 0 else 0
if r >= 0: os.close(r)
print(json.dumps({"errno": err, "log": log.value.decode(errors="replace")}))
`;

test("BTF_LOAD: the host kernel accepts the same blob", (t) => {
  const why = hostSkipReason();
  if (why) return t.skip(why);
  const r = spawnSync("python3", ["-c", LOADER], { input: Buffer.from(emptyDatasecBtf()).toString("hex") });
  assert.equal(r.status, 0, r.stderr?.toString());
  const host = JSON.parse(r.stdout.toString()) as { errno: number; log: string };
  assert.equal(host.errno, 0);
  assert.match(host.log, /\[2\] DATASEC \.rodata size=24 vlen=0\n?$/);
});

test("rodata_consts.bpf.o: its BTF loads (no fallback without BTF) and the program runs", { skip }, () => {
  const k = new Kernel();
  const proc = k.newProcess();
  const log: string[] = [];
  const obj = BpfObject.open(OBJ, { print: (_l: string, m: string) => log.push(m) });
  obj.load({ kernel: k, process: proc });
  assert.ok(obj.btfFd > 0, "object BTF loaded into the kernel");
  assert.equal(log.filter((m) => m.includes("Error loading .BTF")).length, 0);
  const prog = obj.findProgram("rodata_consts")!;
  const attr = { prog_fd: prog.fd, retval: 0 };
  k.bpf(proc, bpf_cmd.BPF_PROG_TEST_RUN, attr);
  assert.equal(attr.retval, 10);
});
