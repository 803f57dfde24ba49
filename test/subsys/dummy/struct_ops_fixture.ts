/**
 * Test fixture for struct_ops: a kernel booted with bpf_dummy_ops and `bpf_testmod_ops`, a
 * registrable struct_ops type modelled on the selftests' bpf_testmod (reg/unreg/update/validate
 * are spies), plus helpers to load programs, build values and drive the bpf() commands.
 */
import { BtfBuilder } from "../../../src/btf/builder.js";
import type { BtfComposite, BtfMember } from "../../../src/btf/types.js";
import { assemble } from "../../../src/isa/asm.js";
import { Kernel, type Subsystem } from "../../../src/kernel/kernel.js";
import type { Process } from "../../../src/kernel/process.js";
import {
  type BpfStructOps,
  type BpfStructOpsDesc,
  type BpfStructOpsKdata,
  builderFind,
  declareStructOpsValueType,
  registerBpfStructOps,
} from "../../../src/kernel/struct_ops.js";
import { bpfDummyStructOpsSubsystem } from "../../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { BPF_F_LINK, bpf_cmd, bpf_map_type, bpf_prog_type } from "../../../src/uapi/bpf.js";
import { BTF_FUNC_STATIC, BTF_INT_SIGNED, BTF_KIND_INT, BTF_KIND_STRUCT } from "../../../src/uapi/btf.js";
import { BpfError, EEXIST, EINVAL } from "../../../src/uapi/errno.js";

export const TESTMOD = "bpf_testmod_ops";

/** What the testmod subsystem saw: every reg/unreg/update/validate, in order. */
export interface TestmodSpy {
  events: string[];
  /** Registered kdata, by `data` value (the "name" testmod registers under). */
  registered: Map<number, BpfStructOpsKdata>;
  regs: number;
  unregs: number;
  failReg?: number;
}

export function newSpy(): TestmodSpy {
  return { events: [], registered: new Map(), regs: 0, unregs: 0 };
}

/**
 * struct bpf_testmod_ops {
 *   int (*test_1)(void);                         // required by validate
 *   int (*test_2)(int a, int b);
 *   int (*test_ptr)(struct st_ops_args *args);   // stub tags args__nullable
 *   int data;                                    // init_member copies it
 *   struct module *owner;
 *   int zeroed;                                  // generic: must be zero
 *   int (*unsupported)(int x);                   // no cfi stub
 *   short (*test_short)(long x);                 // signed 2-byte return
 * };
 */
export function declareTestmodTypes(b: BtfBuilder): void {
  const int =
    builderFind(b, "int", BTF_KIND_INT) > 0 ? builderFind(b, "int", BTF_KIND_INT) : b.addInt("int", 4, BTF_INT_SIGNED);
  const short = b.addInt("short int", 2, BTF_INT_SIGNED);
  const long = b.addInt("long int", 8, BTF_INT_SIGNED);
  const u64 = b.addInt("long long unsigned int", 8);
  const args = b.addStructAuto("st_ops_args", [{ name: "a", type: u64 }]);
  const pArgs = b.addPtr(args);
  let module = builderFind(b, "module", BTF_KIND_STRUCT);
  if (module < 0) module = b.addStructAuto("module", [{ name: "state", type: int }]);
  const p0 = b.addFuncProto(int, []);
  const p2 = b.addFuncProto(int, [
    { name: "a", type: int },
    { name: "b", type: int },
  ]);
  const pPtr = b.addFuncProto(int, [{ name: "args", type: pArgs }]);
  const pUns = b.addFuncProto(int, [{ name: "x", type: int }]);
  const pShort = b.addFuncProto(short, [{ name: "x", type: long }]);
  b.addStructAuto(TESTMOD, [
    { name: "test_1", type: b.addPtr(p0) },
    { name: "test_2", type: b.addPtr(p2) },
    { name: "test_ptr", type: b.addPtr(pPtr) },
    { name: "data", type: int },
    { name: "owner", type: b.addPtr(module) },
    { name: "zeroed", type: int },
    { name: "unsupported", type: b.addPtr(pUns) },
    { name: "test_short", type: b.addPtr(pShort) },
  ]);
  b.addFunc("bpf_testmod_test_1", p0, BTF_FUNC_STATIC);
  b.addFunc("bpf_testmod_test_2", p2, BTF_FUNC_STATIC);
  b.addFunc("bpf_testmod_test_ptr", b.addFuncProto(int, [{ name: "args__nullable", type: pArgs }]), BTF_FUNC_STATIC);
  b.addFunc("bpf_testmod_test_short", pShort, BTF_FUNC_STATIC);
  declareStructOpsValueType(b, TESTMOD);
}

export function testmodOps(spy: TestmodSpy, opts: { noUpdate?: boolean } = {}): BpfStructOps<BpfStructOpsKdata> {
  const dataOf = (k: BpfStructOpsKdata): number => k.view.getInt32(k.desc.memberOffsets[3], true);
  const ops: BpfStructOps<BpfStructOpsKdata> = {
    name: TESTMOD,
    cfiStubs: {
      test_1: "bpf_testmod_test_1",
      test_2: "bpf_testmod_test_2",
      test_ptr: "bpf_testmod_test_ptr",
      test_short: "bpf_testmod_test_short",
    },
    initMember(_t: BtfComposite, member: BtfMember, kdata: BpfStructOpsKdata, udata: Uint8Array): number {
      if (member.name !== "data") return 0;
      const off = member.bitOffset / 8;
      kdata.bytes.set(udata.subarray(off, off + 4), off);
      return 1;
    },
    validate(kdata: BpfStructOpsKdata): void {
      spy.events.push("validate");
      if (!kdata.func("test_1")) throw new BpfError(EINVAL, "test_1 is required");
    },
    reg(kdata: BpfStructOpsKdata, link: object | null): void {
      const d = dataOf(kdata);
      if (spy.failReg !== undefined) throw new BpfError(spy.failReg, "reg refused");
      if (spy.registered.has(d)) throw new BpfError(EEXIST, `data ${d} already registered`);
      spy.registered.set(d, kdata);
      spy.regs++;
      spy.events.push(`reg:${d}:${link ? "link" : "map"}`);
    },
    unreg(kdata: BpfStructOpsKdata, link: object | null): void {
      const d = dataOf(kdata);
      if (spy.registered.get(d) === kdata) spy.registered.delete(d);
      spy.unregs++;
      spy.events.push(`unreg:${d}:${link ? "link" : "map"}`);
    },
  };
  if (!opts.noUpdate) {
    ops.update = (kdata: BpfStructOpsKdata, old: BpfStructOpsKdata): void => {
      const d = dataOf(kdata);
      const od = dataOf(old);
      if (d !== od || spy.registered.get(od) !== old) throw new BpfError(EINVAL, "not registered or different data");
      spy.registered.set(d, kdata);
      spy.events.push(`update:${d}`);
    };
  }
  return ops;
}

export function testmodSubsystem(spy: TestmodSpy, opts: { noUpdate?: boolean } = {}): Subsystem {
  return {
    name: "bpf_testmod",
    declareTypes: declareTestmodTypes,
    register(k: Kernel): void {
      registerBpfStructOps(k, testmodOps(spy, opts));
    },
  };
}

export interface Rig {
  k: Kernel;
  proc: Process;
  spy: TestmodSpy;
}

export function boot(opts: { noUpdate?: boolean; noTestmod?: boolean; extra?: Subsystem[] } = {}): Rig {
  const spy = newSpy();
  const subs: Subsystem[] = [bpfDummyStructOpsSubsystem];
  if (!opts.noTestmod) subs.push(testmodSubsystem(spy, opts));
  const k = new Kernel({ subsystems: [...subs, ...(opts.extra ?? [])] });
  return { k, proc: k.newProcess(), spy };
}

export function typeId(k: Kernel, name: string): number {
  const id = k.btfVmlinux!.findByNameKind(name, BTF_KIND_STRUCT);
  if (id < 0) throw new Error(`no struct ${name}`);
  return id;
}

export function memberIdx(k: Kernel, struct: string, member: string): number {
  const t = k.btfVmlinux!.typeById(typeId(k, struct)) as BtfComposite;
  return t.members.findIndex((m) => m.name === member);
}

/** A user-loaded BTF fd (libbpf passes the object's BTF as btf_fd). */
export function userBtfFd(r: Rig): number {
  const b = new BtfBuilder();
  b.addInt("int", 4, BTF_INT_SIGNED);
  const data = b.build();
  return r.k.bpf(r.proc, bpf_cmd.BPF_BTF_LOAD, { btf: data, btf_size: data.length });
}

export interface LoadOpts {
  sleepable?: boolean;
  license?: string;
  attachBtfId?: number;
  expectedAttachType?: number;
  name?: string;
}

/** Load a STRUCT_OPS program for `struct`.`member` from conformance-syntax assembly. */
export function loadProg(r: Rig, struct: string, member: string, asm: string, o: LoadOpts = {}): number {
  const insns = assemble(asm);
  return r.k.bpf(r.proc, bpf_cmd.BPF_PROG_LOAD, {
    prog_type: bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS,
    insns,
    insn_cnt: insns.length,
    license: o.license ?? "GPL",
    prog_name: o.name ?? member,
    expected_attach_type: o.expectedAttachType ?? memberIdx(r.k, struct, member),
    attach_btf_id: o.attachBtfId ?? typeId(r.k, struct),
    prog_flags: o.sleepable ? 1 << 4 : 0,
  });
}

export function valueTypeOf(r: Rig, struct: string): BtfComposite {
  return r.k.btfVmlinux!.typeById(typeId(r.k, `bpf_struct_ops_${struct}`)) as BtfComposite;
}

export function createMap(r: Rig, struct: string, o: { link?: boolean; name?: string; btfFd?: number } = {}): number {
  const vt = valueTypeOf(r, struct);
  return r.k.bpf(r.proc, bpf_cmd.BPF_MAP_CREATE, {
    map_type: bpf_map_type.BPF_MAP_TYPE_STRUCT_OPS,
    key_size: 4,
    value_size: vt.size,
    max_entries: 1,
    map_flags: o.link ? BPF_F_LINK : 0,
    map_name: o.name ?? "st_ops",
    btf_fd: o.btfFd ?? userBtfFd(r),
    btf_vmlinux_value_type_id: vt.id,
  });
}

/** A value buffer for `struct bpf_struct_ops_<struct>` with helpers to fill members of `data`. */
export class Value {
  readonly bytes: Uint8Array;
  readonly dv: DataView;
  readonly dataOff: number;
  readonly t: BtfComposite;

  constructor(r: Rig, struct: string) {
    const vt = valueTypeOf(r, struct);
    this.bytes = new Uint8Array(vt.size);
    this.dv = new DataView(this.bytes.buffer);
    this.dataOff = vt.members[1].bitOffset / 8;
    this.t = r.k.btfVmlinux!.typeById(typeId(r.k, struct)) as BtfComposite;
  }

  off(member: string): number {
    const m = this.t.members.find((x) => x.name === member);
    if (!m) throw new Error(`no member ${member}`);
    return this.dataOff + m.bitOffset / 8;
  }

  u64(member: string, v: number | bigint): this {
    this.dv.setBigUint64(this.off(member), BigInt(v), true);
    return this;
  }

  i32(member: string, v: number): this {
    this.dv.setInt32(this.off(member), v, true);
    return this;
  }

  str(member: string, s: string): this {
    this.bytes.set(new TextEncoder().encode(s), this.off(member));
    return this;
  }

  getU64(member: string): bigint {
    return this.dv.getBigUint64(this.off(member), true);
  }
}

export const KEY0 = new Uint8Array(4);

export function update(r: Rig, mapFd: number, v: Value | Uint8Array, key = KEY0, flags = 0): number {
  const value = v instanceof Value ? v.bytes : v;
  return r.k.bpf(r.proc, bpf_cmd.BPF_MAP_UPDATE_ELEM, { map_fd: mapFd, key, value, flags });
}

export function lookup(r: Rig, mapFd: number, size: number, key = KEY0): Uint8Array {
  const value = new Uint8Array(size);
  r.k.bpf(r.proc, bpf_cmd.BPF_MAP_LOOKUP_ELEM, { map_fd: mapFd, key, value });
  return value;
}

export function del(r: Rig, mapFd: number, key = KEY0): number {
  return r.k.bpf(r.proc, bpf_cmd.BPF_MAP_DELETE_ELEM, { map_fd: mapFd, key });
}

export function linkCreate(r: Rig, mapFd: number): number {
  return r.k.bpf(r.proc, bpf_cmd.BPF_LINK_CREATE, { map_fd: mapFd, attach_type: 44 });
}

export function linkUpdate(r: Rig, linkFd: number, newMapFd: number, oldMapFd?: number): number {
  return r.k.bpf(r.proc, bpf_cmd.BPF_LINK_UPDATE, {
    link_fd: linkFd,
    new_map_fd: newMapFd,
    flags: oldMapFd !== undefined ? 1 << 2 : 0,
    old_map_fd: oldMapFd ?? 0,
  });
}

export function linkDetach(r: Rig, linkFd: number): number {
  return r.k.bpf(r.proc, bpf_cmd.BPF_LINK_DETACH, { link_fd: linkFd });
}

export function close(r: Rig, fd: number): void {
  r.proc.files.close(fd);
}

/** A complete testmod value: test_1 and test_2 programs, `data` = d. */
export function testmodValue(r: Rig, d: number, progs: { test_1?: number; test_2?: number } = {}): Value {
  const v = new Value(r, TESTMOD).i32("data", d);
  const t1 = progs.test_1 ?? loadProg(r, TESTMOD, "test_1", "mov %r0, 42\nexit");
  v.u64("test_1", t1);
  if (progs.test_2 !== undefined) v.u64("test_2", progs.test_2);
  return v;
}

export type { BpfStructOpsDesc };
