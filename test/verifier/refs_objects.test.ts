import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { SimTarget } from "../../src/fidelity/sim.js";
import { kernelCpumasks } from "../../src/kernel/cpumask.js";
import { task_exit } from "../../src/kernel/task.js";
import type { BpfHandle } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { BpfError, EACCES, EINVAL } from "../../src/uapi/errno.js";
import { OBJ_DIR, ROOT } from "../elf/helpers.js";

/**
 * Reference tracking on clang output (bpf/refs.bpf.c): what must load loads and runs, with every
 * reference the kernel hands out given back; what must be refused is refused with the kernel's
 * message. The messages are 6.18's; where the host can load the object, it is asked too.
 */

const VARIANTS = ["", "sim"] as const;
const objPath = (v: string) => join(OBJ_DIR, v, "refs.bpf.o");

function boot(): BpfHandle {
  const kernel = new SimTarget().kernel;
  return { kernel, process: kernel.newProcess() };
}

function run(h: BpfHandle, obj: BpfObject, name: string, ctx: Uint8Array = new Uint8Array(8)): number {
  const attr = { prog_fd: obj.findProgram(name)!.fd, ctx_in: ctx, ctx_size_in: ctx.length, retval: 0 };
  const r = h.kernel.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr);
  assert.ok(r >= 0, `${name}: test_run ${r}`);
  return attr.retval | 0;
}

const pidArg = (pid: number) => new Uint8Array(new Int32Array([pid, 0]).buffer);

/** The refused programs, each with the message 6.18 ends its log with. */
const REFUSED: [string, number, string | RegExp][] = [
  ["leak", EINVAL, "BPF_EXIT instruction in main prog would lead to reference leak"],
  ["double_release", EINVAL, "arg#0 pointer type STRUCT task_struct must point to scalar, or struct with scalar"],
  ["release_unchecked", EACCES, "Possibly NULL pointer passed to trusted arg0"],
  ["release_unacquired", EINVAL, "release kernel function bpf_task_release expects refcounted PTR_TO_BTF_ID"],
  ["use_after_release", EACCES, /^R\d invalid mem access 'scalar'$/],
  ["rcu_outside_section", EINVAL, "R1 must be a rcu pointer"],
  ["untrusted_to_trusted_arg", EINVAL, "R1 must be referenced or trusted"],
  ["rcu_nested", EINVAL, "nested rcu read lock (kernel function bpf_rcu_read_lock)"],
  ["rcu_unmatched_unlock", EINVAL, "unmatched rcu read unlock (kernel function bpf_rcu_read_unlock)"],
  ["rcu_exit_locked", EINVAL, "BPF_EXIT instruction in main prog cannot be used inside bpf_rcu_read_lock-ed region"],
];

for (const v of VARIANTS) {
  const label = v || "host types";
  test(`refs.bpf.o (${label}): references taken by accepted programs all come back`, () => {
    const h = boot();
    const obj = BpfObject.open(objPath(v));
    obj.load(h);
    const k = h.kernel;
    const me = h.process.task;
    assert.ok(me);
    const masks = kernelCpumasks(k);
    for (let i = 0; i < 3; i++) {
      assert.equal(run(h, obj, "task_from_pid", pidArg(h.process.pid)), h.process.pid);
      assert.equal(run(h, obj, "task_from_pid", pidArg(4242)), -1, "no such pid: NULL, nothing held");
      assert.equal(run(h, obj, "acquire_current"), h.process.pid);
      assert.equal(run(h, obj, "rcu_parent"), 0, "real_parent is the idle task");
      assert.equal(run(h, obj, "cpumask_ops"), 11, "cpu 0 set, weight 1");
      assert.equal(run(h, obj, "subprog_ref", pidArg(h.process.pid)), h.process.pid);
    }
    // Every acquired reference was released: the task holds only the process's own, no mask lives.
    assert.equal(me.usage, 1);
    assert.equal(masks.count(), 0);
    k.rcu.quiesce();
    // The process exits: the last reference goes, the task's memory after a grace period.
    task_exit(me);
    assert.ok(k.taskByAddr.get(me.addr) === me && !me.freed, "freed only after a grace period");
    k.rcu.quiesce();
    assert.equal(me.freed, true);
    assert.equal(run(h, obj, "task_from_pid", pidArg(h.process.pid)), -1, "an exited task is not found");
  });

  for (const [name, errno, msg] of REFUSED) {
    test(`refs.bpf.o (${label}): ${name} is refused with the kernel's message`, () => {
      const err = refusal(objPath(v), name);
      assert.equal(err.errno, errno, err.message);
      const lines = err.message.split("\n");
      const last = lines.filter((l) => l && !l.startsWith("processed ")).at(-1) ?? "";
      if (typeof msg === "string") assert.equal(last, msg, err.message);
      else assert.match(last, msg, err.message);
      if (name === "leak")
        assert.ok(
          lines.some((l) => /^Unreleased reference id=2 alloc_insn=\d+$/.test(l)),
          err.message,
        );
    });
  }
}

/** Load program `name` of the object alone into a fresh simulated kernel: the refusal. */
function refusal(path: string, name: string): BpfError {
  const h = boot();
  const obj = BpfObject.open(path);
  for (const p of obj.programs) p.setAutoload(p.name === name);
  try {
    obj.load(h, { logLevel: 1 });
  } catch (e) {
    if (e instanceof BpfError) return e;
    throw e;
  }
  assert.fail(`${name} loaded`);
}

/** The host kernel as the oracle: the same source, each refused program loaded alone. */
function hostSkip(): string | false {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "needs root for bpf(2)";
  for (const tool of ["clang", "bpftool"]) {
    if (spawnSync("which", [tool]).status !== 0) return `${tool} is not installed`;
  }
  if (!existsSync("/sys/kernel/btf/vmlinux")) return "no /sys/kernel/btf/vmlinux";
  if (!existsSync("/sys/fs/bpf")) return "no bpffs";
  return false;
}

test("the host kernel accepts and refuses refs.bpf.c's programs as we do", { skip: hostSkip() }, () => {
  const dir = mkdtempSync(join(tmpdir(), "structops-refs-"));
  const pin = `/sys/fs/bpf/structops-refs-${process.pid}`;
  try {
    const hdr = spawnSync("bpftool", ["btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"], {
      maxBuffer: 1 << 28,
    });
    writeFileSync(join(dir, "vmlinux.h"), hdr.stdout);
    const src = readFileSync(join(ROOT, "bpf/refs.bpf.c"), "utf8");
    const load = (only: string | null) => {
      // The one program under test loads by default; the accepted ones always load.
      const text = only
        ? src.replace(new RegExp(`SEC\\("\\?syscall"\\)\\nint ${only}\\(`), `SEC("syscall")\nint ${only}(`)
        : src;
      writeFileSync(join(dir, "p.bpf.c"), text);
      const cc = spawnSync(
        "clang",
        [
          "-g",
          "-O2",
          "-target",
          "bpf",
          "-mcpu=v3",
          "-D__TARGET_ARCH_x86",
          `-I${dir}`,
          `-I${join(ROOT, "bpf/include")}`,
          "-c",
          join(dir, "p.bpf.c"),
          "-o",
          join(dir, "p.bpf.o"),
        ],
        { encoding: "utf8" },
      );
      assert.equal(cc.status, 0, cc.stderr);
      mkdirSync(pin, { recursive: true });
      const r = spawnSync("bpftool", ["-d", "prog", "loadall", join(dir, "p.bpf.o"), pin], { encoding: "utf8" });
      rmSync(pin, { recursive: true, force: true });
      return r;
    };
    const all = load(null);
    if (/Operation not permitted/.test(all.stderr) && all.status !== 0) return; // bpf(2) locked down
    assert.ok(!/failed to load/.test(all.stderr), all.stderr.slice(-3000));
    for (const [name, , msg] of REFUSED) {
      const r = load(name);
      const log = r.stderr.split("\n");
      const at = log.findIndex((l) => l.includes(`prog '${name}': failed to load`));
      assert.ok(at > 0, `${name}: the host loaded it\n${r.stderr.slice(-2000)}`);
      const end = log.lastIndexOf("-- END PROG LOAD LOG --", at);
      const body = log.slice(0, end).filter((l) => l && !/^(processed|verification time|stack depth) /.test(l));
      const last = body.at(-1) ?? "";
      if (typeof msg === "string") assert.equal(last, msg, `${name}: the host says\n${body.slice(-5).join("\n")}`);
      else assert.match(last, msg, `${name}: the host says\n${body.slice(-5).join("\n")}`);
      // The same object in the simulated kernel: refused at the instruction the host names.
      const lastInsn = (lines: string[]) =>
        lines
          .filter((l) => /^\d+: \(/.test(l))
          .at(-1)
          ?.split(":")[0];
      const ours = refusal(join(dir, "p.bpf.o"), name);
      assert.equal(lastInsn(ours.message.split("\n")), lastInsn(body), `${name}: ${ours.message}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(pin, { recursive: true, force: true });
  }
});
