import assert from "node:assert/strict";
import { test } from "node:test";
import { insn, ldImm64 } from "../../src/isa/insn.js";
import { BPF_MEM, BPF_STX, BPF_W } from "../../src/isa/opcodes.js";
import { CAP_BPF } from "../../src/kernel/capability.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { fdget } from "../../src/kernel/syscall.js";
import { bpf_cmd, bpf_map_type, bpf_func_id as F } from "../../src/uapi/bpf.js";
import { EBADF, EFAULT, EINVAL } from "../../src/uapi/errno.js";
import { add64, boot, call, exit, mov64, mov64r, stDw, stxDw, throwsErrno } from "./util.js";

const C = bpf_cmd;

function runOnce(k: Kernel, p: ReturnType<Kernel["newProcess"]>, insns: ReturnType<typeof exit>[]): bigint {
  const fd = k.bpf(p, C.BPF_PROG_LOAD, {
    prog_type: 31,
    insns,
    insn_cnt: insns.length,
    license: "GPL",
    prog_flags: 16,
  });
  const prog = fdget(p, fd, "prog");
  const r = prog.bpf_func!(0);
  k.close(p, fd);
  return r;
}

test("ktime_get_ns and jiffies64 follow the settable clock at CONFIG_HZ, from INITIAL_JIFFIES", () => {
  const { k, p } = boot();
  // INITIAL_JIFFIES = (u32)(-300 * HZ): jiffies_64 starts five minutes before its 32-bit wrap.
  const initial = (hz: number) => BigInt(2 ** 32 - 300 * hz);
  assert.equal(runOnce(k, p, [call(F.BPF_FUNC_jiffies64), exit()]), initial(1000));
  k.setTimeNs(2_500_000_000n);
  assert.equal(runOnce(k, p, [call(F.BPF_FUNC_ktime_get_ns), exit()]), 2_500_000_000n);
  assert.equal(runOnce(k, p, [call(F.BPF_FUNC_jiffies64), exit()]), initial(1000) + 2500n);
  const k250 = new Kernel({ config: { CONFIG_HZ: 250 } });
  k250.setTimeNs(2_000_000_000n);
  assert.equal(k250.jiffies, initial(250) + 500n);
  assert.throws(() => k.setTimeNs(1n), /backwards/);
});

test("get_prandom_u32 is deterministic per seed", () => {
  const seq = (seed: number) => {
    const k = new Kernel({ prandomSeed: seed });
    const p = k.newProcess();
    return [0, 1, 2].map(() => runOnce(k, p, [call(F.BPF_FUNC_get_prandom_u32), exit()]));
  };
  assert.deepEqual(seq(1), seq(1));
  assert.notDeepEqual(seq(1), seq(2));
  assert.ok(seq(7).every((v) => v >= 0n && v < 2n ** 32n));
});

test("trace_printk formats into the kernel's trace log", () => {
  const { k, p } = boot();
  const fmt = new TextEncoder().encode("x=%d y=%llx\0");
  // the format string on the stack (r10 - 16), then trace_printk(fmt, 12, -5, 255)
  const padded = new Uint8Array(16);
  padded.set(fmt);
  const dv = new DataView(padded.buffer);
  const insns = [
    ...ldImm64(1, dv.getBigUint64(0, true)),
    stxDw(10, 1, -16),
    ...ldImm64(1, dv.getBigUint64(8, true)),
    stxDw(10, 1, -8),
    mov64r(1, 10),
    add64(1, -16),
    mov64(2, fmt.length),
    mov64(3, -5),
    mov64(4, 255),
    call(F.BPF_FUNC_trace_printk),
    exit(),
  ];
  const r = runOnce(k, p, insns);
  assert.deepEqual(k.traceLog, ["x=-5 y=ff"]);
  assert.equal(r, BigInt("x=-5 y=ff".length + 1));
});

test("probe_read_kernel copies, and on a fault zero-fills the destination and returns -EFAULT", () => {
  const { k, p } = boot();
  const src = k.mem.alloc(8, { perm: "r", kind: "kobj" });
  k.mem.bytes(src.addr, 8).set([1, 2, 3, 4, 5, 6, 7, 8]);
  const read = (from: number) => [
    stDw(10, -8, -1),
    mov64r(1, 10),
    add64(1, -8),
    mov64(2, 8),
    ...ldImm64(3, BigInt(from)),
    call(F.BPF_FUNC_probe_read_kernel),
    mov64r(6, 0),
    insn(BPF_STX | BPF_MEM | BPF_W, 10, 6, -12, 0),
    { code: 0x79, dst: 0, src: 10, off: -8, imm: 0 },
    exit(),
  ];
  assert.equal(runOnce(k, p, read(src.addr)), 0x0807060504030201n);
  assert.equal(runOnce(k, p, read(16)), 0n, "zero-filled after the fault");
  const ret = [...read(16).slice(0, 7), exit()];
  assert.equal(BigInt.asIntN(64, runOnce(k, p, ret)), BigInt(-EFAULT));
});

test("subsystem-facing primitives: fdget by kind, capable() of the current process, the sysctl alias", () => {
  const { k, p } = boot();
  const m = k.bpf(p, C.BPF_MAP_CREATE, {
    map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY,
    key_size: 4,
    value_size: 4,
    max_entries: 1,
  });
  assert.equal(fdget(p, m, "map").value_size, 4);
  throwsErrno(() => fdget(p, m, "prog"), EINVAL);
  throwsErrno(() => fdget(p, 99, "map"), EBADF);
  assert.equal(k.capable(CAP_BPF), false, "no current task outside a syscall");
  let seen: boolean | undefined;
  k.registerLinkCreate(23, () => {
    seen = k.capable(CAP_BPF);
    throw new Error("stop");
  });
  const pf = k.bpf(p, C.BPF_PROG_LOAD, { prog_type: 17, insns: [mov64(0, 0), exit()], insn_cnt: 2, license: "GPL" });
  assert.throws(() => k.bpf(p, C.BPF_LINK_CREATE, { prog_fd: pf, attach_type: 23 }), /stop/);
  assert.equal(seen, true);
  k.unprivilegedBpfDisabled = 0;
  assert.equal(k.sysctl.unprivilegedBpfDisabled, 0);
});
