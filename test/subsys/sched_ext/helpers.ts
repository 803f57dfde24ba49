/** Shared by the sched_ext tests: a kernel with sched_ext, our schedulers, what they record. */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { BtfDatasec, BtfVar } from "../../../src/btf/types.js";
import { Kernel } from "../../../src/kernel/kernel.js";
import { type BpfHandle, bpf_map_lookup_elem } from "../../../src/loader/bpf.js";
import { BpfObject } from "../../../src/loader/object.js";
import { type ScxState, schedExtSubsystem, scxState } from "../../../src/subsys/sched_ext/index.js";
import { BTF_KIND_DATASEC } from "../../../src/uapi/btf.js";
import { OBJ_DIR } from "../../elf/helpers.js";

export function scxObj(name: string): string {
  return join(OBJ_DIR, "sim", `${name}.bpf.o`);
}

export interface ScxBoot {
  kernel: Kernel;
  h: BpfHandle;
  st: ScxState;
}

export function bootScx(nrCpus = 2): ScxBoot {
  const kernel = new Kernel({ subsystems: [schedExtSubsystem], nrCpus });
  const st = scxState(kernel);
  assert.ok(st);
  return { kernel, h: { kernel, process: kernel.newProcess() }, st };
}

/** Open and load one of our schedulers; `rodata` is written into .rodata before load. */
export function loadScx(b: ScxBoot, name: string, rodata?: Record<string, number>): BpfObject {
  const obj = BpfObject.open(scxObj(name));
  if (rodata) {
    const m = obj.internalMap(".rodata");
    assert.ok(m);
    const bytes = new Uint8Array(m.valueSize);
    const dv = new DataView(bytes.buffer);
    for (const [v, val] of Object.entries(rodata)) dv.setInt32(varOffset(obj, ".rodata", v), val, true);
    m.setInitialValue(bytes);
  }
  obj.load(b.h);
  return obj;
}

export function attachScx(obj: BpfObject) {
  const m = obj.maps.find((x) => x.structOpsValue);
  assert.ok(m);
  return m.attachStructOps();
}

export function varOffset(obj: BpfObject, sec: string, name: string): number {
  const btf = obj.btf;
  assert.ok(btf);
  const ds = btf.typeById(btf.findByNameKind(sec, BTF_KIND_DATASEC)) as BtfDatasec;
  for (const v of ds.vars) {
    if ((btf.typeById(v.type) as BtfVar).name === name) return v.offset;
  }
  throw new Error(`no ${name} in ${sec}`);
}

/** The bytes of a global from the loaded object's .bss (or .data). */
export function readGlobal(b: ScxBoot, obj: BpfObject, name: string, sec = ".bss"): DataView {
  const m = obj.internalMap(sec);
  assert.ok(m && m.fd > 0);
  const v = new Uint8Array(m.valueSize);
  assert.equal(bpf_map_lookup_elem(b.h, m.fd, new Uint8Array(4), v), 0);
  return new DataView(v.buffer, varOffset(obj, sec, name));
}

/** struct scx_exit_record as SCX_EXIT_RECORD() left it in .bss. */
export function exitRecord(
  b: ScxBoot,
  obj: BpfObject,
): { kind: number; exit_code: bigint; reason: string; msg: string } {
  const dv = readGlobal(b, obj, "exit_rec");
  const str = (off: number, len: number) => {
    const bytes = new Uint8Array(dv.buffer, dv.byteOffset + off, len);
    const end = bytes.indexOf(0);
    return new TextDecoder().decode(bytes.subarray(0, end < 0 ? len : end));
  };
  return { kind: dv.getInt32(0, true), exit_code: dv.getBigInt64(8, true), reason: str(16, 128), msg: str(144, 1024) };
}
