/**
 * The kernel view of a struct_ops value (`kvalue.data` in kernel/bpf/bpf_struct_ops.c): the ops
 * struct a subsystem is handed by reg/unreg/update/validate. It holds what init_member wrote, the
 * module-owner sentinel, and one trampoline per populated func-ptr member; everything else is zero.
 */
import type { BpfStructOpsDesc } from "./struct_ops_desc.js";
import type { BpfStructOpsTrampoline } from "./struct_ops_trampoline.js";

/** BPF_MODULE_OWNER: (void *)((0xeB9FUL << 2) + POISON_POINTER_DELTA), x86-64. */
export const BPF_MODULE_OWNER = 0xdead000000000000n + (0xeb9fn << 2n);

/** What a struct_ops map exposes to its kdata (container_of in the kernel). */
export interface StructOpsKdataOwner {
  /** bpf_struct_ops_get(): +1 map refcnt unless it already dropped to 0. */
  get(): boolean;
  /** bpf_struct_ops_put(): -1 map refcnt (may free the map after the grace periods). */
  put(): void;
  /** bpf_struct_ops_id(): the map id. */
  id(): number;
}

export class BpfStructOpsKdata {
  /** The ops struct bytes (sizeof(struct <name>)). */
  readonly bytes: Uint8Array;
  readonly view: DataView;
  /** Per member index: the trampoline installed in that func-ptr slot, if any. */
  readonly funcs: (BpfStructOpsTrampoline | undefined)[];
  /** Subsystem-private state built at reg() (e.g. the TCP stack's ops object). */
  priv: unknown = undefined;

  constructor(
    readonly desc: BpfStructOpsDesc,
    readonly owner: StructOpsKdataOwner,
  ) {
    this.bytes = new Uint8Array(desc.type.size);
    this.view = new DataView(this.bytes.buffer);
    this.funcs = new Array(desc.type.members.length).fill(undefined);
  }

  /** memset(kvalue, 0): back to the INIT contents. */
  reset(): void {
    this.bytes.fill(0);
    this.funcs.fill(undefined);
    this.priv = undefined;
  }

  memberIndex(name: string): number {
    return this.desc.type.members.findIndex((m) => m.name === name);
  }

  /** The trampoline of member `name` (undefined when the slot is NULL). */
  func(name: string): BpfStructOpsTrampoline | undefined {
    const i = this.memberIndex(name);
    return i < 0 ? undefined : this.funcs[i];
  }

  /** A NUL-terminated char array member (e.g. tcp_congestion_ops.name). */
  cstring(name: string): string {
    const i = this.memberIndex(name);
    if (i < 0) return "";
    const off = this.desc.memberOffsets[i];
    let end = off;
    while (end < this.bytes.length && this.bytes[end] !== 0) end++;
    return new TextDecoder().decode(this.bytes.subarray(off, end));
  }

  u32(name: string): number {
    const i = this.memberIndex(name);
    return i < 0 ? 0 : this.view.getUint32(this.desc.memberOffsets[i], true);
  }
}
