/**
 * A TCP sender connection: the struct tcp_sock in kernel memory plus what Linux keeps beside it (the
 * retransmission queue of sk_buffs with their scoreboard bits, the RTO timer). Segment sequence numbers are
 * counted in MSS-sized segments internally; the byte sequence numbers BPF sees (snd_una, snd_nxt, ...) are
 * derived from them.
 */
import {
  SK_PACING_NONE,
  TCP_CA_Open,
  TCP_CLOSE,
  TCP_CLOSE_WAIT,
  TCP_CLOSING,
  TCP_ECN_OK,
  TCP_ESTABLISHED,
  TCP_FIN_WAIT1,
  TCP_FIN_WAIT2,
  TCP_LAST_ACK,
} from "./btf.js";
import type { TcpCongControl } from "./tcp_cong.js";
import { TCP_WMEM_DEFAULT, tcp_ack, tcp_init_buffer_space, tcp_synack_rtt_sample } from "./tcp_input.js";
import { tcp_send_fin, tcp_slow_start_after_idle_check, tcp_write_xmit } from "./tcp_output.js";
import { TCP_INFINITE_SSTHRESH } from "./tcp_reno.js";
import {
  TCP_INIT_CWND,
  TCP_RTO_MIN_US,
  TCP_TIMEOUT_INIT_S,
  type TcpAck,
  type TcpSegment,
  type TcpSkb,
} from "./tcp_skb.js";
import { AckSample, type KernelAllocator, type KernelClock, RateSample, TcpSock, tcp_jiffies32 } from "./tcp_sock.js";
import { minmax_reset } from "./win_minmax.js";

/** What a connection needs from the machine it runs on. */
export interface TcpHost {
  clock: KernelClock;
  /** Hand a segment to the network now. */
  xmit(seg: TcpSegment): void;
  /** Arm (or re-arm) the connection's single retransmission timer to fire `delay_ns` from now; -1 stops it. */
  setRtoTimer(conn: TcpConn, delay_ns: number): void;
  /** The pacing hrtimer: call tcp_pace_kick(conn) `delay_ns` from now (one pending at a time). */
  setPacingTimer?(conn: TcpConn, delay_ns: number): void;
  /** tcp_send_ack: a pure ACK of the peer's FIN (TSecr `tsecr`) to the peer now. */
  sendAck?(conn: TcpConn, tsecr: number): void;
}

export interface TcpConnOptions {
  flow: number;
  mss?: number;
  /** Bytes on the wire per segment (MSS + IP/TCP headers with timestamps). */
  wireBytes?: number;
  initCwnd?: number;
  /** Segments the application will send; Infinity for a bulk transfer. */
  segments?: number;
  isn?: number;
  ecn?: boolean;
  /** Tail loss probes (net.ipv4.tcp_early_retrans = 3, the default); false as with 0. */
  tlp?: boolean;
  alloc?: KernelAllocator;
  /** The socket to run (an accepted socket the receiving side already made); default a new one. */
  sk?: TcpSock;
}

export * from "./tcp_skb.js";

export class TcpConn {
  readonly sk: TcpSock;
  readonly host: TcpHost;
  readonly cong: TcpCongControl;
  readonly flow: number;
  readonly wireBytes: number;
  readonly isn: number;
  /** Retransmission queue: rtx[i].idx === una + i. */
  rtx: TcpSkb[] = [];
  una = 0;
  nxt = 0;
  /** Segments the application has written. */
  appLimit: number;
  /** Reused structs handed to the CA ops (they live in kernel memory). */
  readonly ackSample: AckSample;
  readonly rateSample: RateSample;
  /** Highest segment SACKed so far (for loss marking) and the echoed timestamp of the last ACK. */
  highSacked = -1;
  rcvTsecr = 0;
  /** Internal mirrors of byte-sequence fields, in segments (-1: unset). */
  highSeqIdx = 0;
  undoMarkerIdx = -1;
  rttSeqIdx = 0;
  /** RACK: send time and number of the most recently sent segment known delivered. */
  rackMstamp = 0;
  rackTxSeq = 0;
  /** RACK: RTT of the latest delivered segment, and whether anything was delivered since the last check. */
  rackRttUs = 0;
  rackAdvanced = false;
  /** Set when loss detection armed the REO timer during this ACK (it then keeps the transmit timer). */
  reoArmed = false;
  /** Transmissions so far (orders segments sent within the same microsecond). */
  txCounter = 0;
  rateLastIdx = -1;
  minRttUs = 0;
  /** The one transmit timer, as icsk_pending: the RTO or a tail loss probe (ICSK_TIME_LOSS_PROBE). */
  xmitTimer: "retrans" | "probe" | "reo" | "probe0" = "retrans";
  /** The zero-window probe timer (ICSK_TIME_PROBE0) is pending, and the probes sent since the window closed. */
  probe0Armed = false;
  probesOut = 0;
  windowProbes = 0;
  readonly tlp: boolean;
  /** TLP: snd_nxt when the probe went out (-1: none outstanding) and whether it was a retransmission. */
  tlpHighSeqIdx = -1;
  tlpRetrans = false;
  /** Counters the simulator reports. */
  lossProbes = 0;
  undos = 0;
  retransmits = 0;
  rtoCount = 0;
  closed = false;
  /** The segment carrying our FIN (-1 before close()), and the data segments before it. */
  finIdx = -1;
  finData = 0;
  /** The peer's FIN was received (tcp_fin). */
  finRcvd = false;
  /** The peer advertises a receive window (ACKs carry `win`), scaled by snd_wscale. */
  windowed = false;
  sndWscale = 0;
  /** TCP_CHRONO_RWND_LIMITED: since when (us, -1: not limited) and the total (tcpi_rwnd_limited). */
  rwndLimitedSince = -1;
  rwndLimitedUs = 0;

  constructor(host: TcpHost, cong: TcpCongControl, opts: TcpConnOptions) {
    this.host = host;
    this.cong = cong;
    this.flow = opts.flow;
    this.wireBytes = opts.wireBytes ?? 1500;
    this.isn = (opts.isn ?? 0) >>> 0;
    this.appLimit = opts.segments ?? Number.POSITIVE_INFINITY;
    this.tlp = opts.tlp ?? true;
    this.sk = opts.sk ?? new TcpSock(host.clock, `flow ${opts.flow}`, opts.alloc);
    this.ackSample = new AckSample(opts.alloc);
    this.rateSample = new RateSample(opts.alloc);
    const sk = this.sk;
    // tcp_init_sock
    sk.mss_cache = opts.mss ?? 1448;
    sk.snd_cwnd = opts.initCwnd ?? TCP_INIT_CWND;
    sk.snd_ssthresh = TCP_INFINITE_SSTHRESH;
    sk.snd_cwnd_clamp = 0xffffffff;
    sk.reordering = 3;
    sk.icsk_rto = TCP_TIMEOUT_INIT_S * host.clock.HZ;
    sk.icsk_rto_min = Math.ceil((TCP_RTO_MIN_US * host.clock.HZ) / 1e6);
    sk.mdev_us = TCP_TIMEOUT_INIT_S * 1e6;
    sk.sk_gso_max_size = 65536;
    sk.sk_gso_max_segs = 65535;
    // SO_MAX_PACING_RATE defaults to ~0UL (no cap): all 64 bits set, which a double cannot write exactly.
    const maxRate = sk.mem.offset + sk.offsetof("inet_conn.icsk_inet.sk.sk_max_pacing_rate");
    sk.mem.view.setUint32(maxRate, 0xffffffff, true);
    sk.mem.view.setUint32(maxRate + 4, 0xffffffff, true);
    sk.sk_pacing_status = SK_PACING_NONE;
    sk.sk_pacing_shift = 10;
    sk.sk_sndbuf = TCP_WMEM_DEFAULT;
    minmax_reset(sk.rtt_min, tcp_jiffies32(host.clock), 0xffffffff);
    sk.snd_wnd = 0xffffffff;
    sk.sk_state = TCP_CLOSE;
    if (opts.ecn) sk.ecn_flags = TCP_ECN_OK;
    this.syncSeq();
    cong.tcp_assign_congestion_control(sk);
  }

  seqOf(idx: number): number {
    if (this.finIdx < 0 || idx <= this.finIdx) return (this.isn + idx * this.sk.mss_cache) >>> 0;
    // Past the FIN, which takes one sequence number of its own.
    return (this.isn + Math.min(idx, this.finData) * this.sk.mss_cache + 1) >>> 0;
  }

  /** Mirror the segment counters into the byte sequence numbers of tcp_sock. */
  syncSeq(): void {
    this.sk.snd_una = this.seqOf(this.una);
    this.sk.snd_nxt = this.seqOf(this.nxt);
    this.sk.write_seq = this.seqOf(Math.min(this.appLimit, 2 ** 40));
  }

  /** tcp_packets_in_flight */
  inFlight(): number {
    const sk = this.sk;
    return sk.packets_out - (sk.sacked_out + sk.lost_out) + sk.retrans_out;
  }

  /** Refresh tcp_clock_cache and tcp_mstamp from the clock (tcp_mstamp_refresh). */
  mstampRefresh(): number {
    const ns = this.host.clock.ktime_get_ns();
    this.sk.tcp_clock_cache = ns;
    const now = Math.floor(ns / 1000);
    this.sk.tcp_mstamp = now;
    return now;
  }

  /** A pacing timer is pending (hrtimer_is_queued(&tp->pacing_timer)). */
  pacingTimerQueued = false;

  jiffies32(): number {
    return tcp_jiffies32(this.host.clock);
  }

  /**
   * The SYN-ACK's window (unscaled) and window scale option: snd_wnd starts from it, and later ACKs'
   * windows are shifted by the scale (tcp_rcv_synsent_state_process).
   */
  setPeerWindow(synWindow: number, wscale: number): void {
    this.windowed = true;
    this.sndWscale = wscale;
    this.sk.snd_wnd = synWindow;
  }

  /** tcpi_rwnd_limited: time spent limited by the receive window, us, up to now. */
  rwndLimitedTotalUs(): number {
    const since = this.rwndLimitedSince;
    return this.rwndLimitedUs + (since >= 0 ? Math.floor(this.host.clock.ktime_get_ns() / 1000) - since : 0);
  }

  /** tcp_finish_connect + tcp_init_transfer: the handshake is not simulated, the CA is initialised here. */
  establish(handshakeRttUs?: number): void {
    const sk = this.sk;
    this.mstampRefresh();
    if (handshakeRttUs !== undefined) tcp_synack_rtt_sample(this, Math.max(1, Math.round(handshakeRttUs)));
    sk.sk_state = TCP_ESTABLISHED;
    sk.lsndtime = this.jiffies32();
    sk.snd_cwnd_stamp = this.jiffies32();
    sk.icsk_ca_state = TCP_CA_Open;
    this.cong.tcp_init_congestion_control(sk);
    tcp_init_buffer_space(this);
    tcp_write_xmit(this);
  }

  /** The application writes more segments (bulk senders start with Infinity). */
  write(segments: number): void {
    tcp_slow_start_after_idle_check(this);
    this.appLimit += segments;
    this.syncSeq();
    tcp_write_xmit(this);
  }

  /** An ACK arrived from the network (with the peer's FIN when `a.fin`): tcp_rcv_state_process. */
  receiveAck(a: TcpAck): void {
    if (this.closed) return;
    tcp_ack(this, a);
    const sk = this.sk;
    if (this.finIdx >= 0 && this.una > this.finIdx) {
      // Our FIN is acknowledged.
      if (sk.sk_state === TCP_FIN_WAIT1) {
        sk.sk_state = TCP_FIN_WAIT2;
      } else if (sk.sk_state === TCP_CLOSING || sk.sk_state === TCP_LAST_ACK) {
        this.close(); // tcp_time_wait / tcp_done: the full socket is destroyed
        return;
      }
    }
    if (a.fin && !this.finRcvd) {
      // tcp_fin
      this.finRcvd = true;
      if (sk.sk_state === TCP_ESTABLISHED) {
        sk.sk_state = TCP_CLOSE_WAIT;
      } else if (sk.sk_state === TCP_FIN_WAIT1) {
        this.host.sendAck?.(this, a.tsval ?? 0);
        sk.sk_state = TCP_CLOSING;
      } else if (sk.sk_state === TCP_FIN_WAIT2) {
        this.host.sendAck?.(this, a.tsval ?? 0);
        this.close(); // tcp_time_wait: the timewait sock replaces the full socket, which is destroyed
      }
    }
  }

  /**
   * The application's close() with nothing unread (tcp_close): tcp_close_state (ESTABLISHED to
   * FIN_WAIT1, CLOSE_WAIT to LAST_ACK), then tcp_send_fin. The CA is released when the socket is
   * destroyed: at TIME_WAIT on the side that closed first, when its FIN is acknowledged on the other.
   */
  shutdown(): void {
    const sk = this.sk;
    if (this.closed || this.finIdx >= 0) return;
    if (sk.sk_state === TCP_ESTABLISHED) sk.sk_state = TCP_FIN_WAIT1;
    else if (sk.sk_state === TCP_CLOSE_WAIT) sk.sk_state = TCP_LAST_ACK;
    else return;
    tcp_send_fin(this);
  }

  /** Destroy the socket (tcp_done, or an abortive close): release the CA (tcp_cleanup_congestion_control), stop the timer. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.host.setRtoTimer(this, -1);
    this.cong.tcp_cleanup_congestion_control(this.sk);
    this.sk.sk_state = TCP_CLOSE;
  }

  /** All written data acknowledged. */
  done(): boolean {
    return this.una >= this.appLimit;
  }
}
