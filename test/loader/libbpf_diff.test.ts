import assert from "node:assert/strict";
import { test } from "node:test";
import { BpfObject } from "../../src/loader/object.js";
import { objPath, run, toolMissing } from "../elf/helpers.js";

const noBpftool = toolMissing("bpftool", ["version"]);

// Objects Debian's libbpf 1.1 opens fully (it ignores `.struct_ops.link` and `struct_ops.s`).
for (const name of ["tcp_reno", "tcp_dctcp", "features"]) {
  test(`${name}: maps and programs in the order and with the names libbpf gives them (bpftool gen skeleton)`, {
    skip: noBpftool,
  }, () => {
    const skel = run("bpftool", ["gen", "skeleton", objPath(name)]);
    const names = (what: string) =>
      [...skel.matchAll(new RegExp(`s->${what}\\[\\d+\\]\\.name = "([^"]+)"`, "g"))].map((m) => m[1]);
    const obj = BpfObject.open(objPath(name));
    assert.deepEqual(
      obj.programs.map((p) => p.name),
      names("progs"),
    );
    // libbpf 1.1 has no `.struct_ops.link` / `?.struct_ops` maps; ours has them in addition.
    const ours = obj.maps.filter((m) => !m.structOps || (m.flags === 0 && m.autocreate)).map((m) => m.name);
    assert.deepEqual(ours, names("maps"));
  });
}
