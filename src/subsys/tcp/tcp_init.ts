/**
 * The TCP subsystem of the simulated kernel (tcp_init + tcp_cong's late_initcall + bpf_tcp_ca's kfunc
 * registration): declares the TCP types in vmlinux BTF, owns the congestion-control registry with Reno
 * and CUBIC, keeps tcp_sock structs in the kernel's VM memory, and registers what BPF CCs may call.
 * List it before bpf_tcp_ca's subsystem, which needs struct tcp_congestion_ops.
 */
import type { Btf } from "../../btf/btf.js";
import type { BtfBuilder } from "../../btf/builder.js";
import type { Kernel, Subsystem } from "../../kernel/kernel.js";
import { sock_register } from "../../kernel/sock.js";
import { BTF_KIND_STRUCT } from "../../uapi/btf.js";
import { registerTcpBpf, type TcpBpfContext } from "./bpf_tcp_ca_kfuncs.js";
import { declareTcpTypes } from "./btf.js";
import { tcpBbr } from "./tcp_bbr.js";
import { TcpCongControl } from "./tcp_cong.js";
import { tcpCubic } from "./tcp_cubic.js";
import { tcpDctcp } from "./tcp_dctcp.js";
import { tcpReno } from "./tcp_reno.js";
import {
  type AckSample,
  arrayBufferAllocator,
  type KernelAllocator,
  type KernelMem,
  type RateSample,
  TCP_LAYOUTS,
  type TcpSock,
} from "./tcp_sock.js";

/** One kernel's TCP: the registry (init_net) and the sockets BPF programs may be handed. */
interface VmViewSource {
  dv?: DataView;
  bytes(addr: number, len: number): Uint8Array;
}

/**
 * A struct in VM memory. A class rather than an object literal with a getter: V8 keeps such a
 * literal in dictionary mode, and every field access of a socket (and the address a struct_ops
 * call passes) then paid a dictionary lookup.
 */
class VmKernelMem implements KernelMem {
  constructor(
    private readonly m: VmViewSource,
    readonly offset: number,
    private readonly size: number,
  ) {
    this.addr = offset;
  }
  readonly addr: number;
  /** The VM's DataView is replaced when its memory grows: always read it afresh. */
  get view(): DataView {
    const dv = this.m.dv;
    if (dv) return dv;
    const b = this.m.bytes(this.offset, this.size);
    return new DataView(b.buffer, b.byteOffset - this.offset);
  }
}

export class TcpKernel implements TcpBpfContext {
  readonly cong: TcpCongControl;
  kernel?: Kernel;
  private readonly socks = new Map<number, TcpSock>();
  private readonly samples = new Map<number, AckSample>();
  private readonly rateSamples = new Map<number, RateSample>();
  private readonly ackSenders = new WeakMap<TcpSock, (rcv_nxt: number) => void>();

  constructor() {
    this.cong = new TcpCongControl(tcpReno());
    this.cong.tcp_register_congestion_control(tcpCubic());
    // CONFIG_DEFAULT_TCP_CONG="cubic"
    this.cong.tcp_set_default_congestion_control("cubic");
    // CONFIG_TCP_CONG_BBR=m, CONFIG_TCP_CONG_DCTCP=m: loaded when a socket asks for them.
    this.cong.tcp_add_module("bbr", () => tcpBbr());
    this.cong.tcp_add_module("dctcp", () => tcpDctcp({ sendAck: (sk, rcv_nxt) => this.sendAck(sk, rcv_nxt) }));
  }

  /** Kernel memory for tcp_sock and friends: the VM's (so BPF can read them) once booted. */
  get alloc(): KernelAllocator {
    const k = this.kernel;
    if (!k) return arrayBufferAllocator;
    const mem = k.mem as unknown as VmViewSource;
    return {
      alloc(size: number, align: number): KernelMem {
        const r = k.mem.alloc(size, { perm: "rw", kind: "kobj", name: "tcp_sock", align });
        return new VmKernelMem(mem, r.addr, size);
      },
    };
  }

  /** Make a socket reachable from BPF (helpers, kfuncs, sk_storage) by its address. */
  registerSock(sk: TcpSock, samples: AckSample[] = [], rateSamples: RateSample[] = []): void {
    this.socks.set(sk.addr, sk);
    for (const s of samples) this.samples.set(s.addr, s);
    for (const s of rateSamples) this.rateSamples.set(s.addr, s);
    if (this.kernel) sock_register(this.kernel, sk.addr);
  }

  sockByAddr(addr: number): TcpSock | undefined {
    return this.socks.get(addr);
  }

  ackSampleByAddr(addr: number): AckSample | undefined {
    return this.samples.get(addr);
  }

  rateSampleByAddr(addr: number): RateSample | undefined {
    return this.rateSamples.get(addr);
  }

  /** Who sends ACKs for a receiving socket (bpf_tcp_send_ack). */
  setAckSender(sk: TcpSock, send: (rcv_nxt: number) => void): void {
    this.ackSenders.set(sk, send);
  }

  sendAck(sk: TcpSock, rcv_nxt: number): void {
    this.ackSenders.get(sk)?.(rcv_nxt);
  }
}

/**
 * The accessors use offsets computed from the same description the BTF was built from; check at boot
 * that vmlinux BTF really says so, member by member, so the two can never drift apart silently.
 */
export function checkTcpLayouts(btf: Btf): void {
  for (const [name, layout] of TCP_LAYOUTS) {
    const id = btf.findByNameKind(name, BTF_KIND_STRUCT);
    if (id < 0) continue;
    const t = btf.typeById(id);
    if (t.kind !== BTF_KIND_STRUCT || !("members" in t)) continue;
    if (t.size !== layout.size) throw new Error(`struct ${name}: BTF size ${t.size}, accessors ${layout.size}`);
    for (const m of t.members) {
      const f = layout.fields.get(m.name);
      if (!f || f.bitOffset !== m.bitOffset) {
        throw new Error(`struct ${name}.${m.name}: BTF bit offset ${m.bitOffset}, accessors ${f?.bitOffset}`);
      }
    }
  }
}

export function tcpSubsystem(tcp: TcpKernel): Subsystem {
  return {
    name: "tcp",
    declareTypes(b: BtfBuilder): void {
      declareTcpTypes(b);
    },
    register(k: Kernel): void {
      if (k.btfVmlinux) checkTcpLayouts(k.btfVmlinux);
      tcp.kernel = k;
      registerTcpBpf(k, tcp);
    },
  };
}
