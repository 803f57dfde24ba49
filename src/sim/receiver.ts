/**
 * The receiving end of a flow: a tcp_sock of the simulated stack running its own congestion control,
 * fed data segments through Linux's receive path (tcp_input.c) reduced to a pure receiver.
 *
 * - tcp_rcv_established: header prediction takes the in-order segment without CWR while no
 *   out-of-order data is queued (fast path); everything else takes the slow path, whose tcp_ack (the
 *   segment's ACK field acknowledges nothing new) calls the CA's in_ack_event(CA_ACK_SLOWPATH) on
 *   this socket and accepts CWR there (tcp_ecn_accept_cwr).
 * - tcp_data_queue: in-order data, duplicates (D-SACK, quick-ACK mode), the out-of-order queue with up
 *   to three SACK blocks (the one holding the latest segment first).
 * - ECN (__tcp_ecn_check_ce): ECE while TCP_ECN_DEMAND_CWR is set in ecn_flags; a CA with
 *   TCP_CONG_NEEDS_ECN gets CA_EVENT_ECN_IS_CE / ECN_NO_CE and may change the flag and ask for an ACK
 *   (icsk_ack.pending |= ICSK_ACK_NOW), as DCTCP does.
 * - When to ACK (tcp_event_data_recv, __tcp_ack_snd_check, tcp_send_delayed_ack, the delack timer, SACK
 *   compression): with `delayedAck`, as Linux by default: quick-ACK mode for the first 16 ACKs
 *   (icsk_ack.quick), then an ACK once more than one full segment (icsk_ack.rcv_mss) is unacknowledged
 *   or when the delayed-ACK timer (icsk_ack.ato: 40 ms at HZ/25, adapted to the arrival gaps and bounded
 *   by the RTT) expires; out-of-order data gets three immediate duplicate ACKs, then compressed SACKs
 *   (at most 44, 5% of the RTT but at most 1 ms apart). Without it, as a route with `quickack 1`
 *   (RTAX_QUICKACK): every segment is acknowledged at once.
 * - The end (tcp_fin): the sender's FIN, in order, takes one sequence number, moves the socket to
 *   CLOSE_WAIT in pingpong mode with an ACK scheduled, and wakes the reader (`onFin`), whose close()
 *   sends this side's FIN (carrying the ACK) through the socket's own send path.
 * - Timestamps: the echoed TSval is ts_recent, updated by segments starting at or below rcv_wup (the
 *   last ACK's rcv_nxt), so a delayed ACK echoes its first segment's TSval (RFC 7323).
 * - The receive window, with `rcvbuf` (SO_RCVBUF on the listener, the buffer locked): each ACK
 *   carries tcp_select_window's window (tcp_rcv_window.ts) over what is queued, each segment costing
 *   its truesize until the reader, which reads at once after the segment's processing, has copied
 *   it (out-of-order segments stay until the hole is filled); the read may send a window update
 *   (__tcp_cleanup_rbuf). Without it the buffer autotunes and the window never limits the sender:
 *   ACKs carry none.
 */
import {
  CA_ACK_SLOWPATH,
  CA_EVENT_ECN_IS_CE,
  CA_EVENT_ECN_NO_CE,
  ICSK_ACK_NOW,
  ICSK_ACK_SCHED,
  ICSK_ACK_TIMER,
  TCP_CLOSE_WAIT,
  TCP_CONG_NEEDS_ECN,
  TCP_ECN_DEMAND_CWR,
  TCP_ECN_OK,
  TCP_ECN_SEEN,
} from "../subsys/tcp/btf.js";
import type { TcpAck, TcpSegment } from "../subsys/tcp/tcp.js";
import { tcp_ca_event } from "../subsys/tcp/tcp_cong.js";
import { RcvWindow, VETH_SKB_TRUESIZE } from "../subsys/tcp/tcp_rcv_window.js";
import { TcpSock, tcp_jiffies32 } from "../subsys/tcp/tcp_sock.js";
import { SimClock } from "./clock.js";
import type { EventQueue } from "./event_queue.js";

/** TCP_DELACK_MIN at HZ=1000 (HZ/25 jiffies): the shortest delayed-ACK timeout. */
export const TCP_DELACK_NS = 40_000_000;
/** TCP_MAX_QUICKACKS */
export const TCP_MAX_QUICKACKS = 16;
/** net.ipv4.tcp_comp_sack_nr and tcp_comp_sack_delay_ns defaults. */
const TCP_COMP_SACK_NR = 44;
const TCP_COMP_SACK_DELAY_NS = 1_000_000;
/** TCP_FASTRETRANS_THRESH: duplicate ACKs sent at once before SACKs are compressed. */
const TCP_FASTRETRANS_THRESH = 3;
/** The initial receive window (tcp_select_initial_window with the default tcp_rmem): ~64 KB. */
const INITIAL_RCV_WND = 65_160;

export interface ReceiverOptions {
  flow: number;
  /** Linux's delayed ACKs; otherwise every segment is ACKed at once (a route with quickack 1). */
  delayedAck?: boolean;
  /** The receiving socket, its CA already assigned; default a socket of its own with no CA calls. */
  sk?: TcpSock;
  /** Byte sequence numbering of the flow (for rcv_nxt and bpf_tcp_send_ack). */
  isn?: number;
  mss?: number;
  /** The reader sees end of file (the FIN was taken in order). */
  onFin?: () => void;
  /** SO_RCVBUF set on the listener (bytes, as passed to setsockopt): a locked buffer whose window ACKs advertise. */
  rcvbuf?: number;
}

export class Receiver {
  /** Next expected segment (rcv_nxt in segments). */
  rcvNxt = 0;
  readonly sk: TcpSock;
  /** Out-of-order ranges [start, end), sorted, disjoint. */
  private ooo: [number, number][] = [];
  private lastOoo = -1;
  /** rcv_wup: rcv_nxt when the last ACK was sent (segments). */
  private rcvWup = 0;
  private tsRecent = 0;
  /** Header prediction on (tp->pred_flags != 0). */
  private predFlags = true;
  private dsack: [number, number] | undefined;
  /** The delack timer's expiry (jiffies) and the generation of its pending event. */
  private delackTimerAt = -1;
  private delackGen = 0;
  private compressedAck = 0;
  private compressedAckRcvNxt = -1;
  private dupAckCounter = 0;
  /** The compressed-ACK hrtimer: the generation of its pending event, 0 when not queued. */
  private compTimer = 0;
  private compGen = 0;
  private readonly mss: number;
  /** The receive window of a locked buffer (opts.rcvbuf); undefined: not modelled. */
  readonly win: RcvWindow | undefined;
  /** In-order segments queued and not yet copied by the reader. */
  private unread = 0;
  /** Unique segments received and their wire bytes, per 100 ms bin. */
  readonly rxBins: number[] = [];
  uniqueSegments = 0;
  duplicates = 0;
  acksSent = 0;
  /** Segments taken by header prediction, and by the slow path (tcp_ack, in_ack_event). */
  fastPath = 0;
  slowPath = 0;
  /** ACKs the delayed-ACK timer sent, and SACKs compression held back (LINUX_MIB_DELAYEDACKS, TCPACKCOMPRESSED). */
  delayedAcks = 0;
  compressedAcks = 0;
  /** The segment that carried the sender's FIN (-1: none yet), and whether tcp_fin ran. */
  private finAt = -1;
  private finEmpty = false;
  finDone = false;

  constructor(
    private readonly ev: EventQueue,
    private readonly opts: ReceiverOptions,
    private readonly sendAck: (a: TcpAck) => void,
  ) {
    this.sk = opts.sk ?? new TcpSock(new SimClock(ev, 1000), `flow ${opts.flow} rx`);
    this.mss = opts.mss ?? 1448;
    const sk = this.sk;
    this.win = opts.rcvbuf !== undefined ? new RcvWindow(opts.rcvbuf, this.mss) : undefined;
    sk.rcv_wnd = this.win ? this.win.rcvWnd : INITIAL_RCV_WND;
    // tcp_initialize_rcv_mss: min(advmss, mss_cache, rcv_wnd / 2, TCP_MSS_DEFAULT)
    sk.icsk_ack_rcv_mss = Math.max(88, Math.min(this.mss, sk.rcv_wnd >>> 1, 536));
    sk.rcv_nxt = this.seqOf(0);
  }

  private get HZ(): number {
    return this.sk.clock.HZ;
  }

  private seqOf(idx: number): number {
    return ((this.opts.isn ?? 0) + idx * this.mss) >>> 0;
  }

  /** The connection is established: the SYN-ACK's RTT sample (tcp_synack_rtt_meas) seeds srtt and the RTO. */
  establish(rttUs: number): void {
    const sk = this.sk;
    const m = Math.max(1, Math.round(rttUs));
    sk.srtt_us = m << 3;
    sk.mdev_us = m << 1;
    sk.rttvar_us = Math.max(sk.mdev_us, 200_000);
    sk.icsk_rto = Math.ceil((((sk.srtt_us >>> 3) + sk.rttvar_us) * this.HZ) / 1e6);
    sk.icsk_ack_lrcvtime = tcp_jiffies32(sk.clock);
    this.win?.initBufferSpace();
  }

  /** Receive memory in use: unread in-order segments and the out-of-order queue, in truesize. */
  private rmem(): number {
    let ooo = 0;
    for (const [s, e] of this.ooo) ooo += e - s;
    return (this.unread + ooo) * VETH_SKB_TRUESIZE;
  }

  /**
   * The reader copies what is in order (tcp_recvmsg), then __tcp_cleanup_rbuf: an ACK when the
   * freed space at least doubles what is left of the offered window.
   */
  private read(): void {
    const win = this.win;
    if (!win || !this.unread) return;
    this.unread = 0;
    if (this.finDone) return; // RCV_SHUTDOWN
    const r = win.readFreedWindow(this.rcvNxt * this.mss, this.rmem(), this.sk.icsk_ack_rcv_mss);
    if (r.quickOff) this.sk.icsk_ack_quick = 0;
    if (r.ack) this.ack();
  }

  /** tcp_rcv_established for one data segment, then the reader. */
  onSegment(seg: TcpSegment): void {
    this.rcvEstablished(seg);
    this.read();
  }

  private rcvEstablished(seg: TcpSegment): void {
    const sk = this.sk;
    if (seg.probe) {
      // tcp_validate_incoming: below the window, no payload: tcp_send_dupack is a plain ACK (with the window).
      this.ack();
      return;
    }
    if (seg.fin && this.finAt < 0) {
      this.finAt = seg.idx;
      this.finEmpty = seg.empty === true;
    }
    // Header prediction covers ACK-only flags: a FIN takes the slow path.
    if (this.predFlags && !seg.cwr && !seg.fin && seg.idx === this.rcvNxt) {
      this.fastPath++;
      if (this.rcvNxt === this.rcvWup) this.tsRecent = seg.tsval; // tcp_store_ts_recent
      this.dsack = undefined;
      this.queueRcv(seg);
      this.eventDataRecv(seg);
      this.ackSndCheck(false);
      return;
    }
    const end = seg.idx + 1;
    if (end < this.rcvWup) {
      // tcp_validate_incoming: below the window; tcp_send_dupack with a D-SACK, no tcp_ack.
      this.duplicates++;
      this.enterQuickack(TCP_MAX_QUICKACKS);
      this.dsack = [seg.idx, end];
      this.ack();
      return;
    }
    this.slowPath++;
    // tcp_ack(FLAG_SLOWPATH | FLAG_UPDATE_TS_RECENT): nothing outstanding on this side to acknowledge.
    if (seg.idx <= this.rcvWup && seg.tsval >= this.tsRecent) this.tsRecent = seg.tsval;
    const ops = sk.icsk_ca_ops as TcpSock["icsk_ca_ops"] | undefined;
    if (ops?.in_ack_event) ops.in_ack_event(sk, CA_ACK_SLOWPATH);
    if (seg.cwr) {
      // tcp_ecn_accept_cwr: the sender entered CWR and its cwnd may be tiny.
      sk.ecn_flags = sk.ecn_flags & ~TCP_ECN_DEMAND_CWR;
      sk.icsk_ack_pending = sk.icsk_ack_pending | ICSK_ACK_NOW;
    }
    this.dataQueue(seg);
    if (sk.icsk_ack_pending & ICSK_ACK_SCHED) this.ackSndCheck(true);
  }

  private countUnique(seg: TcpSegment): void {
    if (seg.empty) return;
    this.uniqueSegments++;
    const bin = Math.floor(this.ev.now / 1e8);
    while (this.rxBins.length <= bin) this.rxBins.push(0);
    this.rxBins[bin]! += seg.bytes;
  }

  /** tcp_queue_rcv: in-order data advances rcv_nxt. */
  private queueRcv(seg: TcpSegment): void {
    this.countUnique(seg);
    if (!seg.empty) this.unread++;
    this.rcvNxt++;
    this.sk.rcv_nxt = this.seqOf(this.rcvNxt);
  }

  /** tcp_data_queue */
  private dataQueue(seg: TcpSegment): void {
    const sk = this.sk;
    this.dsack = undefined;
    if (seg.idx === this.rcvNxt) {
      this.queueRcv(seg);
      // tcp_data_queue: tcp_event_data_recv for a segment with data only.
      if (!seg.empty) this.eventDataRecv(seg);
      if (this.ooo.length) {
        // tcp_ofo_queue
        if (this.ooo[0]![0] === this.rcvNxt) {
          this.unread += this.ooo[0]![1] - this.rcvNxt;
          this.rcvNxt = this.ooo[0]![1];
          this.ooo.shift();
          sk.rcv_nxt = this.seqOf(this.rcvNxt);
        }
        // RFC 5681 4.2: ACK at once when the gap is filled.
        if (!this.ooo.length) sk.icsk_ack_pending = sk.icsk_ack_pending | ICSK_ACK_NOW;
      }
      this.predFlags = this.ooo.length === 0; // tcp_fast_path_check
      if (this.finAt >= 0 && !this.finDone && this.rcvNxt > this.finAt) this.tcpFin();
      return;
    }
    if (seg.idx + 1 <= this.rcvNxt) {
      // A retransmission of data already received: D-SACK, quick-ACK mode.
      this.duplicates++;
      this.dsack = [seg.idx, seg.idx + 1];
      this.enterQuickack(TCP_MAX_QUICKACKS);
      sk.icsk_ack_pending = sk.icsk_ack_pending | ICSK_ACK_SCHED;
      return;
    }
    // tcp_data_queue_ofo
    this.ecnCheckCe(seg);
    this.predFlags = false;
    sk.icsk_ack_pending = sk.icsk_ack_pending | ICSK_ACK_SCHED;
    if (this.inOoo(seg.idx)) {
      this.duplicates++;
      this.dsack = [seg.idx, seg.idx + 1];
    } else {
      this.countUnique(seg);
      this.addOoo(seg.idx);
    }
    this.lastOoo = seg.idx;
  }

  /** tcp_fin: the FIN's sequence number, CLOSE_WAIT, pingpong mode, an ACK scheduled; the reader wakes. */
  private tcpFin(): void {
    const sk = this.sk;
    this.finDone = true;
    sk.rcv_nxt = ((this.finEmpty ? this.seqOf(this.finAt) : this.seqOf(this.finAt + 1)) + 1) >>> 0;
    sk.icsk_ack_pending = sk.icsk_ack_pending | ICSK_ACK_SCHED;
    sk.sk_state = TCP_CLOSE_WAIT;
    sk.icsk_ack_pingpong = 1; // inet_csk_enter_pingpong_mode: net.ipv4.tcp_pingpong_thresh
    this.opts.onFin?.();
  }

  /** tcp_event_data_recv: schedule an ACK, adapt the delayed-ACK timeout to the arrival gaps, check CE. */
  private eventDataRecv(seg: TcpSegment): void {
    const sk = this.sk;
    sk.icsk_ack_pending = sk.icsk_ack_pending | ICSK_ACK_SCHED;
    // tcp_measure_rcv_mss (full-sized segments); a new rcv_mss also measures len/truesize.
    const len = Math.min(this.mss, seg.bytes); // payload: every data segment is full-sized
    if (seg.bytes >= sk.icsk_ack_rcv_mss) {
      if (len !== sk.icsk_ack_rcv_mss) this.win?.measureRatio(len, VETH_SKB_TRUESIZE);
      sk.icsk_ack_rcv_mss = Math.min(this.mss, seg.bytes);
    }
    const ATO_MIN = Math.floor(this.HZ / 25);
    const now = tcp_jiffies32(sk.clock);
    if (!sk.icsk_ack_ato) {
      // The first data segment starts the delayed-ACK engine in quick-ACK mode.
      this.incrQuickack(TCP_MAX_QUICKACKS);
      sk.icsk_ack_ato = ATO_MIN;
    } else {
      const m = (now - sk.icsk_ack_lrcvtime) | 0;
      if (m <= ATO_MIN / 2) {
        sk.icsk_ack_ato = (sk.icsk_ack_ato >>> 1) + Math.floor(ATO_MIN / 2);
      } else if (m < sk.icsk_ack_ato) {
        sk.icsk_ack_ato = Math.min((sk.icsk_ack_ato >>> 1) + m, sk.icsk_rto);
      } else if (m > sk.icsk_rto) {
        this.incrQuickack(TCP_MAX_QUICKACKS); // the sender failed to restart its window
      }
    }
    sk.icsk_ack_lrcvtime = now;
    this.ecnCheckCe(seg);
    // tcp_grow_window
    if (this.win && len >= 128 && this.win.grow(len, VETH_SKB_TRUESIZE, this.rmem()))
      sk.icsk_ack_quick = sk.icsk_ack_quick | 1;
  }

  private incrQuickack(max: number): void {
    const sk = this.sk;
    let q = Math.floor(sk.rcv_wnd / (2 * sk.icsk_ack_rcv_mss));
    if (q === 0) q = 2;
    q = Math.min(q, max);
    if (q > sk.icsk_ack_quick) sk.icsk_ack_quick = q;
  }

  private enterQuickack(max: number): void {
    this.incrQuickack(max);
    this.sk.icsk_ack_pingpong = 0;
    this.sk.icsk_ack_ato = Math.floor(this.HZ / 25);
  }

  /** tcp_ecn_check_ce / __tcp_ecn_check_ce */
  private ecnCheckCe(seg: TcpSegment): void {
    const sk = this.sk;
    if (!(sk.ecn_flags & TCP_ECN_OK)) return;
    const needsEcn = sk.icsk_ca_ops !== undefined && (sk.icsk_ca_ops.flags & TCP_CONG_NEEDS_ECN) !== 0;
    if (!seg.ect) {
      // Not ECT after ECT was seen: probably a retransmission.
      if (sk.ecn_flags & TCP_ECN_SEEN) this.enterQuickack(2);
      return;
    }
    if (seg.ce) {
      if (needsEcn) tcp_ca_event(sk, CA_EVENT_ECN_IS_CE);
      if (!(sk.ecn_flags & TCP_ECN_DEMAND_CWR)) {
        this.enterQuickack(2); // the sender may have a very small cwnd
        sk.ecn_flags = sk.ecn_flags | TCP_ECN_DEMAND_CWR;
      }
    } else if (needsEcn) {
      tcp_ca_event(sk, CA_EVENT_ECN_NO_CE);
    }
    sk.ecn_flags = sk.ecn_flags | TCP_ECN_SEEN;
  }

  private inQuickackMode(): boolean {
    return !this.opts.delayedAck || (this.sk.icsk_ack_quick > 0 && !this.sk.icsk_ack_pingpong);
  }

  /** __tcp_ack_snd_check */
  private ackSndCheck(ofoPossible: boolean): void {
    const sk = this.sk;
    if (
      (this.rcvNxt - this.rcvWup) * this.mss > sk.icsk_ack_rcv_mss ||
      this.inQuickackMode() ||
      sk.icsk_ack_pending & ICSK_ACK_NOW
    ) {
      this.ack();
      return;
    }
    if (!ofoPossible || !this.ooo.length) {
      this.sendDelayedAck();
      return;
    }
    if (this.compressedAck >= TCP_COMP_SACK_NR) {
      this.ack();
      return;
    }
    if (this.compressedAckRcvNxt !== this.rcvNxt) {
      this.compressedAckRcvNxt = this.rcvNxt;
      this.dupAckCounter = 0;
    }
    if (this.dupAckCounter < TCP_FASTRETRANS_THRESH) {
      this.dupAckCounter++;
      this.ack();
      return;
    }
    this.compressedAck++;
    if (this.compTimer) return;
    // 5% of the RTT (the receiver's estimate; here the handshake's), at most tcp_comp_sack_delay_ns.
    const delay = Math.min(TCP_COMP_SACK_DELAY_NS, Math.floor((sk.srtt_us * 125) / 20));
    const gen = ++this.compGen;
    this.compTimer = gen;
    this.ev.after(delay, () => {
      if (this.compTimer !== gen) return;
      this.compTimer = 0;
      // tcp_compressed_ack_kick
      if (this.compressedAck) {
        this.compressedAck--;
        this.ack();
      }
    });
  }

  /** tcp_send_delayed_ack: arm (or keep) the delayed-ACK timer, in jiffies. */
  private sendDelayedAck(): void {
    const sk = this.sk;
    const HZ = this.HZ;
    const DELACK_MIN = Math.floor(HZ / 25);
    const DELACK_MAX = Math.floor(HZ / 5);
    let ato = sk.icsk_ack_ato;
    if (ato > DELACK_MIN) {
      let maxAto = Math.floor(HZ / 2);
      if (sk.icsk_ack_pingpong) maxAto = DELACK_MAX;
      if (sk.srtt_us) {
        const rtt = Math.max(Math.ceil(((sk.srtt_us >>> 3) * HZ) / 1e6), DELACK_MIN);
        if (rtt < maxAto) maxAto = rtt;
      }
      ato = Math.min(ato, maxAto);
    }
    ato = Math.min(ato, DELACK_MAX); // icsk_delack_max
    const now = sk.clock.jiffies();
    let timeout = now + ato;
    if (sk.icsk_ack_pending & ICSK_ACK_TIMER) {
      // About to expire: ACK now.
      if (this.delackTimerAt <= now + (ato >>> 2)) {
        this.ack();
        return;
      }
      if (!(timeout < this.delackTimerAt)) timeout = this.delackTimerAt;
    }
    sk.icsk_ack_pending = sk.icsk_ack_pending | ICSK_ACK_SCHED | ICSK_ACK_TIMER;
    sk.icsk_ack_timeout = timeout;
    this.armDelack(timeout);
  }

  /** sk_reset_timer on the delack timer: it fires on the tick that makes jiffies reach `timeout`. */
  private armDelack(timeout: number): void {
    this.delackTimerAt = timeout;
    const gen = ++this.delackGen;
    this.ev.after(this.nsUntilJiffies(timeout), () => {
      if (gen === this.delackGen) this.delackFire();
    });
  }

  private nsUntilJiffies(j: number): number {
    const clock = this.sk.clock;
    const d = j - clock.jiffies();
    if (d <= 0) return 0;
    const kt = clock.ktime_get_ns();
    const tick = 1e9 / this.HZ;
    // The start of the jiffy d ticks after the current one.
    return Math.max(0, Math.ceil((Math.floor(kt / tick) + d) * tick) - kt);
  }

  /** tcp_delack_timer_handler */
  private delackFire(): void {
    const sk = this.sk;
    if (!(sk.icsk_ack_pending & ICSK_ACK_TIMER)) return;
    if (sk.clock.jiffies() < this.delackTimerAt) {
      this.armDelack(this.delackTimerAt);
      return;
    }
    sk.icsk_ack_pending = sk.icsk_ack_pending & ~ICSK_ACK_TIMER;
    if (sk.icsk_ack_pending & ICSK_ACK_SCHED) {
      if (!sk.icsk_ack_pingpong) {
        sk.icsk_ack_ato = Math.min(sk.icsk_ack_ato << 1, sk.icsk_rto); // delayed ACK missed: inflate ATO
      } else {
        sk.icsk_ack_pingpong = 0;
        sk.icsk_ack_ato = Math.floor(this.HZ / 25);
      }
      this.delayedAcks++;
      this.ack();
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

  /** bpf_tcp_send_ack / __tcp_send_ack(sk, rcv_nxt): an ACK now, for `rcv_nxt` (bytes). */
  sendAckFor(rcv_nxt: number): void {
    const idx = Math.round(((rcv_nxt - (this.opts.isn ?? 0)) >>> 0) / this.mss);
    if (idx >= this.rcvNxt) {
      this.ack();
      return;
    }
    // An ACK for an earlier rcv_nxt (DCTCP's echo of the prior CE state): tcp_event_ack_sent leaves the
    // delayed-ACK state alone, but the window it carries moves rcv_wup (tcp_select_window).
    this.acksSent++;
    this.rcvWup = this.rcvNxt;
    const a: TcpAck = {
      flow: this.opts.flow,
      ack: idx,
      sack: [],
      ece: (this.sk.ecn_flags & TCP_ECN_DEMAND_CWR) !== 0,
      tsecr: this.tsRecent,
    };
    this.selectWindow(a);
    this.sendAck(a);
  }

  /** This socket's FIN (sent by its own send path), with the ACK it carries. */
  sendFin(tsval: number): void {
    this.ack(tsval);
  }

  /** tcp_select_window as an ACK is built (at rcv_nxt, whatever it acknowledges): its window field. */
  private selectWindow(a: TcpAck): void {
    const win = this.win;
    if (!win) return;
    const r = win.select(this.rcvNxt * this.mss, this.rmem(), this.sk.icsk_ack_rcv_mss);
    if (r.quickOff) this.sk.icsk_ack_quick = 0;
    this.sk.rcv_wnd = win.rcvWnd;
    a.win = r.field;
  }

  /** tcp_send_ack for rcv_nxt (or the ACK on this side's FIN, sent at TSval `finTsval`), then tcp_event_ack_sent. */
  private ack(finTsval?: number): void {
    const sk = this.sk;
    this.acksSent++;
    const sack: [number, number][] = [];
    const dsack = this.dsack;
    const first = this.ooo.findIndex(([s, e]) => this.lastOoo >= s && this.lastOoo < e);
    if (first >= 0) sack.push([this.ooo[first]![0], this.ooo[first]![1]]);
    for (let i = this.ooo.length - 1; i >= 0 && sack.length < (dsack ? 2 : 3); i--) {
      if (i !== first) sack.push([this.ooo[i]![0], this.ooo[i]![1]]);
    }
    const ece = (sk.ecn_flags & TCP_ECN_DEMAND_CWR) !== 0;
    this.rcvWup = this.rcvNxt; // tcp_select_window
    const a: TcpAck = { flow: this.opts.flow, ack: this.rcvNxt, sack, dsack, ece, tsecr: this.tsRecent };
    this.selectWindow(a);
    // tcp_event_ack_sent
    if (this.compressedAck) {
      this.compressedAcks += this.compressedAck;
      this.compressedAck = 0;
    }
    this.compTimer = 0; // hrtimer_try_to_cancel
    this.dsack = undefined; // tcp_options_write sent it
    if (sk.icsk_ack_quick) {
      const pkts = sk.icsk_ack_pending & ICSK_ACK_SCHED ? 1 : 0;
      if (pkts >= sk.icsk_ack_quick) {
        sk.icsk_ack_quick = 0;
        sk.icsk_ack_ato = Math.floor(this.HZ / 25); // leaving quick-ACK mode deflates the ATO
      } else {
        sk.icsk_ack_quick = sk.icsk_ack_quick - pkts;
      }
    }
    sk.icsk_ack_pending = 0; // inet_csk_clear_xmit_timer(ICSK_TIME_DACK)
    if (finTsval !== undefined) {
      a.fin = true;
      a.tsval = finTsval;
    }
    this.sendAck(a);
  }
}
