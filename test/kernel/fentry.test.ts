/**
 * fentry/fexit on a BPF program, the kernel's rules (bpf_check_attach_target, check_return_code,
 * btf_ctx_access on the target's prototype, bpf_tracing_prog_attach) on our committed
 * bpf_dummy_ops object as the target, with hand-written tracing programs.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { SimTarget } from "../../src/fidelity/sim.js";
import type { Insn } from "../../src/isa/insn.js";
import { libbpf_find_prog_btf_id } from "../../src/loader/attach_target.js";
import type { BpfHandle } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_attach_type as A, bpf_link_type, bpf_cmd as C, bpf_prog_type as P } from "../../src/uapi/bpf.js";
import { EACCES, EINVAL } from "../../src/uapi/errno.js";
import { OBJ_DIR } from "../elf/helpers.js";
import { exit, ldxDw, mov64, throwsErrno } from "./util.js";

const OBJ = join(OBJ_DIR, "dummy_ops.bpf.o");
const skip = existsSync(OBJ) ? false : "bpf/obj/dummy_ops.bpf.o is not built";

function setup() {
  const kernel = new SimTarget().kernel;
  const h: BpfHandle = { kernel, process: kernel.newProcess() };
  const target = BpfObject.open(OBJ);
  target.load(h);
  const tgtFd = target.findProgram("dummy_test_1")!.fd;
  const btfId = libbpf_find_prog_btf_id(h, "dummy_test_1", tgtFd, () => {});
  assert.ok(btfId > 0);
  const load = (insns: Insn[], o: { eat?: number; fd?: number; id?: number; type?: number } = {}) => {
    const log = new Uint8Array(1 << 16);
    const attr = {
      prog_type: o.type ?? P.BPF_PROG_TYPE_TRACING,
      expected_attach_type: o.eat ?? A.BPF_TRACE_FENTRY,
      insns,
      insn_cnt: insns.length,
      license: "GPL",
      attach_prog_fd: o.fd ?? tgtFd,
      attach_btf_id: o.id ?? btfId,
      log_level: 1,
      log_buf: log,
      log_size: log.length,
    };
    let fd = -1;
    let err: unknown;
    try {
      fd = kernel.bpf(h.process, C.BPF_PROG_LOAD, attr);
    } catch (e) {
      err = e;
    }
    return { fd, err, log: new TextDecoder().decode(log.subarray(0, log.indexOf(0))) };
  };
  const refused = (insns: Insn[], errno: number, msg: RegExp, o = {}) => {
    const r = load(insns, o);
    throwsErrno(() => {
      if (r.err) throw r.err;
    }, errno);
    assert.match(r.log, msg);
  };
  return { kernel, h, target, tgtFd, btfId, load, refused };
}

const ret0 = [mov64(0, 0), exit()];

test("fentry/fexit PROG_LOAD on a bpf_dummy_ops program: the target's checks and messages", { skip }, () => {
  const { h, load, refused, btfId, tgtFd } = setup();
  const setupTgt = (_h: BpfHandle) => tgtFd;
  assert.ok(load(ret0).fd >= 0);
  assert.ok(load(ret0, { eat: A.BPF_TRACE_FEXIT }).fd >= 0);
  // check_return_code: fentry/fexit return 0.
  refused(
    [mov64(0, 1), exit()],
    EINVAL,
    /At program exit the register R0 has smin=1 smax=1 should have been in \[0, 0\]/,
  );
  // A FUNC of the target's BTF that is not one of its subprograms, an unnamed type, no type.
  const other = libbpf_find_prog_btf_id(h, "dummy_test_2", setupTgt(h), () => {});
  refused(ret0, EINVAL, /Subprog dummy_test_2 doesn't exist/, { id: other });
  refused(ret0, EINVAL, /attach_btf_id 1 doesn't have a name/, { id: 1 });
  refused(ret0, EINVAL, /attach_btf_id 99999 is invalid/, { id: 99999 });
  refused(ret0, EINVAL, /can't modify return codes of BPF programs/, { eat: A.BPF_MODIFY_RETURN });
  // Only tracing (and extension) programs take a program to attach to.
  throwsErrno(() => {
    const r = load(ret0, { type: P.BPF_PROG_TYPE_RAW_TRACEPOINT });
    if (r.err) throw r.err;
  }, EINVAL);
  // A target without BTF.
  const bare = h.kernel.bpf(h.process, C.BPF_PROG_LOAD, {
    prog_type: P.BPF_PROG_TYPE_RAW_TRACEPOINT,
    insns: ret0,
    insn_cnt: 2,
    license: "GPL",
  });
  refused(ret0, EINVAL, /FENTRY\/FEXIT program can only be attached to another program annotated with BTF/, {
    fd: bare,
    id: btfId,
  });
});

test("fentry/fexit context: the target's arguments, and for fexit its return value after them", { skip }, () => {
  const { load, refused } = setup();
  // dummy_test_1(unsigned long long *ctx): one argument.
  assert.ok(load([ldxDw(0, 1, 0), mov64(0, 0), exit()]).fd >= 0);
  refused(
    [ldxDw(0, 1, 8), mov64(0, 0), exit()],
    EACCES,
    /func 'dummy_test_1' doesn't have 2-th argument\n.*invalid bpf_context access off=8 size=8/s,
  );
  assert.ok(load([ldxDw(0, 1, 8), mov64(0, 0), exit()], { eat: A.BPF_TRACE_FEXIT }).fd >= 0);
  refused([ldxDw(0, 1, 16), mov64(0, 0), exit()], EACCES, /doesn't have 3-th argument/, { eat: A.BPF_TRACE_FEXIT });
  // Writes to the context are refused.
  refused(
    [mov64(0, 0), { code: 0x7b, dst: 1, src: 0, off: 0, imm: 0 }, exit()],
    EACCES,
    /invalid bpf_context access off=0 size=8/,
  );
});

test("tracing links: one attach per load, link info names the target; nesting stops at one level", { skip }, () => {
  const { kernel, h, load, tgtFd } = setup();
  const fd = load(ret0).fd;
  // A name is for raw tracepoints.
  throwsErrno(() => kernel.bpf(h.process, C.BPF_RAW_TRACEPOINT_OPEN, { prog_fd: fd, name: "x" }), EINVAL);
  const link = kernel.bpf(h.process, C.BPF_RAW_TRACEPOINT_OPEN, { prog_fd: fd });
  const info = kernel.objGetInfo(h.process, link) as {
    type: number;
    tracing: { target_obj_id: number; attach_type: number };
  };
  const tinfo = kernel.objGetInfo(h.process, tgtFd) as { id: number };
  assert.equal(info.type, bpf_link_type.BPF_LINK_TYPE_TRACING);
  assert.equal(info.tracing.target_obj_id, tinfo.id);
  assert.equal(info.tracing.attach_type, A.BPF_TRACE_FENTRY);
  assert.match(kernel.fdinfo(h.process, link), /target_obj_id:\t\d+\ntarget_btf_id:\t\d+\n/);
  // The load-time target is spent.
  throwsErrno(() => kernel.bpf(h.process, C.BPF_LINK_CREATE, { prog_fd: fd, attach_type: A.BPF_TRACE_FENTRY }), EINVAL);
  // A new target by fd is only for extension programs.
  const fd2 = load(ret0).fd;
  throwsErrno(
    () =>
      kernel.bpf(h.process, C.BPF_LINK_CREATE, {
        prog_fd: fd2,
        target_fd: tgtFd,
        target_btf_id: 1,
        attach_type: A.BPF_TRACE_FENTRY,
      }),
    EINVAL,
  );
  // fentry on an fentry program loads; one more level does not.
  const trace = BpfObject.open(join(OBJ_DIR, "dummy_trace.bpf.o"));
  const entry = trace.findProgram("trace_entry")!;
  entry.attachProgFd = tgtFd;
  trace.findProgram("trace_exit")!.attachProgFd = tgtFd;
  trace.load(h);
  const id = libbpf_find_prog_btf_id(h, "trace_entry", entry.fd, () => {});
  const lvl1 = load(ret0, { fd: entry.fd, id });
  assert.ok(lvl1.fd >= 0, lvl1.log);
  const r = load(ret0, { fd: lvl1.fd, id: 1 });
  assert.ok(r.err);
});
