/**
 * The generic types every vmlinux BTF has and module headers use without declaring: `loff_t`,
 * `struct callback_head`, `struct __kernel_sockaddr_storage` (the selftests' bpf_testmod.h and
 * bpf_testmod_kfunc.h name them over vmlinux.h), `false`/`true` and the TCP states (bpf_qdisc_fq). Their C, as bpftool prints it, is the host
 * kernel's; bpf/linux_types.bpf.c compiles against the simulated kernel's vmlinux.h.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { btfDumpC } from "../../src/btf/dump_c.js";
import { btfResolveSize } from "../../src/btf/resolve.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { BTF_KIND_ENUM, BTF_KIND_STRUCT, BTF_KIND_TYPEDEF } from "../../src/uapi/btf.js";
import { noClang, noVmlinux, vmlinuxBytes } from "../btf/helpers.js";

const TYPES: [string, number][] = [
  ["loff_t", BTF_KIND_TYPEDEF],
  ["callback_head", BTF_KIND_STRUCT],
  ["__kernel_sockaddr_storage", BTF_KIND_STRUCT],
];

function dumpOne(btf: Btf, name: string, kind: number): string {
  const id = btf.findByNameKind(name, kind);
  assert.ok(id > 0, `${name} in the BTF`);
  return btfDumpC(btf, { ids: [id], header: false });
}

test("vmlinux BTF: loff_t, callback_head and __kernel_sockaddr_storage, laid out as on x86-64", () => {
  const btf = new Kernel().btfVmlinux!;
  const size = (name: string, kind: number) => btfResolveSize(btf, btf.findByNameKind(name, kind));
  assert.equal(size("loff_t", BTF_KIND_TYPEDEF), 8);
  assert.equal(size("callback_head", BTF_KIND_STRUCT), 16);
  assert.equal(size("__kernel_sockaddr_storage", BTF_KIND_STRUCT), 128);
  // Self-referencing through a pointer, no forward declaration.
  assert.doesNotMatch(dumpOne(btf, "callback_head", BTF_KIND_STRUCT), /^struct callback_head;/m);
});

test("vmlinux BTF: the same C as the host kernel's for those types", { skip: noVmlinux }, () => {
  const ours = new Kernel().btfVmlinux!;
  const host = Btf.parse(vmlinuxBytes());
  for (const [name, kind] of TYPES) assert.equal(dumpOne(ours, name, kind), dumpOne(host, name, kind), name);
});

/** The anonymous enum that has enumerator `name` (include/linux/stddef.h, include/net/tcp_states.h). */
function dumpAnonEnum(btf: Btf, name: string): string {
  for (let id = 1; id <= btf.nrTypes; id++) {
    const t = btf.typeById(id);
    if (
      t.kind === BTF_KIND_ENUM &&
      t.name === "" &&
      (t as { values: { name: string }[] }).values.some((v) => v.name === name)
    ) {
      return btfDumpC(btf, { ids: [id], header: false });
    }
  }
  assert.fail(`no enum with ${name}`);
}

const ANON_ENUMS = ["false", "TCP_CLOSE", "TCPF_LISTEN"];

test("vmlinux BTF: false/true and the TCP states as anonymous enums", () => {
  const btf = new Kernel().btfVmlinux!;
  assert.match(dumpAnonEnum(btf, "false"), /^enum \{\n\tfalse = 0,\n\ttrue = 1,\n\};/);
  assert.match(
    dumpAnonEnum(btf, "TCP_CLOSE"),
    /\tTCP_CLOSE = 7,\n[\s\S]*\tTCP_LISTEN = 10,\n[\s\S]*\tTCP_MAX_STATES = 14,/,
  );
  assert.match(dumpAnonEnum(btf, "TCPF_LISTEN"), /\tTCPF_LISTEN = 1024,\n[\s\S]*\tTCPF_NEW_SYN_RECV = 4096,/);
});

test("vmlinux BTF: those enums as the host kernel has them", { skip: noVmlinux }, () => {
  const ours = new Kernel().btfVmlinux!;
  const host = Btf.parse(vmlinuxBytes());
  for (const name of ANON_ENUMS) assert.equal(dumpAnonEnum(ours, name), dumpAnonEnum(host, name), name);
});

test("bpf/linux_types.bpf.c compiles against the simulated kernel's vmlinux.h", { skip: noClang }, () => {
  const dir = mkdtempSync(join(tmpdir(), "structops-linux-types-"));
  try {
    writeFileSync(join(dir, "vmlinux.h"), btfDumpC(new Kernel().btfVmlinux!));
    execFileSync("clang", [
      "-O2",
      "-g",
      "-target",
      "bpf",
      `-I${dir}`,
      "-c",
      "bpf/linux_types.bpf.c",
      "-o",
      join(dir, "o.o"),
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
