// `struct_ops show` and `struct_ops dump`, plain, -j and -p, compared byte for byte with the host's
// bpftool on the same object registered in the host kernel. What differs between two kernels by
// nature (ids, the BTF type id of the value type) is replaced by a placeholder on both sides;
// everything else must be identical. Skips without bpftool, without root or where bpf() is refused.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { freshState, so } from "./spawn.js";

const BPFTOOL = ["/usr/sbin/bpftool", "/usr/bin/bpftool", "/usr/local/sbin/bpftool"].find((p) => existsSync(p));

function hostSkip(): string | false {
  if (!BPFTOOL) return "bpftool is not installed";
  if (process.getuid?.() !== 0) return "needs root for bpf()";
  const r = spawnSync(BPFTOOL, ["struct_ops", "show"], { encoding: "utf8" });
  if (r.status !== 0) return `bpftool struct_ops show fails here: ${r.stderr.trim()}`;
  return false;
}
const skip = hostSkip();

const bpftool = (...args: string[]) => execFileSync(BPFTOOL!, args, { encoding: "utf8" });

/** Ids and type ids that two kernels hand out differently, as placeholders. */
function normalize(s: string): string {
  return s
    .replace(/"(id|btf_id|btf_vmlinux_value_type_id)": ?\d+/g, '"$1":N')
    .replace(/prog_id:\d+/g, "prog_id:N")
    .replace(/^\d+: /gm, "N: ");
}

for (const obj of ["bpf/obj/tcp_reno.bpf.o", "bpf/obj/tcp_dctcp.bpf.o"]) {
  test(`struct_ops show/dump of ${obj}: plain, -j and -p as the host's bpftool prints them`, { skip }, async (t) => {
    const reg = spawnSync(BPFTOOL!, ["struct_ops", "register", obj], { encoding: "utf8" });
    const m = /Registered tcp_congestion_ops (\w+) id (\d+)/.exec(reg.stderr);
    if (reg.status !== 0 || !m) {
      // Another run holds the same algorithm name (EEXIST; bpftool 7.1 prints errno 0 there).
      t.skip(`the host refused the registration: ${reg.stderr.trim()}`);
      return;
    }
    const [, name, hostId] = m;
    const views = [
      ["struct_ops", "show", "id"],
      ["-j", "struct_ops", "show", "id"],
      ["-p", "struct_ops", "show", "id"],
      ["struct_ops", "dump", "id"],
      ["-j", "struct_ops", "dump", "id"],
      ["-p", "struct_ops", "dump", "id"],
    ];
    let host: string[];
    try {
      host = views.map((v) => bpftool(...v, hostId!));
      host.push(bpftool("struct_ops", "dump", "name", name!));
    } finally {
      bpftool("struct_ops", "unregister", "id", hostId!);
    }
    const state = freshState();
    const r = await so(["struct_ops", "register", obj], state);
    assert.equal(r.code, 0, r.err);
    const id = /id (\d+)/.exec(r.err)![1]!;
    const ours: string[] = [];
    for (const v of views) ours.push((await so([...v, id], state)).out);
    ours.push((await so(["struct_ops", "dump", "name", name!], state)).out);
    ours.forEach((o, i) => {
      assert.equal(normalize(o), normalize(host[i]!), `structops ${[...(views[i] ?? ["dump name"]), id].join(" ")}`);
    });
  });
}
