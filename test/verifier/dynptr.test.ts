import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { EACCES, EINVAL } from "../../src/uapi/errno.js";
import { repoRoot } from "./helpers.js";
import { checkRefusals, compareWithHost, hostSkip, loadOne } from "./object_verdicts.js";

/**
 * Dynptrs (bpf/dynptr.bpf.c, bpf/dynptr_bad.bpf.c): local dynptrs over a global buffer run to
 * the kernel's results (read, write, data, slice, adjust, clone, size, is_null, the error
 * returns); skb dynptrs of socket filters and tc programs load; each broken rule is refused
 * with 6.18's errno, message and instruction, compared with the host kernel where it can load.
 */

const OBJ = join(repoRoot(), "bpf/obj/dynptr.bpf.o");
const BAD_OBJ = join(repoRoot(), "bpf/obj/dynptr_bad.bpf.o");
const init2 = "Expected an initialized dynptr as arg #2";
const BAD: [string, number, string[], number][] = [
  ["read_uninit", EINVAL, [init2], 7],
  ["read_misaligned", EINVAL, ["cannot pass in dynptr at an offset=-28", init2], 14],
  ["use_after_overwrite", EINVAL, [init2], 16],
  ["read_dynptr_bytes", EACCES, ["invalid read from stack off -16+0 size 8"], 7],
  ["data_after_overwrite", EACCES, ["R0 invalid mem access 'scalar'"], 16],
  ["data_unchecked", EACCES, ["R0 invalid mem access 'mem_or_null'"], 12],
  [
    "data_past_len",
    EACCES,
    ["invalid access to memory, mem_size=4 off=4 size=1", "R0 min value is outside of the allowed memory range"],
    14,
  ],
  ["data_var_len", EACCES, ["R3 is not a known constant'"], 15],
  ["slice_write", EACCES, ["R0 cannot write into rdonly_mem"], 15],
  ["slice_var_size", EINVAL, ["R4 must be a known constant"], 18],
  ["dynptr_in_map", EACCES, ["R3 type=map_value expected=fp, dynptr_ptr"], 15],
  ["kfunc_dynptr_in_map", EINVAL, ["arg#0 expected pointer to stack or const struct bpf_dynptr"], 9],
  ["adjust_uninit", EINVAL, ["Expected an initialized dynptr as arg #0"], 4],
  ["read_into_dynptr", EACCES, ["potential write to dynptr at off=-16 disallowed"], 21],
  ["skb_from_syscall", EACCES, ["calling kernel function bpf_dynptr_from_skb is not allowed"], 3],
  ["skb_not_ctx", EINVAL, ["arg#0 expected pointer to ctx, but got fp"], 10],
  ["from_mem_stack", EACCES, ["Unsupported reg type fp for bpf_dynptr_from_mem data"], 9],
  ["dynptr_into_map", EACCES, ["invalid read from stack R3 off -16+0 size 16"], 16],
  ["init_var_off", EINVAL, ["dynptr has to be at a constant offset", "Dynptr has to be an uninitialized dynptr"], 11],
  ["data_after_reinit", EACCES, ["R6 invalid mem access 'scalar'"], 22],
  ["clone_uninit", EINVAL, ["Expected an initialized dynptr as arg #0"], 4],
];
/**
 * bpf_dynptr_slice_rdwr where the program may not write packet data: upstream 6.18 refuses it
 * in check_kfunc_call; the host kernel here refuses every bpf_dynptr_slice_rdwr earlier, with
 * EPERM ("bpf_dynptr_slice_rdwr() is not allowed"), tc included, so these are not compared.
 */
const BAD_UPSTREAM: [string, number, string[], number][] = [
  ["slice_rdwr_syscall", EINVAL, ["the prog does not allow writes to packet data"], 13],
  ["skb_rdwr_socket", EINVAL, ["the prog does not allow writes to packet data"], 11],
];

test("dynptr.bpf.o: local dynptrs read, write, slice, adjust and clone as the kernel does", () => {
  const k = new Kernel({ verifier: true });
  const h = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(OBJ);
  obj.load(h);
  for (const name of ["local_rw", "slice_adjust_clone"]) {
    const attr = { prog_fd: obj.findProgram(name)?.fd ?? -1, retval: -1 };
    assert.equal(k.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr), 0, name);
    assert.equal(attr.retval, 0, `${name}: the check at line ${attr.retval} failed`);
  }
});

test("dynptr.bpf.o: skb dynptrs load in socket filters and tc (slice_rdwr only where packets are writable)", () => {
  for (const name of ["skb_socket", "skb_tc"]) assert.equal(loadOne(OBJ, name).errno, 0, name);
});

test("dynptr_bad: refusals with the kernel's messages", () => {
  checkRefusals(BAD_OBJ, [...BAD, ...BAD_UPSTREAM]);
});

test("the host kernel refuses the same dynptr programs as we do", { skip: hostSkip() }, () => {
  compareWithHost(OBJ, ["local_rw", "slice_adjust_clone", "skb_socket"], []);
  compareWithHost(BAD_OBJ, [], BAD);
});
