import assert from "node:assert/strict";
import { test } from "node:test";
import type { BtfComposite } from "../../src/btf/types.js";
import type { KernelOptions } from "../../src/kernel/kernel.js";
import { sk_alloc, sk_destruct } from "../../src/kernel/sock.js";
import { bpfTcpCaSubsystem } from "../../src/subsys/tcp/bpf_tcp_ca.js";
import { TcpCongControl } from "../../src/subsys/tcp/tcp_cong.js";
import { tcpReno } from "../../src/subsys/tcp/tcp_reno.js";
import {
  BPF_EXIST,
  BPF_F_NO_PREALLOC,
  BPF_NOEXIST,
  BPF_SK_STORAGE_GET_F_CREATE,
  bpf_cmd,
  bpf_func_id,
  bpf_map_type,
  bpf_prog_type,
} from "../../src/uapi/bpf.js";
import { BTF_KIND_STRUCT } from "../../src/uapi/btf.js";
import { EACCES, EBADF, EEXIST, EINVAL, ENOENT, ENOTSUPP } from "../../src/uapi/errno.js";
import { boot, call, exit, jeqImm, ldMapFd, ldxDw, mov64, readU64, throwsErrno, u32, u64, userBtf } from "./util.js";

const C = bpf_cmd;
const ENOTSOCK = 88;

function setup(opts: KernelOptions = {}) {
  const { k, p } = boot(opts);
  const btf = userBtf();
  const btf_fd = k.bpf(p, C.BPF_BTF_LOAD, { btf, btf_size: btf.length });
  const attr = {
    map_type: bpf_map_type.BPF_MAP_TYPE_SK_STORAGE,
    key_size: 4,
    value_size: 8,
    max_entries: 0,
    map_flags: BPF_F_NO_PREALLOC,
    btf_fd,
    btf_key_type_id: 1,
    btf_value_type_id: 3,
  };
  return { k, p, btf_fd, attr };
}

test("SK_STORAGE creation: BTF key/value ids, key_size 4, max_entries 0, BPF_F_NO_PREALLOC", () => {
  const { k, p, attr } = setup();
  k.bpf(p, C.BPF_MAP_CREATE, attr);
  for (const bad of [
    { map_flags: 0 },
    { max_entries: 1 },
    { key_size: 8 },
    { value_size: 0 },
    { btf_key_type_id: 0 },
    { btf_value_type_id: 0, btf_key_type_id: 0 },
    { map_flags: BPF_F_NO_PREALLOC | (1 << 3) },
  ]) {
    throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, { ...attr, ...bad }), EINVAL, undefined);
  }
  // The key type must be a 4-byte int in BTF (id 2 is an 8-byte long).
  throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, { ...attr, btf_key_type_id: 2 }), EINVAL);
  // A kernel BTF cannot describe a map.
  const vmlinuxFd = k.bpf(p, C.BPF_BTF_GET_FD_BY_ID, { btf_id: k.btfVmlinuxObj!.id });
  throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, { ...attr, btf_fd: vmlinuxFd }), EACCES);
});

test("SK_STORAGE from userspace is keyed by socket fd", () => {
  const { k, p, attr } = setup();
  const m = k.bpf(p, C.BPF_MAP_CREATE, attr);
  const s1 = k.socket(p);
  const s2 = k.socket(p);
  const v = new Uint8Array(8);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: m, key: u32(s1), value: v }), ENOENT);
  throwsErrno(
    () => k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: m, key: u32(s1), value: u64(1), flags: BPF_EXIST }),
    ENOENT,
  );
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: m, key: u32(s1), value: u64(11), flags: BPF_NOEXIST });
  throwsErrno(
    () => k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: m, key: u32(s1), value: u64(1), flags: BPF_NOEXIST }),
    EEXIST,
  );
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: m, key: u32(s2), value: u64(22) });
  k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: m, key: u32(s1), value: v });
  assert.equal(readU64(v), 11n);
  k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: m, key: u32(s2), value: v });
  assert.equal(readU64(v), 22n);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: m, key: u32(99), value: v }), EBADF);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: m, key: u32(m), value: v }), ENOTSOCK);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_GET_NEXT_KEY, { map_fd: m, key: null, next_key: new Uint8Array(4) }), ENOTSUPP);
  k.bpf(p, C.BPF_MAP_DELETE_ELEM, { map_fd: m, key: u32(s1) });
  throwsErrno(() => k.bpf(p, C.BPF_MAP_DELETE_ELEM, { map_fd: m, key: u32(s1) }), ENOENT);
});

test("SK_STORAGE from programs: bpf_sk_storage_get by struct sock *, F_CREATE, delete", () => {
  // bpf_tcp_ca_get_func_proto allows the sk_storage helpers: a tcp_congestion_ops program gets
  // its `struct sock *sk` as a typed (BTF) pointer in ctx slot 0, which is what they take.
  const cong = new TcpCongControl(tcpReno());
  const { k, p, attr } = setup({ subsystems: [bpfTcpCaSubsystem(() => cong)] });
  const m = k.bpf(p, C.BPF_MAP_CREATE, attr);
  const sk = sk_alloc(k);
  const ca = k.btfVmlinux!.findByNameKind("tcp_congestion_ops", BTF_KIND_STRUCT);
  const ssthresh = (k.btfVmlinux!.typeById(ca) as BtfComposite).members.findIndex((mb) => mb.name === "ssthresh");
  const ctx = k.mem.alloc(8, { perm: "rw", kind: "ctx", name: "ssthresh ctx" });
  k.mem.bytes(ctx.addr, 8).set(u64(sk.addr));
  // r2 = sk (ctx slot 0); r0 = storage ? *storage : -1, with r4 = flags
  const getProg = (flags: number) => [
    ldxDw(2, 1, 0),
    ...ldMapFd(1, m),
    mov64(3, 0),
    mov64(4, flags),
    call(bpf_func_id.BPF_FUNC_sk_storage_get),
    jeqImm(0, 0, 2),
    ldxDw(0, 0, 0),
    exit(),
    mov64(0, -1),
    exit(),
  ];
  const load = (insns: ReturnType<typeof getProg>) =>
    k.bpf(p, C.BPF_PROG_LOAD, {
      prog_type: bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS,
      insns,
      insn_cnt: insns.length,
      license: "GPL",
      attach_btf_id: ca,
      expected_attach_type: ssthresh,
    });
  const get0 = k.prog_idr.find(k.objGetInfo(p, load(getProg(0))).id as number)!;
  const getC = k.prog_idr.find(k.objGetInfo(p, load(getProg(BPF_SK_STORAGE_GET_F_CREATE))).id as number)!;
  const runWith = (prog: typeof get0) => Number(BigInt.asIntN(64, prog.bpf_func!(ctx.addr)));
  assert.equal(runWith(get0), -1);
  assert.equal(runWith(getC), 0, "created zeroed");
  const fd = k.socket(p);
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: m, key: u32(fd), value: u64(5) });
  assert.equal(sk.sk_bpf_storage.size, 1);
  const del = [ldxDw(2, 1, 0), ...ldMapFd(1, m), call(bpf_func_id.BPF_FUNC_sk_storage_delete), exit()];
  const delProg = k.prog_idr.find(k.objGetInfo(p, load(del)).id as number)!;
  assert.equal(Number(BigInt.asIntN(64, delProg.bpf_func!(ctx.addr))), 0);
  assert.equal(Number(BigInt.asIntN(64, delProg.bpf_func!(ctx.addr))), -ENOENT);
  assert.equal(runWith(get0), -1);
  sk_destruct(sk);
});

test("bpf_sk_storage_get is not for socket filters (sk_filter_func_proto has no sk_storage)", () => {
  const { k, p, attr } = setup();
  const m = k.bpf(p, C.BPF_MAP_CREATE, attr);
  const insns = [
    mov64(2, 0),
    ...ldMapFd(1, m),
    mov64(3, 0),
    mov64(4, 0),
    call(bpf_func_id.BPF_FUNC_sk_storage_get),
    mov64(0, 0),
    exit(),
  ];
  throwsErrno(
    () =>
      k.bpf(p, C.BPF_PROG_LOAD, {
        prog_type: bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER,
        insns,
        insn_cnt: insns.length,
        license: "GPL",
      }),
    EINVAL,
    /program of this type cannot use helper bpf_sk_storage_get#107/,
  );
});

test("storage goes with its socket and with its map", () => {
  const { k, p, attr } = setup();
  const m = k.bpf(p, C.BPF_MAP_CREATE, attr);
  const s = k.socket(p);
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: m, key: u32(s), value: u64(5) });
  const sk = [...k.sockByAddr.values()][0];
  assert.equal(sk.sk_bpf_storage.size, 1);
  k.close(p, m);
  k.quiesce();
  assert.equal(sk.sk_bpf_storage.size, 0, "map free removes every socket's value");
  const m2 = k.bpf(p, C.BPF_MAP_CREATE, attr);
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: m2, key: u32(s), value: u64(6) });
  k.close(p, s);
  assert.equal(sk.dead, true);
  assert.equal(sk.sk_bpf_storage.size, 0);
});
