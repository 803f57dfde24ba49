import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { BpfError, EACCES, errnoName } from "../../src/uapi/errno.js";
import { bpfCheck } from "../../src/verifier/verifier.js";
import { boot, memberIdx, typeId } from "../subsys/dummy/struct_ops_fixture.js";
import { structOpsEnv, tcpBtf } from "./tcp_btf.js";

/**
 * A struct_ops program's context is bpf_tracing_btf_ctx_access's u64 argument array: offsets
 * outside it, writes and misaligned reads are refused silently, then btf_ctx_access names the
 * argument it cannot give (counting the return value's slot, btf_ctx_arg_idx). Every expectation
 * below is what Linux 6.18 logs for the same instruction on tcp_congestion_ops.
 */

const t = tcpBtf();

function refused(member: string, ldx: string, off: number, size: number, note: string | undefined): void {
  const r = bpfCheck(
    structOpsEnv(t, member, assemble(`${ldx} %r2, [%r1${off < 0 ? "" : "+"}${off}]\nmov %r0, 1\nexit`)),
  );
  assert.equal(r.ok, false, r.log);
  assert.ok(r.error instanceof BpfError, String(r.error));
  assert.equal(errnoName(r.error.errno), errnoName(EACCES));
  assert.equal(r.error.message, `invalid bpf_context access off=${off} size=${size}`);
  const lines = r.log.split("\n");
  const at = lines.indexOf(r.error.message);
  assert.ok(at > 0, r.log);
  if (note) assert.equal(lines[at - 1], note, r.log);
  else assert.match(lines[at - 1], /^0: \(\w\w\) r2 = \*\(u\d+ \*\)\(r1 [+-]\d+\)$/, r.log);
}

test("a negative context offset is refused, not an exception", () => {
  refused("ssthresh", "ldxdw", -8, 8, undefined);
  refused("cong_avoid", "ldxw", -4, 4, undefined);
});

test("offsets past the argument slots, and reads misaligned to their size, are refused without a note", () => {
  refused("ssthresh", "ldxdw", 96, 8, undefined);
  refused("ssthresh", "ldxdw", 4, 8, undefined);
});

test("a read inside a slot but not at its start names the offset", () => {
  refused("ssthresh", "ldxw", 4, 4, "func 'ssthresh' offset 4 is not multiple of 8");
  refused("ssthresh", "ldxh", 2, 2, "func 'ssthresh' offset 2 is not multiple of 8");
});

test("the argument named counts the return value's slot (btf_ctx_arg_idx)", () => {
  // u32 ssthresh(sk): slot 1 is the return value, past it is argument 3
  refused("ssthresh", "ldxdw", 8, 8, "func 'ssthresh' doesn't have 2-th argument");
  refused("ssthresh", "ldxdw", 88, 8, "func 'ssthresh' doesn't have 3-th argument");
  // void cong_avoid(sk, ack, acked): no return slot, so slot 3 is already past it
  refused("cong_avoid", "ldxdw", 24, 8, "func 'cong_avoid' doesn't have 5-th argument");
  refused("cong_avoid", "ldxdw", 32, 8, "func 'cong_avoid' doesn't have 5-th argument");
});

test("PROG_LOAD of a bpf_dummy_ops program reading its context at -8 is EACCES with the kernel's log", () => {
  const r = boot();
  const insns = assemble("ldxdw %r2, [%r1-8]\nmov %r0, 1\nexit");
  const log = new Uint8Array(4096);
  assert.throws(
    () =>
      r.k.bpf(r.proc, bpf_cmd.BPF_PROG_LOAD, {
        prog_type: 27,
        insns,
        insn_cnt: insns.length,
        license: "GPL",
        expected_attach_type: memberIdx(r.k, "bpf_dummy_ops", "test_1"),
        attach_btf_id: typeId(r.k, "bpf_dummy_ops"),
        log_buf: log,
        log_size: log.length,
        log_level: 1,
      }),
    (e: unknown) => e instanceof BpfError && e.errno === EACCES,
  );
  const text = new TextDecoder().decode(log).replace(/\0.*$/s, "");
  assert.match(text, /^0: \(79\) r2 = \*\(u64 \*\)\(r1 -8\)\ninvalid bpf_context access off=-8 size=8\n/m);
});
