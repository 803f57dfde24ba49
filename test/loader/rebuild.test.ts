/**
 * The committed BPF objects against a fresh rebuild (bpf/build.sh into a temporary OUT_DIR): each
 * rebuilt object opens to the same programs, maps and struct_ops bindings, loads (the verifier runs on
 * every load) and attaches in a fresh simulated kernel, and behaves as the committed one does. Whether
 * the bytes are identical is reported, and asserted only when bpf/obj/BUILD_INFO says the committed
 * objects came from this clang and this kernel BTF (and, for bpf/obj/sim, this simulated-kernel BTF).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { SimTarget } from "../../src/fidelity/sim.js";
import { encodeInsns } from "../../src/isa/insn.js";
import { type BpfHandle, bpf_map_lookup_elem, bpf_map_update_elem } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { BpfCcHost } from "../../src/sim/bpf_cc.js";
import { DEFAULT_LINK, simulate } from "../../src/sim/sim.js";
import { bpfDummyUserPtr } from "../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { BpfError } from "../../src/uapi/errno.js";
import { OBJ_DIR, ROOT } from "../elf/helpers.js";

const VMLINUX = "/sys/kernel/btf/vmlinux";
/** The compiler the committed objects were built with: byte identity is only expected under it. */
const CLANG = "14.0.6";
const CCS = ["tcp_reno", "tcp_cubic", "tcp_dctcp", "tcp_reno_link", "tcp_cubic_link"];
const NAMES = [...CCS, "dummy_ops", "features"];
/** "" = bpf/obj (host kernel's types), "sim" = bpf/obj/sim (the simulated kernel's types). */
const VARIANTS = ["", "sim"] as const;

function toolsMissing(): string | false {
  for (const [tool, args] of [
    ["clang", ["--version"]],
    ["llvm-strip", ["--version"]],
    ["bpftool", ["version"]],
  ] as const) {
    try {
      execFileSync(tool, args, { stdio: "ignore" });
    } catch {
      return `${tool} is not installed: the objects cannot be rebuilt here`;
    }
  }
  return existsSync(VMLINUX) ? false : `${VMLINUX} is missing: no vmlinux.h to rebuild against`;
}
const skip = toolsMissing();
// build.sh dumps the simulated kernel's BTF through the compiled CLI; without dist/ it skips that variant.
const simSkip =
  skip ||
  (existsSync(join(ROOT, "dist/src/cli/main.js")) && existsSync(join(ROOT, "dist/src/fidelity/sim.js"))
    ? false
    : "dist/ is not built (npm run build): the simulated-kernel variant needs the CLI to dump its BTF");

let out = "";
before(() => {
  if (skip) return;
  out = mkdtempSync(join(tmpdir(), "structops-rebuild-"));
  execFileSync("bash", [join(ROOT, "bpf/build.sh"), "--objects-only"], {
    env: { ...process.env, OUT_DIR: out },
    stdio: "pipe",
  });
});
after(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

const committed = (variant: string, name: string) => join(OBJ_DIR, variant, `${name}.bpf.o`);
const rebuilt = (variant: string, name: string) => join(out, variant, `${name}.bpf.o`);

/** What open saw: programs, maps, struct_ops bindings and their initial data, externs. */
function opened(path: string) {
  const obj = BpfObject.open(path);
  return {
    license: obj.license,
    programs: obj.allPrograms.map((p) => [p.name, p.secName, p.type, p.autoload, p.progFlags, p.isSubprog]),
    insns: obj.allPrograms.map((p) => Buffer.from(encodeInsns(p.insns)).toString("hex")),
    maps: obj.maps.map((m) => [m.name, m.type, m.flags, m.autocreate, m.keySize, m.valueSize, m.maxEntries]),
    bindings: obj.maps
      .filter((m) => m.structOps)
      .map((m) => [
        m.name,
        m.structOps?.tname,
        Buffer.from(m.structOps!.data).toString("hex"),
        ...(m.structOps?.progs.map((p) => p?.name ?? null) ?? []),
      ]),
    externs: obj.externs.map((e) => [e.name, e.type]),
  };
}

/** Every program as the kernel got it: relocated, kfunc ids and map fds resolved (fresh kernels agree). */
function loadedInsns(obj: BpfObject): Record<string, string> {
  return Object.fromEntries(
    obj.programs
      .filter((p) => p.loadedInsns)
      .map((p) => [p.name, Buffer.from(encodeInsns(p.loadedInsns!)).toString("hex")]),
  );
}

function errnoOf(fn: () => unknown): number {
  try {
    fn();
    return 0;
  } catch (e) {
    if (e instanceof BpfError) return e.errno;
    throw e;
  }
}

/** A TCP CC: attach in a fresh kernel, then the default scenario for 5 s, seed 1. */
function runCc(path: string) {
  const host = new BpfCcHost();
  const cc = host.attach(path);
  const r = simulate({ link: DEFAULT_LINK, durationNs: 5e9, flows: [{ cc }], seed: 1, tcp: host.tcp });
  const f = r.trace.flows[0]!;
  const obj = host.objects[0]!.obj;
  return { cc, cwnd: f.cwnd, ssthresh: f.ssthresh, ca_state: f.ca_state, insns: loadedInsns(obj) };
}

function u64s(...v: bigint[]): Uint8Array {
  const b = new Uint8Array(8 * v.length);
  const dv = new DataView(b.buffer);
  for (const [i, x] of v.entries()) dv.setBigUint64(i * 8, BigInt.asUintN(64, x), true);
  return b;
}

function boot(): BpfHandle {
  const kernel = new SimTarget().kernel;
  return { kernel, process: kernel.newProcess() };
}

/** dummy_ops: BPF_PROG_TEST_RUN of test_1/test_2/test_sleepable, as test/subsys/dummy/dummy_st_ops_obj does. */
function runDummy(path: string) {
  const h = boot();
  const obj = BpfObject.open(path);
  obj.load(h);
  const run = (prog: string, ctx: Uint8Array) => {
    const attr = { prog_fd: obj.findProgram(prog)!.fd, ctx_in: ctx, ctx_size_in: ctx.length, retval: 0 };
    const errno = errnoOf(() => h.kernel.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr));
    return { errno, retval: attr.retval };
  };
  const st = new Uint8Array([0xef, 0xbe, 0, 0]);
  const test1 = [run("dummy_test_1", u64s(0n)), run("dummy_test_1", u64s(bpfDummyUserPtr(h.process, st)))];
  const st2 = new Uint8Array([7, 0, 0, 0]);
  const test2 = run("dummy_test_2", u64s(bpfDummyUserPtr(h.process, st2), -100n, 0x8a5fn, 99n, 0x1234567887654321n));
  const bss = new Uint8Array(obj.internalMap(".bss")!.valueSize);
  bpf_map_lookup_elem(h, obj.internalMap(".bss")!.fd, new Uint8Array(4), bss);
  const sleepable = [
    run("dummy_test_sleepable", u64s(bpfDummyUserPtr(h.process, new Uint8Array(4)))),
    run("dummy_test_sleepable", u64s(0n)),
  ];
  const attachErrno = errnoOf(() => obj.findMap("dummy_1")!.attachStructOps());
  return {
    test1,
    state: [...st],
    test2,
    bss: Buffer.from(bss).toString("hex"),
    sleepable,
    attachErrno,
    insns: loadedInsns(obj),
  };
}

/** features: what test/loader/load.test.ts checks of it (kconfig, subprograms, frozen .rodata, .data writes). */
function runFeatures(path: string) {
  const t = new SimTarget();
  const h: BpfHandle = { kernel: t.kernel, process: t.kernel.newProcess() };
  const obj = BpfObject.open(path, { kconfig: "CONFIG_HZ=250\n" });
  const ro = obj.internalMap(".rodata")!;
  const init = (ro.initialValue() as Uint8Array).slice();
  new DataView(init.buffer).setInt32(0, 5, true);
  ro.setInitialValue(init);
  obj.load(h);
  const key = new Uint8Array(4);
  const read = (realName: string) => {
    const m = obj.internalMap(realName)!;
    const v = new Uint8Array(m.valueSize);
    return [bpf_map_lookup_elem(h, m.fd, key, v), Buffer.from(v).toString("hex")];
  };
  const ss = obj.findProgram("feat_ssthresh")!;
  const layout = [ss.insns.length, ss.loadedInsns?.length, obj.subprograms.map((p) => [p.name, p.insns.length])];
  const rodata = read(".rodata");
  const frozen = bpf_map_update_elem(h, ro.fd, key, new Uint8Array(ro.valueSize), 0);
  const attr = { prog_fd: obj.findProgram("feat_syscall")!.fd, retval: -1 };
  const syscall = [errnoOf(() => h.kernel.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr)), attr.retval];
  const link = obj.findMap("so_feat")!.attachStructOps();
  const registered = [link.isRealLink, t.cong.tcp_ca_find("so_feat")?.name];
  link.detach();
  return {
    kconfig: read(".kconfig"),
    layout,
    rodata,
    frozen,
    syscall,
    data: read(".data"),
    registered,
    unregistered: t.cong.tcp_ca_find("so_feat") === undefined,
    insns: loadedInsns(obj),
  };
}

for (const variant of VARIANTS) {
  const vskip = variant === "sim" ? simSkip : skip;
  const label = (name: string) => `${variant ? `${variant}/` : ""}${name}.bpf.o`;
  for (const name of NAMES) {
    const why =
      vskip || (existsSync(committed(variant, name)) ? false : `${committed(variant, name)} is not committed`);

    test(`rebuilt ${label(name)} opens with the committed object's programs, maps and struct_ops bindings`, {
      skip: why,
    }, () => {
      assert.ok(existsSync(rebuilt(variant, name)), `bpf/build.sh did not rebuild ${label(name)}`);
      const a = opened(committed(variant, name));
      assert.ok(a.programs.length > 0 && a.bindings.length > 0);
      assert.deepEqual(opened(rebuilt(variant, name)), a);
    });

    test(`rebuilt ${label(name)} loads, attaches and behaves like the committed one in a fresh simulated kernel`, {
      skip: why,
    }, () => {
      if (CCS.includes(name)) {
        const a = runCc(committed(variant, name));
        assert.equal(a.cwnd.length, 501); // 5 s sampled every 10 ms
        assert.ok(Object.keys(a.insns).length >= 3);
        const b = runCc(rebuilt(variant, name));
        assert.equal(b.cc, a.cc);
        assert.deepEqual(b.insns, a.insns);
        for (let i = 0; i < a.cwnd.length; i++) assert.equal(b.cwnd[i], a.cwnd[i], `cwnd at sample ${i}`);
        assert.deepEqual(b.ssthresh, a.ssthresh);
        assert.deepEqual(b.ca_state, a.ca_state);
      } else if (name === "dummy_ops") {
        const a = runDummy(committed(variant, name));
        // The selftest's values, so that "equal" is not two identical failures.
        assert.deepEqual(a.test1, [
          { errno: 0, retval: 0xf2f3f4f5 },
          { errno: 0, retval: 0xbeef },
        ]);
        assert.deepEqual(a.sleepable[0], { errno: 0, retval: 0 });
        assert.notEqual(a.sleepable[1]!.errno, 0);
        assert.deepEqual(runDummy(rebuilt(variant, name)), a);
      } else {
        const a = runFeatures(committed(variant, name));
        assert.equal(a.kconfig[0], 0);
        assert.equal(a.kconfig[1], "fa00000000000000"); // CONFIG_HZ=250
        assert.notEqual(a.frozen, 0);
        assert.deepEqual(a.syscall, [0, 0]);
        assert.equal(a.data[1], "08000000"); // feat_data++ from 7
        assert.deepEqual(a.registered, [true, "so_feat"]);
        assert.ok(a.unregistered);
        assert.deepEqual(runFeatures(rebuilt(variant, name)), a);
      }
    });
  }

  test(`${variant ? "bpf/obj/sim" : "bpf/obj"}: byte identity with the rebuild (asserted only under the recorded clang and kernel BTF)`, {
    skip: vskip,
  }, (t) => {
    const info = (path: string) =>
      existsSync(path)
        ? Object.fromEntries(
            readFileSync(path, "utf8")
              .split("\n")
              .filter((l) => /^[\w-]+: /.test(l))
              .map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)]),
          )
        : {};
    const now = info(join(out, "BUILD_INFO"));
    // build.sh records what the objects depend on: the compiler and the kernel BTF it read.
    assert.ok(now.clang?.includes("clang version"), "BUILD_INFO names the compiler");
    assert.equal(now.vmlinux_btf_sha256, createHash("sha256").update(readFileSync(VMLINUX)).digest("hex"));
    if (variant === "sim") assert.match(now.sim_vmlinux_h_sha256 ?? "", /^[0-9a-f]{64}$/);
    const then = info(join(OBJ_DIR, "BUILD_INFO"));
    const differ = NAMES.filter(
      (n) =>
        existsSync(committed(variant, n)) &&
        !readFileSync(committed(variant, n)).equals(readFileSync(rebuilt(variant, n))),
    );
    t.diagnostic(differ.length ? `differ from the rebuild: ${differ.join(", ")}` : "all byte-identical to the rebuild");
    const keys = ["clang", "vmlinux_btf_sha256", ...(variant === "sim" ? ["sim_vmlinux_h_sha256"] : [])];
    const unlike = keys.filter((k) => !then[k] || then[k] !== now[k]);
    if (!now.clang?.includes(`clang version ${CLANG}`)) unlike.push(`clang is not ${CLANG}`);
    if (unlike.length) {
      t.diagnostic(
        `byte identity not asserted: the build here differs from bpf/obj/BUILD_INFO in ${unlike.join(", ")}`,
      );
      return;
    }
    assert.deepEqual(differ, [], "same clang and kernel BTF as recorded, yet the objects differ");
  });
}
