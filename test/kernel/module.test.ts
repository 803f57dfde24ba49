/** Loadable modules: life cycle, references, delete_module's refusals, the module's BTF object. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import {
  delete_module,
  EWOULDBLOCK,
  find_module,
  load_module,
  module_list,
  module_put,
  module_refcount,
  try_module_get,
} from "../../src/kernel/module.js";
import { bpf_btf_get_fd_by_id, bpf_btf_get_info_by_fd, bpf_btf_get_next_id, close } from "../../src/loader/bpf.js";
import { bpfTestmodModule } from "../../src/subsys/testmod/bpf_testmod.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { BTF_KIND_STRUCT } from "../../src/uapi/btf.js";
import { BpfError, EBADF, EBUSY, EEXIST, EINVAL, ENOENT, ENXIO, EPERM, EPROTO } from "../../src/uapi/errno.js";

function boot() {
  const k = new Kernel();
  const proc = k.newProcess();
  return { k, h: { kernel: k, process: proc } };
}

function errno(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof BpfError) return e.errno;
    throw e;
  }
  return 0;
}

/** A refusal's errno and message. */
function refusal(fn: () => unknown): [number, string] {
  try {
    fn();
  } catch (e) {
    if (e instanceof BpfError) return [e.errno, e.message];
    throw e;
  }
  return [0, ""];
}

/** libbpf's walk of the BTF ids: (id, name, kernel_btf) of each. */
function btfs(h: ReturnType<typeof boot>["h"]): [number, string, boolean][] {
  const out: [number, string, boolean][] = [];
  const next = { id: 0 };
  while (bpf_btf_get_next_id(h, next.id, next) === 0) {
    const fd = bpf_btf_get_fd_by_id(h, next.id);
    const info: { name?: string; kernel_btf?: boolean } = {};
    assert.equal(bpf_btf_get_info_by_fd(h, fd, info), 0);
    out.push([next.id, info.name ?? "", info.kernel_btf ?? false]);
    close(h, fd);
  }
  return out;
}

test("a module's BTF is split BTF over vmlinux, listed by BTF_GET_NEXT_ID with kernel_btf and its name", () => {
  const { k, h } = boot();
  const mod = load_module(k, bpfTestmodModule);
  const btf = mod.btfObj!;
  assert.deepEqual(btfs(h), [
    [k.btfVmlinuxObj!.id, "vmlinux", true],
    [btf.id, "bpf_testmod", true],
  ]);
  // Its own types continue vmlinux's ids; vmlinux's types are reachable through it.
  assert.equal(btf.btf.startId, k.btfVmlinux!.nrTypes + 1);
  assert.ok(btf.btf.findByNameKind("bpf_testmod_ops", BTF_KIND_STRUCT) > k.btfVmlinux!.nrTypes);
  assert.equal(
    btf.btf.findByNameKind("task_struct", BTF_KIND_STRUCT),
    k.btfVmlinux!.findByNameKind("task_struct", BTF_KIND_STRUCT),
  );
  assert.equal(module_list(k).length, 1);
});

test("rmmod: the BTF id goes with the module, an fd held across keeps the object readable", () => {
  const { k, h } = boot();
  const mod = load_module(k, bpfTestmodModule);
  const id = mod.btfObj!.id;
  const fd = bpf_btf_get_fd_by_id(h, id);
  delete_module(k, "bpf_testmod");
  assert.equal(find_module(k, "bpf_testmod"), undefined);
  assert.equal(mod.btfObj, null);
  const info: { name?: string } = {};
  assert.equal(bpf_btf_get_info_by_fd(h, fd, info), 0);
  assert.equal(info.name, "bpf_testmod");
  close(h, fd);
  k.quiesce();
  assert.equal(bpf_btf_get_fd_by_id(h, id), -ENOENT);
  assert.deepEqual(
    btfs(h).map((b) => b[1]),
    ["vmlinux"],
  );
  // Loaded again: a new BTF id.
  const again = load_module(k, bpfTestmodModule);
  assert.notEqual(again.btfObj!.id, id);
});

test("references: try_module_get/module_put; delete_module refuses a module in use (EWOULDBLOCK)", () => {
  const { k } = boot();
  const mod = load_module(k, bpfTestmodModule);
  assert.equal(module_refcount(mod), 0);
  assert.ok(try_module_get(mod));
  assert.equal(module_refcount(mod), 1);
  const e = (() => {
    try {
      delete_module(k, "bpf_testmod");
    } catch (x) {
      return x as BpfError;
    }
  })();
  assert.equal(e?.errno, EWOULDBLOCK);
  assert.equal(e?.message, "Module bpf_testmod is in use (refcount 1)");
  module_put(mod);
  delete_module(k, "bpf_testmod");
  // Going: no new references.
  assert.equal(try_module_get(mod), false);
});

test("load and unload errors: EEXIST for a second load, ENOENT for no such module, a failed init unwinds", () => {
  const { k, h } = boot();
  load_module(k, bpfTestmodModule);
  assert.equal(
    errno(() => load_module(k, bpfTestmodModule)),
    EEXIST,
  );
  assert.equal(
    errno(() => delete_module(k, "no_such_mod")),
    ENOENT,
  );
  const before = btfs(h).length;
  assert.equal(
    errno(() =>
      load_module(k, {
        name: "bad_init",
        declareTypes: (b) => void b.addInt("bad_init_int", 4),
        init: () => {
          throw new BpfError(EPERM, "init refused");
        },
      }),
    ),
    EPERM,
  );
  assert.equal(find_module(k, "bad_init"), undefined);
  k.quiesce();
  assert.equal(btfs(h).length, before);
  // A module whose init runs is LIVE; delete_module of one that is not is EBUSY.
  const m = load_module(k, { name: "plain" });
  m.state = 2;
  assert.equal(
    errno(() => delete_module(k, "plain")),
    EBUSY,
  );
});

/** `call kfunc(imm) off` then `r0 = 0; exit`, as a SCHED_CLS program (a type of the module's kfunc set). */
function loadKfuncCall(r: ReturnType<typeof boot>, imm: number, off: number, fd_array?: number[]): number {
  const insns = [
    { code: 0xb7, dst: 1, src: 0, off: 0, imm: 5 },
    { code: 0x85, dst: 0, src: 2, off, imm },
    { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
    { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
  ];
  const attr = { prog_type: 3, insns, insn_cnt: insns.length, license: "GPL", fd_array };
  return r.k.bpf(r.h.process, bpf_cmd.BPF_PROG_LOAD, attr);
}

test("module kfunc calls: insn->off indexes fd_array, which must name a live module's BTF", () => {
  const r = boot();
  const mod = load_module(r.k, bpfTestmodModule);
  const btf = mod.btfObj!;
  const id = btf.btf.findByNameKind("bpf_testmod_test_mod_kfunc", 12);
  const modFd = bpf_btf_get_fd_by_id(r.h, btf.id);
  const vmlinuxFd = bpf_btf_get_fd_by_id(r.h, r.k.btfVmlinuxObj!.id);
  const fd = loadKfuncCall(r, id, 1, [0, modFd]);
  assert.ok(fd > 0);
  assert.equal(module_refcount(mod), 1);
  // add_kfunc_call's refusals, each with 6.18's verifier message.
  assert.deepEqual(
    refusal(() => loadKfuncCall(r, id, -1, [0, modFd])),
    [EINVAL, "negative offset disallowed for kernel module function call"],
  );
  assert.deepEqual(
    refusal(() => loadKfuncCall(r, id, 1)),
    [EPROTO, "kfunc offset > 0 without fd_array is invalid"],
  );
  assert.deepEqual(
    refusal(() => loadKfuncCall(r, id, 1, [0, vmlinuxFd])),
    [EINVAL, "BTF fd for kfunc is not a module BTF"],
  );
  assert.deepEqual(
    refusal(() => loadKfuncCall(r, id, 1, [0, 999])),
    [EBADF, "invalid module BTF fd specified"],
  );
  // A module BTF id that is not a FUNC; in vmlinux (off 0) the module's id is no type at all.
  assert.equal(
    errno(() => loadKfuncCall(r, btf.btf.findByNameKind("bpf_testmod_ops", BTF_KIND_STRUCT), 1, [0, modFd])),
    EINVAL,
  );
  assert.equal(
    errno(() => loadKfuncCall(r, id, 0, [0, modFd])),
    EINVAL,
  );
  r.k.quiesce();
  assert.equal(module_refcount(mod), 1, "failed loads hold nothing");
  r.k.close(r.h.process, fd);
  r.k.quiesce();
  assert.equal(module_refcount(mod), 0);
  // The module gone, its BTF (held by the fd) finds no module: ENXIO.
  delete_module(r.k, "bpf_testmod");
  assert.equal(
    errno(() => loadKfuncCall(r, id, 1, [0, modFd])),
    ENXIO,
  );
});
