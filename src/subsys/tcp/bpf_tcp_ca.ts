/**
 * net/ipv4/bpf_tcp_ca.c: `struct tcp_congestion_ops` as a struct_ops type. A BPF congestion
 * control registered through a struct_ops map (or link) appears in the tcp_cong registry as a
 * TcpCongestionOps whose functions are the map's trampolines, whose owner pins the map
 * (bpf_try_module_get -> bpf_struct_ops_get), and whose name and flags come from init_member.
 */
import type { Btf } from "../../btf/btf.js";
import type { BtfBuilder } from "../../btf/builder.js";
import type { BtfComposite, BtfMember } from "../../btf/types.js";
import type { Kernel, Subsystem } from "../../kernel/kernel.js";
import {
  type BpfStructOps,
  type BpfStructOpsDesc,
  type BpfStructOpsKdata,
  builderFind,
  declareStructOpsValueType,
  registerBpfStructOps,
  type StructOpsProgView,
} from "../../kernel/struct_ops.js";
import { resolveSize } from "../../kernel/struct_ops_btf.js";
import { bpf_obj_name_cpy } from "../../kernel/syscall_common.js";
import { bpf_func_id } from "../../uapi/bpf.js";
import { BTF_FUNC_STATIC, BTF_KIND_FUNC_PROTO, BTF_KIND_PTR, BTF_KIND_STRUCT } from "../../uapi/btf.js";
import { BpfError, EACCES, EINVAL } from "../../uapi/errno.js";
import { monomorphic } from "../../vm/runtime.js";
import { declareTcpTypes, TCP_CA_NAME_MAX, TCP_CONG_MASK } from "./btf.js";
import { type TcpCongControl, type TcpCongestionOps, tcp_validate_congestion_control } from "./tcp_cong.js";

export const TCP_CONGESTION_OPS = "tcp_congestion_ops";

/**
 * cfi_stubs (__bpf_ops_tcp_congestion_ops): every op but get_info has a stub, so get_info is the
 * unsupported member (-ENOTSUPP at prog load).
 */
export const BPF_TCP_CA_STUBS: Readonly<Record<string, string>> = {
  ssthresh: "bpf_tcp_ca_ssthresh",
  cong_avoid: "bpf_tcp_ca_cong_avoid",
  set_state: "bpf_tcp_ca_set_state",
  cwnd_event: "bpf_tcp_ca_cwnd_event",
  in_ack_event: "bpf_tcp_ca_in_ack_event",
  pkts_acked: "bpf_tcp_ca_pkts_acked",
  min_tso_segs: "bpf_tcp_ca_min_tso_segs",
  cong_control: "bpf_tcp_ca_cong_control",
  undo_cwnd: "bpf_tcp_ca_undo_cwnd",
  sndbuf_expand: "bpf_tcp_ca_sndbuf_expand",
  init: "__bpf_tcp_ca_init",
  release: "__bpf_tcp_ca_release",
};

/** The stubs' parameter names in bpf_tcp_ca.c. */
const BPF_TCP_CA_STUB_PARAMS: Record<string, readonly string[]> = {
  ssthresh: ["sk"],
  cong_avoid: ["sk", "ack", "acked"],
  set_state: ["sk", "new_state"],
  cwnd_event: ["sk", "ev"],
  in_ack_event: ["sk", "flags"],
  pkts_acked: ["sk", "sample"],
  min_tso_segs: ["sk"],
  cong_control: ["sk", "ack", "flag", "rs"],
  undo_cwnd: ["sk"],
  sndbuf_expand: ["sk"],
  init: ["sk"],
  release: ["sk"],
};

/**
 * BTF for the glue, added to vmlinux after the TCP types (declared here when no TCP subsystem did):
 * the stub FUNCs (each with its member's prototype) and `struct bpf_struct_ops_tcp_congestion_ops`.
 */
export function declareBpfTcpCaTypes(b: BtfBuilder): number {
  if (builderFind(b, TCP_CONGESTION_OPS, BTF_KIND_STRUCT) < 0) declareTcpTypes(b);
  const opsId = builderFind(b, TCP_CONGESTION_OPS, BTF_KIND_STRUCT);
  if (opsId < 0) throw new BpfError(EINVAL, "struct tcp_congestion_ops must be declared before bpf_tcp_ca");
  const ops = b.typeById(opsId) as BtfComposite;
  for (const m of ops.members) {
    const stub = BPF_TCP_CA_STUBS[m.name];
    if (!stub) continue;
    const ptr = b.typeById(m.type);
    if (ptr.kind !== BTF_KIND_PTR) continue;
    const proto = b.typeById(ptr.type);
    if (proto.kind !== BTF_KIND_FUNC_PROTO) continue;
    // the stub is a C function: pahole names its parameters, and btf_func_check wants them named
    const names = BPF_TCP_CA_STUB_PARAMS[m.name] ?? [];
    const params = proto.params.map((p, i) => ({ name: names[i] ?? `arg${i}`, type: p.type }));
    b.addFunc(stub, b.addFuncProto(proto.type, params), BTF_FUNC_STATIC);
  }
  return declareStructOpsValueType(b, TCP_CONGESTION_OPS);
}

/** A StructView argument (TcpSock, AckSample, RateSample) becomes its VM address. */
type OpArg = number | { readonly addr: number };
const a = (x: OpArg): number => (typeof x === "number" ? x : x.addr);

type CallNum = (a0: number, a1: number, a2: number) => number;
const OP_CALLS = [
  (f: CallNum) => (x: OpArg) => f(typeof x === "number" ? x : x.addr, 0, 0),
  (f: CallNum) => (x: OpArg, y: OpArg) => f(typeof x === "number" ? x : x.addr, typeof y === "number" ? y : y.addr, 0),
  (f: CallNum) => (x: OpArg, y: OpArg, z: OpArg) =>
    f(typeof x === "number" ? x : x.addr, typeof y === "number" ? y : y.addr, typeof z === "number" ? z : z.addr),
] as const;

/** The TcpCongestionOps a kdata stands for: built once, at validate/reg time. */
export function tcpCaOpsOf(kdata: BpfStructOpsKdata): TcpCongestionOps {
  if (kdata.priv) return kdata.priv as TcpCongestionOps;
  const ops: TcpCongestionOps = {
    name: kdata.cstring("name"),
    flags: kdata.u32("flags"),
    // owner == BPF_MODULE_OWNER: bpf_try_module_get / bpf_module_put pin the map.
    owner: { get: () => kdata.owner.get(), put: () => kdata.owner.put() },
  };
  const o = ops as unknown as Record<string, unknown>;
  kdata.desc.type.members.forEach((m, i) => {
    const t = kdata.funcs[i];
    if (!t) return;
    // The TCP stack's calls: straight to the trampoline's number path, each op its own code
    // (monomorphic) so that the call into its program stays monomorphic too.
    if (t.numeric && t.model.nr_args >= 1 && t.model.nr_args <= 3) {
      o[m.name] = monomorphic(OP_CALLS[t.model.nr_args - 1])(t.callNum);
      return;
    }
    switch (t.model.nr_args) {
      case 1:
        o[m.name] = (x: OpArg) => t.callx3(a(x));
        break;
      case 2:
        o[m.name] = (x: OpArg, y: OpArg) => t.callx3(a(x), a(y));
        break;
      case 3:
        o[m.name] = (x: OpArg, y: OpArg, z: OpArg) => t.callx3(a(x), a(y), a(z));
        break;
      default:
        o[m.name] = (...args: OpArg[]) => t.call(...args.map(a));
    }
  });
  kdata.priv = ops;
  return ops;
}

/** Byte range [off, end) of a member found by name inside `struct name`, looking into nested structs. */
function memberRange(btf: Btf, structId: number, name: string, base = 0): [number, number] | undefined {
  const t = btf.typeById(structId);
  if (t.kind !== BTF_KIND_STRUCT) return undefined;
  for (const m of t.members) {
    const off = base + m.bitOffset / 8;
    if (m.name === name) return [off, off + resolveSize(btf, m.type)];
  }
  for (const m of t.members) {
    const r = memberRange(btf, m.type, name, base + m.bitOffset / 8);
    if (r) return r;
  }
  return undefined;
}

/** The fields bpf_tcp_ca_btf_struct_access lets a BPF CC write ("icsk_ack.pending": inside icsk_ack). */
export const BPF_TCP_CA_WRITABLE = [
  ["sk_pacing_rate"],
  ["sk_pacing_status"],
  ["icsk_ca_priv"],
  ["icsk_ack", "pending"],
  ["snd_cwnd"],
  ["snd_cwnd_cnt"],
  ["snd_cwnd_stamp"],
  ["snd_ssthresh"],
  ["ecn_flags"],
  ["app_limited"],
] as const;

/** Per kernel BTF: tcp_sock's id and its writable fields' [start, end, anywhere inside] in list order. */
const writable = new WeakMap<Btf, { tcpSock: number; ranges: [number, number, boolean][] }>();

/** The kernel has these as offsetof() constants: found once per BTF, not on every access verified. */
function writableRanges(btf: Btf): { tcpSock: number; ranges: [number, number, boolean][] } {
  let w = writable.get(btf);
  if (w) return w;
  const tcpSock = btf.findByNameKind("tcp_sock", BTF_KIND_STRUCT);
  const ranges: [number, number, boolean][] = [];
  if (tcpSock > 0)
    for (const path of BPF_TCP_CA_WRITABLE) {
      const r = path.length === 2 ? memberInside(btf, tcpSock, path[0], path[1]) : memberRange(btf, tcpSock, path[0]);
      if (r) ranges.push([r[0], r[1], path[0] === "icsk_ca_priv"]);
    }
  w = { tcpSock, ranges };
  writable.set(btf, w);
  return w;
}

/** bpf_tcp_ca_btf_struct_access(): writes only to whitelisted tcp_sock fields (icsk_ca_priv anywhere inside). */
export function bpfTcpCaBtfStructAccess(log: string[], btf: Btf, typeId: number, off: number, size: number): number {
  const { tcpSock, ranges } = writableRanges(btf);
  if (typeId !== tcpSock) {
    log.push("only read is supported");
    throw new BpfError(EACCES, "only read is supported");
  }
  for (const [start, end, inside] of ranges) {
    const hit = inside ? off >= start && off < end : off === start;
    if (!hit) continue;
    if (off + size > end) {
      const msg = `write access at off ${off} with size ${size} beyond the member of tcp_sock ended at ${end}`;
      log.push(msg);
      throw new BpfError(EACCES, msg);
    }
    return 0;
  }
  log.push(`no write support to tcp_sock at off ${off}`);
  throw new BpfError(EACCES, `no write support to tcp_sock at off ${off}`);
}

/** The range of `outer.inner` (e.g. icsk_ack.pending), `outer` found at any nesting depth. */
function memberInside(btf: Btf, structId: number, outer: string, inner: string): [number, number] | undefined {
  const find = (id: number, base: number): [number, number] | undefined => {
    const t = btf.typeById(id);
    if (t.kind !== BTF_KIND_STRUCT) return undefined;
    for (const m of t.members) {
      const off = base + m.bitOffset / 8;
      if (m.name === outer) return memberRange(btf, m.type, inner, off);
      const sub = find(m.type, off);
      if (sub) return sub;
    }
    return undefined;
  };
  return find(structId, 0);
}

const RELEASE = "release";

/** bpf_tcp_ca_get_func_proto(): the helper allow-list on top of the base set. */
function getFuncProto(desc: () => BpfStructOpsDesc | undefined) {
  return (funcId: number, prog: StructOpsProgView): boolean | undefined => {
    switch (funcId) {
      case bpf_func_id.BPF_FUNC_tcp_send_ack:
      case bpf_func_id.BPF_FUNC_sk_storage_get:
      case bpf_func_id.BPF_FUNC_sk_storage_delete:
      case bpf_func_id.BPF_FUNC_ktime_get_coarse_ns:
        return true;
      case bpf_func_id.BPF_FUNC_setsockopt:
      case bpf_func_id.BPF_FUNC_getsockopt: {
        // release() is the CC retiring: no further changes from it.
        const d = desc();
        return d?.type.members[prog.expectedAttachType]?.name !== RELEASE;
      }
      default:
        return undefined;
    }
  };
}

/** The struct_ops descriptor table for tcp_congestion_ops, bound to one tcp_cong registry. */
export function bpfTcpCongestionOps(cong: TcpCongControl): BpfStructOps<BpfStructOpsKdata> {
  let desc: BpfStructOpsDesc | undefined;
  let sockId = -1;
  let tcpSockId = -1;
  const stOps: BpfStructOps<BpfStructOpsKdata> & { bindDesc(d: BpfStructOpsDesc): void } = {
    name: TCP_CONGESTION_OPS,
    cfiStubs: BPF_TCP_CA_STUBS,
    verifierOps: {
      btfStructAccess: bpfTcpCaBtfStructAccess,
      // is_valid_access: a `struct sock *` argument is promoted to `struct tcp_sock *`.
      ctxArgBtfId: (btfId: number) => (btfId === sockId ? tcpSockId : btfId),
      getFuncProto: getFuncProto(() => desc),
    },
    bindDesc(d: BpfStructOpsDesc): void {
      desc = d;
    },
    /** bpf_tcp_ca_init(): the types the verifier ops need. */
    init(btf: Btf): number {
      sockId = btf.findByNameKind("sock", BTF_KIND_STRUCT);
      tcpSockId = btf.findByNameKind("tcp_sock", BTF_KIND_STRUCT);
      const ops = btf.findByNameKind(TCP_CONGESTION_OPS, BTF_KIND_STRUCT);
      return sockId < 0 || tcpSockId < 0 || ops < 0 ? -EINVAL : 0;
    },
    /** bpf_tcp_ca_init_member(): flags and name are copied here; the rest is generic. */
    initMember(_t: BtfComposite, member: BtfMember, kdata: BpfStructOpsKdata, udata: Uint8Array): number {
      const moff = member.bitOffset / 8;
      if (member.name === "flags") {
        const flags = new DataView(udata.buffer, udata.byteOffset + moff, 4).getUint32(0, true);
        if (flags & ~TCP_CONG_MASK) {
          throw new BpfError(EINVAL, `tcp_congestion_ops.flags 0x${flags.toString(16)} outside TCP_CONG_MASK`, {
            member: "flags",
          });
        }
        kdata.view.setUint32(moff, flags, true);
        return 1;
      }
      if (member.name === "name") {
        const src = udata.subarray(moff, moff + TCP_CA_NAME_MAX);
        let name: string;
        try {
          name = bpf_obj_name_cpy(src);
        } catch (e) {
          throw new BpfError(EINVAL, `invalid tcp_congestion_ops.name: ${(e as Error).message}`, { member: "name" });
        }
        if (!name) throw new BpfError(EINVAL, "tcp_congestion_ops.name is empty", { member: "name" });
        kdata.bytes.fill(0, moff, moff + TCP_CA_NAME_MAX);
        kdata.bytes.set(new TextEncoder().encode(name), moff);
        return 1;
      }
      return 0;
    },
    reg(kdata: BpfStructOpsKdata): void {
      cong.tcp_register_congestion_control(tcpCaOpsOf(kdata));
    },
    unreg(kdata: BpfStructOpsKdata): void {
      cong.tcp_unregister_congestion_control(tcpCaOpsOf(kdata));
    },
    update(kdata: BpfStructOpsKdata, oldKdata: BpfStructOpsKdata): void {
      // The generic code lets a link be updated to the map it already has; Linux would re-add a
      // listed entry (list corruption). Nothing is to be swapped: succeed without touching the list.
      if (kdata === oldKdata) return;
      cong.tcp_update_congestion_control(tcpCaOpsOf(kdata), tcpCaOpsOf(oldKdata));
    },
    validate(kdata: BpfStructOpsKdata): void {
      tcp_validate_congestion_control(tcpCaOpsOf(kdata));
    },
  };
  return stOps;
}

/** register_bpf_struct_ops(&bpf_tcp_congestion_ops, tcp_congestion_ops) for one kernel. */
export function registerBpfTcpCa(k: Kernel, cong: TcpCongControl): BpfStructOpsDesc {
  const stOps = bpfTcpCongestionOps(cong);
  const desc = registerBpfStructOps(k, stOps);
  (stOps as unknown as { bindDesc(d: BpfStructOpsDesc): void }).bindDesc(desc);
  return desc;
}

/**
 * The bpf_tcp_ca glue as a boot-time subsystem; list it after the TCP subsystem (whose
 * declareTypes emits struct tcp_congestion_ops). `cong` gives the kernel's tcp_cong registry.
 */
export function bpfTcpCaSubsystem(cong: (k: Kernel) => TcpCongControl): Subsystem {
  return {
    name: "bpf_tcp_ca",
    declareTypes(b: BtfBuilder): void {
      declareBpfTcpCaTypes(b);
    },
    register(k: Kernel): void {
      registerBpfTcpCa(k, cong(k));
    },
  };
}
