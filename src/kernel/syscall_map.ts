/**
 * Maps in kernel/bpf/syscall.c: creation, element commands, freeze, the map's reference counts
 * (refcnt for every holder, usercnt for user references: fds) and its memlock charge.
 */

import {
  BPF_GRAPH_ROOT,
  BPF_KPTR,
  BPF_REFCOUNT,
  BPF_RES_SPIN_LOCK,
  BPF_SPIN_LOCK,
  BPF_TASK_WORK,
  BPF_TIMER,
  BPF_UPTR,
  BPF_WORKQUEUE,
  btfCheckAndFixupFields,
  btfFieldTypeName,
  btfParseFields,
  btfRecordHasField,
  MAP_VALUE_FIELDS,
} from "../btf/record.js";
import { btfTypeIdSize, btfTypeSkipModifiers } from "../btf/resolve.js";
import {
  BPF_F_LOCK,
  BPF_F_NUMA_NODE,
  BPF_F_RDONLY,
  BPF_F_RDONLY_PROG,
  BPF_F_TOKEN_FD,
  BPF_F_WRONLY,
  BPF_F_WRONLY_PROG,
  bpf_map_type,
} from "../uapi/bpf.js";
import { BpfError, E2BIG, EACCES, EBUSY, EINVAL, ENOENT, ENOTSUPP, EOPNOTSUPP, EPERM } from "../uapi/errno.js";
import { BpfMap, type BtfObject, type UserMapping } from "./bpf.js";
import type { MapCreateAttr, MapElemAttr, MapFreezeAttr } from "./bpf_attr.js";
import { num, userBuf } from "./bpf_attr.js";
import { fillMapKobj, mapKobjSize } from "./bpf_map_btf.js";
import { btf_get_by_fd, btf_put, kptrResolver } from "./btf_obj.js";
import { bpf_map_owner } from "./core.js";
import { File, type FileOps, FMODE_READ, FMODE_WRITE, O_CLOEXEC, O_RDONLY, O_RDWR, O_WRONLY } from "./file.js";
import type { Kernel } from "./kernel.js";
import { PAGE_SIZE } from "./kernel.js";
import type { Process, UserStruct } from "./process.js";
import { bpf_obj_name_cpy, fdinfoHeader } from "./syscall_common.js";

const T = bpf_map_type;

/** Map types any user may create once unprivileged BPF is allowed (map_create's switch). */
const UNPRIV_MAP_TYPES = new Set<number>([
  T.BPF_MAP_TYPE_ARRAY,
  T.BPF_MAP_TYPE_PERCPU_ARRAY,
  T.BPF_MAP_TYPE_PROG_ARRAY,
  T.BPF_MAP_TYPE_PERF_EVENT_ARRAY,
  T.BPF_MAP_TYPE_CGROUP_ARRAY,
  T.BPF_MAP_TYPE_ARRAY_OF_MAPS,
  T.BPF_MAP_TYPE_HASH,
  T.BPF_MAP_TYPE_PERCPU_HASH,
  T.BPF_MAP_TYPE_HASH_OF_MAPS,
  T.BPF_MAP_TYPE_RINGBUF,
  T.BPF_MAP_TYPE_USER_RINGBUF,
  T.BPF_MAP_TYPE_CGROUP_STORAGE,
  T.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
]);
const NET_ADMIN_MAP_TYPES = new Set<number>([
  T.BPF_MAP_TYPE_SOCKMAP,
  T.BPF_MAP_TYPE_SOCKHASH,
  T.BPF_MAP_TYPE_DEVMAP,
  T.BPF_MAP_TYPE_DEVMAP_HASH,
  T.BPF_MAP_TYPE_XSKMAP,
]);

/** bpf_get_file_flag(): RDONLY/WRONLY map (or open) flags -> the fd's access mode. */
export function bpf_get_file_flag(flags: number): number {
  if (flags & BPF_F_RDONLY && flags & BPF_F_WRONLY)
    throw new BpfError(EINVAL, "BPF_F_RDONLY and BPF_F_WRONLY together");
  if (flags & BPF_F_RDONLY) return O_RDONLY;
  if (flags & BPF_F_WRONLY) return O_WRONLY;
  return O_RDWR;
}

// ---- memlock (v5.8 bpf_map_charge_init / bpf_map_charge_finish) ----

/** The pages `size` bytes of map memory would charge, or the refusal if the user cannot pay. */
function bpf_map_charge_pages(size: number, proc: Process): number {
  if (size >= 0xffffffff - PAGE_SIZE) throw new BpfError(E2BIG, `map memory size ${size} too large`);
  const pages = Math.ceil(size / PAGE_SIZE);
  const user = proc.user;
  const limit = Math.floor(proc.rlimitMemlock / PAGE_SIZE);
  if (user.locked_vm + pages > limit) {
    throw new BpfError(
      EPERM,
      `map needs ${pages} page(s) of locked memory; uid ${user.uid} has ${user.locked_vm} charged and RLIMIT_MEMLOCK allows ${limit}`,
    );
  }
  return pages;
}

export function bpf_map_charge_init(map: BpfMap, size: number, proc: Process): void {
  const pages = bpf_map_charge_pages(size, proc);
  proc.user.locked_vm += pages;
  map.memory = { pages, user: proc.user };
}

function bpf_map_charge_finish(map: BpfMap): void {
  const u: UserStruct | null = map.memory.user;
  if (u) u.locked_vm -= map.memory.pages;
  map.memory = { pages: 0, user: null };
}

// ---- lifetime ----

export function bpf_map_inc(map: BpfMap): void {
  map.refcnt++;
}

export function bpf_map_inc_with_uref(map: BpfMap): void {
  map.refcnt++;
  map.usercnt++;
}

/** __bpf_map_inc_not_zero(): a reference unless the map is already on its way out. */
export function bpf_map_inc_not_zero(map: BpfMap, uref = false): BpfMap {
  if (map.refcnt <= 0) throw new BpfError(ENOENT, `map ${map.id} is being freed`);
  map.refcnt++;
  if (uref) map.usercnt++;
  return map;
}

function bpf_map_free(map: BpfMap): void {
  const k = map.kernel;
  const btf = map.btf;
  map.freed = true;
  const addr = kobjAddr.get(map);
  if (addr !== undefined) {
    k.mapByAddr.delete(addr.addr);
    k.mem.free(addr);
    kobjAddr.delete(map);
  }
  bpf_map_charge_finish(map);
  map.ops.map_free(map);
  if (btf) btf_put(btf);
}

/** bpf_map_put(): the last reference frees the id at once and the map after RCU where needed. */
export function bpf_map_put(map: BpfMap): void {
  if (map.refcnt <= 0) throw new Error(`bpf_map_put: map ${map.id} refcnt underflow`);
  if (--map.refcnt > 0) return;
  // The id stops resolving now; GET_FD_BY_ID of it gives ENOENT.
  if (map.id) map.kernel.map_idr.remove(map.id);
  if (map.free_after_rcu_gp) map.kernel.rcu.callRcu(() => bpf_map_free(map));
  else map.kernel.scheduleWork(() => bpf_map_free(map));
}

export function bpf_map_put_uref(map: BpfMap): void {
  if (--map.usercnt === 0) map.ops.map_release_uref?.(map);
}

export function bpf_map_put_with_uref(map: BpfMap): void {
  bpf_map_put_uref(map);
  bpf_map_put(map);
}

/** A PROG_ARRAY's owner, once a program fixed it (bpf_map_show_fdinfo). */
function ownerFdinfo(map: BpfMap): string {
  const owner = map.map_type === T.BPF_MAP_TYPE_PROG_ARRAY ? bpf_map_owner(map) : undefined;
  return owner ? `owner_prog_type:\t${owner.type}\nowner_jited:\t${owner.jited ? 1 : 0}\n` : "";
}

/** bpf_map_fops. */
export const bpf_map_fops: FileOps<BpfMap> = {
  kind: "map",
  release: (f) => bpf_map_put_with_uref(f.private_data),
  poll: (f) => f.private_data.ops.map_poll?.(f.private_data) ?? 0,
  show_fdinfo: (f) => {
    const map = f.private_data;
    return (
      fdinfoHeader(f) +
      `map_type:\t${map.map_type}\n` +
      `key_size:\t${map.key_size}\n` +
      `value_size:\t${map.value_size}\n` +
      `max_entries:\t${map.max_entries}\n` +
      `map_flags:\t0x${map.map_flags.toString(16)}\n` +
      `map_extra:\t0x${map.map_extra.toString(16)}\n` +
      `memlock:\t${map.ops.map_mem_usage(map)}\n` +
      `map_id:\t${map.id}\n` +
      `frozen:\t${map.frozen ? 1 : 0}\n` +
      ownerFdinfo(map)
    );
  },
};

/** bpf_map_new_fd(): an fd on a map reference the caller already holds (refcnt and usercnt). */
export function bpf_map_new_fd(proc: Process, map: BpfMap, flags: number): number {
  return proc.files.install(new File(bpf_map_fops, map, flags | O_CLOEXEC));
}

/** fdget + __bpf_map_get: the map behind fd (the fd keeps it alive). EBADF / EINVAL. */
export function mapFromFd(proc: Process, fd: number): { map: BpfMap; file: File } {
  const file = proc.files.get(fd);
  if (file.f_op !== bpf_map_fops) throw new BpfError(EINVAL, `fd ${fd} is not a BPF map`, { fd });
  return { map: file.private_data as BpfMap, file };
}

/**
 * bpf_map_mmap(): a shared mapping of `len` bytes from page `pgoff` of the map behind fd;
 * ENOTSUPP for a map type without ->map_mmap, EACCES for a writable mapping of a read-only fd.
 */
export function bpf_map_mmap(proc: Process, fd: number, pgoff: number, len: number, write: boolean): UserMapping {
  const { map, file } = mapFromFd(proc, fd);
  if (!map.ops.map_mmap) throw new BpfError(ENOTSUPP, `map ${map.name} cannot be mmap()ed`);
  if (write && !(file.f_mode & FMODE_WRITE)) throw new BpfError(EACCES, `fd ${fd} is not open for writing`);
  return map.ops.map_mmap(map, pgoff, len, write);
}

/** bpf_map_get(): a new reference on the map behind fd. */
export function bpf_map_get(proc: Process, fd: number): BpfMap {
  const { map } = mapFromFd(proc, fd);
  bpf_map_inc(map);
  return map;
}

/** map_get_sys_perms(): the fd's mode, minus write once the map is frozen. */
function map_get_sys_perms(map: BpfMap, f: File): number {
  let mode = f.f_mode;
  if (map.frozen) mode &= ~FMODE_WRITE;
  return mode;
}

const kobjAddr = new WeakMap<BpfMap, import("./bpf.js").MemRegion>();

/** The map's `struct bpf_map *` as programs see it (ld_imm64 BPF_PSEUDO_MAP_FD). */
export function bpf_map_kaddr(map: BpfMap): number {
  let r = kobjAddr.get(map);
  if (!r) {
    const size = mapKobjSize(map);
    r = map.kernel.mem.alloc(size, { perm: "r", kind: "kobj", name: `bpf_map ${map.name}` });
    fillMapKobj(map, map.kernel.mem.bytes(r.addr, size));
    kobjAddr.set(map, r);
    map.kernel.mapByAddr.set(r.addr, map);
  }
  return r.addr;
}

// ---- BPF_MAP_CREATE ----

export function map_create(k: Kernel, proc: Process, attr: MapCreateAttr): number {
  let map_flags = num(attr.map_flags);
  if (map_flags & BPF_F_TOKEN_FD) throw new BpfError(EINVAL, "BPF tokens are not supported");
  if (num(attr.map_token_fd)) throw new BpfError(EINVAL, "map_token_fd without BPF_F_TOKEN_FD");
  map_flags &= ~BPF_F_TOKEN_FD;
  const map_type = num(attr.map_type);
  if (num(attr.btf_vmlinux_value_type_id)) {
    if (map_type !== T.BPF_MAP_TYPE_STRUCT_OPS || num(attr.btf_key_type_id) || num(attr.btf_value_type_id)) {
      throw new BpfError(EINVAL, "btf_vmlinux_value_type_id is only for struct_ops maps without key/value type ids");
    }
  } else if (num(attr.btf_key_type_id) && !num(attr.btf_value_type_id)) {
    throw new BpfError(EINVAL, "btf_key_type_id without btf_value_type_id");
  }
  if (map_type !== T.BPF_MAP_TYPE_BLOOM_FILTER && map_type !== T.BPF_MAP_TYPE_ARENA && num(attr.map_extra) !== 0) {
    throw new BpfError(EINVAL, "map_extra is only for bloom filter and arena maps");
  }
  const f_flags = bpf_get_file_flag(map_flags);
  const numa_node = attr.numa_node ?? 0;
  if (map_flags & BPF_F_NUMA_NODE && numa_node !== 0) {
    throw new BpfError(EINVAL, `numa_node ${numa_node} is not online`);
  }
  const ops = k.mapTypes.get(map_type);
  if (!ops) throw new BpfError(EINVAL, `map type ${map_type} is not supported`);
  const attrIn: MapCreateAttr = { ...attr, map_flags, numa_node: map_flags & BPF_F_NUMA_NODE ? numa_node : -1 };
  ops.map_alloc_check?.(attrIn, k);

  // Unprivileged BPF blocks map creation; capability checks apply even when it is allowed.
  if (k.sysctl.unprivilegedBpfDisabled && !proc.cred.bpfCapable()) {
    throw new BpfError(EPERM, "unprivileged BPF is disabled (kernel.unprivileged_bpf_disabled)");
  }
  if (UNPRIV_MAP_TYPES.has(map_type)) {
    // allowed
  } else if (NET_ADMIN_MAP_TYPES.has(map_type)) {
    if (!proc.cred.netAdminCapable()) throw new BpfError(EPERM, `map type ${map_type} needs CAP_NET_ADMIN`);
  } else if (!proc.cred.bpfCapable()) {
    throw new BpfError(EPERM, `map type ${map_type} needs CAP_BPF`);
  }

  if (ops.map_alloc_cost) bpf_map_charge_pages(ops.map_alloc_cost(attrIn, k), proc);
  const map = ops.map_alloc(attrIn, k);
  try {
    map.name = bpf_obj_name_cpy(attr.map_name);
    if (num(attr.btf_key_type_id) || num(attr.btf_value_type_id) || num(attr.btf_vmlinux_value_type_id)) {
      const btf = btf_get_by_fd(proc, num(attr.btf_fd));
      if (btf.kernelBtf) {
        btf_put(btf);
        throw new BpfError(EACCES, `btf_fd ${num(attr.btf_fd)} is a kernel BTF`);
      }
      map.btf = btf;
      if (num(attr.btf_value_type_id)) {
        map_check_btf(map, btf, num(attr.btf_key_type_id), num(attr.btf_value_type_id), proc);
      }
      map.btf_key_type_id = num(attr.btf_key_type_id);
      map.btf_value_type_id = num(attr.btf_value_type_id);
      map.btf_vmlinux_value_type_id = num(attr.btf_vmlinux_value_type_id);
    }
    if (!map.memory.user) bpf_map_charge_init(map, (ops.map_memory_cost ?? ops.map_mem_usage)(map), proc);
    map.id = k.map_idr.allocCyclic(map);
    return bpf_map_new_fd(proc, map, f_flags);
  } catch (e) {
    // One rollback path: the reference map_alloc gave us goes, and frees the map.
    map.usercnt = 0;
    bpf_map_put(map);
    throw e;
  }
}

/**
 * map_check_btf(): the BTF key and value types must have the map's key and value sizes; a map
 * without a key type must have its own check; then the map type's own check.
 */
function map_check_btf(map: BpfMap, btfObj: BtfObject, keyId: number, valueId: number, proc: Process): void {
  const btf = btfObj.btf;
  if (keyId) {
    if (btfTypeIdSize(btf, keyId)?.size !== map.key_size) {
      throw new BpfError(EINVAL, `BTF key type ${keyId} does not have key_size ${map.key_size}`);
    }
  } else if (!map.ops.map_check_btf) {
    throw new BpfError(EINVAL, "this map type needs a BTF key type");
  }
  const value = btfTypeIdSize(btf, valueId);
  if (value?.size !== map.value_size) {
    throw new BpfError(EINVAL, `BTF value type ${valueId} does not have value_size ${map.value_size}`);
  }
  mapParseRecord(map, btfObj, btfTypeSkipModifiers(btf, valueId).id, proc);
  btfCheckAndFixupFields(btfObj.structMetas, map.record instanceof BpfError ? null : map.record);
  map.ops.map_check_btf?.(map, btf, keyId, valueId);
}

/** Map types that may hold each special field (map_check_btf's switch). */
const FIELD_MAP_TYPES: [number, readonly number[]][] = [
  [
    BPF_SPIN_LOCK | BPF_RES_SPIN_LOCK,
    [
      T.BPF_MAP_TYPE_HASH,
      T.BPF_MAP_TYPE_ARRAY,
      T.BPF_MAP_TYPE_CGROUP_STORAGE,
      T.BPF_MAP_TYPE_SK_STORAGE,
      T.BPF_MAP_TYPE_INODE_STORAGE,
      T.BPF_MAP_TYPE_TASK_STORAGE,
      T.BPF_MAP_TYPE_CGRP_STORAGE,
    ],
  ],
  [BPF_TIMER | BPF_WORKQUEUE | BPF_TASK_WORK, [T.BPF_MAP_TYPE_HASH, T.BPF_MAP_TYPE_LRU_HASH, T.BPF_MAP_TYPE_ARRAY]],
  [
    BPF_KPTR | BPF_REFCOUNT,
    [
      T.BPF_MAP_TYPE_HASH,
      T.BPF_MAP_TYPE_PERCPU_HASH,
      T.BPF_MAP_TYPE_LRU_HASH,
      T.BPF_MAP_TYPE_LRU_PERCPU_HASH,
      T.BPF_MAP_TYPE_ARRAY,
      T.BPF_MAP_TYPE_PERCPU_ARRAY,
      T.BPF_MAP_TYPE_SK_STORAGE,
      T.BPF_MAP_TYPE_INODE_STORAGE,
      T.BPF_MAP_TYPE_TASK_STORAGE,
      T.BPF_MAP_TYPE_CGRP_STORAGE,
    ],
  ],
  [BPF_UPTR, [T.BPF_MAP_TYPE_TASK_STORAGE]],
  [BPF_GRAPH_ROOT, [T.BPF_MAP_TYPE_HASH, T.BPF_MAP_TYPE_LRU_HASH, T.BPF_MAP_TYPE_ARRAY]],
];

/**
 * The value's btf_record (btf_parse_fields). A value whose fields do not parse still makes a map,
 * as in the kernel: the record is an error and no field of it can be used. A good record is
 * checked against the caller (CAP_BPF), the map's program access flags and the map type.
 */
function mapParseRecord(map: BpfMap, btfObj: BtfObject, valueId: number, proc: Process): void {
  try {
    map.record = btfParseFields(btfObj.btf, valueId, MAP_VALUE_FIELDS, map.value_size, kptrResolver(map.kernel));
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    map.record = e;
    return;
  }
  const rec = map.record;
  if (!rec) return;
  if (!proc.cred.bpfCapable()) throw new BpfError(EPERM, "a map value with special fields needs CAP_BPF");
  if (map.map_flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)) {
    throw new BpfError(EACCES, "a map value with special fields cannot be read-only or write-only to programs");
  }
  for (let bit = 1; bit <= rec.fieldMask; bit <<= 1) {
    if (!(rec.fieldMask & bit)) continue;
    const allowed = FIELD_MAP_TYPES.find(([m]) => m & bit)?.[1];
    if (!allowed?.includes(map.map_type)) {
      throw new BpfError(EOPNOTSUPP, `map type ${map.map_type} cannot hold a ${btfFieldTypeName(bit)}`);
    }
  }
}

// ---- element commands ----

function copyKey(map: BpfMap, key: Uint8Array | null | undefined): Uint8Array {
  if (map.key_size === 0) {
    if (key) throw new BpfError(EINVAL, "map has key_size 0 but a key was given");
    return new Uint8Array(0);
  }
  return userBuf(key, map.key_size, "key").slice(0, map.key_size);
}

function checkLockFlag(map: BpfMap, flags: number): void {
  if (flags & BPF_F_LOCK && !btfRecordHasField(map.record, BPF_SPIN_LOCK))
    throw new BpfError(EINVAL, `BPF_F_LOCK on map ${map.name} without a bpf_spin_lock`);
}

/**
 * bpf_map_value_size(): what the syscall copies in and out for one element. Per-CPU maps hand
 * over every possible CPU's value, each rounded up to 8 bytes.
 */
export function bpf_map_value_size(map: BpfMap): number {
  if (map.ops.map_percpu) return Math.ceil(map.value_size / 8) * 8 * map.kernel.nrCpus;
  return map.value_size;
}

/** bpf_map_copy_value(): the element's value as the syscall returns it (ENOENT when absent). */
export function bpf_map_copy_value(map: BpfMap, key: Uint8Array, value: Uint8Array, proc: Process | null): void {
  if (map.ops.map_peek_elem) {
    map.ops.map_peek_elem(map, value);
    return;
  }
  if (map.ops.map_sys_lookup_elem) {
    map.ops.map_sys_lookup_elem(map, key, value);
    return;
  }
  const k = map.kernel;
  const tok = k.rcu.rcuReadLock();
  try {
    const addr =
      map.ops.map_lookup_elem_sys_only && proc
        ? map.ops.map_lookup_elem_sys_only(map, key, proc)
        : map.ops.map_lookup_elem(map, key);
    if (!addr) throw new BpfError(ENOENT, `no element with this key in map ${map.name}`);
    value.set(k.mem.bytes(addr, map.value_size));
  } finally {
    k.rcu.rcuReadUnlock(tok);
  }
}

/** bpf_map_update_value(): by map kind, as the syscall (and the batch update) does it. */
export function bpf_map_update_value(
  map: BpfMap,
  key: Uint8Array,
  value: Uint8Array,
  flags: number,
  proc: Process,
): number {
  // bpf_map_update_value() returns what the map's update returns: struct_ops can hand back a
  // positive value (the owner-slot rollback's stale err), which the syscall returns as is.
  if (map.ops.map_update_elem_sys) return map.ops.map_update_elem_sys(map, key, value, flags, proc);
  if (map.ops.map_push_elem) {
    map.ops.map_push_elem(map, value, flags);
    return 0;
  }
  withRcu(map, () => map.ops.map_update_elem(map, key, value, flags));
  return 0;
}

export function map_lookup_elem(proc: Process, attr: MapElemAttr): number {
  const flags = num(attr.flags);
  if (flags & ~BPF_F_LOCK) throw new BpfError(EINVAL, `invalid lookup flags 0x${flags.toString(16)}`);
  const { map, file } = mapFromFd(proc, num(attr.map_fd));
  if (!(map_get_sys_perms(map, file) & FMODE_READ)) throw new BpfError(EPERM, "map fd is not readable");
  checkLockFlag(map, flags);
  const key = copyKey(map, attr.key);
  const size = bpf_map_value_size(map);
  const value = userBuf(attr.value, size, "value");
  const out = new Uint8Array(size);
  bpf_map_copy_value(map, key, out, proc);
  value.set(out);
  return 0;
}

export function map_update_elem(proc: Process, attr: MapElemAttr): number {
  const { map, file } = mapFromFd(proc, num(attr.map_fd));
  if (!(map_get_sys_perms(map, file) & FMODE_WRITE)) {
    throw new BpfError(EPERM, map.frozen ? `map ${map.name} is frozen` : "map fd is not writable");
  }
  const flags = num(attr.flags);
  checkLockFlag(map, flags);
  const key = copyKey(map, attr.key);
  const size = bpf_map_value_size(map);
  const v = userBuf(attr.value, size, "value").slice(0, size);
  return bpf_map_update_value(map, key, v, flags, proc);
}

export function map_delete_elem(proc: Process, attr: MapElemAttr): number {
  const { map, file } = mapFromFd(proc, num(attr.map_fd));
  if (!(map_get_sys_perms(map, file) & FMODE_WRITE)) {
    throw new BpfError(EPERM, map.frozen ? `map ${map.name} is frozen` : "map fd is not writable");
  }
  const key = copyKey(map, attr.key);
  if (map.ops.map_delete_elem_sys) map.ops.map_delete_elem_sys(map, key, proc);
  else if (map.map_type === T.BPF_MAP_TYPE_STRUCT_OPS)
    map.ops.map_delete_elem(map, key); // sleepable: no RCU
  else withRcu(map, () => map.ops.map_delete_elem(map, key));
  return 0;
}

export function map_get_next_key(proc: Process, attr: MapElemAttr): number {
  const { map, file } = mapFromFd(proc, num(attr.map_fd));
  if (!(map_get_sys_perms(map, file) & FMODE_READ)) throw new BpfError(EPERM, "map fd is not readable");
  const key = attr.key ? copyKey(map, attr.key) : null;
  const out = userBuf(attr.next_key, map.key_size, "next_key");
  const next = withRcu(map, () => map.ops.map_get_next_key(map, key));
  out.set(next.subarray(0, map.key_size));
  return 0;
}

export function map_lookup_and_delete_elem(proc: Process, attr: MapElemAttr): number {
  const flags = num(attr.flags);
  if (flags & ~BPF_F_LOCK) throw new BpfError(EINVAL, `invalid flags 0x${flags.toString(16)}`);
  const { map, file } = mapFromFd(proc, num(attr.map_fd));
  const perms = map_get_sys_perms(map, file);
  if (!(perms & FMODE_READ) || !(perms & FMODE_WRITE))
    throw new BpfError(EPERM, "map fd must be readable and writable");
  const pop = map.ops.map_pop_elem;
  if (flags && pop) throw new BpfError(EINVAL, `map ${map.name}: LOOKUP_AND_DELETE of a queue or stack takes no flags`);
  checkLockFlag(map, flags);
  const key = copyKey(map, attr.key);
  const size = bpf_map_value_size(map);
  const value = userBuf(attr.value, size, "value");
  const out = new Uint8Array(size);
  if (pop) {
    pop(map, out);
  } else {
    const fn = map.ops.map_lookup_and_delete_elem;
    if (!fn) throw new BpfError(ENOTSUPP, `map ${map.name} has no lookup-and-delete`);
    withRcu(map, () => fn(map, key, out, flags));
  }
  value.set(out);
  return 0;
}

export function map_freeze(proc: Process, attr: MapFreezeAttr): number {
  const { map, file } = mapFromFd(proc, num(attr.map_fd));
  if (map.map_type === T.BPF_MAP_TYPE_STRUCT_OPS || map.ops.map_freezable === false) {
    throw new BpfError(ENOTSUPP, `map ${map.name} cannot be frozen`);
  }
  if (!(map_get_sys_perms(map, file) & FMODE_WRITE)) throw new BpfError(EPERM, "map fd is not writable");
  if (map.frozen) throw new BpfError(EBUSY, `map ${map.name} is already frozen`);
  map.frozen = true;
  return 0;
}

function withRcu<R>(map: BpfMap, fn: () => R): R {
  const tok = map.kernel.rcu.rcuReadLock();
  try {
    return fn();
  } finally {
    map.kernel.rcu.rcuReadUnlock(tok);
  }
}

export { BpfMap };
