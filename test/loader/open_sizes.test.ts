import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { ElfFile } from "../../src/elf/elf.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { MMAP_MAX } from "../../src/loader/maps.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpfDummyStructOpsSubsystem } from "../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { BpfError, ENOMEM, EPERM } from "../../src/uapi/errno.js";
import { objPath } from "../elf/helpers.js";

/**
 * A .bss is SHT_NOBITS: its size is the section header's word, not bytes in the file. libbpf
 * mmap()s the map's contents at open (pages appear once touched) and the mapping fails past what
 * the machine can back; the kernel refuses a map it cannot allocate at load.
 */

function withBssSize(size: bigint): Uint8Array {
  const b = new Uint8Array(readFileSync(objPath("dummy_ops")));
  const elf = ElfFile.parse(b);
  const bss = elf.sectionByName(".bss");
  assert.ok(bss, "dummy_ops has a .bss");
  new DataView(b.buffer).setBigUint64(elf.header.shoff + bss.index * 64 + 32, size, true);
  return b;
}

test("a .bss of 545 GB in a small object is ENOMEM at open with libbpf's message, without allocating it", () => {
  const bytes = withBssSize(545n << 30n);
  assert.ok(bytes.length < 64 * 1024);
  assert.throws(
    () => BpfObject.open(bytes, { name: "dummy_ops" }),
    (e: unknown) =>
      e instanceof BpfError &&
      e.errno === ENOMEM &&
      e.message === `map 'dummy_op.bss': failed to alloc content buffer: -${ENOMEM}`,
  );
  assert.throws(() => BpfObject.open(withBssSize(BigInt(MMAP_MAX) + 1n), { name: "dummy_ops" }), /content buffer/);
});

test("a 1 GB .bss opens at once and touches no memory; the kernel refuses the map at load", () => {
  const before = process.memoryUsage().arrayBuffers;
  const obj = BpfObject.open(withBssSize(1n << 30n), { name: "dummy_ops" });
  const bss = obj.maps.find((m) => m.realName === ".bss");
  assert.equal(bss?.def.valueSize, 1 << 30);
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 << 20, "no content buffer until it is touched");
  const kernel = new Kernel({ subsystems: [bpfDummyStructOpsSubsystem] });
  // RLIMIT_MEMLOCK (8 MiB by default) refuses it before any of it is allocated: EPERM.
  assert.throws(
    () => obj.load({ kernel, process: kernel.newProcess() }),
    (e: unknown) =>
      e instanceof BpfError && e.errno === EPERM && /^map 'dummy_op.bss': failed to create/.test(e.message),
  );
  // Without the limit, the simulated kernel's map memory (1 GiB in all) is short of it: ENOMEM.
  assert.throws(
    () =>
      BpfObject.open(withBssSize(1n << 30n), { name: "dummy_ops" }).load({
        kernel,
        process: kernel.newProcess({ rlimitMemlock: Number.POSITIVE_INFINITY }),
      }),
    (e: unknown) =>
      e instanceof BpfError && e.errno === ENOMEM && /^map 'dummy_op.bss': failed to create/.test(e.message),
  );
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 << 20, "a failed load touches none either");
});

test("the content buffer of an ordinary .bss is zeroes of the section's size, and .data holds the file's bytes", () => {
  const obj = BpfObject.open(objPath("dummy_ops"));
  const bss = obj.maps.find((m) => m.realName === ".bss");
  assert.ok(bss?.mmaped);
  assert.equal(bss.mmaped.length, bss.def.valueSize);
  assert.ok(bss.mmaped.every((x) => x === 0));
});
