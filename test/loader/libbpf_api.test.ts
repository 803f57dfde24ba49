import assert from "node:assert/strict";
import { test } from "node:test";
import { Kernel } from "../../src/kernel/kernel.js";
import type { BpfHandle } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpfDummyStructOpsSubsystem } from "../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { BpfError, EBUSY, EINVAL } from "../../src/uapi/errno.js";
import { objPath } from "../elf/helpers.js";

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
