/**
 * net/sched/bpf_qdisc.c: `struct Qdisc_ops` as a struct_ops type. A registered map becomes a qdisc
 * kind (its `id`) whose ops are the map's trampolines; the kernel forces peek to
 * qdisc_peek_dequeued and priv_size to the watchdog's; validate refuses a map without enqueue,
 * dequeue, init, reset and destroy (EINVAL). The verifier ops type `to_free` as a trusted
 * `struct bpf_sk_buff_ptr *`, allow writes only to Qdisc.limit, Qdisc.q.qlen, Qdisc.qstats,
 * sk_buff.tstamp and qdisc_skb_cb.data[], and the kfunc set's filter gives each member its kfuncs.
 * init runs behind bpf_qdisc_init_prologue (watchdog init; a parent that is neither the root nor
 * mq is refused), reset and destroy are followed by bpf_qdisc_reset_destroy_epilogue (watchdog
 * cancel).
 */
import type { Btf } from "../../btf/btf.js";
import type { BtfComposite, BtfMember } from "../../btf/types.js";
import type { Insn } from "../../isa/insn.js";
import {
  BPF_ALU64,
  BPF_CALL,
  BPF_DW,
  BPF_EXIT,
  BPF_JA,
  BPF_JEQ,
  BPF_JMP,
  BPF_K,
  BPF_LDX,
  BPF_MEM,
  BPF_MOV,
  BPF_X,
} from "../../isa/opcodes.js";
import { addSkbDataSource, registerDynptrFromSkb } from "../../kernel/bpf_dynptr.js";
import { registerBtfIdDtorKfuncs } from "../../kernel/bpf_kptr.js";
import type { CtxGen } from "../../kernel/convert_ctx.js";
import type { HelperArgs, Kernel } from "../../kernel/kernel.js";
import {
  type BpfStructOps,
  type BpfStructOpsDesc,
  type BpfStructOpsKdata,
  registerBpfStructOps,
} from "../../kernel/struct_ops.js";
import { bpf_obj_name_cpy } from "../../kernel/syscall_common.js";
import { bpf_prog_type } from "../../uapi/bpf.js";
import { BTF_KIND_FUNC, BTF_KIND_STRUCT } from "../../uapi/btf.js";
import { BpfError, EACCES, EINVAL } from "../../uapi/errno.js";
import type { KfuncFilterProg } from "../../verifier/env.js";
import { KF_RELEASE, KF_TRUSTED_ARGS } from "../../verifier/env.js";
import { BPF_QDISC_STUBS, IFNAMSIZ, QDISC_CB_PRIV_LEN, QDISC_OPS } from "./btf.js";
import type { Sched } from "./sch_api.js";
import {
  __qdisc_drop,
  type ExtAck,
  type Qdisc,
  type QdiscOps,
  qdisc_peek_dequeued,
  TC_H_MAJ,
  TC_H_ROOT,
  TCQ_F_MQROOT,
  ToFree,
} from "./sch_generic.js";
import { memberOffset, type SkBuff, structId, structSize } from "./skbuff.js";

/** Member context of the kfunc filter (qdisc_ops_context_flags). */
const QDISC_OPS_KF_ENQUEUE = 1 << 0;
const QDISC_OPS_KF_DEQUEUE = 1 << 1;
const CONTEXT_FLAGS: Readonly<Record<string, number>> = {
  enqueue: QDISC_OPS_KF_ENQUEUE,
  dequeue: QDISC_OPS_KF_DEQUEUE,
  init: 0,
  reset: 0,
  destroy: 0,
};
const COMMON_SET = new Set(["bpf_skb_get_hash", "bpf_kfree_skb", "bpf_dynptr_from_skb"]);
const ENQUEUE_SET = new Set(["bpf_qdisc_skb_drop", "bpf_qdisc_watchdog_schedule"]);
const DEQUEUE_SET = new Set(["bpf_qdisc_watchdog_schedule", "bpf_qdisc_bstats_update"]);

/** What the struct_ops glue needs from the packet scheduler of its kernel. */
export interface BpfQdiscEnv {
  readonly sched: Sched;
  qdiscByAddr(addr: number): Qdisc | undefined;
  skbByAddr(addr: number): SkBuff | undefined;
  /** A zeroed `struct netlink_ext_ack` the programs are handed, and the ExtAck it stands for. */
  extackAddr(extack: ExtAck): number;
  /** The ExtAck a `struct netlink_ext_ack *` stands for (a fresh one for an unknown pointer). */
  extackAt(addr: number): ExtAck;
}

/** Byte ranges of the writable members (bpf_qdisc_qdisc_access / bpf_qdisc_sk_buff_access). */
interface WriteRanges {
  Qdisc: number;
  sk_buff: number;
  qdisc: [number, number][];
  skb: [number, number][];
}

function writeRanges(btf: Btf): WriteRanges {
  const q = structId(btf, "Qdisc");
  const skb = structId(btf, "sk_buff");
  const head = structId(btf, "qdisc_skb_head");
  const qOff = memberOffset(btf, q, "q") + memberOffset(btf, head, "qlen");
  const limit = memberOffset(btf, q, "limit");
  const qstats = memberOffset(btf, q, "qstats");
  const qstatsSize = structSize(btf, structId(btf, "gnet_stats_queue"));
  const tstamp = memberOffset(btf, skb, "tstamp");
  const cbData = memberOffset(btf, skb, "cb") + memberOffset(btf, structId(btf, "qdisc_skb_cb"), "data");
  return {
    Qdisc: q,
    sk_buff: skb,
    qdisc: [
      [limit, limit + 4],
      [qOff, qOff + 4],
      [qstats, qstats + qstatsSize],
    ],
    skb: [
      [tstamp, tstamp + 8],
      [cbData, cbData + QDISC_CB_PRIV_LEN],
    ],
  };
}

/**
 * bpf_qdisc_btf_struct_access(): a write must start at a writable member (anywhere inside qstats
 * and qdisc_skb_cb.data) and end inside it.
 */
export function bpfQdiscBtfStructAccess(log: string[], btf: Btf, typeId: number, off: number, size: number): number {
  const w = writeRanges(btf);
  let ranges: [number, number][];
  let name: string;
  if (typeId === w.sk_buff) {
    ranges = w.skb;
    name = "sk_buff";
  } else if (typeId === w.Qdisc) {
    ranges = w.qdisc;
    name = "Qdisc";
  } else {
    log.push("only read is supported");
    throw new BpfError(EACCES, "only read is supported");
  }
  // Exact member starts for limit, qlen and tstamp; any byte of qstats and cb data (case ranges).
  const hit = ranges.find(([s, e], i) => {
    const anywhere = (name === "Qdisc" && i === 2) || (name === "sk_buff" && i === 1);
    return anywhere ? off >= s && off < e : off === s;
  });
  if (!hit) {
    const msg = `no write support to ${name} at off ${off}`;
    log.push(msg);
    throw new BpfError(EACCES, msg);
  }
  if (off + size > hit[1]) {
    const msg = `write access at off ${off} with size ${size} beyond the member of ${name} ended at ${hit[1]}`;
    log.push(msg);
    throw new BpfError(EACCES, msg);
  }
  return 0;
}

/** bpf_qdisc_init_prologue(): watchdog init; under a parent other than the root or mq, -EINVAL. */
export function bpfQdiscInitPrologue(sch: Qdisc, extack: ExtAck): number {
  sch.watchdog.cancel();
  if (sch.parent !== TC_H_ROOT) {
    // NULL while mq's init creates its children (mq is not hashed yet): allowed.
    const p = sch.dev.qdiscLookup(TC_H_MAJ(sch.parent));
    if (p && !(p.flags & TCQ_F_MQROOT)) {
      extack.msg = "BPF qdisc only supported on root or mq";
      return -EINVAL;
    }
  }
  return 0;
}

const insn = (code: number, dst: number, src: number, off: number, imm: number): Insn => ({ code, dst, src, off, imm });
const BPF_PSEUDO_KFUNC_CALL = 2;

/**
 * bpf_qdisc_gen_prologue / bpf_qdisc_gen_epilogue. init: r6 = r1; r2 = ctx[2] (extack);
 * r1 = ctx[0] (sch); r0 = bpf_qdisc_init_prologue(r1, r2); if r0 == 0 goto +1; exit; r1 = r6;
 * then the program's first instruction. reset and destroy end in r1 = ctx (saved on the stack);
 * r1 = ctx[0]; bpf_qdisc_reset_destroy_epilogue(r1); exit.
 */
export function bpfQdiscGenCtx(member: string, prologueId: number, epilogueId: number): CtxGen | undefined {
  const LDX_DW = BPF_LDX | BPF_MEM | BPF_DW;
  const call = (id: number) => insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, id);
  if (member === "init") {
    return {
      prologue: [
        insn(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),
        insn(LDX_DW, 2, 1, 16, 0),
        insn(LDX_DW, 1, 1, 0, 0),
        call(prologueId),
        insn(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1, 0),
        insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
        insn(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0),
        // Stands for the program's first instruction (the kernel copies it here).
        insn(BPF_JMP | BPF_JA, 0, 0, 0, 0),
      ],
    };
  }
  if (member === "reset" || member === "destroy") {
    return {
      epilogue: (ctxStackOff) => [
        insn(LDX_DW, 1, 10, ctxStackOff, 0),
        insn(LDX_DW, 1, 1, 0, 0),
        call(epilogueId),
        insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
      ],
    };
  }
  return undefined;
}

/** The kernel view of a registered map: a QdiscOps whose functions are the trampolines. */
export function bpfQdiscOpsOf(kdata: BpfStructOpsKdata, env: BpfQdiscEnv): QdiscOps {
  if (kdata.priv) return kdata.priv as QdiscOps;
  const f = (name: string) => kdata.func(name);
  const enqueue = f("enqueue");
  const dequeue = f("dequeue");
  const init = f("init");
  const reset = f("reset");
  const destroy = f("destroy");
  const ops: QdiscOps = {
    id: kdata.cstring("id"),
    owner: { get: () => kdata.owner.get(), put: () => kdata.owner.put() },
    enqueue(skb, sch, toFree) {
      if (!enqueue) throw new Error("bpf qdisc without enqueue");
      return enqueue.call(skb.addr, sch.addr, toFree.addr);
    },
    dequeue(sch) {
      if (!dequeue) return null;
      const addr = Number(dequeue.callU64(sch.addr));
      if (!addr) return null;
      const skb = env.skbByAddr(addr);
      // The verifier lets dequeue return only an skb reference it holds: anything else is a bug.
      if (!skb) throw new Error(`bpf qdisc ${ops.id}: dequeue returned 0x${addr.toString(16)}, not a live skb`);
      return skb;
    },
    peek: (sch) => qdisc_peek_dequeued(sch),
    // The kernel's prologue (bpf_qdisc_init_prologue) and epilogue (watchdog cancel) are in the
    // programs' instructions (genCtx below).
    init(_sch, _opt, extack) {
      return init ? init.call(_sch.addr, 0, env.extackAddr(extack)) : 0;
    },
    reset(sch) {
      reset?.call(sch.addr);
    },
    destroy(sch) {
      destroy?.call(sch.addr);
    },
  };
  kdata.priv = ops;
  return ops;
}

/** The struct_ops descriptor table for Qdisc_ops, bound to one kernel's packet scheduler. */
export function bpfQdiscStructOps(env: () => BpfQdiscEnv): BpfStructOps<BpfStructOpsKdata> {
  let skbPtrId = -1;
  let prologueId = -1;
  let epilogueId = -1;
  return {
    name: QDISC_OPS,
    cfiStubs: BPF_QDISC_STUBS,
    verifierOps: {
      btfStructAccess: bpfQdiscBtfStructAccess,
      // bpf_qdisc_is_valid_access: enqueue's third argument, read, is a trusted bpf_sk_buff_ptr.
      ctxArgType: (member, arg, write) => (member === "enqueue" && arg === 2 && !write ? skbPtrId : undefined),
      genCtx: (member) => bpfQdiscGenCtx(member, prologueId, epilogueId),
    },
    init(btf: Btf): number {
      skbPtrId = btf.findByNameKind("bpf_sk_buff_ptr", BTF_KIND_STRUCT);
      prologueId = btf.findByNameKind("bpf_qdisc_init_prologue", BTF_KIND_FUNC);
      epilogueId = btf.findByNameKind("bpf_qdisc_reset_destroy_epilogue", BTF_KIND_FUNC);
      return skbPtrId < 0 || prologueId < 0 || epilogueId < 0 ? -EINVAL : 0;
    },
    /** bpf_qdisc_init_member(): priv_size must be 0, id non-empty; peek is the kernel's. */
    initMember(_t: BtfComposite, member: BtfMember, kdata: BpfStructOpsKdata, udata: Uint8Array): number {
      const moff = member.bitOffset / 8;
      const dv = new DataView(udata.buffer, udata.byteOffset, udata.byteLength);
      if (member.name === "priv_size") {
        if (dv.getInt32(moff, true) !== 0) {
          throw new BpfError(EINVAL, "Qdisc_ops.priv_size must be 0", { member: "priv_size" });
        }
        // sizeof(struct bpf_sched_data): the qdisc_watchdog.
        kdata.view.setInt32(moff, 64, true);
        return 1;
      }
      if (member.name === "id") {
        let name = "";
        try {
          name = bpf_obj_name_cpy(udata.subarray(moff, moff + IFNAMSIZ));
        } catch (e) {
          throw new BpfError(EINVAL, `invalid Qdisc_ops.id: ${(e as Error).message}`, { member: "id" });
        }
        if (!name) throw new BpfError(EINVAL, "Qdisc_ops.id is empty", { member: "id" });
        kdata.bytes.fill(0, moff, moff + IFNAMSIZ);
        kdata.bytes.set(new TextEncoder().encode(name), moff);
        return 1;
      }
      // peek: qdisc_peek_dequeued, then the generic handling.
      return 0;
    },
    reg(kdata: BpfStructOpsKdata): void {
      env().sched.register_qdisc(bpfQdiscOpsOf(kdata, env()));
    },
    unreg(kdata: BpfStructOpsKdata): void {
      env().sched.unregister_qdisc(bpfQdiscOpsOf(kdata, env()));
    },
    validate(kdata: BpfStructOpsKdata): void {
      for (const m of ["enqueue", "dequeue", "init", "reset", "destroy"]) {
        if (!kdata.func(m)) throw new BpfError(EINVAL, `Qdisc_ops.${m} is required`, { member: m });
      }
    },
  };
}

/** bpf_qdisc_kfunc_filter(): Qdisc_ops programs only, each member its own kfuncs. */
function kfuncFilter(k: Kernel, name: string): (prog: KfuncFilterProg) => boolean {
  return (prog) => {
    if (prog.progType !== bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS) return false;
    const btf = k.btfVmlinux;
    if (!btf || prog.attachBtfId !== btf.findByNameKind(QDISC_OPS, BTF_KIND_STRUCT)) return false;
    const t = btf.typeById(prog.attachBtfId) as BtfComposite;
    const member = t.members[prog.expectedAttachType ?? -1]?.name ?? "";
    const flags = CONTEXT_FLAGS[member] ?? 0;
    if (flags & QDISC_OPS_KF_ENQUEUE && ENQUEUE_SET.has(name)) return true;
    if (flags & QDISC_OPS_KF_DEQUEUE && DEQUEUE_SET.has(name)) return true;
    return COMMON_SET.has(name);
  };
}

/**
 * The prologue and epilogue kfuncs are in the set (and so pass the filter for no member): only
 * the kernel's generated code calls them.
 */
const HIDDEN = new Set(["bpf_qdisc_init_prologue", "bpf_qdisc_reset_destroy_epilogue"]);

/** register_btf_kfunc_id_set(BPF_PROG_TYPE_STRUCT_OPS, &bpf_qdisc_kfunc_set). */
export function registerBpfQdiscKfuncs(k: Kernel, env: () => BpfQdiscEnv): void {
  const T = [bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS];
  const sch = (c: HelperArgs, i: number): Qdisc => {
    const q = env().qdiscByAddr(c.argNum(i));
    if (!q) throw new Error(`no Qdisc at 0x${c.argNum(i).toString(16)}`);
    return q;
  };
  const skb = (c: HelperArgs, i: number): SkBuff => {
    const s = env().skbByAddr(c.argNum(i));
    if (!s) throw new Error(`no sk_buff at 0x${c.argNum(i).toString(16)}`);
    return s;
  };
  const reg = (name: string, impl: (c: HelperArgs) => number, flags = 0) =>
    k.registerKfunc(name, undefined, impl, flags, T, HIDDEN.has(name) ? () => false : kfuncFilter(k, name));
  // The flags of 6.18's qdisc_kfunc_ids.
  reg("bpf_skb_get_hash", (c) => skb_get_hash(skb(c, 1)), KF_TRUSTED_ARGS);
  // bpf_dynptr_from_skb: filter.c's for the __sk_buff program types, this set's for every member
  // (a struct_ops program may not write packet data: the dynptr is read-only).
  registerDynptrFromSkb(k, kfuncFilter(k, "bpf_dynptr_from_skb"));
  addSkbDataSource(k, (addr) => {
    const s = env().skbByAddr(addr);
    return s ? s.pool.packetData(s) : undefined;
  });
  reg(
    "bpf_kfree_skb",
    (c) => {
      const s = skb(c, 1);
      s.pool.kfree_skb(s);
      return 0;
    },
    KF_RELEASE,
  );
  reg(
    "bpf_qdisc_skb_drop",
    (c) => {
      const s = skb(c, 1);
      __qdisc_drop(s, new ToFree(s.pool.mem, c.argNum(2)));
      return 0;
    },
    KF_RELEASE,
  );
  reg(
    "bpf_qdisc_watchdog_schedule",
    (c) => {
      sch(c, 1).watchdog.schedule(Number(BigInt.asUintN(63, c.arg(2))), Number(BigInt.asUintN(63, c.arg(3))));
      return 0;
    },
    KF_TRUSTED_ARGS,
  );
  reg("bpf_qdisc_init_prologue", (c) => bpfQdiscInitPrologue(sch(c, 1), env().extackAt(c.argNum(2))), KF_TRUSTED_ARGS);
  reg(
    "bpf_qdisc_reset_destroy_epilogue",
    (c) => {
      sch(c, 1).watchdog.cancel();
      return 0;
    },
    KF_TRUSTED_ARGS,
  );
  reg(
    "bpf_qdisc_bstats_update",
    (c) => {
      sch(c, 1).bstatsUpdate(skb(c, 2));
      return 0;
    },
    KF_TRUSTED_ARGS,
  );
}

/** skb_get_hash(): the flow hash, computed once (from the flow, as the dissector would) and kept. */
export function skb_get_hash(skb: SkBuff): number {
  let h = skb.hash;
  if (!h) {
    // jhash-like mix of the flow number: deterministic, never 0.
    let x = (skb.flow + 0x9e3779b9) >>> 0;
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
    h = (x ^ (x >>> 16)) >>> 0 || 1;
    skb.hash = h;
  }
  return h;
}

/** register_bpf_struct_ops(&bpf_Qdisc_ops, Qdisc_ops) for one kernel. */
export function registerBpfQdisc(k: Kernel, env: () => BpfQdiscEnv): BpfStructOpsDesc {
  registerBpfQdiscKfuncs(k, env);
  // bpf_kfree_skb_dtor: an sk_buff kptr still held when its object or map value goes is freed.
  registerBtfIdDtorKfuncs(k, [
    {
      type: "sk_buff",
      kfunc: "bpf_kfree_skb_dtor",
      dtor: (_k, addr) => {
        const skb = env().skbByAddr(addr);
        if (!skb) throw new Error(`bpf_kfree_skb_dtor: no sk_buff at 0x${addr.toString(16)}`);
        skb.pool.kfree_skb(skb);
      },
    },
  ]);
  return registerBpfStructOps(k, bpfQdiscStructOps(env));
}
