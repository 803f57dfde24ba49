import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { encodeInsns, ldImm64 } from "../../src/isa/insn.js";
import { bpf_cmd, bpf_func_id } from "../../src/uapi/bpf.js";
import { add64, boot, call, exit, mov64, retProg } from "./util.js";

// The helper script lives next to this test in the source tree (test/kernel/fixtures).
const here = dirname(fileURLToPath(import.meta.url));
const script = [
  join(here, "fixtures/host_prog_tag.py"),
  join(here, "../../../test/kernel/fixtures/host_prog_tag.py"),
].find(existsSync);

function hostTag(hex: string): { tag?: string; why?: string } {
  const r = spawnSync("python3", [script!, hex], { encoding: "utf8" });
  if (r.error) return { why: `python3: ${r.error.message}` };
  if (r.status === 77) return { why: `host refused: ${r.stderr.trim()}` };
  if (r.status !== 0) return { why: `helper failed: ${r.stderr.trim()}` };
  return { tag: r.stdout.trim() };
}

const probe = script ? hostTag(Buffer.from(encodeInsns(retProg(0))).toString("hex")) : { why: "helper script missing" };
const skip = probe.tag ? false : `cannot load programs into the host kernel (${probe.why})`;

test("program tags equal the host kernel's for the same instructions", { skip }, () => {
  const { k, p } = boot();
  const progs = [
    retProg(7),
    [mov64(1, 5), add64(1, 37), ...ldImm64(2, 0x1122334455667788n), call(bpf_func_id.BPF_FUNC_ktime_get_ns), exit()],
  ];
  for (const insns of progs) {
    const fd = k.bpf(p, bpf_cmd.BPF_PROG_LOAD, { prog_type: 1, insns, insn_cnt: insns.length, license: "GPL" });
    const ours = Buffer.from(k.objGetInfo(p, fd).tag as Uint8Array).toString("hex");
    const host = hostTag(Buffer.from(encodeInsns(insns)).toString("hex"));
    assert.ok(host.tag, host.why);
    assert.equal(ours, host.tag);
  }
});
