import assert from "node:assert/strict";
import { test } from "node:test";
import { bpf_cmd, bpf_map_type, bpf_prog_type } from "../../src/uapi/bpf.js";
import { boot, ldMapFd, retProg, userBtf } from "./util.js";

const C = bpf_cmd;

test("bpf_map_info: type, sizes, flags, name, BTF ids, map_extra, vmlinux ids", () => {
  const { k, p } = boot();
  const btf = userBtf();
  const btf_fd = k.bpf(p, C.BPF_BTF_LOAD, { btf, btf_size: btf.length });
  const fd = k.bpf(p, C.BPF_MAP_CREATE, {
    map_type: bpf_map_type.BPF_MAP_TYPE_HASH,
    key_size: 4,
    value_size: 8,
    max_entries: 10,
    map_name: "counts",
    map_flags: 1,
    btf_fd,
    btf_key_type_id: 1,
    btf_value_type_id: 3,
  });
  const attr: { bpf_fd: number; info?: Record<string, unknown>; info_len?: number } = { bpf_fd: fd, info: {} };
  k.bpf(p, C.BPF_OBJ_GET_INFO_BY_FD, attr);
  const info = attr.info!;
  assert.equal(info.type, bpf_map_type.BPF_MAP_TYPE_HASH);
  assert.equal(info.key_size, 4);
  assert.equal(info.value_size, 8);
  assert.equal(info.max_entries, 10);
  assert.equal(info.map_flags, 1);
  assert.equal(info.name, "counts");
  assert.equal(info.btf_id, k.objGetInfo(p, btf_fd).id);
  assert.equal(info.btf_key_type_id, 1);
  assert.equal(info.btf_value_type_id, 3);
  assert.equal(info.btf_vmlinux_value_type_id, 0);
  assert.equal(info.btf_vmlinux_id, 0);
  assert.equal(info.map_extra, 0n);
  assert.ok((attr.info_len ?? 0) > 0);
});

test("map fdinfo has the kernel's lines in the kernel's order", () => {
  const { k, p } = boot();
  const fd = k.bpf(p, C.BPF_MAP_CREATE, {
    map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY,
    key_size: 4,
    value_size: 8,
    max_entries: 1,
    map_flags: 1 << 7,
  });
  const id = k.objGetInfo(p, fd).id;
  const lines = k.fdinfo(p, fd).trimEnd().split("\n");
  assert.deepEqual(
    lines.map((l) => l.split(":")[0]),
    [
      "pos",
      "flags",
      "mnt_id",
      "ino",
      "map_type",
      "key_size",
      "value_size",
      "max_entries",
      "map_flags",
      "map_extra",
      "memlock",
      "map_id",
      "frozen",
    ],
  );
  assert.ok(lines.includes("map_flags:\t0x80"));
  assert.ok(lines.includes("map_extra:\t0x0"));
  assert.ok(lines.includes(`map_id:\t${id}`));
  assert.ok(lines.includes("flags:\t02000002"));
});

test("bpf_prog_info: tag, name, used map ids, lengths, BTF ids; unprivileged callers see no program text", () => {
  const { k, p } = boot();
  const m = k.bpf(p, C.BPF_MAP_CREATE, {
    map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY,
    key_size: 4,
    value_size: 8,
    max_entries: 1,
  });
  const insns = [...ldMapFd(1, m), ...retProg(0)];
  const fd = k.bpf(p, C.BPF_PROG_LOAD, {
    prog_type: bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER,
    insns,
    insn_cnt: insns.length,
    license: "GPL",
    prog_name: "filter",
  });
  const info = k.objGetInfo(p, fd);
  assert.equal(info.type, bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER);
  assert.equal(info.name, "filter");
  assert.deepEqual(info.map_ids, [k.objGetInfo(p, m).id]);
  assert.equal(info.nr_map_ids, 1);
  assert.equal(info.xlated_prog_len, 32);
  assert.equal((info.tag as Uint8Array).length, 8);
  assert.match(
    k.fdinfo(p, fd),
    new RegExp(
      `prog_type:\\t1\\nprog_jited:\\t1\\nprog_tag:\\t${Buffer.from(info.tag as Uint8Array).toString("hex")}\\nmemlock:\\t4096\\nprog_id:\\t${info.id}\\n`,
    ),
  );
  k.sysctl.unprivilegedBpfDisabled = 0;
  const u = k.newProcess({ privileged: false });
  const ufd = k.bpf(u, C.BPF_PROG_LOAD, {
    prog_type: bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER,
    insns: retProg(0),
    insn_cnt: 2,
    license: "GPL",
  });
  const uinfo = k.objGetInfo(u, ufd);
  assert.equal(uinfo.xlated_prog_len, 0);
  assert.equal(uinfo.jited_prog_len, 0);
  assert.equal(uinfo.created_by_uid, 1000);
});

test("BTF objects: BTF_LOAD gives an fd and an id, bad BTF is EINVAL with a log, vmlinux is a kernel BTF", () => {
  const { k, p } = boot();
  const btf = userBtf();
  const fd = k.bpf(p, C.BPF_BTF_LOAD, { btf, btf_size: btf.length });
  const info = k.objGetInfo(p, fd);
  assert.equal(info.kernel_btf, false);
  assert.equal(info.btf_size, btf.length);
  assert.match(k.fdinfo(p, fd), new RegExp(`btf_id:\\t${info.id}\\n`));
  const bad = btf.slice();
  bad[0] = 0;
  const log = new Uint8Array(256);
  assert.throws(
    () =>
      k.bpf(p, C.BPF_BTF_LOAD, {
        btf: bad,
        btf_size: bad.length,
        btf_log_buf: log,
        btf_log_size: 256,
        btf_log_level: 1,
      }),
    (e: { errno?: number }) => e.errno === 22,
  );
  assert.ok(log[0] !== 0, "the log says why");
  const vm = k.objGetInfo(p, k.bpf(p, C.BPF_BTF_GET_FD_BY_ID, { btf_id: 1 }));
  assert.equal(vm.kernel_btf, true);
  assert.equal(vm.name, "vmlinux");
  const next: { start_id: number; next_id?: number } = { start_id: 0 };
  k.bpf(p, C.BPF_BTF_GET_NEXT_ID, next);
  assert.equal(next.next_id, 1);
  assert.ok(k.btfVmlinux!.findByName("bpf_struct_ops_common_value") > 0);
  assert.ok(k.btfVmlinux!.findByName("bpf_struct_ops_state") > 0);
});
