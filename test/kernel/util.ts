/** Shared helpers of the kernel tests: a booted kernel, tiny programs, little-endian buffers. */

import assert from "node:assert/strict";
import { BtfBuilder } from "../../src/btf/builder.js";
import { type Insn, insn, ldImm64 } from "../../src/isa/insn.js";
import {
  BPF_ADD,
  BPF_ALU64,
  BPF_CALL,
  BPF_DW,
  BPF_EXIT,
  BPF_JEQ,
  BPF_JMP,
  BPF_K,
  BPF_LDX,
  BPF_MEM,
  BPF_MOV,
  BPF_ST,
  BPF_STX,
  BPF_X,
} from "../../src/isa/opcodes.js";
import { Kernel, type KernelOptions } from "../../src/kernel/kernel.js";
import type { Process } from "../../src/kernel/process.js";
import { BTF_INT_SIGNED } from "../../src/uapi/btf.js";
import { BpfError } from "../../src/uapi/errno.js";

export function boot(opts: KernelOptions = {}): { k: Kernel; p: Process } {
  const k = new Kernel(opts);
  return { k, p: k.newProcess() };
}

export function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

export function u64(v: bigint | number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(v)), true);
  return b;
}

export function readU64(b: Uint8Array): bigint {
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}

export function readU32(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
}

/** Assert `fn` throws a BpfError with `errno`. */
export function throwsErrno(fn: () => unknown, errno: number, msg?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BpfError, `expected BpfError, got ${e}`);
    assert.equal(e.errno, errno, `expected errno ${errno}, got ${e.errno}: ${e.message}`);
    if (msg) assert.match(e.message, msg);
    return true;
  });
}

export const mov64 = (dst: number, imm: number): Insn => insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
export const mov64r = (dst: number, src: number): Insn => insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
export const add64 = (dst: number, imm: number): Insn => insn(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm);
export const call = (id: number, src = 0): Insn => insn(BPF_JMP | BPF_CALL, 0, src, 0, id);
export const exit = (): Insn => insn(BPF_JMP | BPF_EXIT);
export const stDw = (dst: number, off: number, imm: number): Insn => insn(BPF_ST | BPF_MEM | BPF_DW, dst, 0, off, imm);
export const stxDw = (dst: number, src: number, off: number): Insn =>
  insn(BPF_STX | BPF_MEM | BPF_DW, dst, src, off, 0);
export const ldxDw = (dst: number, src: number, off: number): Insn =>
  insn(BPF_LDX | BPF_MEM | BPF_DW, dst, src, off, 0);
export const jeqImm = (dst: number, imm: number, off: number): Insn =>
  insn(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, off, imm);
export const ldMapFd = (dst: number, fd: number): Insn[] => ldImm64(dst, BigInt(fd), 1);

/** `r0 = imm; exit` */
export function retProg(imm: number): Insn[] {
  return [mov64(0, imm), exit()];
}

/** A user BTF blob with `int` (id 1) and a struct value { long a; } (id 3). */
export function userBtf(): Uint8Array {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const long = b.addInt("long", 8, BTF_INT_SIGNED);
  b.addStructAuto("val", [{ name: "a", type: long }]);
  void int;
  return b.build();
}
