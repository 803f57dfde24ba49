/** Shared fixtures for the BTF tests: a builder blob with every kind, and the host vmlinux when present. */

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import type { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/builder.js";
import { BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED } from "../../src/uapi/btf.js";

export const VMLINUX = "/sys/kernel/btf/vmlinux";

/** Reason to skip a test needing the host's vmlinux BTF, or false. */
export const noVmlinux: string | false = existsSync(VMLINUX) ? false : `${VMLINUX} not present`;

function hasTool(tool: string, args: string[]): boolean {
  try {
    execFileSync(tool, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export const noBpftool: string | false = hasTool("bpftool", ["version"]) ? false : "bpftool not installed";
export const noClang: string | false = hasTool("clang", ["--version"]) ? false : "clang not installed";

let vmlinuxCache: Uint8Array | undefined;
export function vmlinuxBytes(): Uint8Array {
  vmlinuxCache ??= new Uint8Array(readFileSync(VMLINUX));
  return vmlinuxCache;
}

/** Ids of the interesting types in allKindsBuilder(). */
export interface AllKindsIds {
  int: number;
  uint: number;
  char: number;
  bool: number;
  u64: number;
  ptrVoid: number;
  charArr: number;
  ops: number;
  flags: number;
  state: number;
  big: number;
  fwd: number;
  u32: number;
  cu32: number;
  vol: number;
  restr: number;
  proto: number;
  func: number;
  var: number;
  sec: number;
  dbl: number;
  tag: number;
  ttag: number;
  union: number;
  inner: number;
  fnptr: number;
}

/** A small BTF with every kind, a bitfield struct, nested anonymous union and func pointers. */
export function allKindsBuilder(): { b: BtfBuilder; ids: AllKindsIds } {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const uint = b.addInt("unsigned int", 4, 0);
  const char = b.addInt("char", 1, BTF_INT_CHAR);
  const bool = b.addInt("_Bool", 1, BTF_INT_BOOL);
  const u64 = b.addInt("long long unsigned int", 8, 0);
  const ptrVoid = b.addPtr(0);
  const charArr = b.addArray(char, int, 16);
  const u32 = b.addTypedef("u32", uint);
  const cu32 = b.addConst(u32);
  const vol = b.addVolatile(int);
  const restr = b.addRestrict(ptrVoid);
  const state = b.addEnum("tcp_ca_state", 4, [
    { name: "TCP_CA_Open", val: 0 },
    { name: "TCP_CA_Loss", val: 4 },
  ]);
  const big = b.addEnum64(
    "big",
    8,
    [
      { name: "BIG_ONE", val: 1n },
      { name: "BIG_HUGE", val: 0xffffffff00000000n },
    ],
    false,
  );
  const fwd = b.addFwd("sock", false);
  const ptrSock = b.addPtr(fwd);
  const proto = b.addFuncProto(u32, [
    { name: "sk", type: ptrSock },
    { name: "ack", type: u32 },
  ]);
  const fnptr = b.addPtr(proto);
  const inner = b.addStruct("", 4, [{ name: "x", type: int, bitOffset: 0 }]);
  const union = b.addUnion("", 8, [
    { name: "a", type: u64, bitOffset: 0 },
    { name: "s", type: inner, bitOffset: 0 },
  ]);
  const flags = b.addStructAuto("flags", [
    { name: "a", type: uint, bitfieldSize: 3 },
    { name: "b", type: uint, bitfieldSize: 5 },
    { name: "c", type: bool },
    { name: "d", type: uint, bitfieldSize: 20 },
  ]);
  const ops = b.addStructAuto("tcp_congestion_ops", [
    { name: "ssthresh", type: fnptr },
    { name: "cong_avoid", type: fnptr },
    { name: "state", type: state },
    { name: "flags", type: flags },
    { name: "", type: union },
    { name: "name", type: charArr },
    { name: "owner", type: ptrVoid },
  ]);
  const func = b.addFunc("bpf_cubic_ssthresh", proto, 1);
  const dbl = b.addFloat("double", 8);
  const v = b.addVar("cubic", ops, 1);
  const sec = b.addDatasec(".struct_ops", 128, [{ type: v, offset: 0, size: 128 }]);
  const tag = b.addDeclTag("bpf_kfunc", func, -1);
  const ttag = b.addTypeTag("rcu", ptrVoid);
  return {
    b,
    ids: {
      int,
      uint,
      char,
      bool,
      u64,
      ptrVoid,
      charArr,
      ops,
      flags,
      state,
      big,
      fwd,
      u32,
      cu32,
      vol,
      restr,
      proto,
      func,
      var: v,
      sec,
      dbl,
      tag,
      ttag,
      union,
      inner,
      fnptr,
    },
  };
}

/** All own types of a Btf as plain objects (for deep equality). */
export function allTypes(btf: Btf): unknown[] {
  return [...btf.types()];
}
