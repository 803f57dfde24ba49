/**
 * BPF_MAP_TYPE_STRUCT_OPS (kernel/bpf/bpf_struct_ops.c: bpf_struct_ops_map_ops). One map holds one
 * value of a registered struct_ops type: `uvalue` is what userspace wrote (prog ids in func-ptr
 * slots once updated), `kdata` the ops struct the subsystem is handed. Without BPF_F_LINK a
 * successful update registers it (INIT -> INUSE) and delete unregisters it (-> TOBEFREE); with
 * BPF_F_LINK an update only makes it READY and links register it.
 */
import type { Btf } from "../btf/btf.js";
import { btfTypeSeqShow } from "../btf/seq_show.js";
import { BPF_F_LINK, BPF_F_VTYPE_BTF_OBJ_FD, bpf_prog_type, bpf_struct_ops_state } from "../uapi/bpf.js";
import { BpfError, E2BIG, EBUSY, EINPROGRESS, EINVAL, ENOENT, ENOTSUPP, EOPNOTSUPP } from "../uapi/errno.js";
import { BpfMap, type BpfMapInfo, type BpfMapOps, type BpfProg, type BtfObject } from "./bpf.js";
import type { MapCreateAttr } from "./bpf_attr.js";
import { btf_get_by_fd, btf_put } from "./btf_obj.js";
import type { Kernel } from "./kernel.js";
import { btf_is_module, btf_module, btf_try_get_module, type Module, module_put } from "./module.js";
import type { Process } from "./process.js";
import { isModuleMember, resolveFuncPtr, resolveSize } from "./struct_ops_btf.js";
import { type BpfStructOpsDesc, bpfStructOpsFindValue } from "./struct_ops_desc.js";
import { BPF_MODULE_OWNER, BpfStructOpsKdata } from "./struct_ops_kdata.js";
import { BpfStructOpsTrampoline, TrampolineImage, trampolineSize } from "./struct_ops_trampoline.js";
import { structOpsTrampolineVm } from "./struct_ops_vm.js";
import { bpf_map_inc, bpf_map_inc_not_zero, bpf_map_put } from "./syscall_map.js";
import { bpf_prog_get, bpf_prog_put } from "./syscall_prog.js";

const {
  BPF_STRUCT_OPS_STATE_INIT,
  BPF_STRUCT_OPS_STATE_INUSE,
  BPF_STRUCT_OPS_STATE_TOBEFREE,
  BPF_STRUCT_OPS_STATE_READY,
} = bpf_struct_ops_state;

export const PAGE_SIZE = 4096;
/** sizeof(struct bpf_struct_ops_map) without kvalue data, x86-64 (for map_mem_usage). */
const ST_MAP_STRUCT_SIZE = 512;

/** A prog installed in one func-ptr slot (struct bpf_tramp_link): owns one prog reference. */
export interface StructOpsTrampLink {
  readonly prog: BpfProg;
  readonly memberIdx: number;
  readonly trampoline: BpfStructOpsTrampoline;
}

/** struct bpf_struct_ops_map. */
export class BpfStructOpsMap extends BpfMap {
  /** kvalue.common.state. */
  state: number = BPF_STRUCT_OPS_STATE_INIT;
  /** The user view (prog ids in func-ptr slots). */
  readonly uvalue: Uint8Array;
  readonly kdata: BpfStructOpsKdata;
  /** Populated func-ptr slots, packed front to back (funcs_cnt at most). */
  links: StructOpsTrampLink[] = [];
  readonly image = new TrampolineImage();
  /** ksyms of the trampolines, visible once the update succeeded. */
  ksyms: { name: string; addr: bigint; size: number }[] = [];
  ksymsAdded = false;
  /** The deferred free ran: progs, trampolines and images are gone. */
  released = false;

  constructor(
    k: Kernel,
    ops: BpfMapOps,
    attr: MapCreateAttr,
    readonly desc: BpfStructOpsDesc,
    /** The BTF holding the type: vmlinux or a module's (the map holds it for its whole life). */
    readonly stBtf: BtfObject,
  ) {
    super(k, ops, attr);
    this.uvalue = new Uint8Array(desc.valueType.size);
    this.kdata = new BpfStructOpsKdata(desc, {
      get: () => bpfStructOpsGet(this),
      put: () => bpfStructOpsPut(this),
      id: () => this.id,
    });
  }

  get funcsCnt(): number {
    return this.desc.funcsCnt;
  }

  get btfData(): Btf {
    return this.stBtf.btf;
  }
}

export function isStructOpsMap(map: BpfMap): map is BpfStructOpsMap {
  return map instanceof BpfStructOpsMap;
}

/** bpf_struct_ops_get(): the map gains a reference unless it already dropped to zero. */
export function bpfStructOpsGet(stMap: BpfStructOpsMap): boolean {
  try {
    bpf_map_inc_not_zero(stMap);
    return true;
  } catch {
    return false;
  }
}

/** bpf_struct_ops_put(). */
export function bpfStructOpsPut(stMap: BpfStructOpsMap): void {
  bpf_map_put(stMap);
}

function mapAllocCheck(attr: MapCreateAttr): void {
  if (
    attr.key_size !== 4 ||
    attr.max_entries !== 1 ||
    ((attr.map_flags ?? 0) & ~(BPF_F_LINK | BPF_F_VTYPE_BTF_OBJ_FD)) !== 0 ||
    !attr.btf_vmlinux_value_type_id
  ) {
    throw new BpfError(
      EINVAL,
      "struct_ops map needs key_size 4, max_entries 1, flags within BPF_F_LINK|BPF_F_VTYPE_BTF_OBJ_FD and btf_vmlinux_value_type_id",
    );
  }
}

function mapAlloc(attr: MapCreateAttr, k: Kernel): BpfMap {
  let mod: Module | null = null;
  try {
    return mapAllocIn(attr, k, (m) => (mod = m));
  } catch (e) {
    module_put(mod);
    throw e;
  }
}

function mapAllocIn(attr: MapCreateAttr, k: Kernel, held: (m: Module) => void): BpfMap {
  let btfObj: BtfObject;
  let mod: Module | null;
  if ((attr.map_flags ?? 0) & BPF_F_VTYPE_BTF_OBJ_FD) {
    // map_alloc gets no process from the core: the fd is resolved in the caller's table when known.
    const proc = (k as unknown as { current?: Process }).current;
    if (!proc) throw new BpfError(EINVAL, "value_type_btf_obj_fd cannot be resolved without the calling process");
    btfObj = btf_get_by_fd(proc, attr.value_type_btf_obj_fd ?? 0);
    if (!btf_is_module(btfObj)) {
      btf_put(btfObj);
      throw new BpfError(EINVAL, "value_type_btf_obj_fd must be a module BTF");
    }
    // The module reference pins its BTF: the fd's extra reference is dropped at once.
    mod = btf_try_get_module(btfObj);
    btf_put(btfObj);
    if (!mod) throw new BpfError(EINVAL, `module ${btfObj.name} is not live`);
    held(mod);
  } else {
    const vmlinux = k.btfVmlinuxObj;
    if (!vmlinux) throw new BpfError(ENOTSUPP, "no vmlinux BTF");
    btfObj = vmlinux;
  }
  const desc = bpfStructOpsFindValue(btfObj.btf, attr.btf_vmlinux_value_type_id ?? 0);
  if (!desc) {
    throw new BpfError(ENOTSUPP, `value type id ${attr.btf_vmlinux_value_type_id} is not a registered struct_ops type`);
  }
  if (attr.value_size !== desc.valueType.size) {
    throw new BpfError(
      EINVAL,
      `value_size ${attr.value_size} != sizeof(struct ${desc.valueType.name}) ${desc.valueType.size}`,
    );
  }
  return new BpfStructOpsMap(k, bpfStructOpsMapOps, attr, desc, btfObj);
}

/** check_zero_holes(): bytes between members and after the last one must be zero. */
function checkZeroHoles(btf: Btf, t: BpfStructOpsDesc["type"], data: Uint8Array, base: number, what: string): void {
  let prevEnd = 0;
  const bad = (from: number, to: number): boolean => {
    for (let i = from; i < to; i++) if (data[base + i] !== 0) return true;
    return false;
  };
  for (const m of t.members) {
    const moff = m.bitOffset / 8;
    if (moff > prevEnd && bad(prevEnd, moff)) {
      throw new BpfError(EINVAL, `non-zero padding before member ${m.name} of ${what}`, { member: m.name });
    }
    prevEnd = moff + resolveSize(btf, m.type);
  }
  if (t.size > prevEnd && bad(prevEnd, t.size)) throw new BpfError(EINVAL, `non-zero tail padding in ${what}`);
}

function allZero(b: Uint8Array, off: number, len: number): boolean {
  for (let i = off; i < off + len; i++) if (b[i] !== 0) return false;
  return true;
}

/** reset_unlock: one rollback path, whatever step failed. */
function resetUnlock(stMap: BpfStructOpsMap): void {
  stMap.ksyms = [];
  for (const l of stMap.links) l.trampoline.free();
  stMap.image.free();
  putProgs(stMap);
  stMap.uvalue.fill(0);
  stMap.kdata.reset();
  stMap.state = BPF_STRUCT_OPS_STATE_INIT;
}

function putProgs(stMap: BpfStructOpsMap): void {
  const links = stMap.links;
  stMap.links = [];
  for (const l of links) bpf_prog_put(l.prog);
}

/**
 * bpf_struct_ops_map_update_elem(). Returns 0, or the stale positive `err` of the kernel's
 * module-slot quirk (a non-zero `owner` rolls back but returns whatever err held).
 */
function mapUpdateElem(map: BpfMap, key: Uint8Array, value: Uint8Array, flags: number, proc: Process): number {
  const stMap = map as BpfStructOpsMap;
  const desc = stMap.desc;
  const stOps = desc.stOps;
  const btf = stMap.btfData;
  const t = desc.type;
  if (flags) throw new BpfError(EINVAL, `struct_ops update flags must be 0, got ${flags}`);
  if (new DataView(key.buffer, key.byteOffset, 4).getUint32(0, true) !== 0) {
    throw new BpfError(E2BIG, "struct_ops map has a single key, 0");
  }
  checkZeroHoles(btf, desc.valueType, value, 0, `struct ${desc.valueType.name}`);
  checkZeroHoles(btf, t, value, desc.dataOffset, `struct ${t.name}`);
  const vdv = new DataView(value.buffer, value.byteOffset, value.byteLength);
  if (vdv.getUint32(0, true) !== 0 || vdv.getUint32(4, true) !== 0) {
    throw new BpfError(EINVAL, "common.refcnt and common.state must be 0 in the value");
  }
  if (stMap.state !== BPF_STRUCT_OPS_STATE_INIT) {
    throw new BpfError(EBUSY, `struct_ops map ${stMap.name || stMap.id} can only be updated once`);
  }

  stMap.uvalue.set(value.subarray(0, stMap.value_size));
  const udata = stMap.uvalue.subarray(desc.dataOffset, desc.dataOffset + t.size);
  const udv = new DataView(udata.buffer, udata.byteOffset, udata.byteLength);
  const kdata = stMap.kdata;
  const vm = structOpsTrampolineVm(stMap.kernel);
  let err = 0;
  try {
    for (let i = 0; i < t.members.length; i++) {
      const member = t.members[i];
      const moff = desc.memberOffsets[i];
      const mname = member.name;
      if (isModuleMember(btf, member.type)) {
        if (!allZero(udata, moff, 8)) {
          // The kernel jumps to reset_unlock without setting err: the rollback returns its stale value.
          resetUnlock(stMap);
          return err;
        }
        kdata.view.setBigUint64(moff, BPF_MODULE_OWNER, true);
        continue;
      }
      err = stOps.initMember(t, member, kdata as never, udata);
      if (err > 0) continue;
      const proto = resolveFuncPtr(btf, member.type);
      if (!proto) {
        if (!allZero(udata, moff, resolveSize(btf, member.type))) {
          throw new BpfError(EINVAL, `member ${mname} of struct ${t.name} must be zero`, { member: mname });
        }
        continue;
      }
      const progFd = udv.getInt32(moff, true);
      if (!progFd) continue;
      const prog = bpf_prog_get(proc, progFd);
      if (
        prog.type !== bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS ||
        prog.aux.attach_btf_id !== desc.typeId ||
        prog.expected_attach_type !== i
      ) {
        bpf_prog_put(prog);
        throw new BpfError(
          EINVAL,
          `prog fd ${progFd} for ${t.name}.${mname} must be a struct_ops prog with attach_btf_id ${desc.typeId} and expected_attach_type ${i}`,
          { member: mname },
        );
      }
      const model = desc.funcModels[i];
      if (!model) {
        bpf_prog_put(prog);
        throw new BpfError(ENOTSUPP, `member ${mname} of struct ${t.name} is not supported`, { member: mname });
      }
      const size = trampolineSize(model);
      let addr: bigint;
      try {
        addr = stMap.image.reserve(size);
      } catch (e) {
        bpf_prog_put(prog);
        throw e;
      }
      const name = `bpf__${t.name}_${mname}`;
      const tramp = new BpfStructOpsTrampoline(vm, prog, model, name, addr, size);
      stMap.links.push({ prog, memberIdx: i, trampoline: tramp });
      kdata.funcs[i] = tramp;
      kdata.view.setBigUint64(moff, addr, true);
      // The user view shows prog ids, not fds.
      udv.setBigUint64(moff, BigInt(prog.id), true);
      stMap.ksyms.push({ name, addr, size });
      err = 0;
    }
    stOps.validate?.(kdata as never);
    if (stMap.map_flags & BPF_F_LINK) {
      stMap.state = BPF_STRUCT_OPS_STATE_READY;
    } else {
      stOps.reg(kdata as never, null);
      // The registration's own reference, dropped by delete_elem.
      bpf_map_inc(stMap);
      stMap.state = BPF_STRUCT_OPS_STATE_INUSE;
    }
  } catch (e) {
    resetUnlock(stMap);
    throw e;
  }
  stMap.ksymsAdded = true;
  return 0;
}

/** bpf_struct_ops_map_delete_elem(): the key is not examined. */
function mapDeleteElem(map: BpfMap, _key: Uint8Array): void {
  const stMap = map as BpfStructOpsMap;
  if (stMap.map_flags & BPF_F_LINK)
    throw new BpfError(EOPNOTSUPP, "a BPF_F_LINK struct_ops map is detached through its link");
  const prev = stMap.state;
  if (prev === BPF_STRUCT_OPS_STATE_INUSE) {
    stMap.state = BPF_STRUCT_OPS_STATE_TOBEFREE;
    stMap.desc.stOps.unreg(stMap.kdata as never, null);
    bpf_map_put(stMap);
    return;
  }
  if (prev === BPF_STRUCT_OPS_STATE_TOBEFREE) throw new BpfError(EINPROGRESS, "struct_ops map is already unregistered");
  throw new BpfError(ENOENT, "struct_ops map is not registered");
}

/** bpf_struct_ops_map_sys_lookup_elem(). */
export function bpfStructOpsMapSysLookupElem(map: BpfMap, key: Uint8Array, value: Uint8Array): void {
  const stMap = map as BpfStructOpsMap;
  if (new DataView(key.buffer, key.byteOffset, 4).getUint32(0, true) !== 0) {
    throw new BpfError(ENOENT, "struct_ops map has a single key, 0");
  }
  const state = stMap.state;
  if (state === BPF_STRUCT_OPS_STATE_INIT) {
    value.fill(0, 0, stMap.value_size);
    return;
  }
  value.set(stMap.uvalue.subarray(0, stMap.value_size));
  const dv = new DataView(value.buffer, value.byteOffset, value.byteLength);
  dv.setUint32(4, state, true);
  // "A general estimate of how many sockets are still utilizing this struct_ops".
  dv.setUint32(0, Math.max(0, stMap.refcnt - stMap.usercnt), true);
}

function mapGetNextKey(_map: BpfMap, key: Uint8Array | null): Uint8Array {
  if (key && new DataView(key.buffer, key.byteOffset, 4).getUint32(0, true) === 0) {
    throw new BpfError(ENOENT, "no key after 0");
  }
  return new Uint8Array(4);
}

/** bpf_struct_ops_map_free(): module put, ksyms out, then free after an RCU and an RCU-tasks grace period. */
function mapFree(map: BpfMap): void {
  const stMap = map as BpfStructOpsMap;
  // The owner taken at map_alloc, which also kept the module's BTF.
  if (btf_is_module(stMap.stBtf)) module_put(btf_module(stMap.stBtf));
  stMap.ksymsAdded = false;
  const rcu = stMap.kernel.rcu;
  // synchronize_rcu_mult(call_rcu, call_rcu_tasks) in a work item: both grace periods, then free.
  let waiting = 2;
  const done = (): void => {
    if (--waiting === 0) freeNow(stMap);
  };
  rcu.callRcu(done);
  rcu.callRcuTasks(done);
}

function freeNow(stMap: BpfStructOpsMap): void {
  for (const l of stMap.links) l.trampoline.free();
  putProgs(stMap);
  stMap.ksyms = [];
  stMap.image.free();
  stMap.released = true;
}

function mapMemUsage(map: BpfMap): number {
  const stMap = map as BpfStructOpsMap;
  const vt = stMap.desc.valueType.size;
  return ST_MAP_STRUCT_SIZE + (vt - 64) + vt + stMap.funcsCnt * 8 * 2 + PAGE_SIZE;
}

function mapSeqShowElem(map: BpfMap, key: Uint8Array): string {
  const stMap = map as BpfStructOpsMap;
  const value = new Uint8Array(stMap.value_size);
  try {
    bpfStructOpsMapSysLookupElem(map, key, value);
  } catch {
    return "";
  }
  return `${btfTypeSeqShow(stMap.btfData, stMap.btf_vmlinux_value_type_id, value)}\n`;
}

export const bpfStructOpsMapOps: BpfMapOps = {
  map_alloc_check: mapAllocCheck,
  map_alloc: mapAlloc,
  map_free: mapFree,
  map_get_next_key: mapGetNextKey,
  map_lookup_elem(): number {
    throw new BpfError(EINVAL, "struct_ops maps cannot be looked up from programs");
  },
  map_update_elem(): void {
    throw new BpfError(EINVAL, "struct_ops map update needs the calling process");
  },
  map_update_elem_sys: mapUpdateElem,
  map_delete_elem: mapDeleteElem,
  map_sys_lookup_elem: bpfStructOpsMapSysLookupElem,
  map_seq_show_elem: mapSeqShowElem,
  map_mem_usage: mapMemUsage,
  map_freezable: false,
  map_fill_info(map: BpfMap, info: BpfMapInfo): void {
    info.btf_vmlinux_id = (map as BpfStructOpsMap).stBtf.id;
  },
  map_btf_name: "bpf_struct_ops_map",
};
