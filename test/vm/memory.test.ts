import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import { EFAULT, EINVAL, isBpfError } from "../../src/uapi/errno.js";
import { VmFault } from "../../src/vm/fault.js";
import { GUARD, VM_BASE, VmMemory } from "../../src/vm/memory.js";
import { Vm } from "../../src/vm/vm.js";
import { TIERS } from "./harness.js";

function faultOf(fn: () => unknown): VmFault {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof VmFault, `expected VmFault, got ${e}`);
    assert.equal(e.errno, EFAULT);
    return e;
  }
  assert.fail("no fault");
}

test("regions are zeroed, aligned, above 64 KiB and separated by unmapped guard gaps", () => {
  const mem = new VmMemory();
  const a = mem.alloc(13, { perm: "rw", kind: "map_value" });
  const b = mem.alloc(64, { perm: "r", kind: "rodata", align: 64 });
  assert.ok(a.addr >= VM_BASE);
  assert.equal(b.addr % 64, 0);
  assert.ok(b.addr >= a.addr + 13 + GUARD);
  assert.ok(GUARD >= 8);
  assert.deepEqual([...mem.bytes(a.addr, 13)], new Array(13).fill(0));
  assert.equal(mem.allowed(a.addr + 13, 1, 0), false, "first byte past the end is unmapped");
  assert.equal(mem.allowed(a.addr - 1, 1, 0), false, "byte before the start is unmapped");
  assert.equal(mem.regionAt(a.addr + 5), a);
  assert.equal(mem.regionAt(a.addr + 13), undefined);
});

test("check enforces program permissions; native accessors only require a mapping", () => {
  const mem = new VmMemory();
  const ro = mem.alloc(8, { perm: "r", kind: "ctx" });
  mem.check(ro.addr, 8, false);
  const f = faultOf(() => mem.check(ro.addr, 8, true));
  assert.equal(f.kind, "write");
  mem.writeU64(ro.addr, 0x1122334455667788n); // the kernel fills a read-only ctx
  assert.equal(mem.readU64(ro.addr), 0x1122334455667788n);
  assert.equal(mem.readU32(ro.addr + 4), 0x11223344);
  assert.equal(mem.readU16(ro.addr), 0x7788);
  assert.equal(mem.readU8(ro.addr), 0x88);
  mem.writeU64(ro.addr, -2);
  assert.equal(mem.readU64(ro.addr), 2n ** 64n - 2n);
  faultOf(() => mem.readU32(ro.addr + 5));
  faultOf(() => mem.readU8(0));
});

test("readCString stops at NUL and faults when the string runs off its region", () => {
  const mem = new VmMemory();
  const r = mem.alloc(8, { perm: "rw", kind: "data" });
  mem.writeBytes(r.addr, new TextEncoder().encode("cubic\0"));
  assert.equal(mem.readCString(r.addr), "cubic");
  mem.writeBytes(r.addr, new TextEncoder().encode("abcdefgh"));
  faultOf(() => mem.readCString(r.addr));
});

test("freed regions fault (use after free) and their memory is reused", () => {
  const mem = new VmMemory();
  const r = mem.alloc(32, { perm: "rw", kind: "kobj" });
  mem.writeU32(r.addr, 0xdead);
  mem.free(r);
  assert.equal(r.freed, true);
  faultOf(() => mem.readU32(r.addr));
  assert.throws(
    () => mem.free(r),
    (e: unknown) => isBpfError(e) && e.errno === EINVAL,
  );
  const again = mem.alloc(24, { perm: "rw", kind: "kobj" });
  assert.equal(again.addr, r.addr, "a fitting allocation reuses the freed bytes");
  assert.equal(mem.readU32(again.addr), 0, "reused memory is zeroed");
  const big = mem.alloc(256, { perm: "rw", kind: "data" });
  mem.free(big);
  const part1 = mem.alloc(64, { perm: "rw", kind: "data" });
  const part2 = mem.alloc(64, { perm: "rw", kind: "data" });
  assert.equal(part1.addr, big.addr, "a larger freed block is split");
  assert.equal(part2.addr, big.addr + 64 + GUARD, "its rest stays behind a guard gap");
  assert.equal(mem.allowed(big.addr + 64, GUARD, 0), false);
});

test("the memory grows on demand and keeps contents and permissions", () => {
  const mem = new VmMemory({ initialBytes: 1 << 17 });
  const first = mem.alloc(16, { perm: "rw", kind: "data" });
  mem.writeU64(first.addr, 42n);
  const before = mem.byteLength;
  const big = mem.alloc(1 << 20, { perm: "rw", kind: "data" });
  assert.ok(mem.byteLength > before);
  assert.equal(mem.readU64(first.addr), 42n);
  mem.writeU8(big.addr + (1 << 20) - 1, 1);
  mem.check(first.addr, 8, true);
});

for (const tier of TIERS) {
  const setup = (asm: string) => {
    const mem = new VmMemory();
    const vm = new Vm(mem, { tier });
    return { mem, vm, prog: vm.load(assemble(asm), { name: "t" }) };
  };

  test(`[${tier}] loads and stores outside a region fault with insn, address, size and kind`, () => {
    const { mem, vm, prog } = setup("mov %r0, 0\nldxdw %r0, [%r1+0]\nexit");
    const r = mem.alloc(12, { perm: "rw", kind: "map_value" });
    assert.equal(vm.run(prog, { r1: r.addr }).r0, 0n);
    let f = faultOf(() => vm.run(prog, { r1: r.addr + 5 })); // last byte 1 past the end
    assert.equal(f.insn, 1);
    assert.equal(f.addr, BigInt(r.addr + 5));
    assert.equal(f.size, 8);
    assert.equal(f.kind, "read");
    assert.match(f.message, /t: insn 1: invalid read of 8 bytes at 0x/);
    f = faultOf(() => vm.run(prog, { r1: 0 }));
    assert.equal(f.addr, 0n);
    // A high half that is not 0 never reaches memory, whatever the low half.
    faultOf(() => vm.run(prog, { r1: (1n << 32n) | BigInt(r.addr) }));
    faultOf(() => vm.run(prog, { r1: -8 }));
  });

  test(`[${tier}] writes to read-only regions fault and leave memory untouched`, () => {
    const { mem, vm, prog } = setup("stw [%r1+0], 7\nmov %r0, 0\nexit");
    const ro = mem.alloc(8, { perm: "r", kind: "rodata" });
    const f = faultOf(() => vm.run(prog, { r1: ro.addr }));
    assert.equal(f.kind, "write");
    assert.equal(mem.readU32(ro.addr), 0);
  });

  test(`[${tier}] atomics need a writable region`, () => {
    const { mem, vm, prog } = setup("mov %r2, 1\nlock add [%r1+0], %r2\nmov %r0, 0\nexit");
    const ro = mem.alloc(8, { perm: "r", kind: "rodata" });
    assert.equal(faultOf(() => vm.run(prog, { r1: ro.addr })).kind, "atomic");
  });

  test(`[${tier}] use after free faults`, () => {
    const { mem, vm, prog } = setup("ldxw %r0, [%r1+0]\nexit");
    const r = mem.alloc(8, { perm: "rw", kind: "kobj" });
    mem.writeU32(r.addr, 5);
    assert.equal(vm.run(prog, { r1: r.addr }).r0, 5n);
    mem.free(r);
    faultOf(() => vm.run(prog, { r1: r.addr }));
  });

  test(`[${tier}] the stack is 512 bytes: r10-512 is valid, r10-513 and r10+0 fault`, () => {
    const ok = setup("stb [%r10-512], 1\nldxb %r0, [%r10-512]\nexit");
    assert.equal(ok.vm.run(ok.prog).r0, 1n);
    const under = setup("stb [%r10-513], 1\nmov %r0, 0\nexit");
    faultOf(() => under.vm.run(under.prog));
    const over = setup("stb [%r10+0], 1\nmov %r0, 0\nexit");
    faultOf(() => over.vm.run(over.prog));
  });
}
