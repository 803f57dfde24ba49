/**
 * The simulated kernel's packet-scheduler types (include/linux/skbuff.h, include/net/sch_generic.h,
 * include/linux/netdevice.h, net/sched/bpf_qdisc.c): struct sk_buff with struct qdisc_skb_cb in its
 * cb[], struct Qdisc, struct Qdisc_ops, struct netdev_queue, struct net_device, struct
 * bpf_sk_buff_ptr, the Qdisc_ops cfi stubs (whose `skb__ref` names the referenced argument), the
 * qdisc kfuncs' FUNCs and `struct bpf_struct_ops_Qdisc_ops`.
 *
 * Member names and nesting follow 6.18 (tstamp and priority inside anonymous unions, pkt_len inside
 * an anonymous struct of qdisc_skb_cb); the structs carry fewer members than Linux's, so BPF
 * programs reach them through CO-RE. The TypeScript side reads every offset back from the BTF.
 */
import type { BtfBuilder } from "../../btf/builder.js";
import type { KernelBaseTypes } from "../../kernel/init.js";
import { builderFind, declareStructOpsValueType } from "../../kernel/struct_ops.js";
import {
  BTF_FUNC_GLOBAL,
  BTF_FUNC_STATIC,
  BTF_INT_SIGNED,
  BTF_KIND_INT,
  BTF_KIND_STRUCT,
  BTF_KIND_TYPEDEF,
} from "../../uapi/btf.js";

export const QDISC_OPS = "Qdisc_ops";
/** QDISC_CB_PRIV_LEN */
export const QDISC_CB_PRIV_LEN = 20;
/** IFNAMSIZ */
export const IFNAMSIZ = 16;

/** __bpf_ops_qdisc_ops: no stub for peek (init_member forces qdisc_peek_dequeued) or the rest. */
export const BPF_QDISC_STUBS: Readonly<Record<string, string>> = {
  enqueue: "Qdisc_ops__enqueue",
  dequeue: "Qdisc_ops__dequeue",
  init: "Qdisc_ops__init",
  reset: "Qdisc_ops__reset",
  destroy: "Qdisc_ops__destroy",
};

/** The qdisc kfuncs (net/sched/bpf_qdisc.c qdisc_kfunc_ids), in declaration order. */
export const QDISC_KFUNCS = [
  "bpf_skb_get_hash",
  "bpf_kfree_skb",
  "bpf_qdisc_skb_drop",
  "bpf_qdisc_watchdog_schedule",
  "bpf_qdisc_init_prologue",
  "bpf_qdisc_reset_destroy_epilogue",
  "bpf_qdisc_bstats_update",
] as const;

export interface QdiscBtfIds {
  sk_buff: number;
  qdisc_skb_cb: number;
  Qdisc: number;
  Qdisc_ops: number;
  netdev_queue: number;
  net_device: number;
  bpf_sk_buff_ptr: number;
}

function int(b: BtfBuilder, name: string, size: number, signed: boolean): number {
  const id = builderFind(b, name, BTF_KIND_INT);
  return id > 0 ? id : b.addInt(name, size, signed ? BTF_INT_SIGNED : 0);
}

/** Declare the types after the kernel's base types (and TCP's `struct sock`, when present). */
export function declareQdiscTypes(b: BtfBuilder, base: KernelBaseTypes): QdiscBtfIds {
  const { u8, u16, u32, u64, int: tInt, char, ulong } = base;
  const uint = int(b, "unsigned int", 4, false);
  const ushort = int(b, "short unsigned int", 2, false);
  const s64 = base.s64;
  const ktime = b.addTypedef("ktime_t", s64);
  const haveBe16 = builderFind(b, "__be16", BTF_KIND_TYPEDEF);
  const be16 = haveBe16 > 0 ? haveBe16 : b.addTypedef("__be16", u16);
  const sockId = builderFind(b, "sock", BTF_KIND_STRUCT);
  const pSock = b.addPtr(sockId > 0 ? sockId : b.addFwd("sock"));
  const arr = (t: number, n: number) => b.addArray(t, tInt, n);

  // struct sk_buff: forward-declared so it can point to itself (next/prev) and to net_device.
  const skbFwd = b.addFwd("sk_buff");
  const pSkbFwd = b.addPtr(skbFwd);
  const devFwd = b.addFwd("net_device");
  const pDevFwd = b.addPtr(devFwd);
  const anonList = b.addStructAuto("", [
    { name: "next", type: pSkbFwd },
    { name: "prev", type: pSkbFwd },
    {
      name: "",
      type: b.addUnionAuto("", [
        { name: "dev", type: pDevFwd },
        { name: "dev_scratch", type: ulong },
      ]),
    },
  ]);
  const listUnion = b.addUnionAuto("", [
    { name: "", type: anonList },
    { name: "list", type: base.list_head },
  ]);
  const skUnion = b.addUnionAuto("", [
    { name: "sk", type: pSock },
    { name: "ip_defrag_offset", type: tInt },
  ]);
  const tstampUnion = b.addUnionAuto("", [
    { name: "tstamp", type: ktime },
    { name: "skb_mstamp_ns", type: u64 },
  ]);
  // struct_group(headers, ...) around priority and friends: an anonymous union of two structs.
  const hdrFields = [
    { name: "priority", type: u32 },
    { name: "skb_iif", type: tInt },
    { name: "hash", type: u32 },
    { name: "vlan_all", type: u32 },
    { name: "protocol", type: be16 },
    { name: "transport_header", type: u16 },
    { name: "network_header", type: u16 },
    { name: "mac_header", type: u16 },
  ];
  const headersUnion = b.addUnionAuto("", [
    { name: "", type: b.addStructAuto("", hdrFields) },
    { name: "headers", type: b.addStructAuto("", hdrFields) },
  ]);
  const sk_buff = b.addStructAuto("sk_buff", [
    { name: "", type: listUnion },
    { name: "", type: skUnion },
    { name: "", type: tstampUnion },
    { name: "cb", type: arr(char, 48) },
    { name: "_skb_refdst", type: ulong },
    { name: "len", type: uint },
    { name: "data_len", type: uint },
    { name: "mac_len", type: u16 },
    { name: "hdr_len", type: u16 },
    { name: "queue_mapping", type: u16 },
    { name: "", type: headersUnion },
    { name: "mark", type: u32 },
    { name: "truesize", type: uint },
    { name: "users", type: base.refcount_t },
  ]);
  const pSkb = b.addPtr(sk_buff);

  const qdisc_skb_cb = b.addStructAuto("qdisc_skb_cb", [
    {
      name: "",
      type: b.addStructAuto("", [
        { name: "pkt_len", type: uint },
        { name: "slave_dev_queue_mapping", type: u16 },
        { name: "tc_classid", type: u16 },
      ]),
    },
    { name: "data", type: arr(u8, QDISC_CB_PRIV_LEN) },
  ]);

  const net_device = b.addStructAuto("net_device", [
    { name: "name", type: arr(char, IFNAMSIZ) },
    { name: "ifindex", type: tInt },
    { name: "flags", type: uint },
    { name: "mtu", type: uint },
    { name: "hard_header_len", type: ushort },
    { name: "num_tx_queues", type: uint },
    { name: "real_num_tx_queues", type: uint },
    { name: "tx_queue_len", type: uint },
  ]);
  const pDev = b.addPtr(net_device);
  const qdiscFwd = b.addFwd("Qdisc");
  const pQdiscFwd = b.addPtr(qdiscFwd);
  const netdev_queue = b.addStructAuto("netdev_queue", [
    { name: "dev", type: pDev },
    { name: "qdisc", type: pQdiscFwd },
    { name: "qdisc_sleeping", type: pQdiscFwd },
    { name: "state", type: ulong },
  ]);
  const qdisc_skb_head = b.addStructAuto("qdisc_skb_head", [
    { name: "head", type: pSkb },
    { name: "tail", type: pSkb },
    { name: "qlen", type: u32 },
    { name: "lock", type: u32 },
  ]);
  const gnet_stats_basic_sync = b.addStructAuto("gnet_stats_basic_sync", [
    { name: "bytes", type: u64 },
    { name: "packets", type: u64 },
  ]);
  const gnet_stats_queue = b.addStructAuto("gnet_stats_queue", [
    { name: "qlen", type: u32 },
    { name: "backlog", type: u32 },
    { name: "drops", type: u32 },
    { name: "requeues", type: u32 },
    { name: "overlimits", type: u32 },
  ]);
  const nlattr = b.addStructAuto("nlattr", [
    { name: "nla_len", type: u16 },
    { name: "nla_type", type: u16 },
  ]);
  const pNla = b.addPtr(nlattr);
  const cchar = b.addPtr(b.addConst(char));
  const netlink_ext_ack = b.addStructAuto("netlink_ext_ack", [
    { name: "_msg", type: cchar },
    { name: "bad_attr", type: b.addPtr(b.addConst(nlattr)) },
    { name: "cookie_len", type: u8 },
  ]);
  const pExtack = b.addPtr(netlink_ext_ack);
  const pToFree = b.addPtr(pSkb);

  const opsFwd = b.addFwd("Qdisc_ops");
  const pOpsFwd = b.addPtr(b.addConst(opsFwd));
  // Qdisc's own enqueue/dequeue point to the FWD (struct Qdisc is not complete yet).
  const qEnqueue = b.addPtr(
    b.addFuncProto(tInt, [
      { name: "", type: pSkb },
      { name: "", type: pQdiscFwd },
      { name: "", type: pToFree },
    ]),
  );
  const qDequeue = b.addPtr(b.addFuncProto(pSkb, [{ name: "", type: pQdiscFwd }]));
  const Qdisc = b.addStructAuto("Qdisc", [
    { name: "enqueue", type: qEnqueue },
    { name: "dequeue", type: qDequeue },
    { name: "flags", type: uint },
    { name: "limit", type: u32 },
    { name: "ops", type: pOpsFwd },
    { name: "handle", type: u32 },
    { name: "parent", type: u32 },
    { name: "dev_queue", type: b.addPtr(netdev_queue) },
    { name: "pad", type: tInt },
    { name: "refcnt", type: base.refcount_t },
    { name: "gso_skb", type: pSkb },
    { name: "q", type: qdisc_skb_head },
    { name: "bstats", type: gnet_stats_basic_sync },
    { name: "qstats", type: gnet_stats_queue },
    { name: "state", type: ulong },
    { name: "privdata", type: arr(ulong, 0) },
  ]);
  const pQdisc = b.addPtr(Qdisc);
  const enqueueProto = (names: [string, string, string]) =>
    b.addFuncProto(tInt, [
      { name: names[0], type: pSkb },
      { name: names[1], type: pQdisc },
      { name: names[2], type: pToFree },
    ]);
  const anonEnqueue = b.addPtr(enqueueProto(["", "", ""]));
  const anonDequeue = b.addPtr(b.addFuncProto(pSkb, [{ name: "", type: pQdisc }]));

  const fp = (ret: number, params: number[]) =>
    b.addPtr(
      b.addFuncProto(
        ret,
        params.map((type) => ({ name: "", type })),
      ),
    );
  const Qdisc_ops = b.addStructAuto("Qdisc_ops", [
    { name: "next", type: b.addPtr(opsFwd) },
    { name: "cl_ops", type: b.addPtr(b.addConst(b.addFwd("Qdisc_class_ops"))) },
    { name: "id", type: arr(char, IFNAMSIZ) },
    { name: "priv_size", type: tInt },
    { name: "static_flags", type: uint },
    { name: "enqueue", type: anonEnqueue },
    { name: "dequeue", type: anonDequeue },
    { name: "peek", type: anonDequeue },
    { name: "init", type: fp(tInt, [pQdisc, pNla, pExtack]) },
    { name: "reset", type: fp(0, [pQdisc]) },
    { name: "destroy", type: fp(0, [pQdisc]) },
    { name: "change", type: fp(tInt, [pQdisc, pNla, pExtack]) },
    { name: "attach", type: fp(0, [pQdisc]) },
    { name: "change_tx_queue_len", type: fp(tInt, [pQdisc, uint]) },
    { name: "change_real_num_tx", type: fp(0, [pQdisc, uint]) },
    { name: "dump", type: fp(tInt, [pQdisc, pSkb]) },
    { name: "owner", type: b.addPtr(base.module) },
  ]);

  const bpf_sk_buff_ptr = b.addStructAuto("bpf_sk_buff_ptr", [{ name: "skb", type: pSkb }]);
  const pSkbPtr = b.addPtr(bpf_sk_buff_ptr);

  // The cfi stubs: the members' prototypes with named parameters (skb__ref: a referenced skb).
  const stub = (name: string, ret: number, params: { name: string; type: number }[]) =>
    b.addFunc(name, b.addFuncProto(ret, params), BTF_FUNC_STATIC);
  // The stub's parameter types must be the member's own (prepare_arg_info compares them).
  b.addFunc(BPF_QDISC_STUBS.enqueue, enqueueProto(["skb__ref", "sch", "to_free"]), BTF_FUNC_STATIC);
  stub(BPF_QDISC_STUBS.dequeue, pSkb, [{ name: "sch", type: pQdisc }]);
  stub(BPF_QDISC_STUBS.init, tInt, [
    { name: "sch", type: pQdisc },
    { name: "arg", type: pNla },
    { name: "extack", type: pExtack },
  ]);
  stub(BPF_QDISC_STUBS.reset, 0, [{ name: "sch", type: pQdisc }]);
  stub(BPF_QDISC_STUBS.destroy, 0, [{ name: "sch", type: pQdisc }]);

  const kf = (name: string, ret: number, params: { name: string; type: number }[]) =>
    b.addFunc(name, b.addFuncProto(ret, params), BTF_FUNC_GLOBAL);
  const pCSkb = b.addPtr(b.addConst(sk_buff));
  kf("bpf_skb_get_hash", u32, [{ name: "skb", type: pSkb }]);
  kf("bpf_kfree_skb", 0, [{ name: "skb", type: pSkb }]);
  kf("bpf_kfree_skb_dtor", 0, [{ name: "skb", type: b.addPtr(0) }]);
  kf("bpf_qdisc_skb_drop", 0, [
    { name: "skb", type: pSkb },
    { name: "to_free_list", type: pSkbPtr },
  ]);
  kf("bpf_qdisc_watchdog_schedule", 0, [
    { name: "sch", type: pQdisc },
    { name: "expire", type: u64 },
    { name: "delta_ns", type: u64 },
  ]);
  kf("bpf_qdisc_init_prologue", tInt, [
    { name: "sch", type: pQdisc },
    { name: "extack", type: pExtack },
  ]);
  kf("bpf_qdisc_reset_destroy_epilogue", 0, [{ name: "sch", type: pQdisc }]);
  kf("bpf_qdisc_bstats_update", 0, [
    { name: "sch", type: pQdisc },
    { name: "skb", type: pCSkb },
  ]);
  declareStructOpsValueType(b, QDISC_OPS);
  return { sk_buff, qdisc_skb_cb, Qdisc, Qdisc_ops, netdev_queue, net_device, bpf_sk_buff_ptr };
}
