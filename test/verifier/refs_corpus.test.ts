import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { encodeInsns } from "../../src/isa/insn.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { bpf_prog_type } from "../../src/uapi/bpf.js";
import { BTF_KIND_FUNC, BTF_KIND_STRUCT } from "../../src/uapi/btf.js";
import { errnoName } from "../../src/uapi/errno.js";
import type { KfuncInfo } from "../../src/verifier/env.js";
import { parseVerifierVector, type VerifierVector } from "../../src/verifier/vector.js";
import { bpfCheck } from "../../src/verifier/verifier.js";
import { FIXTURES } from "./helpers.js";

/**
 * The reference-tracking corpus (test/fixtures/verifier/refs/*.data): asm programs calling the
 * kernel's kfuncs, in the annotated style of the bad-program corpus plus a `-- kfuncs` section
 * naming the program type (syscall programs load sleepable, as libbpf loads them). `{name}` is
 * the kfunc's BTF id and `{struct.member}` the member's offset, in the simulated kernel's BTF for
 * our verifier and in /sys/kernel/btf/vmlinux for the host's, which must agree with us.
 */

const DIR = join(FIXTURES, "refs");
const TYPES: Record<string, number> = {
  syscall: bpf_prog_type.BPF_PROG_TYPE_SYSCALL,
  sched_cls: bpf_prog_type.BPF_PROG_TYPE_SCHED_CLS,
};
const BPF_F_SLEEPABLE = 1 << 4;

interface Case {
  name: string;
  text: string;
  progType: number;
  sleepable: boolean;
  accept: boolean;
}

function cases(): Case[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith(".data"))
    .sort()
    .map((name) => {
      const text = readFileSync(join(DIR, name), "utf8");
      const kind = /^-- kfuncs\n(\w+)/m.exec(text)?.[1] ?? "";
      assert.ok(TYPES[kind] !== undefined, `${name}: program type '${kind}'`);
      const accept = /^-- expect\nok\s*$/m.test(text);
      return { name, text, progType: TYPES[kind], sleepable: kind === "syscall", accept };
    });
}

/** Replace `{kfunc}` and `{struct.member}` with what `btf` says. */
function resolve(c: Case, btf: Btf): VerifierVector {
  const text = c.text.replace(/\{(\w+)(?:\.(\w+))?\}/g, (_m, a: string, b?: string) => {
    if (!b) {
      const id = btf.findByNameKind(a, BTF_KIND_FUNC);
      assert.ok(id > 0, `${c.name}: no kfunc ${a}`);
      return `${id}`;
    }
    const t = btf.typeById(btf.findByNameKind(a, BTF_KIND_STRUCT));
    assert.ok(t.kind === BTF_KIND_STRUCT, `${c.name}: no struct ${a}`);
    const m = t.members.find((x) => x.name === b);
    assert.ok(m, `${c.name}: no member ${a}.${b}`);
    return `${m.bitOffset / 8}`;
  });
  return parseVerifierVector(text, c.name);
}

const kernel = new Kernel();

function ours(c: Case, v: VerifierVector) {
  return bpfCheck({
    insns: v.insns,
    progType: c.progType,
    sleepable: c.sleepable,
    privileged: true,
    gpl: true,
    logLevel: 1,
    btf: kernel.btfVmlinux,
    kfuncs: kernel.kfuncs as ReadonlyMap<number, KfuncInfo>,
    helperProtos: kernel.helperProtos,
    ops: kernel.progTypes.get(c.progType)?.verifier_ops,
  });
}

test("the reference corpus: each program verifies or is refused as annotated", () => {
  const all = cases();
  assert.ok(all.length >= 12, `${all.length} cases`);
  for (const c of all) {
    const v = resolve(c, kernel.btfVmlinux!);
    const r = ours(c, v);
    if (c.accept) {
      assert.equal(r.ok, true, `${c.name}:\n${r.log}`);
      continue;
    }
    assert.equal(r.ok, false, `${c.name} verified`);
    assert.equal(errnoName(r.error!.errno), errnoName(v.expect?.errno ?? 0), `${c.name}: ${r.log}`);
    assert.equal(r.error!.message, v.expect?.msg, `${c.name}: ${r.log}`);
    assert.equal(r.error!.context?.insn, v.expect?.insn, `${c.name}: ${r.log}`);
  }
});

/** bpf(BPF_PROG_LOAD) from Python ctypes, with a program type and flags. */
const LOADER = `
import ctypes, json, sys, struct, os
libc = ctypes.CDLL(None, use_errno=True)
def load(p):
    code = bytes.fromhex(p["hex"])
    buf = ctypes.create_string_buffer(code)
    lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(1 << 20)
    attr = ctypes.create_string_buffer(160)
    struct.pack_into("<IIQQIIQI", attr, 0, p["type"], len(code) // 8, ctypes.addressof(buf), ctypes.addressof(lic),
                     1, len(log), ctypes.addressof(log), 0)
    struct.pack_into("<I", attr, 44, p["flags"])
    fd = libc.syscall(321, 5, attr, ctypes.sizeof(attr))
    err = ctypes.get_errno() if fd < 0 else 0
    if fd >= 0: os.close(fd)
    return {"fd": fd, "errno": err, "log": log.value.decode(errors="replace")}
print(json.dumps([load(p) for p in json.load(sys.stdin)]))
`;

function hostSkip(): string | false {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "needs root for bpf(2)";
  if (!existsSync("/sys/kernel/btf/vmlinux")) return "no /sys/kernel/btf/vmlinux";
  if (spawnSync("python3", ["-c", "import ctypes"]).status !== 0) return "python3 with ctypes is not installed";
  return false;
}

test("the host kernel agrees with the reference corpus", { skip: hostSkip() }, () => {
  const host = Btf.parse(new Uint8Array(readFileSync("/sys/kernel/btf/vmlinux")));
  const all = cases();
  const progs = all.map((c) => ({
    hex: Buffer.from(encodeInsns(resolve(c, host).insns)).toString("hex"),
    type: c.progType,
    flags: c.sleepable ? BPF_F_SLEEPABLE : 0,
  }));
  const dir = mkdtempSync(join(tmpdir(), "structops-refs-corpus-"));
  try {
    writeFileSync(join(dir, "load.py"), LOADER);
    const out = spawnSync("python3", [join(dir, "load.py")], { input: JSON.stringify(progs), maxBuffer: 1 << 28 });
    assert.equal(out.status, 0, out.stderr?.toString());
    const res: { fd: number; errno: number; log: string }[] = JSON.parse(out.stdout.toString());
    if (res.every((r) => r.errno === 1)) return; // bpf(2) locked down here
    all.forEach((c, i) => {
      const k = res[i];
      const r = ours(c, resolve(c, kernel.btfVmlinux!));
      assert.equal(k.fd >= 0, r.ok, `${c.name}: host ${k.fd >= 0 ? "accepts" : "refuses"}\n${k.log}`);
      if (r.ok) return;
      assert.equal(errnoName(k.errno), errnoName(r.error!.errno), `${c.name}: errno`);
      const lines = k.log.split("\n").filter((l) => l && !/^(processed|verification time|stack depth) /.test(l));
      // kfunc ids differ between the two kernels' BTF: compare messages with them masked.
      const mask = (s: string) => s.replace(/#\d+/g, "#N");
      assert.equal(
        mask(lines.at(-1) ?? ""),
        mask(r.error!.message),
        `${c.name}: host log ends\n${lines.slice(-4).join("\n")}`,
      );
      const insn = lines
        .filter((l) => /^\d+: \(/.test(l))
        .at(-1)
        ?.split(":")[0];
      assert.equal(Number(insn), r.error!.context?.insn, `${c.name}: instruction`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
