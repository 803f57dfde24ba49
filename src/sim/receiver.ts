/**
 * A TCP receiver reduced to what the sender's congestion control can observe: cumulative ACKs with up to
 * three SACK blocks (the block holding the latest segment first) and a D-SACK block for duplicates,
 * timestamp echo, optional delayed ACKs (every second segment or 40 ms; out-of-order data is ACKed at
 * once), and ECN feedback either as RFC 3168 (ECE latched until CWR) or per segment, as a DCTCP
 * receiver does when the connection's CA needs ECN.
 */
import type { TcpAck, TcpSegment } from "../subsys/tcp/tcp.js";
import type { EventQueue } from "./event_queue.js";

export const TCP_DELACK_NS = 40_000_000;

export interface ReceiverOptions {
  flow: number;
  delayedAck?: boolean;
  /** Echo CE per segment (DCTCP-style) instead of latching ECE until CWR. */
  accurateEcn?: boolean;
}

export class Receiver {
  rcvNxt = 0;
  /** Out-of-order ranges [start, end), sorted, disjoint. */
  private ooo: [number, number][] = [];
  private lastOoo = -1;
  private tsRecent = 0;
  private demandCwr = false;
  private lastCe = false;
  private unacked = 0;
  private delackArmed = false;
  /** Unique segments received and their wire bytes, per 100 ms bin. */
  readonly rxBins: number[] = [];
  uniqueSegments = 0;
  duplicates = 0;

  constructor(
    private readonly ev: EventQueue,
    private readonly opts: ReceiverOptions,
    private readonly sendAck: (a: TcpAck) => void,
  ) {}

  onSegment(seg: TcpSegment): void {
    let dsack: [number, number] | undefined;
    const dup = seg.idx < this.rcvNxt || this.inOoo(seg.idx);
    // tcp_ecn_accept_cwr before tcp_ecn_check_ce
    if (seg.cwr && !this.opts.accurateEcn) this.demandCwr = false;
    if (seg.ce) this.demandCwr = true;
    let immediate = false;
    if (this.opts.accurateEcn) {
      // DCTCP: a CE state change is ACKed at once so the sender sees exact marks.
      if (seg.ce !== this.lastCe) immediate = true;
      this.lastCe = seg.ce;
      this.demandCwr = seg.ce;
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
    const sack: [number, number][] = [];
    const first = this.ooo.findIndex(([s, e]) => this.lastOoo >= s && this.lastOoo < e);
    if (first >= 0) sack.push([this.ooo[first]![0], this.ooo[first]![1]]);
    for (let i = this.ooo.length - 1; i >= 0 && sack.length < (dsack ? 2 : 3); i--) {
      if (i !== first) sack.push([this.ooo[i]![0], this.ooo[i]![1]]);
    }
    this.sendAck({ flow: this.opts.flow, ack: this.rcvNxt, sack, dsack, ece: this.demandCwr, tsecr: this.tsRecent });
  }
}
