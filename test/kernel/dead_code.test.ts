import assert from "node:assert/strict";
import { test } from "node:test";
import { type Insn, ldImm64 } from "../../src/isa/insn.js";
import { bpf_cmd, bpf_prog_type } from "../../src/uapi/bpf.js";
import { EINVAL } from "../../src/uapi/errno.js";
import { boot, call, exit, jeqImm, mov64, throwsErrno } from "./util.js";

const C = bpf_cmd;
/** libbpf's POISON_CALL_KFUNC_BASE + 0: the helper id of a call to an unresolved weak kfunc. */
const POISON = 2002000000;
const TRAP: Insn = { code: 0x05, dst: 0, src: 0, off: -1, imm: 0 };

/** `if (bpf_ksym_exists(f)) return f(); return 7;` as libbpf leaves it: r1 = 0, the call poisoned. */
const guarded = (): Insn[] => [...ldImm64(1, 0n), jeqImm(1, 0, 2), call(POISON), exit(), mov64(0, 7), exit()];

function load(k: ReturnType<typeof boot>["k"], p: ReturnType<typeof boot>["p"], type: number): number {
  const insns = guarded();
  return k.bpf(p, C.BPF_PROG_LOAD, { prog_type: type, insns, insn_cnt: insns.length, license: "GPL" });
}

function xlated(k: ReturnType<typeof boot>["k"], p: ReturnType<typeof boot>["p"], fd: number): Insn[] {
  return k.objGetInfo(p, fd).xlated_prog_insns as Insn[];
}

test("PROG_LOAD: a poisoned call the verifier never walks is sanitized to ja -1, the program loads and runs", () => {
  const { k, p } = boot({ verifier: true });
  const fd = load(k, p, bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER);
  const x = xlated(k, p, fd);
  assert.equal(x.length, 7);
  assert.deepEqual([x[3], x[4]], [TRAP, TRAP]);
  // CAP_SYS_ADMIN: the branch whose fall-through is dead is hard-wired (opt_hard_wire_dead_code_branches).
  assert.deepEqual(x[2], { code: 0x05, dst: 0, src: 0, off: 2, imm: 0 });
  const r: { prog_fd: number; retval?: number; data_in: Uint8Array; data_size_in: number } = {
    prog_fd: fd,
    data_in: new Uint8Array(14),
    data_size_in: 14,
  };
  k.bpf(p, C.BPF_PROG_TEST_RUN, r);
  assert.equal(r.retval, 7);
});

test("PROG_LOAD: an unprivileged load only traps dead code (sanitize_dead_code); its branches stay", () => {
  const { k } = boot({ verifier: true });
  k.sysctl.unprivilegedBpfDisabled = 0;
  const u = k.newProcess({ privileged: false });
  const fd = load(k, u, bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER);
  const x = k.prog_idr.find(k.objGetInfo(u, fd).id as number)?.insnsi as Insn[];
  assert.deepEqual([x[3], x[4]], [TRAP, TRAP]);
  assert.deepEqual(x[2], guarded()[2]);
});

test("PROG_LOAD without the verifier still refuses the unknown helper id (nothing marks code dead)", () => {
  const { k, p } = boot({ verifier: false });
  throwsErrno(() => load(k, p, bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER), EINVAL, /invalid func unknown#2002000000/);
});
