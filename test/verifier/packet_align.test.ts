/**
 * BPF_F_STRICT_ALIGNMENT reaches the verifier (env->strict_alignment): bpf/packet_align.bpf.c's
 * packet loads are checked as check_pkt_ptr_alignment does (NET_IP_ALIGN 2 in front of the
 * frame, a variable offset's unknown bits included), a map value's as check_generic_ptr_alignment
 * does; without the flag, or with BPF_F_ANY_ALIGNMENT too, x86-64 takes every access. Compared
 * with the host kernel where it can load programs.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { BPF_F_ANY_ALIGNMENT, BPF_F_STRICT_ALIGNMENT } from "../../src/uapi/bpf.js";
import { BpfError, EACCES } from "../../src/uapi/errno.js";
import { repoRoot } from "./helpers.js";
import { hostSkip } from "./object_verdicts.js";

const OBJ = join(repoRoot(), "bpf/obj/packet_align.bpf.o");
const PROGS = ["aligned_saddr", "misaligned_u32", "variable_even", "variable_odd", "misaligned_value"];
/** Under BPF_F_STRICT_ALIGNMENT: the last two log lines of each refusal (6.18). */
const STRICT: Record<string, string[] | undefined> = {
  misaligned_u32: ["6: (61) r1 = *(u32 *)(r1 +12)", "misaligned packet access off 2+0+0+12 size 4"],
  variable_odd: ["13: (69) r0 = *(u16 *)(r1 +0)", "misaligned packet access off 2+(0x1; 0x6)+0+0 size 2"],
  misaligned_value: ["8: (61) r6 = *(u32 *)(r0 +2)", "misaligned value access off 0+0+2 size 4"],
};

function load(name: string, flags: number): { errno: number; last: string[] } {
  const k = new Kernel({ verifier: true });
  const h = { kernel: k, process: k.newProcess() };
  const lines: string[] = [];
  const obj = BpfObject.open(OBJ, { print: (_l, m) => lines.push(m) });
  for (const p of obj.programs) {
    p.setAutoload(p.name === name);
    p.progFlags |= flags;
  }
  try {
    obj.load(h);
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    const log = lines
      .join("\n")
      .split("\n")
      .filter((l) => l && !l.startsWith("processed") && !l.startsWith(";") && !/PROG LOAD LOG|failed to load/.test(l));
    return { errno: (e.context?.errno as number | undefined) ?? e.errno, last: log.slice(-2) };
  }
  return { errno: 0, last: [] };
}

test("BPF_F_STRICT_ALIGNMENT: packet and map value accesses checked as 6.18 checks them", () => {
  for (const name of PROGS) {
    const want = STRICT[name];
    const r = load(name, BPF_F_STRICT_ALIGNMENT);
    assert.equal(r.errno, want ? EACCES : 0, name);
    if (want) assert.deepEqual(r.last, want, name);
    assert.equal(load(name, 0).errno, 0, `${name}: no flag, no check`);
  }
  assert.equal(load("misaligned_u32", BPF_F_STRICT_ALIGNMENT | BPF_F_ANY_ALIGNMENT).errno, 0, "ANY_ALIGNMENT wins");
});

test("the host kernel checks the same accesses under BPF_F_STRICT_ALIGNMENT", { skip: hostSkip() }, () => {
  const out = spawnSync("python3", [join(repoRoot(), "test/fixtures/verifier/host_libbpf_load.py"), OBJ, ...PROGS], {
    encoding: "utf8",
    env: { ...process.env, PROG_FLAGS: String(BPF_F_STRICT_ALIGNMENT) },
    maxBuffer: 1 << 26,
  });
  assert.equal(out.status, 0, out.stderr);
  const host = JSON.parse(out.stdout) as { prog: string; err: number; log: string }[];
  if (host.every((x) => x.err === -1)) return; // bpf() refused here (EPERM)
  for (const r of host) {
    const want = STRICT[r.prog];
    assert.equal(r.err, want ? -EACCES : 0, r.prog);
    if (!want) continue;
    const lines = r.log.split("\n").filter((l) => l && !l.startsWith("processed") && !l.startsWith(";"));
    assert.deepEqual(lines.slice(-2), want, `${r.prog}: host`);
  }
});
