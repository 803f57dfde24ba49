import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/builder.js";
import { btfDumpRaw, btfDumpRawJson } from "../../src/btf/dump_raw.js";
import { allKindsBuilder, noBpftool, noVmlinux, VMLINUX, vmlinuxBytes } from "./helpers.js";

function bpftool(...args: string[]): string {
  return execFileSync("bpftool", args, { maxBuffer: 1 << 30, encoding: "utf8" });
}

const tmp = mkdtempSync(join(tmpdir(), "btf-raw-"));

test("raw dump of the host vmlinux is identical to bpftool's", { skip: noVmlinux || noBpftool }, () => {
  const ours = btfDumpRaw(Btf.parse(vmlinuxBytes())).split("\n");
  const theirs = bpftool("btf", "dump", "file", VMLINUX).split("\n");
  assert.equal(ours.length, theirs.length);
  for (let i = 0; i < ours.length; i++) if (ours[i] !== theirs[i]) assert.equal(ours[i], theirs[i], `line ${i + 1}`);
});

test("JSON dump of the host vmlinux is identical to bpftool -j and -jp", { skip: noVmlinux || noBpftool }, () => {
  const btf = Btf.parse(vmlinuxBytes());
  assert.ok(btfDumpRawJson(btf) === bpftool("-j", "btf", "dump", "file", VMLINUX), "compact JSON differs");
  assert.ok(btfDumpRawJson(btf, { pretty: true }) === bpftool("-jp", "btf", "dump", "file", VMLINUX), "pretty differs");
});

test("raw dump of a builder blob with every kind matches bpftool", { skip: noBpftool }, () => {
  const { b } = allKindsBuilder();
  const path = join(tmp, "all.btf");
  writeFileSync(path, b.build());
  const btf = b.toBtf();
  assert.equal(btfDumpRaw(btf), bpftool("btf", "dump", "file", path));
  assert.equal(btfDumpRawJson(btf), bpftool("-j", "btf", "dump", "file", path));
});

test("raw dump of a split BTF matches bpftool -B (own types only)", { skip: noBpftool }, () => {
  const { b } = allKindsBuilder();
  const base = b.toBtf();
  const sb = new BtfBuilder({ base });
  const s = sb.addStructAuto("mod_s", [{ name: "x", type: base.findByName("int") }]);
  sb.addPtr(s);
  sb.addEnum("mod_e", 4, [{ name: "MOD_NEG", val: -2 }], true);
  const basePath = join(tmp, "base.btf");
  const splitPath = join(tmp, "split.btf");
  writeFileSync(basePath, b.build());
  writeFileSync(splitPath, sb.build());
  const split = Btf.parse(sb.build(), { base });
  const ours = btfDumpRaw(split);
  assert.equal(ours, bpftool("-B", basePath, "btf", "dump", "file", splitPath));
  assert.match(ours, /^\[\d+\] STRUCT 'mod_s' size=4 vlen=1$/m);
});

test("raw dump text forms of each kind", () => {
  const { b, ids } = allKindsBuilder();
  const text = btfDumpRaw(b.toBtf());
  assert.match(text, new RegExp(`^\\[${ids.int}\\] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED$`, "m"));
  assert.match(text, /^\t'a' type_id=\d+ bits_offset=0 bitfield_size=3$/m);
  assert.match(text, /^\t'BIG_HUGE' val=18446744069414584320ULL$/m);
  assert.match(text, new RegExp(`^\\[${ids.fwd}\\] FWD 'sock' fwd_kind=struct$`, "m"));
  assert.match(text, /^\[\d+\] FUNC 'bpf_cubic_ssthresh' type_id=\d+ linkage=global$/m);
  assert.match(text, /^\[\d+\] VAR 'cubic' type_id=\d+, linkage=global$/m);
  assert.match(text, /^\ttype_id=\d+ offset=0 size=128 \(VAR 'cubic'\)$/m);
  assert.match(text, /^\[\d+\] DECL_TAG 'bpf_kfunc' type_id=\d+ component_idx=-1$/m);
  assert.match(text, /^\[\d+\] FLOAT 'double' size=8$/m);
});
