/** A simulated kernel with bpf_testmod loaded, and the objects of bpf/testmod_*.bpf.c opened on it. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { Btf } from "../../../src/btf/btf.js";
import { Kernel } from "../../../src/kernel/kernel.js";
import type { Process } from "../../../src/kernel/process.js";
import { bpf_map_lookup_elem, bpf_map_update_elem } from "../../../src/loader/bpf.js";
import { BpfObject } from "../../../src/loader/object.js";
import { bpfDummyStructOpsSubsystem } from "../../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { loadBpfTestmod } from "../../../src/subsys/testmod/bpf_testmod.js";
import { BTF_KIND_DATASEC } from "../../../src/uapi/btf.js";
import { BpfError } from "../../../src/uapi/errno.js";

export const objPath = (name: string): string => `bpf/obj/sim/${name}.bpf.o`;
export const skipFor = (name: string): string | false =>
  existsSync(objPath(name)) ? false : `${objPath(name)} is missing (run bpf/build.sh)`;

export interface TestmodRig {
  k: Kernel;
  proc: Process;
  h: { kernel: Kernel; process: Process };
}

export function bootTestmod(opts: { noModule?: boolean } = {}): TestmodRig {
  const k = new Kernel({ subsystems: [bpfDummyStructOpsSubsystem] });
  if (!opts.noModule) loadBpfTestmod(k);
  const proc = k.newProcess();
  return { k, proc, h: { kernel: k, process: proc } };
}

/** Open an object, its libbpf messages (warn and info) collected in `log`. */
export function openObj(name: string): { obj: BpfObject; log: string[] } {
  const log: string[] = [];
  const print = (level: string, msg: string) => {
    if (level !== "debug") log.push(`libbpf: ${msg}`);
  };
  return { obj: BpfObject.open(objPath(name), { print }), log };
}

/** The `.bss` map's value as userspace reads it, and the offset of variable `name` in it. */
function bssOf(r: TestmodRig, obj: BpfObject, name: string): { fd: number; value: Uint8Array; off: number } {
  const map = obj.maps.find((m) => m.name.endsWith(".bss"));
  const btf = obj.btf as Btf;
  const dsId = btf.findByNameKind(".bss", BTF_KIND_DATASEC);
  if (!map || dsId < 0) throw new Error("no .bss");
  const ds = btf.typeById(dsId) as { vars: { type: number; offset: number }[] };
  const v = ds.vars.find((x) => btf.typeById(x.type).name === name);
  if (!v) throw new Error(`no .bss variable ${name}`);
  const value = new Uint8Array(map.valueSize);
  const err = bpf_map_lookup_elem(r.h, map.fd, new Uint8Array(4), value);
  if (err) throw new Error(`lookup .bss: ${err}`);
  return { fd: map.fd, value, off: v.offset };
}

/** A global of `.bss` (a 4-byte int), read through the map as userspace reads it. */
export function bss32(r: TestmodRig, obj: BpfObject, name: string): number {
  const { value, off } = bssOf(r, obj, name);
  return new DataView(value.buffer).getInt32(off, true);
}

/** A 4- or 8-byte global of `.bss` read (value undefined) or written through the map. */
export function bssVar(r: TestmodRig, obj: BpfObject, name: string, size: 4 | 8, set?: number): number {
  const { fd, value, off } = bssOf(r, obj, name);
  const dv = new DataView(value.buffer);
  if (set === undefined) return size === 4 ? dv.getInt32(off, true) : Number(dv.getBigInt64(off, true));
  if (size === 4) dv.setInt32(off, set, true);
  else dv.setBigInt64(off, BigInt(set), true);
  const err = bpf_map_update_elem(r.h, fd, new Uint8Array(4), value, 0);
  if (err) throw new Error(`update .bss: ${err}`);
  return set;
}

/** The BpfError `fn` throws (anything else fails the test). */
export function errOf(fn: () => unknown): BpfError {
  try {
    fn();
  } catch (e) {
    if (e instanceof BpfError) return e;
    throw e;
  }
  assert.fail("expected a BpfError");
}
