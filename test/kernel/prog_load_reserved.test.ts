import assert from "node:assert/strict";
import { test } from "node:test";
import type { Insn } from "../../src/isa/insn.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { BpfError, EINVAL } from "../../src/uapi/errno.js";
import { boot } from "./util.js";

/**
 * PROG_LOAD's first pass (resolve_pseudo_ldimm64) refuses only opcodes missing from the
 * instruction table; malformed fields of a known opcode reach do_check, which names them. Each
 * message below is Linux 6.18's for the same socket filter.
 */
const I = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });

function loadErr(bad: Insn): string {
  const { k, p } = boot();
  const insns = [I(0xb7, 1), I(0xb7, 2), bad, I(0xb7, 0, 0, 0, 1), I(0x95)];
  try {
    k.bpf(p, bpf_cmd.BPF_PROG_LOAD, { prog_type: 1, insns, insn_cnt: insns.length, license: "GPL" });
  } catch (e) {
    assert.ok(e instanceof BpfError);
    assert.equal(e.errno, EINVAL);
    return e.message;
  }
  return "loaded";
}

test("a known opcode with reserved fields set is do_check's 'uses reserved fields', not 'unknown opcode'", () => {
  assert.equal(loadErr(I(0xbc, 1, 2, 32)), "BPF_MOV uses reserved fields"); // w1 = (s32)w2
  assert.equal(loadErr(I(0xbf, 1, 2, 7)), "BPF_MOV uses reserved fields");
  assert.equal(loadErr(I(0xd7, 1, 0, 0, 8)), "BPF_END uses reserved fields"); // bswap8
  assert.equal(loadErr(I(0xdc, 1, 0, 1, 16)), "BPF_END uses reserved fields");
  assert.equal(loadErr(I(0xd7, 1, 0, 0, 16)), "loaded");
});

test("an opcode missing from the table is still 'unknown opcode' at the first pass", () => {
  assert.equal(loadErr(I(0x8f, 1, 2)), "unknown opcode 8f"); // neg with a register source
  assert.equal(loadErr(I(0x8c, 1, 2)), "unknown opcode 8c");
});
