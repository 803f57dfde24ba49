/**
 * The receive window of a socket whose receive buffer the application set with SO_RCVBUF
 * (SOCK_RCVBUF_LOCK: no autotuning), as 6.18 chooses it: the initial window and window scale
 * (tcp_select_initial_window via tcp_openreq_init_rwin), tcp_init_buffer_space's clamp, the
 * skb len/truesize ratio learnt from the first full-sized segment (tcp_measure_rcv_mss,
 * tcp_set_window_clamp), rcv_ssthresh growth per segment (tcp_grow_window), and the window each
 * ACK advertises (__tcp_select_window, tcp_select_window: never shrunk, scaled, zero when the
 * buffer is nearly full), plus the read side's window update (__tcp_cleanup_rbuf).
 *
 * Byte positions here are relative to the first data byte (rcv_nxt - ISN - 1), so they never wrap.
 * Memory is counted as the kernel does, in skb truesize: each queued segment costs `truesize`.
 */

/** sysctl net.core.rmem_max and net.ipv4.tcp_rmem[2] defaults. */
export const SYSCTL_RMEM_MAX = 212_992;
export const TCP_RMEM_MAX = 6_291_456;
/** SOCK_MIN_RCVBUF: 2 * TCP_SKB_MIN_TRUESIZE (2048 + SKB_DATA_ALIGN(sizeof(struct sk_buff))). */
export const SOCK_MIN_RCVBUF = 2 * (2048 + 256);
const TCP_RMEM_TO_WIN_SCALE = 8;
/** TCP_DEFAULT_SCALING_RATIO: 50% of the buffer until a full segment shows the real ratio. */
export const TCP_DEFAULT_SCALING_RATIO = 1 << (TCP_RMEM_TO_WIN_SCALE - 1);
const TCP_MAX_WSCALE = 14;
const U16_MAX = 0xffff;
/**
 * The truesize of one received full-sized (1448-byte) segment on a veth without GRO, as the host
 * kernel charges it: the window sequences of fidelity/tcp_rwnd's captures (rcv_ssthresh 3741 at
 * SO_RCVBUF 4096, 19293 at 16384) are tcp_space() with one such skb queued at a ratio of 162/256.
 */
export const VETH_SKB_TRUESIZE = 2280;

/** sock_setsockopt(SO_RCVBUF) -> __sock_set_rcvbuf: capped at rmem_max, doubled, at least SOCK_MIN_RCVBUF. */
export function soRcvbuf(val: number): number {
  return Math.max(Math.min(val, SYSCTL_RMEM_MAX) * 2, SOCK_MIN_RCVBUF);
}

export class RcvWindow {
  /** sk_rcvbuf (bytes of truesize). */
  readonly rcvbuf: number;
  scalingRatio = TCP_DEFAULT_SCALING_RATIO;
  windowClamp: number;
  rcvSsthresh: number;
  readonly rcvWscale: number;
  /** rcv_wnd and rcv_wup (relative bytes): the window last advertised and rcv_nxt when it was. */
  rcvWnd: number;
  rcvWup = 0;
  readonly advmss: number;

  /** The listener's SO_RCVBUF `val` (bytes as passed to setsockopt) and the MSS this end advertises less options. */
  constructor(val: number, advmss: number, wscaleOk = true) {
    this.advmss = advmss;
    this.rcvbuf = soRcvbuf(val);
    const full = this.winFromSpace(this.rcvbuf);
    // tcp_openreq_init_rwin: a locked buffer clamps the window to its full space.
    let clamp = full;
    // tcp_select_initial_window
    let space = Math.min(clamp, full);
    if (space > advmss) space -= space % advmss;
    this.rcvWnd = space;
    let wscale = 0;
    if (wscaleOk) {
      let s = Math.max(space, TCP_RMEM_MAX, SYSCTL_RMEM_MAX);
      s = Math.min(s, clamp);
      wscale = Math.min(Math.max(31 - Math.clz32(s) - 15, 0), TCP_MAX_WSCALE);
    }
    this.rcvWscale = wscale;
    clamp = Math.min(U16_MAX * 2 ** wscale, clamp);
    this.windowClamp = clamp;
    // tcp_create_openreq_child
    this.rcvSsthresh = this.rcvWnd;
  }

  /** tcp_win_from_space */
  winFromSpace(space: number): number {
    return Math.floor((space * this.scalingRatio) / 2 ** TCP_RMEM_TO_WIN_SCALE);
  }

  /** tcp_space: the buffer less what is queued (`rmem` bytes of truesize). */
  space(rmem: number): number {
    return this.winFromSpace(this.rcvbuf - rmem);
  }

  /** tcp_full_space */
  fullSpace(): number {
    return this.winFromSpace(this.rcvbuf);
  }

  /** The SYN-ACK's window field (never scaled). */
  synWindow(): number {
    return Math.min(this.rcvWnd, U16_MAX);
  }

  /** tcp_init_buffer_space at establishment (net.ipv4.tcp_app_win = 31: one segment reserved). */
  initBufferSpace(): void {
    const maxwin = this.fullSpace();
    if (this.windowClamp >= maxwin) this.windowClamp = maxwin;
    if (this.windowClamp > 2 * this.advmss && this.windowClamp + this.advmss > maxwin)
      this.windowClamp = Math.max(2 * this.advmss, maxwin - this.advmss);
    this.rcvSsthresh = Math.min(this.rcvSsthresh, this.windowClamp);
  }

  /** tcp_measure_rcv_mss when rcv_mss changes: learn len/truesize, then tcp_set_window_clamp. */
  measureRatio(len: number, truesize: number): void {
    const old = this.scalingRatio;
    this.scalingRatio = Math.floor((len * 2 ** TCP_RMEM_TO_WIN_SCALE) / truesize) || 1;
    if (old === this.scalingRatio) return;
    const clamp = Math.max(SOCK_MIN_RCVBUF / 2, this.winFromSpace(this.rcvbuf));
    if (clamp === this.windowClamp) return;
    const old_clamp = this.windowClamp;
    this.windowClamp = clamp;
    if (clamp < old_clamp) this.rcvSsthresh = Math.min(this.rcvSsthresh, clamp);
    else this.rcvSsthresh = Math.max(Math.min(this.rcvWnd, clamp), this.rcvSsthresh);
  }

  /**
   * tcp_grow_window for a segment of `len` bytes (`truesize`), with `rmem` queued: rcv_ssthresh
   * grows by two segments while the buffer has room. True when it grew (the caller sets
   * icsk_ack.quick |= 1).
   */
  grow(len: number, truesize: number, rmem: number): boolean {
    const room = Math.min(this.windowClamp, this.space(rmem)) - this.rcvSsthresh;
    if (room <= 0) return false;
    // Check #2: an skb with this overhead fits the buffer's window share; otherwise __tcp_grow_window
    // would look for room at tcp_rmem[2], which a locked buffer never reaches.
    if (this.winFromSpace(truesize) > len) return false;
    const incr = Math.max(2 * this.advmss, 2 * len);
    this.rcvSsthresh += Math.min(room, incr);
    return true;
  }

  /** tcp_receive_window: what is left of the last advertised window at `rcvNxt`. */
  receiveWindow(rcvNxt: number): number {
    return Math.max(0, this.rcvWup + this.rcvWnd - rcvNxt);
  }

  /**
   * __tcp_select_window with `rmem` queued and icsk_ack.rcv_mss `rcvMss`: the window in bytes, and
   * whether quick-ACK mode must end (less than half the buffer is free).
   */
  rawSelect(rmem: number, rcvMss: number): { window: number; quickOff: boolean } {
    let mss = rcvMss;
    let free = this.space(rmem);
    const allowed = this.fullSpace();
    const full = Math.min(this.windowClamp, allowed);
    if (mss > full) {
      mss = full;
      if (mss <= 0) return { window: 0, quickOff: false };
    }
    let quickOff = false;
    if (free < full >> 1) {
      quickOff = true;
      const unit = 2 ** this.rcvWscale;
      free -= ((free % unit) + unit) % unit;
      if (free < allowed >> 4 || free < mss) return { window: 0, quickOff };
    }
    if (free > this.rcvSsthresh) free = this.rcvSsthresh;
    let window: number;
    if (this.rcvWscale) {
      const unit = 2 ** this.rcvWscale;
      window = Math.ceil(free / unit) * unit;
    } else {
      window = this.rcvWnd;
      if (window <= free - mss || window > free) window = free - (free % mss);
      else if (mss === full && free > window + (full >> 1)) window = free;
    }
    return { window, quickOff };
  }

  /**
   * tcp_select_window for an ACK sent at `rcvNxt`: never less than what is left of the last offer,
   * rcv_wnd and rcv_wup updated; the window field (scaled down by rcv_wscale).
   */
  select(rcvNxt: number, rmem: number, rcvMss: number): { field: number; quickOff: boolean } {
    const cur = this.receiveWindow(rcvNxt);
    const r = this.rawSelect(rmem, rcvMss);
    let win = r.window;
    // net.ipv4.tcp_shrink_window = 0: never shrink the offered window.
    if (win < cur) {
      const unit = 2 ** this.rcvWscale;
      win = Math.ceil(cur / unit) * unit;
    }
    this.rcvWnd = win;
    this.rcvWup = rcvNxt;
    win = Math.min(win, U16_MAX * 2 ** this.rcvWscale);
    return { field: Math.floor(win / 2 ** this.rcvWscale), quickOff: r.quickOff };
  }

  /**
   * __tcp_cleanup_rbuf after the reader copied data (`rmem` left queued): an ACK is due when the
   * read freed enough to at least double what is left of the offered window.
   */
  readFreedWindow(rcvNxt: number, rmem: number, rcvMss: number): { ack: boolean; quickOff: boolean } {
    const now = this.receiveWindow(rcvNxt);
    if (2 * now > this.windowClamp) return { ack: false, quickOff: false };
    const r = this.rawSelect(rmem, rcvMss);
    return { ack: r.window !== 0 && r.window >= 2 * now, quickOff: r.quickOff };
  }
}
