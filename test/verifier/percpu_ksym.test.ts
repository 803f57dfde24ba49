import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { EACCES } from "../../src/uapi/errno.js";
import { repoRoot } from "./helpers.js";
import { checkRefusals, compareWithHost, hostSkip } from "./object_verdicts.js";

/**
 * Per-CPU kernel variables through typed ksyms (bpf/percpu_ksym.bpf.c): bpf_this_cpu_ptr and
 * bpf_per_cpu_ptr on `runqueues` and `cpu_number` reach the right CPU's copy; the ksym itself,
 * an unchecked bpf_per_cpu_ptr result, a write through one, and a pointer that is not per-CPU
 * are refused with 6.18's messages (the kernel's check_ptr_to_btf_access and check_reg_type; the
 * host, whose kallsyms lists no data symbols, can only be asked about the last).
 */

const OBJ = join(repoRoot(), "bpf/obj/percpu_ksym.bpf.o");
const BAD: [string, number, string[], number][] = [
  ["per_cpu_unchecked", EACCES, ["R0 invalid mem access 'rdonly_mem_or_null'"], 4],
  ["percpu_direct", EACCES, ["R1 is ptr_rq access percpu memory: off=4"], 2],
  ["this_cpu_write", EACCES, ["R0 cannot write into rdonly_mem"], 4],
  ["not_percpu", EACCES, ["R1 type=trusted_ptr_ expected=percpu_ptr_, percpu_rcu_ptr_, percpu_trusted_ptr_"], 2],
];

test("percpu_ksym.bpf.o: this CPU's and another CPU's copies of per-CPU variables", () => {
  const k = new Kernel({ verifier: true, nrCpus: 4 });
  const h = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(OBJ);
  obj.load(h);
  const run = (name: string, cpuArg: number) => {
    const ctx = new Uint8Array(new Int32Array([cpuArg, 0]).buffer);
    const attr = { prog_fd: obj.findProgram(name)?.fd ?? -1, ctx_in: ctx, ctx_size_in: ctx.length, retval: 0 };
    assert.equal(k.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr), 0, name);
    return attr.retval | 0;
  };
  for (let cpu = 0; cpu < 4; cpu++) {
    assert.equal(
      k.onCpu(cpu, () => run("this_cpu", 0)),
      cpu,
      `this_cpu on cpu ${cpu}`,
    );
    assert.equal(run("per_cpu", cpu), cpu, `per_cpu(${cpu})`);
  }
  assert.equal(run("per_cpu", 4), -1, "past the last possible CPU: NULL");
  assert.equal(run("per_cpu", -1), -1);
});

test("percpu_ksym: refusals with the kernel's messages", () => {
  checkRefusals(OBJ, BAD);
});

test("the host kernel refuses a pointer that is not per-CPU as we do", { skip: hostSkip() }, () => {
  compareWithHost(OBJ, [], BAD.slice(3));
});
