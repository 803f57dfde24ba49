/**
 * A TCP receiver reduced to what the sender's congestion control can observe: cumulative ACKs with up to
 * three SACK blocks (the block holding the latest segment first) and a D-SACK block for duplicates,
 * timestamp echo, optional delayed ACKs (every second segment or 40 ms; out-of-order data is ACKed at
 * once), and ECN feedback as Linux's receive path gives it (__tcp_ecn_check_ce, tcp_ecn_accept_cwr):
 * ECE on ACKs while TCP_ECN_DEMAND_CWR is set in the receiving socket's ecn_flags, set on CE and cleared
 * by the sender's CWR; a CA with TCP_CONG_NEEDS_ECN gets CA_EVENT_ECN_IS_CE / ECN_NO_CE on that socket
 * and may change the flag and ask for an immediate ACK (icsk_ack.pending |= ICSK_ACK_NOW), as DCTCP does.
 */
import {
  CA_EVENT_ECN_IS_CE,
  CA_EVENT_ECN_NO_CE,
  ICSK_ACK_NOW,
  ICSK_ACK_TIMER,
  TCP_CONG_NEEDS_ECN,
  TCP_ECN_DEMAND_CWR,
  TCP_ECN_SEEN,
} from "../subsys/tcp/btf.js";
import type { TcpAck, TcpSegment } from "../subsys/tcp/tcp.js";
import { tcp_ca_event } from "../subsys/tcp/tcp_cong.js";
import type { TcpSock } from "../subsys/tcp/tcp_sock.js";
import type { EventQueue } from "./event_queue.js";

export const TCP_DELACK_NS = 40_000_000;

export interface ReceiverOptions {
  flow: number;
  delayedAck?: boolean;
  /** The receiving socket: its ecn_flags, rcv_nxt and icsk_ack.pending, and its CA for the ECN events.
   * Its CA is not initialised here (init/release run on the sender's socket). */
  sk?: TcpSock;
  /** Byte sequence numbering of the flow (for rcv_nxt and bpf_tcp_send_ack). */
  isn?: number;
  mss?: number;
}

export class Receiver {
  rcvNxt = 0;
  /** Out-of-order ranges [start, end), sorted, disjoint. */
  private ooo: [number, number][] = [];
  private lastOoo = -1;
  private tsRecent = 0;
  private localEcnFlags = 0;
  private unacked = 0;
  private delackArmed = false;
  /** Unique segments received and their wire bytes, per 100 ms bin. */
  readonly rxBins: number[] = [];
  uniqueSegments = 0;
  duplicates = 0;
  acksSent = 0;

  constructor(
    private readonly ev: EventQueue,
    private readonly opts: ReceiverOptions,
    private readonly sendAck: (a: TcpAck) => void,
  ) {}

  private get ecnFlags(): number {
    return this.opts.sk ? this.opts.sk.ecn_flags : this.localEcnFlags;
  }
  private set ecnFlags(v: number) {
    if (this.opts.sk) this.opts.sk.ecn_flags = v;
    else this.localEcnFlags = v;
  }

  private seqOf(idx: number): number {
    return ((this.opts.isn ?? 0) + idx * (this.opts.mss ?? 1448)) >>> 0;
  }

  /** __tcp_ecn_check_ce; returns whether an immediate ACK is due. */
  private ecnCheckCe(seg: TcpSegment): boolean {
    if (!seg.ect) return false;
    const sk = this.opts.sk;
    const needsEcn = sk !== undefined && (sk.icsk_ca_ops.flags & TCP_CONG_NEEDS_ECN) !== 0;
    let quick = false;
    if (sk) {
      sk.rcv_nxt = this.seqOf(this.rcvNxt);
      sk.icsk_ack_pending = this.delackArmed ? ICSK_ACK_TIMER : 0;
    }
    if (seg.ce) {
      if (needsEcn) tcp_ca_event(sk!, CA_EVENT_ECN_IS_CE);
      if (!(this.ecnFlags & TCP_ECN_DEMAND_CWR)) {
        quick = true; // tcp_enter_quickack_mode: the sender may have a tiny cwnd
        this.ecnFlags = this.ecnFlags | TCP_ECN_DEMAND_CWR;
      }
    } else if (needsEcn) {
      tcp_ca_event(sk!, CA_EVENT_ECN_NO_CE);
    }
    this.ecnFlags = this.ecnFlags | TCP_ECN_SEEN;
    if (sk && sk.icsk_ack_pending & ICSK_ACK_NOW) quick = true;
    return quick;
  }

  /** bpf_tcp_send_ack / __tcp_send_ack(sk, rcv_nxt): an ACK now, for `rcv_nxt` (bytes). */
  sendAckFor(rcv_nxt: number): void {
    const idx = Math.round(((rcv_nxt - (this.opts.isn ?? 0)) >>> 0) / (this.opts.mss ?? 1448));
    this.sendAck({
      flow: this.opts.flow,
      ack: Math.min(idx, this.rcvNxt),
      sack: [],
      ece: (this.ecnFlags & TCP_ECN_DEMAND_CWR) !== 0,
      tsecr: this.tsRecent,
    });
  }

  onSegment(seg: TcpSegment): void {
    let dsack: [number, number] | undefined;
    const dup = seg.idx < this.rcvNxt || this.inOoo(seg.idx);
    let immediate = false;
    // tcp_ecn_accept_cwr: the sender entered CWR; ACK at once, its window may be tiny.
    if (seg.cwr) {
      this.ecnFlags = this.ecnFlags & ~TCP_ECN_DEMAND_CWR;
      immediate = true;
    }
    if (dup) {
      this.duplicates++;
      dsack = [seg.idx, seg.idx + 1];
      immediate = true;
    } else {
      this.uniqueSegments++;
      const bin = Math.floor(this.ev.now / 1e8);
      while (this.rxBins.length <= bin) this.rxBins.push(0);
      this.rxBins[bin]! += seg.bytes;
      if (seg.idx === this.rcvNxt) {
        this.rcvNxt++;
        this.tsRecent = seg.tsval;
        if (this.ooo.length && this.ooo[0]![0] === this.rcvNxt) {
          this.rcvNxt = this.ooo[0]![1];
          this.ooo.shift();
          immediate = true; // a hole was filled
        }
      } else {
        this.addOoo(seg.idx);
        this.lastOoo = seg.idx;
        immediate = true;
      }
    }
    if (this.ecnCheckCe(seg)) immediate = true;
    this.unacked++;
    if (!this.opts.delayedAck || immediate || this.unacked >= 2 || this.ooo.length) {
      this.ack(dsack);
    } else if (!this.delackArmed) {
      this.delackArmed = true;
      this.ev.after(TCP_DELACK_NS, () => {
        this.delackArmed = false;
        if (this.unacked) this.ack();
      });
    }
  }

  private inOoo(idx: number): boolean {
    for (const [s, e] of this.ooo) if (idx >= s && idx < e) return true;
    return false;
  }

  private addOoo(idx: number): void {
    const r = this.ooo;
    let i = 0;
    while (i < r.length && r[i]![1] < idx) i++;
    if (i < r.length && r[i]![1] === idx) {
      r[i]![1]++;
      if (i + 1 < r.length && r[i + 1]![0] === r[i]![1]) {
        r[i]![1] = r[i + 1]![1];
        r.splice(i + 1, 1);
      }
    } else if (i < r.length && r[i]![0] === idx + 1) {
      r[i]![0] = idx;
    } else {
      r.splice(i, 0, [idx, idx + 1]);
    }
  }

  private ack(dsack?: [number, number]): void {
    this.unacked = 0;
    this.acksSent++;
    if (this.opts.sk) this.opts.sk.icsk_ack_pending = 0;
    const sack: [number, number][] = [];
    const first = this.ooo.findIndex(([s, e]) => this.lastOoo >= s && this.lastOoo < e);
    if (first >= 0) sack.push([this.ooo[first]![0], this.ooo[first]![1]]);
    for (let i = this.ooo.length - 1; i >= 0 && sack.length < (dsack ? 2 : 3); i--) {
      if (i !== first) sack.push([this.ooo[i]![0], this.ooo[i]![1]]);
    }
    const ece = (this.ecnFlags & TCP_ECN_DEMAND_CWR) !== 0;
    this.sendAck({ flow: this.opts.flow, ack: this.rcvNxt, sack, dsack, ece, tsecr: this.tsRecent });
  }
}
