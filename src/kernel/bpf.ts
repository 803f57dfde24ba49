/**
 * The BPF core's objects (include/linux/bpf.h): maps, programs, links and BTF objects, each with
 * the kernel's reference counts, and the ops tables that map kinds, program types and link kinds
 * plug into.
 */
import type { Btf } from "../btf/btf.js";
import type { BtfRecord, BtfStructMeta } from "../btf/record.js";
import type { Insn } from "../isa/insn.js";
import { BPF_F_RDONLY, BPF_F_RDONLY_PROG, BPF_F_WRONLY, BPF_F_WRONLY_PROG } from "../uapi/bpf.js";
import type { BpfError } from "../uapi/errno.js";
import type { MapCreateAttr } from "./bpf_attr.js";
import type { Kernel } from "./kernel.js";
import type { Process } from "./process.js";

/** include/linux/bpf.h: the map flags that restrict access from syscalls or programs. */
export const BPF_F_ACCESS_MASK = BPF_F_RDONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY | BPF_F_WRONLY_PROG;

/** bpf_map_flags_access_ok(): a program cannot be both read-only and write-only on a map. */
export function bpf_map_flags_access_ok(flags: number): boolean {
  return (flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)) !== (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG);
}

/** A region of the VM address space that the kernel hands to programs (map values, objects). */
export interface MemRegion {
  readonly addr: number;
  readonly size: number;
}

/**
 * What the BPF core needs from the VM's memory (src/vm VmMemory): regions programs can address,
 * with read-only ones for BPF_F_RDONLY_PROG maps, and byte views for the kernel's own accesses.
 */
export interface KernelMemory {
  alloc(size: number, opts: { perm: "r" | "rw"; kind: string; name?: string; align?: number }): MemRegion;
  free(region: MemRegion): void;
  /** A live view of `len` bytes at `addr` (kernel access: no permission check). */
  bytes(addr: number, len: number): Uint8Array;
}

/** struct bpf_map_ops. Failures throw BpfError with the kernel's errno. */
export interface BpfMapOps {
  /** Attribute checks before any allocation (map_alloc_check). */
  map_alloc_check?(attr: MapCreateAttr, k: Kernel): void;
  map_alloc(attr: MapCreateAttr, k: Kernel): BpfMap;
  map_free(map: BpfMap): void;
  /** Program-side lookup: the VM address of the value, or 0 when there is none. */
  map_lookup_elem(map: BpfMap, key: Uint8Array): number;
  map_update_elem(map: BpfMap, key: Uint8Array, value: Uint8Array, flags: number): void;
  map_delete_elem(map: BpfMap, key: Uint8Array): void;
  /** BPF_MAP_LOOKUP_AND_DELETE_ELEM (hash maps); absent: ENOTSUPP. Fills `value`. */
  map_lookup_and_delete_elem?(map: BpfMap, key: Uint8Array, value: Uint8Array, flags: number): void;
  /** The key after `key` (null: the first key); throws ENOENT at the end. */
  map_get_next_key(map: BpfMap, key: Uint8Array | null): Uint8Array;
  /** Syscall-only lookup where it differs from the program's (sk_storage: key is a socket fd). */
  map_lookup_elem_sys_only?(map: BpfMap, key: Uint8Array, proc: Process): number;
  /**
   * Syscall update/delete where the key needs the caller (sk_storage: key is a socket fd). The
   * update returns the non-negative value the syscall returns (0; struct_ops' stale err).
   */
  map_update_elem_sys?(map: BpfMap, key: Uint8Array, value: Uint8Array, flags: number, proc: Process): number;
  map_delete_elem_sys?(map: BpfMap, key: Uint8Array, proc: Process): void;
  /**
   * Values are per CPU (PERCPU_ARRAY, PERCPU_HASH, LRU_PERCPU_HASH): the syscall's value is
   * round_up(value_size, 8) * num_possible_cpus() bytes (bpf_map_value_size).
   */
  map_percpu?: boolean;
  /** bpf_map_lookup_percpu_elem(): the value of `cpu`, or 0 (also for a CPU past nr_cpu_ids). */
  map_lookup_percpu_elem?(map: BpfMap, key: Uint8Array, cpu: number): number;
  /** QUEUE/STACK (and bloom filter): the syscall's UPDATE, LOOKUP and LOOKUP_AND_DELETE, and the helpers. */
  map_push_elem?(map: BpfMap, value: Uint8Array, flags: number): void;
  map_pop_elem?(map: BpfMap, value: Uint8Array): void;
  map_peek_elem?(map: BpfMap, value: Uint8Array): void;
  /** A lookup that fills `value` itself (struct_ops: bpf_struct_ops_map_sys_lookup_elem). */
  map_sys_lookup_elem?(map: BpfMap, key: Uint8Array, value: Uint8Array): void;
  map_seq_show_elem?(map: BpfMap, key: Uint8Array): string;
  /** Bytes of memory the map uses (v6.5 map_mem_usage), reported as `memlock`. */
  map_mem_usage(map: BpfMap): number;
  /** Bytes charged against RLIMIT_MEMLOCK at creation (v5.8 map_alloc's cost); default map_mem_usage. */
  map_memory_cost?(map: BpfMap): number;
  /**
   * For maps that allocate every element at creation: the cost computed from the attributes
   * alone, charged before allocating (v5.8 array_map_alloc and queue_stack_map_alloc call
   * bpf_map_charge_init first), so a map the user cannot pay for touches no memory.
   */
  map_alloc_cost?(attr: MapCreateAttr, k: Kernel): number;
  map_check_btf?(map: BpfMap, btf: Btf, keyTypeId: number, valueTypeId: number): void;
  /** The last user reference (fd) went away. */
  map_release_uref?(map: BpfMap): void;
  /** MAP_FREEZE support: false -> ENOTSUPP (struct_ops). Default true. */
  map_freezable?: boolean;
  /** Fill map-type-specific info (struct_ops: btf_vmlinux_id). */
  map_fill_info?(map: BpfMap, info: BpfMapInfo): void;
  /** Batch commands the type has (map_lookup_batch...); absent ones are ENOTSUPP. */
  map_batch?: import("./map_batch.js").BpfMapBatchOps;
  /**
   * map_meta_equal: `map` may sit in a map of maps whose template is `meta`; a type without it
   * cannot be an inner map (ENOTSUPP).
   */
  map_meta_equal?(meta: BpfMap, map: BpfMap): boolean;
  /** BTF struct name of the map's kernel type (map_btf_id), e.g. "bpf_array". */
  map_btf_name?: string;
  /** mmap() of the map from page `pgoff` (ring buffers); absent: ENOTSUPP. */
  map_mmap?(map: BpfMap, pgoff: number, len: number, write: boolean): UserMapping;
  /** ->poll of the map's fd: the EPOLL* mask (ring buffers: EPOLLIN with data to read). */
  map_poll?(map: BpfMap): number;
}

/** What a process sees of an mmap()ed map: byte reads, and writes where the mapping allows them. */
export interface UserMapping {
  readonly length: number;
  readonly writable: boolean;
  read(off: number, len: number): Uint8Array;
  write(off: number, data: Uint8Array): void;
}

export interface BpfMapInfo {
  type: number;
  id: number;
  key_size: number;
  value_size: number;
  max_entries: number;
  map_flags: number;
  name: string;
  ifindex: number;
  btf_vmlinux_value_type_id: number;
  netns_dev: number;
  netns_ino: number;
  btf_id: number;
  btf_key_type_id: number;
  btf_value_type_id: number;
  btf_vmlinux_id: number;
  map_extra: bigint;
}

/** struct bpf_map: generic part, filled from the attr (bpf_map_init_from_attr). */
export class BpfMap {
  readonly map_type: number;
  readonly key_size: number;
  readonly value_size: number;
  /** Per-CPU LRU hash maps round it to a multiple of the CPU count at creation. */
  max_entries: number;
  /** RDONLY/WRONLY are stripped: they are fd modes, not map properties. */
  map_flags: number;
  readonly map_extra: bigint;
  readonly numa_node: number;
  name = "";
  id = 0;
  refcnt = 1;
  usercnt = 1;
  frozen = false;
  btf: BtfObject | null = null;
  btf_key_type_id = 0;
  btf_value_type_id = 0;
  btf_vmlinux_value_type_id = 0;
  /**
   * map->record: the value's special fields; null when none, a BpfError when btf_parse_fields
   * failed (map creation goes on, as in the kernel: the fields are then just not usable).
   */
  record: BtfRecord | null | BpfError = null;
  /** Pages charged to `user` (v5.8 struct bpf_map_memory). */
  memory = { pages: 0, user: null as import("./process.js").UserStruct | null };
  /** Free only after a normal RCU grace period (hashtab elements read under RCU by programs). */
  free_after_rcu_gp = false;
  freed = false;

  constructor(
    readonly kernel: Kernel,
    readonly ops: BpfMapOps,
    attr: MapCreateAttr,
  ) {
    this.map_type = attr.map_type ?? 0;
    this.key_size = attr.key_size ?? 0;
    this.value_size = attr.value_size ?? 0;
    this.max_entries = attr.max_entries ?? 0;
    this.map_flags = (attr.map_flags ?? 0) & ~(BPF_F_RDONLY | BPF_F_WRONLY);
    this.map_extra = BigInt(attr.map_extra ?? 0);
    this.numa_node = attr.numa_node ?? -1;
  }

  /** Program-visible value regions are read-only (BPF_F_RDONLY_PROG, .rodata). */
  get rdonlyProg(): boolean {
    return (this.map_flags & BPF_F_RDONLY_PROG) !== 0;
  }

  /** Programs may only write values (BPF_F_WRONLY_PROG). */
  get wronlyProg(): boolean {
    return (this.map_flags & BPF_F_WRONLY_PROG) !== 0;
  }
}

/** A BTF object (struct btf as a kernel object): user-loaded, vmlinux, or a module's. */
export class BtfObject {
  id = 0;
  refcnt = 1;
  freed = false;
  /** btf->struct_meta_tab: records of the program-allocatable structs, by BTF id. */
  structMetas: ReadonlyMap<number, BtfStructMeta> = new Map();

  constructor(
    readonly btf: Btf,
    readonly data: Uint8Array,
    /** vmlinux or module BTF: cannot be a map's btf_fd (EACCES). */
    readonly kernelBtf: boolean,
    readonly name = "",
    /** For module BTF: the module, while it is live. */
    readonly module: { name: string; live: boolean } | null = null,
  ) {}
}

/** One used map of a program (aux->used_maps) and the program's BTF pieces (aux). */
export interface BpfProgAux {
  used_maps: BpfMap[];
  used_btfs: BtfObject[];
  attach_btf_id: number;
  attach_btf: BtfObject | null;
  btf: BtfObject | null;
  func_info: Uint8Array | null;
  func_info_cnt: number;
  line_info: Uint8Array | null;
  line_info_cnt: number;
  sleepable: boolean;
  /** The verifier's result, whatever shape src/verifier gives it. */
  verifier_result?: unknown;
  /** Member of a struct_ops type this program implements, set by the struct_ops attach check. */
  st_ops?: unknown;
  load_time: bigint;
  created_by_uid: number;
  kfunc_btf_ids: number[];
  /** Set by a struct_ops member's check_member: the verifier may give it private stacks. */
  priv_stack_requested?: boolean;
  /** The verifier gave some function a private stack: its trampoline checks for recursion. */
  jits_use_priv_stack?: boolean;
  /** kfunc_btf_tab: module BTFs of kfunc calls (insn->off indexes fd_array), each holding its module. */
  kfunc_btf_tab: { offset: number; btf: BtfObject; module: { refcnt: number } }[];
}

/** Runs a program: returns r0. Bound once at load (the "JIT"): helpers and kfuncs already resolved. */
export type BpfFunc = (ctx: number | bigint | readonly (number | bigint)[]) => bigint;

/** struct bpf_prog. */
export class BpfProg {
  id = 0;
  refcnt = 1;
  freed = false;
  name = "";
  tag: Uint8Array = new Uint8Array(8);
  gpl_compatible = false;
  /** Instructions after ld_imm64 pseudo sources are resolved (what the VM runs: the xlated program). */
  insnsi: Insn[] = [];
  /** The instructions as loaded (used for the tag). */
  orig_insns: Insn[] = [];
  bpf_func: BpfFunc | null = null;
  /** The VM's loaded form of insnsi. */
  vmProg: unknown = null;
  jited = true;
  aux: BpfProgAux;
  /** Invocations in flight: the struct_ops free path must not free a program that is running. */
  active = 0;
  /** Runs skipped because the program was already running (fentry/fexit re-entry). */
  recursion_misses = 0;
  /** The entry is patched to a tracing trampoline (fentry/fexit attached): run through bpf_func. */
  poked = false;
  run_cnt = 0;
  run_time_ns = 0n;

  constructor(
    readonly kernel: Kernel,
    readonly type: number,
    readonly expected_attach_type: number,
  ) {
    this.aux = {
      used_maps: [],
      used_btfs: [],
      attach_btf_id: 0,
      attach_btf: null,
      btf: null,
      func_info: null,
      func_info_cnt: 0,
      line_info: null,
      line_info_cnt: 0,
      sleepable: false,
      load_time: 0n,
      created_by_uid: 0,
      kfunc_btf_ids: [],
      kfunc_btf_tab: [],
    };
  }

  get len(): number {
    return this.insnsi.length;
  }

  /** Instructions the verifier processed (aux->verified_insns); the program length without one. */
  get verified_insns(): number {
    const r = this.aux.verifier_result as { stats?: { processed?: number } } | undefined;
    return r?.stats?.processed ?? this.len;
  }

  get sleepable(): boolean {
    return this.aux.sleepable;
  }

  /** Aliases in the camelCase shape struct_ops callbacks read (StructOpsProgView). */
  get expectedAttachType(): number {
    return this.expected_attach_type;
  }

  get attachBtfId(): number {
    return this.aux.attach_btf_id;
  }

  get gplCompatible(): boolean {
    return this.gpl_compatible;
  }
}

/** Per program type: what PROG_TEST_RUN does and what the type requires at load. */
export interface BpfProgTypeOps {
  /** bpf_prog_ops->test_run. Fills attr's out fields (retval, duration, data_out...). */
  test_run?(prog: BpfProg, attr: import("./bpf_attr.js").ProgTestRunAttr, proc: Process): void;
  /** bpf_verifier_ops: context access and helper set of the type, for the verifier. */
  verifier_ops?: import("../verifier/env.js").VerifierOps;
}

export interface BpfProgInfo {
  type: number;
  id: number;
  tag: Uint8Array;
  jited_prog_len: number;
  xlated_prog_len: number;
  load_time: bigint;
  created_by_uid: number;
  nr_map_ids: number;
  map_ids: number[];
  name: string;
  ifindex: number;
  gpl_compatible: boolean;
  btf_id: number;
  func_info_rec_size: number;
  nr_func_info: number;
  nr_line_info: number;
  line_info_rec_size: number;
  attach_btf_obj_id: number;
  attach_btf_id: number;
  run_cnt: number;
  run_time_ns: bigint;
  verified_insns: number;
  xlated_prog_insns?: Insn[];
  /** struct bpf_func_info records (insn_off, type_id), 8 bytes each. */
  func_info?: Uint8Array;
  /** struct bpf_line_info records (insn_off, file_name_off, line_off, line_col), 16 bytes each. */
  line_info?: Uint8Array;
}

export interface BpfLinkInfo {
  type: number;
  id: number;
  prog_id: number;
  struct_ops?: { map_id: number };
  [key: string]: unknown;
}

/** struct bpf_link_ops. */
export interface BpfLinkOps {
  /** The link's attachment goes away (last fd closed, before dealloc). */
  release?(link: BpfLink): void;
  dealloc(link: BpfLink): void;
  /** BPF_LINK_DETACH. */
  detach?(link: BpfLink): void;
  update_prog?(link: BpfLink, newProg: BpfProg, oldProg: BpfProg | null): void;
  update_map?(link: BpfLink, newMap: BpfMap, oldMap: BpfMap | null): void;
  fill_link_info?(link: BpfLink, info: BpfLinkInfo): void;
  /** Extra fdinfo lines. */
  show_fdinfo?(link: BpfLink): string;
  poll?(link: BpfLink): number;
}

/** struct bpf_link. */
export class BpfLink {
  id = 0;
  refcnt = 1;
  freed = false;

  constructor(
    readonly kernel: Kernel,
    readonly type: number,
    readonly ops: BpfLinkOps,
    public prog: BpfProg | null,
    readonly attach_type = 0,
  ) {}
}

/** Attach handler for BPF_LINK_CREATE by attach type (struct_ops registers BPF_STRUCT_OPS). */
export type LinkCreateFn = (
  attr: import("./bpf_attr.js").LinkCreateAttr,
  proc: Process,
  prog: BpfProg | null,
) => number;
