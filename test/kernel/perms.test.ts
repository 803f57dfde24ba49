import assert from "node:assert/strict";
import { test } from "node:test";
import { CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON, CAP_SYS_ADMIN } from "../../src/kernel/capability.js";
import {
  BPF_F_NO_PREALLOC,
  BPF_F_SLEEPABLE,
  BPF_F_ZERO_SEED,
  bpf_cmd,
  bpf_map_type,
  bpf_prog_type,
} from "../../src/uapi/bpf.js";
import { EINVAL, EPERM } from "../../src/uapi/errno.js";
import { boot, retProg, throwsErrno, userBtf } from "./util.js";

const C = bpf_cmd;
const T = bpf_map_type;
const ARRAY = { map_type: T.BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: 8, max_entries: 1 };
/** Syscall programs must be sleepable. */
const load = (prog_type: number) => ({
  prog_type,
  insns: retProg(0),
  insn_cnt: 2,
  license: "GPL",
  prog_flags: prog_type === bpf_prog_type.BPF_PROG_TYPE_SYSCALL ? BPF_F_SLEEPABLE : 0,
});

test("unprivileged_bpf_disabled (default 2): an unprivileged process gets EPERM for map and program creation", () => {
  const { k } = boot();
  assert.equal(k.sysctl.unprivilegedBpfDisabled, 2);
  const u = k.newProcess({ privileged: false });
  throwsErrno(() => k.bpf(u, C.BPF_MAP_CREATE, ARRAY), EPERM, /unprivileged/);
  throwsErrno(() => k.bpf(u, C.BPF_PROG_LOAD, load(bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER)), EPERM);
  throwsErrno(() => k.bpf(u, C.BPF_BTF_LOAD, { btf: userBtf(), btf_size: userBtf().length }), EPERM);
});

test("unprivileged_bpf_disabled=0: plain maps and socket filters allowed, the rest still needs capabilities", () => {
  const { k } = boot();
  k.sysctl.unprivilegedBpfDisabled = 0;
  const u = k.newProcess({ privileged: false });
  k.bpf(u, C.BPF_MAP_CREATE, ARRAY);
  k.bpf(u, C.BPF_MAP_CREATE, { ...ARRAY, map_type: T.BPF_MAP_TYPE_HASH });
  k.bpf(u, C.BPF_PROG_LOAD, load(bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER));
  // map_alloc_check passes first, then the capability check refuses.
  const skStorage = {
    map_type: T.BPF_MAP_TYPE_SK_STORAGE,
    key_size: 4,
    value_size: 8,
    max_entries: 0,
    map_flags: BPF_F_NO_PREALLOC,
    btf_key_type_id: 1,
    btf_value_type_id: 3,
  };
  throwsErrno(() => k.bpf(u, C.BPF_MAP_CREATE, skStorage), EPERM, /CAP_BPF/);
  throwsErrno(() => k.bpf(u, C.BPF_PROG_LOAD, load(bpf_prog_type.BPF_PROG_TYPE_SYSCALL)), EPERM, /CAP_BPF/);
  throwsErrno(() => k.bpf(u, C.BPF_MAP_GET_NEXT_ID, { start_id: 0 }), EPERM, /CAP_SYS_ADMIN/);
  throwsErrno(
    () => k.bpf(u, C.BPF_MAP_CREATE, { ...ARRAY, map_type: T.BPF_MAP_TYPE_HASH, map_flags: BPF_F_ZERO_SEED }),
    EPERM,
  );
});

test("capabilities are checked one by one: CAP_BPF, CAP_PERFMON (struct_ops, tracing), CAP_NET_ADMIN (tc, xdp)", () => {
  const { k } = boot();
  const bpfOnly = k.newProcess({ caps: [CAP_BPF] });
  k.bpf(bpfOnly, C.BPF_PROG_LOAD, load(bpf_prog_type.BPF_PROG_TYPE_SYSCALL));
  throwsErrno(() => k.bpf(bpfOnly, C.BPF_PROG_LOAD, load(bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS)), EPERM, /PERFMON/);
  throwsErrno(() => k.bpf(bpfOnly, C.BPF_PROG_LOAD, load(bpf_prog_type.BPF_PROG_TYPE_XDP)), EPERM, /NET_ADMIN/);
  const net = k.newProcess({ caps: [CAP_BPF, CAP_NET_ADMIN] });
  k.bpf(net, C.BPF_PROG_LOAD, load(bpf_prog_type.BPF_PROG_TYPE_XDP));
  const perf = k.newProcess({ caps: [CAP_BPF, CAP_PERFMON] });
  k.bpf(perf, C.BPF_PROG_LOAD, load(bpf_prog_type.BPF_PROG_TYPE_KPROBE));
  // CAP_SYS_ADMIN alone implies CAP_BPF and CAP_PERFMON (bpf_capable, perfmon_capable).
  const admin = k.newProcess({ caps: [CAP_SYS_ADMIN] });
  k.bpf(admin, C.BPF_PROG_LOAD, load(bpf_prog_type.BPF_PROG_TYPE_KPROBE));
  // bpf_token_capable(): CAP_SYS_ADMIN also stands in for CAP_NET_ADMIN.
  k.bpf(admin, C.BPF_PROG_LOAD, load(bpf_prog_type.BPF_PROG_TYPE_XDP));
  k.bpf(admin, C.BPF_MAP_CREATE, { ...ARRAY, map_type: T.BPF_MAP_TYPE_HASH, map_flags: BPF_F_NO_PREALLOC });
  throwsErrno(() => k.bpf(bpfOnly, C.BPF_MAP_GET_NEXT_ID, { start_id: 0 }), EPERM);
  throwsErrno(() => k.bpf(bpfOnly, C.BPF_PROG_GET_FD_BY_ID, { prog_id: 1 }), EPERM);
  throwsErrno(() => k.bpf(bpfOnly, C.BPF_BTF_GET_FD_BY_ID, { btf_id: 1 }), EPERM);
  throwsErrno(() => k.bpf(bpfOnly, C.BPF_LINK_GET_FD_BY_ID, { link_id: 1 }), EPERM);
  throwsErrno(() => k.bpf(bpfOnly, C.BPF_MAP_GET_FD_BY_ID, { map_id: 1 }), EPERM);
});

test("setCap toggles one capability at a time", () => {
  const { k } = boot();
  const p = k.newProcess();
  p.setCap(CAP_BPF, false);
  p.setCap(CAP_SYS_ADMIN, false);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, ARRAY), EPERM);
  p.setCap(CAP_BPF, true);
  k.bpf(p, C.BPF_MAP_CREATE, ARRAY);
});

test("unprivileged_bpf_disabled=1 is locked: it cannot be set back (EPERM); bad values are EINVAL", () => {
  const { k } = boot();
  k.sysctl.unprivilegedBpfDisabled = 0;
  k.sysctl.unprivilegedBpfDisabled = 2;
  throwsErrno(() => {
    k.sysctl.unprivilegedBpfDisabled = 3;
  }, EINVAL);
  k.unprivilegedBpfDisabled = 1;
  throwsErrno(() => {
    k.sysctl.unprivilegedBpfDisabled = 0;
  }, EPERM);
  throwsErrno(() => {
    k.unprivilegedBpfDisabled = 2;
  }, EPERM);
  const u = k.newProcess({ privileged: false });
  throwsErrno(() => k.bpf(u, C.BPF_MAP_CREATE, ARRAY), EPERM);
});
