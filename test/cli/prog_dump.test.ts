import assert from "node:assert/strict";
import { test } from "node:test";
import { StructOpsSession } from "../../src/cli/kernel_session.js";
import { dumpProgram } from "../../src/cli/prog_dump.js";
import { BpfObject } from "../../src/loader/object.js";

// Tests run from the repository root.
const OBJ = "bpf/obj/tcp_reno.bpf.o";

test("prog dump shows every instruction once, with .BTF.ext source lines", async () => {
  const obj = BpfObject.open(OBJ);
  const p = obj.findProgram("so_reno_ssthresh")!;
  const d = await dumpProgram(obj, p, p.insns, "llvm");
  const slots = p.insns.length - p.insns.filter((i) => i.code === 0x18).length;
  assert.equal(d.insns.length, slots);
  assert.equal(d.insns.at(-1)!.text, "exit");
  const withLines = d.insns.filter((i) => i.line);
  assert.ok(withLines.length >= p.lineInfo.length - 1, "every line_info record lands on an instruction");
  assert.ok(withLines.some((i) => i.line!.src.includes("snd_cwnd") && i.line!.file.endsWith("tcp_reno.bpf.c")));
});

test("prog dump xlated shows CO-RE-relocated offsets of the simulated kernel", async () => {
  const fresh = BpfObject.open(OBJ);
  const p0 = fresh.findProgram("so_reno_ssthresh")!;
  const before = (await dumpProgram(fresh, p0, p0.insns, "llvm")).insns.map((i) => i.text);
  const s = new StructOpsSession();
  const obj = BpfObject.open(OBJ);
  obj.load({ kernel: s.kernel, process: s.proc });
  const p = obj.findProgram("so_reno_ssthresh")!;
  const after = (await dumpProgram(obj, p, p.loadedInsns!, "llvm")).insns.map((i) => i.text);
  // The object was compiled against the host's vmlinux.h; the simulated tcp_sock differs.
  const field = (xs: string[]) => xs.find((t) => /^w\d = \*\(u32 \*\)\(r1 \+ 0x[0-9a-f]+\)$/.test(t));
  assert.ok(field(before) && field(after));
  assert.notEqual(field(before), field(after));
});
