import { test } from "node:test";
import { BPF_F_LINK, bpf_cmd, bpf_map_type, bpf_prog_type } from "../../src/uapi/bpf.js";
import { EINVAL } from "../../src/uapi/errno.js";
import { boot, retProg, throwsErrno } from "./util.js";

const C = bpf_cmd;
const ARRAY = { map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: 8, max_entries: 1 };

test("CHECK_ATTR: non-zero bytes past each command's last field are EINVAL", () => {
  const { k, p } = boot();
  const fd = k.bpf(p, C.BPF_MAP_CREATE, ARRAY);
  const cases: [number, object][] = [
    [C.BPF_MAP_CREATE, { ...ARRAY, extra: { pad: 1 } }],
    [C.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: new Uint8Array(4), value: new Uint8Array(8), extra: { x: 1 } }],
    [C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: new Uint8Array(4), value: new Uint8Array(8), extra: { x: 1 } }],
    [C.BPF_MAP_DELETE_ELEM, { map_fd: fd, key: new Uint8Array(4), extra: { x: 1n } }],
    // GET_NEXT_KEY ends at next_key: a flags field is past it.
    [C.BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key: null, next_key: new Uint8Array(4), flags: 1 }],
    [C.BPF_MAP_FREEZE, { map_fd: fd, flags: 1 }],
    [C.BPF_PROG_LOAD, { prog_type: 1, insns: retProg(0), insn_cnt: 2, license: "GPL", extra: { fd_array_cnt: 1 } }],
    [C.BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: fd, extra: { x: 1 } }],
    // GET_NEXT_ID ends at next_id: open_flags must be 0.
    [C.BPF_MAP_GET_NEXT_ID, { start_id: 0, open_flags: 1 }],
    // PROG/LINK_GET_FD_BY_ID end at the id itself.
    [C.BPF_PROG_GET_FD_BY_ID, { prog_id: 1, next_id: 1 }],
    [C.BPF_LINK_GET_FD_BY_ID, { link_id: 1, open_flags: 1 }],
    [C.BPF_BTF_LOAD, { btf: new Uint8Array(0), extra: { x: 1 } }],
    [C.BPF_LINK_CREATE, { prog_fd: fd, attach_type: 44, extra: { x: 1 } }],
    [C.BPF_LINK_UPDATE, { link_fd: fd, extra: { x: 1 } }],
    [C.BPF_LINK_DETACH, { link_fd: fd, flags: 1 }],
    [C.BPF_PROG_TEST_RUN, { prog_fd: fd, extra: { x: 1 } }],
    // A field of another command of the union is past this one's end.
    [C.BPF_MAP_CREATE, { ...ARRAY, prog_type: 1 }],
  ];
  for (const [cmd, attr] of cases) throwsErrno(() => k.bpf(p, cmd, attr as never), EINVAL, /CHECK_ATTR/);
});

test("zero-valued trailing fields are accepted", () => {
  const { k, p } = boot();
  k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, extra: { pad: 0 } });
});

test("unknown flags are EINVAL", () => {
  const { k, p } = boot();
  throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, map_flags: 1 << 30 }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, map_flags: BPF_F_LINK }), EINVAL);
  throwsErrno(
    () =>
      k.bpf(p, C.BPF_PROG_LOAD, {
        prog_type: bpf_prog_type.BPF_PROG_TYPE_SYSCALL,
        insns: retProg(0),
        insn_cnt: 2,
        license: "GPL",
        prog_flags: 1 << 20,
      }),
    EINVAL,
    /prog_flags/,
  );
  const fd = k.bpf(p, C.BPF_MAP_CREATE, ARRAY);
  const key = new Uint8Array(4);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key, value: new Uint8Array(8), flags: 2 }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key, value: new Uint8Array(8), flags: 3 }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_GET_FD_BY_ID, { map_id: 1, open_flags: 1 << 10 }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_LINK_UPDATE, { link_fd: fd, flags: 1 }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_BTF_LOAD, { btf: new Uint8Array(0), btf_flags: 1 }), EINVAL);
});

test("map_create's generic checks: vmlinux value type only for struct_ops, map_extra, RDONLY|WRONLY, key id without value id", () => {
  const { k, p } = boot();
  throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, btf_vmlinux_value_type_id: 5 }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, map_extra: 1 }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, map_flags: (1 << 3) | (1 << 4) }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, btf_key_type_id: 1 }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, map_type: 999 }), EINVAL, /not supported/);
});

test("object names: [A-Za-z0-9_.], at most 15 characters", () => {
  const { k, p } = boot();
  k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, map_name: "a.b_C9" });
  k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, map_name: "x".repeat(15) });
  throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, map_name: "x".repeat(16) }), EINVAL);
  throwsErrno(() => k.bpf(p, C.BPF_MAP_CREATE, { ...ARRAY, map_name: "a-b" }), EINVAL);
  const load = (prog_name: string) =>
    k.bpf(p, C.BPF_PROG_LOAD, { prog_type: 1, insns: retProg(0), insn_cnt: 2, license: "GPL", prog_name });
  load("ok_name");
  throwsErrno(() => load("bad name"), EINVAL);
});
