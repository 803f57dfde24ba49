import assert from "node:assert/strict";
import { test } from "node:test";
import type { BpfLink, BpfLinkOps } from "../../src/kernel/bpf.js";
import { bpf_link_cleanup, bpf_link_init, bpf_link_prime, bpf_link_settle } from "../../src/kernel/syscall_link.js";
import { bpf_prog_inc, bpf_prog_put } from "../../src/kernel/syscall_prog.js";
import { BPF_F_REPLACE, bpf_attach_type, bpf_cmd, bpf_link_type, bpf_prog_type } from "../../src/uapi/bpf.js";
import { EBADF, EINVAL, EMFILE, ENOENT, EOPNOTSUPP } from "../../src/uapi/errno.js";
import { boot, retProg, throwsErrno } from "./util.js";

const C = bpf_cmd;
const RAW_TP = bpf_attach_type.BPF_TRACE_RAW_TP;

/** A link kind for the tests: records what the core calls, refuses a second attach like a real hook. */
function setup() {
  const { k, p } = boot();
  const events: string[] = [];
  let attached: BpfLink | null = null;
  const ops: BpfLinkOps = {
    release: (l) => {
      events.push(`release ${l.id}`);
      if (attached === l) attached = null;
    },
    dealloc: (l) => void events.push(`dealloc ${l.id}`),
    detach: (l) => {
      events.push(`detach ${l.id}`);
      if (attached === l) attached = null;
    },
    update_prog: (l, np, op) => {
      if (op && op !== l.prog) throw Object.assign(new Error("old prog mismatch"), {});
      events.push(`update ${l.id} -> prog ${np.id}`);
      bpf_prog_inc(np);
      const old = l.prog!;
      l.prog = np;
      bpf_prog_put(old);
    },
    fill_link_info: (l, info) => void (info.raw_tracepoint = { tp_name: `tp${l.id}` }),
    show_fdinfo: () => "tp_name:\ttest\n",
    poll: (l) => (attached === l ? 0 : 0x10),
  };
  k.registerLinkCreate(RAW_TP, (attr, proc, prog) => {
    if (attached) throw new (class extends Error {})("busy");
    if (attr.target_fd === 666) {
      // attach fails after prime: cleanup must undo the id and fd without putting the prog
      bpf_prog_inc(prog!);
      const l = bpf_link_init(k, bpf_link_type.BPF_LINK_TYPE_RAW_TRACEPOINT, ops, prog, RAW_TP);
      const primer = bpf_link_prime(l, proc);
      bpf_link_cleanup(primer);
      // cleanup leaves the program's reference to the caller, which drops it on its error path
      bpf_prog_put(prog!);
      throw new Error("attach failed");
    }
    bpf_prog_inc(prog!);
    const l = bpf_link_init(k, bpf_link_type.BPF_LINK_TYPE_RAW_TRACEPOINT, ops, prog, RAW_TP);
    let primer: ReturnType<typeof bpf_link_prime>;
    try {
      primer = bpf_link_prime(l, proc);
    } catch (e) {
      bpf_prog_put(prog!);
      throw e;
    }
    attached = l;
    return bpf_link_settle(primer);
  });
  const prog = k.bpf(p, C.BPF_PROG_LOAD, {
    prog_type: bpf_prog_type.BPF_PROG_TYPE_RAW_TRACEPOINT,
    insns: retProg(0),
    insn_cnt: 2,
    license: "GPL",
  });
  return { k, p, events, prog, isAttached: () => attached !== null };
}

test("LINK_CREATE dispatches by attach type; the link holds the program; info and fdinfo come from the link ops", () => {
  const { k, p, prog } = setup();
  const lfd = k.bpf(p, C.BPF_LINK_CREATE, { prog_fd: prog, attach_type: RAW_TP });
  const info = k.objGetInfo(p, lfd);
  assert.equal(info.type, bpf_link_type.BPF_LINK_TYPE_RAW_TRACEPOINT);
  assert.equal(info.prog_id, k.objGetInfo(p, prog).id);
  assert.deepEqual(info.raw_tracepoint, { tp_name: `tp${info.id}` });
  const fdinfo = k.fdinfo(p, lfd);
  // Link files are opened O_CLOEXEC only, as the host kernel shows them.
  assert.match(fdinfo, /^pos:\t0\nflags:\t02000000\n/);
  assert.match(
    fdinfo,
    new RegExp(
      `link_type:\\traw_tracepoint\\nlink_id:\\t${info.id}\\nprog_tag:\\t[0-9a-f]{16}\\nprog_id:\\t${info.prog_id}\\ntp_name:\\ttest\\n`,
    ),
  );
  throwsErrno(
    () => k.bpf(p, C.BPF_LINK_CREATE, { prog_fd: prog, attach_type: bpf_attach_type.BPF_XDP }),
    EINVAL,
    /not supported/,
  );
  throwsErrno(() => k.bpf(p, C.BPF_LINK_CREATE, { prog_fd: 99, attach_type: RAW_TP }), EBADF);
  throwsErrno(
    () => k.bpf(p, C.BPF_LINK_CREATE, { map_fd: 0, attach_type: bpf_attach_type.BPF_STRUCT_OPS }),
    EINVAL,
    /struct_ops/,
  );
});

test("closing the last link fd releases then deallocs, drops the program, and the link id goes", () => {
  const { k, p, events, prog, isAttached } = setup();
  const lfd = k.bpf(p, C.BPF_LINK_CREATE, { prog_fd: prog, attach_type: RAW_TP });
  const id = k.objGetInfo(p, lfd).id as number;
  const dup = k.bpf(p, C.BPF_LINK_GET_FD_BY_ID, { link_id: id });
  k.close(p, lfd);
  assert.deepEqual(events, []);
  k.close(p, dup);
  assert.deepEqual(events, [`release ${id}`, `dealloc ${id}`]);
  assert.equal(isAttached(), false);
  throwsErrno(() => k.bpf(p, C.BPF_LINK_GET_FD_BY_ID, { link_id: id }), ENOENT);
  const pr = k.prog_idr.find(k.objGetInfo(p, prog).id as number)!;
  assert.equal(pr.refcnt, 1, "only the prog fd holds it now");
});

test("LINK_DETACH calls the kind's detach; a kind without detach is EOPNOTSUPP", () => {
  const { k, p, events, prog, isAttached } = setup();
  const lfd = k.bpf(p, C.BPF_LINK_CREATE, { prog_fd: prog, attach_type: RAW_TP });
  const id = k.objGetInfo(p, lfd).id as number;
  assert.equal(p.files.get(lfd).f_op.poll!(p.files.get(lfd) as never), 0);
  k.bpf(p, C.BPF_LINK_DETACH, { link_fd: lfd });
  assert.deepEqual(events, [`detach ${id}`]);
  assert.equal(isAttached(), false);
  assert.equal(p.files.get(lfd).f_op.poll!(p.files.get(lfd) as never), 0x10, "EPOLLHUP after detach");
  const link = k.link_idr.find(id)!;
  (link.ops as { detach?: unknown }).detach = undefined;
  throwsErrno(() => k.bpf(p, C.BPF_LINK_DETACH, { link_fd: lfd }), EOPNOTSUPP);
  throwsErrno(() => k.bpf(p, C.BPF_LINK_DETACH, { link_fd: prog }), EINVAL);
});

test("LINK_UPDATE: new prog through update_prog, BPF_F_REPLACE needs old_prog_fd, old_prog_fd alone is EINVAL", () => {
  const { k, p, events, prog } = setup();
  const lfd = k.bpf(p, C.BPF_LINK_CREATE, { prog_fd: prog, attach_type: RAW_TP });
  const id = k.objGetInfo(p, lfd).id as number;
  const prog2 = k.bpf(p, C.BPF_PROG_LOAD, {
    prog_type: bpf_prog_type.BPF_PROG_TYPE_RAW_TRACEPOINT,
    insns: retProg(1),
    insn_cnt: 2,
    license: "GPL",
  });
  const id2 = k.objGetInfo(p, prog2).id as number;
  throwsErrno(() => k.bpf(p, C.BPF_LINK_UPDATE, { link_fd: lfd, new_prog_fd: prog2, old_prog_fd: prog }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_LINK_UPDATE, { link_fd: lfd, new_prog_fd: 99 }), EBADF);
  k.bpf(p, C.BPF_LINK_UPDATE, { link_fd: lfd, new_prog_fd: prog2, flags: BPF_F_REPLACE, old_prog_fd: prog });
  assert.deepEqual(events, [`update ${id} -> prog ${id2}`]);
  assert.equal(k.objGetInfo(p, lfd).prog_id, id2);
});

test("a failed attach after prime leaves no id, no fd and the program's references as they were", () => {
  const { k, p, prog } = setup();
  const before = p.files.list();
  const pr = k.prog_idr.find(k.objGetInfo(p, prog).id as number)!;
  assert.throws(
    () => k.bpf(p, C.BPF_LINK_CREATE, { prog_fd: prog, attach_type: RAW_TP, target_fd: 666 }),
    /attach failed/,
  );
  assert.deepEqual(p.files.list(), before);
  assert.equal(k.link_idr.size, 0);
  assert.equal(pr.refcnt, 1, "only the fd's reference is left");
});

test("bpf_link_prime reserves the fd: with no fd left the attach fails with EMFILE before anything is visible", () => {
  const { k, p, prog, events } = setup();
  for (;;) {
    try {
      k.dup(p, prog);
    } catch {
      break;
    }
  }
  throwsErrno(() => k.bpf(p, C.BPF_LINK_CREATE, { prog_fd: prog, attach_type: RAW_TP }), EMFILE);
  assert.equal(k.link_idr.size, 0);
  assert.deepEqual(events, []);
  const pr = k.prog_idr.find(k.objGetInfo(p, prog).id as number)!;
  assert.equal(pr.refcnt, 1, "only the (shared) file holds the program");
});
