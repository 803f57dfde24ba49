import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ElfFile } from "../../src/elf/elf.js";
import { Kernel } from "../../src/kernel/kernel.js";
import type { BpfHandle } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpfDummyStructOpsSubsystem } from "../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { BpfError, EBUSY, EINVAL, LIBBPF_ERRNO__FORMAT } from "../../src/uapi/errno.js";
import { objPath, ROOT } from "../elf/helpers.js";

const errno = (n: number) => (e: unknown) => e instanceof BpfError && e.errno === n;

function dummyKernel(): BpfHandle {
  const kernel = new Kernel({ subsystems: [bpfDummyStructOpsSubsystem] });
  return { kernel, process: kernel.newProcess() };
}

test("bpf_map__set_autoattach is for struct_ops maps only (-EINVAL otherwise)", () => {
  const obj = BpfObject.open(objPath("dummy_ops"));
  const st = obj.maps.find((m) => m.structOps);
  assert.ok(st);
  st.setAutoattach(false);
  assert.equal(st.autoattach, false);
  const bss = obj.internalMap(".bss");
  assert.ok(bss);
  assert.throws(() => bss.setAutoattach(true), errno(EINVAL));
});

test("bpf_map__set_initial_value: -EINVAL for struct_ops (no mmaped buffer) and .kconfig, -EBUSY once loaded", () => {
  const feat = BpfObject.open(objPath("features"));
  const kcfg = feat.internalMap(".kconfig");
  assert.ok(kcfg);
  assert.throws(() => kcfg.setInitialValue(new Uint8Array(kcfg.valueSize)), errno(EINVAL));
  const obj = BpfObject.open(objPath("dummy_ops"));
  const st = obj.maps.find((m) => m.structOps);
  assert.ok(st);
  assert.throws(() => st.setInitialValue(new Uint8Array(st.valueSize)), errno(EINVAL));
  // The struct_ops shadow is what bpf_map__initial_value gives instead, writable.
  assert.equal(st.initialValue(), st.structOps?.data);
  const bss = obj.internalMap(".bss");
  assert.ok(bss);
  bss.setInitialValue(new Uint8Array(bss.valueSize));
  obj.load(dummyKernel());
  assert.throws(() => bss.setInitialValue(new Uint8Array(bss.valueSize)), errno(EBUSY));
  // After load: set_autocreate is -EBUSY, set_autoload -EINVAL.
  assert.throws(() => st.setAutocreate(false), errno(EBUSY));
  assert.throws(() => obj.programs[0]?.setAutoload(false), errno(EINVAL));
});

test("open: a relocation section for a non-exec data section is skipped with libbpf's info message", () => {
  const log: [string, string][] = [];
  const obj = BpfObject.open(join(ROOT, "test/fixtures/elf/skip_relo.bpf.o"), { print: (l, m) => log.push([l, m]) });
  assert.ok(
    log.some(([l, m]) => l === "info" && m === "elf: skipping relo section(7) .rel.data for section(6) .data"),
    log.map(([, m]) => m).join("\n"),
  );
  // .rel.BTF / .rel.BTF.ext are ignored silently (ignore_elf_section), the program's relos are kept.
  assert.ok(!log.some(([, m]) => m.includes(".rel.BTF")));
  assert.equal(obj.findProgram("skip_prog")?.secName, "syscall");
});

test("open: every relocation section, even a skipped one, must have Elf64_Rel entries and a valid target", () => {
  const good = readFileSync(join(ROOT, "test/fixtures/elf/skip_relo.bpf.o"));
  const elf = ElfFile.parse(good);
  const rel = elf.sectionByName(".rel.data");
  assert.ok(rel);
  for (const [field, value] of [
    [56, 24n], // sh_entsize (Elf64_Rela's, not Elf64_Rel's 16)
    [44, 999n], // sh_info (4 bytes)
  ] as const) {
    const b = new Uint8Array(good);
    const dv = new DataView(b.buffer, b.byteOffset);
    const at = elf.header.shoff + rel.index * 64 + field;
    if (field === 44) dv.setUint32(at, Number(value), true);
    else dv.setBigUint64(at, value, true);
    assert.throws(() => BpfObject.open(b), errno(LIBBPF_ERRNO__FORMAT), `field ${field}`);
  }
});

test("load: a refused program's verifier log is printed between libbpf's markers, then 'failed to load'", () => {
  const log: [string, string][] = [];
  const obj = BpfObject.open(join(ROOT, "test/fixtures/elf/st_ops_shadow.bpf.o"), {
    print: (l, m) => log.push([l, m]),
  });
  obj.findProgram("unused")?.setAutoload(false);
  assert.throws(() => obj.load(dummyKernel()), errno(EINVAL));
  const at = log.findIndex(([l, m]) => l === "warn" && m.includes("-- BEGIN PROG LOAD LOG --"));
  assert.ok(at >= 0, log.map(([, m]) => m).join("\n"));
  const [, text] = log[at] as [string, string];
  const name = /^prog '(\w+)': -- BEGIN PROG LOAD LOG --\n/.exec(text)?.[1];
  assert.ok(name, text);
  assert.match(text, /struct ops programs must have a GPL compatible license\n-- END PROG LOAD LOG --$/);
  assert.deepEqual(log[at + 1], ["warn", `prog '${name}': failed to load: -22`]);
});
