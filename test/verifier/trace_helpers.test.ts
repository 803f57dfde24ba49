import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { EACCES, EINVAL } from "../../src/uapi/errno.js";
import { repoRoot } from "./helpers.js";
import { checkRefusals, compareWithHost, hostSkip, loadOne } from "./object_verdicts.js";

/**
 * bpf/trace_helpers.bpf.c: kprobe, tracepoint, perf_event and raw_tp programs' context rules
 * (kprobe_prog_is_valid_access, tp_prog_is_valid_access, pe_prog_is_valid_access) and helper
 * tables (raw_tp_prog_func_proto's bpf_get_stack, whose return value is bounded by the buffer's
 * size; bpf_copy_from_user, which might sleep), compared with the host kernel.
 */

const OBJ = join(repoRoot(), "bpf/obj/trace_helpers.bpf.o");
const skipObj = existsSync(OBJ) ? false : "bpf/obj/trace_helpers.bpf.o not built (needs clang-19)";

const BAD: [string, number, string[], number][] = [
  ["kprobe_write_regs", EACCES, ["invalid bpf_context access off=112 size=8"], 1],
  ["kprobe_past_regs", EACCES, ["invalid bpf_context access off=168 size=8"], 0],
  ["tp_read_header", EACCES, ["invalid bpf_context access off=0 size=8"], 0],
  ["pe_narrow_regs", EACCES, ["invalid bpf_context access off=0 size=4"], 0],
  ["copy_from_user_not_sleepable", EINVAL, ["helper call might sleep in a non-sleepable prog"], 4],
];

const GOOD = [
  "get_stack_bounded",
  "tp_get_stack",
  "kprobe_get_stack",
  "kprobe_read_regs",
  "tp_read_field",
  "pe_narrow_period",
  "copy_from_user_sleepable",
];

test("trace_helpers.bpf.o: context and helper rules of the tracing program types", { skip: skipObj }, () => {
  checkRefusals(OBJ, BAD);
  for (const name of GOOD) assert.equal(loadOne(OBJ, name).errno, 0, `${name} loads`);
});

test("trace_helpers.bpf.o: the host kernel gives the same verdicts and messages", {
  skip: skipObj || hostSkip(),
}, () => {
  compareWithHost(OBJ, GOOD, BAD);
});
