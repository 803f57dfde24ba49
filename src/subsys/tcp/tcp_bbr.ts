/**
 * TCP BBR v1 (net/ipv4/tcp_bbr.c): a model-based congestion control. It estimates the bottleneck
 * bandwidth (windowed max of delivery-rate samples) and the path's min RTT, paces at
 * pacing_gain * bw and caps inflight at cwnd_gain * BDP, cycling through STARTUP, DRAIN, PROBE_BW
 * (gain cycle 5/4, 3/4, 1 x 6) and PROBE_RTT. It owns cwnd through cong_control (bbr_main) and
 * asks the stack to pace (sk_pacing_status = SK_PACING_NEEDED).
 *
 * The state lives in icsk_ca_priv laid out exactly as Linux's struct bbr (104 bytes, bitfields
 * included), so a BPF program calling the bbr_* kfuncs and a reader of icsk_ca_priv see the
 * kernel's bytes.
 */
import {
  CA_EVENT_TX_START,
  INET_DIAG_BBRINFO,
  INET_DIAG_VEGASINFO,
  SK_PACING_NEEDED,
  SK_PACING_NONE,
  TCP_CA_Loss,
  TCP_CA_Open,
  TCP_CA_Recovery,
  TCP_CONG_NON_RESTRICTED,
} from "./btf.js";
import type { TcpCcInfo, TcpCongestionOps } from "./tcp_cong.js";
import { TCP_INFINITE_SSTHRESH } from "./tcp_reno.js";
import { TCP_INIT_CWND } from "./tcp_skb.js";
import { type RateSample, type TcpSock, tcp_jiffies32, tcp_min_rtt } from "./tcp_sock.js";
import { type MinmaxRef, minmax_get, minmax_reset, minmax_running_max } from "./win_minmax.js";

/** Bandwidth in packets per usec, scaled by 2^24. */
const BW_SCALE = 24;
const BW_UNIT = 1 << BW_SCALE;
/** Gains, scaled by 2^8. */
const BBR_SCALE = 8;
export const BBR_UNIT = 1 << BBR_SCALE;

export const BBR_STARTUP = 0;
export const BBR_DRAIN = 1;
export const BBR_PROBE_BW = 2;
export const BBR_PROBE_RTT = 3;

const CYCLE_LEN = 8;
/** Window length of the bw filter, in round trips. */
const bbr_bw_rtts = CYCLE_LEN + 2;
const bbr_min_rtt_win_sec = 10;
const bbr_probe_rtt_mode_ms = 200;
/** Below this pacing rate (bit/s) skbs carry one segment (bbr_min_tso_segs). */
const bbr_min_tso_rate = 1200000;
const bbr_pacing_margin_percent = 1;
/** 2/ln(2): the smallest gain that doubles the delivery rate each round in STARTUP. */
export const bbr_high_gain = Math.floor((BBR_UNIT * 2885) / 1000) + 1;
export const bbr_drain_gain = Math.floor((BBR_UNIT * 1000) / 2885);
export const bbr_cwnd_gain = BBR_UNIT * 2;
export const bbr_pacing_gain = [
  (BBR_UNIT * 5) / 4,
  (BBR_UNIT * 3) / 4,
  BBR_UNIT,
  BBR_UNIT,
  BBR_UNIT,
  BBR_UNIT,
  BBR_UNIT,
  BBR_UNIT,
];
/** PROBE_BW starts at a random phase other than 3/4. */
const bbr_cycle_rand = 7;
const bbr_cwnd_min_target = 4;
const bbr_full_bw_thresh = (BBR_UNIT * 5) / 4;
const bbr_full_bw_cnt = 3;
const bbr_lt_intvl_min_rtts = 4;
const bbr_lt_loss_thresh = 50;
const bbr_lt_bw_ratio = BBR_UNIT / 8;
const bbr_lt_bw_diff = 4000 / 8;
const bbr_lt_bw_max_rtts = 48;
const bbr_extra_acked_gain = BBR_UNIT;
const bbr_extra_acked_win_rtts = 5;
const bbr_ack_epoch_acked_reset_thresh = 1 << 20;
const bbr_extra_acked_max_us = 100 * 1000;

const USEC_PER_MSEC = 1000;
const USEC_PER_SEC = 1000000;
const GSO_LEGACY_MAX_SIZE = 65536;
/** L1_CACHE_ALIGN(128 + MAX_HEADER) on x86-64. */
const MAX_TCP_HEADER = 320;

/** struct bbr in icsk_ca_priv: byte offsets, and the bitfield words' (shift, width). */
export const BBR = {
  min_rtt_us: 0,
  min_rtt_stamp: 4,
  probe_rtt_done_stamp: 8,
  bw: 12,
  rtt_cnt: 36,
  next_rtt_delivered: 40,
  cycle_mstamp: 48,
  flagsA: 56,
  lt_bw: 60,
  lt_last_delivered: 64,
  lt_last_stamp: 68,
  lt_last_lost: 72,
  flagsB: 76,
  prior_cwnd: 80,
  full_bw: 84,
  ack_epoch_mstamp: 88,
  extra_acked: 96,
  flagsC: 100,
  size: 104,
} as const;

type Bits = readonly [word: number, shift: number, width: number];
const BITS = {
  mode: [BBR.flagsA, 0, 3],
  prev_ca_state: [BBR.flagsA, 3, 3],
  packet_conservation: [BBR.flagsA, 6, 1],
  round_start: [BBR.flagsA, 7, 1],
  idle_restart: [BBR.flagsA, 8, 1],
  probe_rtt_round_done: [BBR.flagsA, 9, 1],
  lt_is_sampling: [BBR.flagsA, 23, 1],
  lt_rtt_cnt: [BBR.flagsA, 24, 7],
  lt_use_bw: [BBR.flagsA, 31, 1],
  pacing_gain: [BBR.flagsB, 0, 10],
  cwnd_gain: [BBR.flagsB, 10, 10],
  full_bw_reached: [BBR.flagsB, 20, 1],
  full_bw_cnt: [BBR.flagsB, 21, 2],
  cycle_idx: [BBR.flagsB, 23, 3],
  has_seen_rtt: [BBR.flagsB, 26, 1],
  ack_epoch_acked: [BBR.flagsC, 0, 20],
  extra_acked_win_rtts: [BBR.flagsC, 20, 5],
  extra_acked_win_idx: [BBR.flagsC, 25, 1],
} as const satisfies Record<string, Bits>;

type U32Field =
  | "min_rtt_us"
  | "min_rtt_stamp"
  | "probe_rtt_done_stamp"
  | "rtt_cnt"
  | "next_rtt_delivered"
  | "lt_bw"
  | "lt_last_delivered"
  | "lt_last_stamp"
  | "lt_last_lost"
  | "prior_cwnd"
  | "full_bw";

/** A typed window on struct bbr. */
export class Bbr {
  constructor(readonly v: DataView) {}
  get(f: U32Field): number {
    return this.v.getUint32(BBR[f], true);
  }
  set(f: U32Field, x: number): void {
    this.v.setUint32(BBR[f], x >>> 0, true);
  }
  bit(f: keyof typeof BITS): number {
    const [w, sh, n] = BITS[f];
    return (this.v.getUint32(w, true) >>> sh) & ((1 << n) - 1);
  }
  setBit(f: keyof typeof BITS, x: number): void {
    const [w, sh, n] = BITS[f];
    const mask = ((1 << n) - 1) << sh;
    const old = this.v.getUint32(w, true);
    this.v.setUint32(w, ((old & ~mask) | ((x << sh) & mask)) >>> 0, true);
  }
  u64(off: number): number {
    return this.v.getUint32(off + 4, true) * 2 ** 32 + this.v.getUint32(off, true);
  }
  setU64(off: number, x: number): void {
    this.v.setUint32(off, x >>> 0, true);
    this.v.setUint32(off + 4, Math.floor(x / 2 ** 32) >>> 0, true);
  }
  extraAcked(i: number): number {
    return this.v.getUint16(BBR.extra_acked + 2 * i, true);
  }
  setExtraAcked(i: number, x: number): void {
    this.v.setUint16(BBR.extra_acked + 2 * i, x & 0xffff, true);
  }
  get bw(): MinmaxRef {
    return { v: this.v, off: BBR.bw };
  }
}

const before = (a: number, b: number) => ((a - b) | 0) < 0;
const after = (a: number, b: number) => before(b, a);
/** tcp_stamp_us_delta */
const usDelta = (t1: number, t0: number) => Math.max(t1 - t0, 0);

/** tcp_packets_in_flight from the tcp_sock counters. */
export function tcp_packets_in_flight(tp: TcpSock): number {
  return tp.packets_out - (tp.sacked_out + tp.lost_out) + tp.retrans_out;
}

/** What BBR reports through get_info (struct tcp_bbr_info). */
export interface TcpBbrInfo {
  bbr_bw_lo: number;
  bbr_bw_hi: number;
  bbr_min_rtt: number;
  bbr_pacing_gain: number;
  bbr_cwnd_gain: number;
}

/**
 * Build a BBR ops table. `random` stands for get_random_u32_below's source (a u32 per call): seeded,
 * so runs are reproducible.
 */
export function tcpBbr(seed = 0x6262_7231): TcpCongestionOps & { bbr(sk: TcpSock): Bbr } {
  let rnd = seed >>> 0 || 1;
  /** get_random_u32_below(n), from a xorshift32 stream. */
  const random_below = (n: number) => {
    rnd ^= rnd << 13;
    rnd >>>= 0;
    rnd ^= rnd >>> 17;
    rnd ^= rnd << 5;
    rnd >>>= 0;
    return Number((BigInt(rnd) * BigInt(n)) >> 32n);
  };
  const cache = new WeakMap<DataView, Bbr>();
  const ca = (sk: TcpSock) => {
    const v = sk.inet_csk_ca();
    let b = cache.get(v);
    if (!b) cache.set(v, (b = new Bbr(v)));
    return b;
  };
  const jiffies = (sk: TcpSock) => tcp_jiffies32(sk.clock);

  const bbr_full_bw_reached = (sk: TcpSock) => ca(sk).bit("full_bw_reached") !== 0;
  const bbr_max_bw = (sk: TcpSock) => minmax_get(ca(sk).bw);
  const bbr_bw = (sk: TcpSock) => (ca(sk).bit("lt_use_bw") ? ca(sk).get("lt_bw") : bbr_max_bw(sk));
  const bbr_extra_acked = (sk: TcpSock) => Math.max(ca(sk).extraAcked(0), ca(sk).extraAcked(1));

  /** Rate in pkts/us << 24 to bytes/s, with the gain and 1% under the estimate. */
  function bbr_rate_bytes_per_sec(sk: TcpSock, rate: number, gain: number): number {
    let r = BigInt(rate) * BigInt(sk.mss_cache) * BigInt(gain);
    r >>= BigInt(BBR_SCALE);
    r *= BigInt((USEC_PER_SEC / 100) * (100 - bbr_pacing_margin_percent));
    return Number(r >> BigInt(BW_SCALE));
  }

  function bbr_bw_to_pacing_rate(sk: TcpSock, bw: number, gain: number): number {
    return Math.min(bbr_rate_bytes_per_sec(sk, bw, gain), sk.sk_max_pacing_rate);
  }

  /** Before any bw sample: pace at high_gain * init_cwnd / RTT (1 ms nominal without a sample). */
  function bbr_init_pacing_rate_from_rtt(sk: TcpSock): void {
    const b = ca(sk);
    let rtt_us: number;
    if (sk.srtt_us) {
      rtt_us = Math.max(sk.srtt_us >>> 3, 1);
      b.setBit("has_seen_rtt", 1);
    } else {
      rtt_us = USEC_PER_MSEC;
    }
    const bw = Math.floor((sk.snd_cwnd * BW_UNIT) / rtt_us);
    sk.sk_pacing_rate = bbr_bw_to_pacing_rate(sk, bw, bbr_high_gain);
  }

  /** Pace at gain * bw; never slow down before the pipe was found full (STARTUP). */
  function bbr_set_pacing_rate(sk: TcpSock, bw: number, gain: number): void {
    const rate = bbr_bw_to_pacing_rate(sk, bw, gain);
    if (!ca(sk).bit("has_seen_rtt") && sk.srtt_us) bbr_init_pacing_rate_from_rtt(sk);
    if (bbr_full_bw_reached(sk) || rate > sk.sk_pacing_rate) sk.sk_pacing_rate = rate;
  }

  function bbr_min_tso_segs(sk: TcpSock): number {
    return sk.sk_pacing_rate < bbr_min_tso_rate >>> 3 ? 1 : 2;
  }

  function bbr_tso_segs_goal(sk: TcpSock): number {
    const shifted = Math.floor(sk.sk_pacing_rate / 2 ** sk.sk_pacing_shift);
    const bytes = Math.min(shifted, GSO_LEGACY_MAX_SIZE - 1 - MAX_TCP_HEADER);
    const segs = Math.max(Math.floor(bytes / sk.mss_cache), bbr_min_tso_segs(sk));
    return Math.min(segs, 0x7f);
  }

  /** Save "last known good" cwnd so we can restore it after losses or PROBE_RTT. */
  function bbr_save_cwnd(sk: TcpSock): void {
    const b = ca(sk);
    if (b.bit("prev_ca_state") < TCP_CA_Recovery && b.bit("mode") !== BBR_PROBE_RTT) b.set("prior_cwnd", sk.snd_cwnd);
    else b.set("prior_cwnd", Math.max(b.get("prior_cwnd"), sk.snd_cwnd));
  }

  function bbr_cwnd_event(sk: TcpSock, event: number): void {
    const b = ca(sk);
    if (event === CA_EVENT_TX_START && sk.app_limited) {
      b.setBit("idle_restart", 1);
      b.setU64(BBR.ack_epoch_mstamp, sk.tcp_mstamp);
      b.setBit("ack_epoch_acked", 0);
      // Avoid pointless buffer overflows: pace at est. bw if we don't need more speed.
      if (b.bit("mode") === BBR_PROBE_BW) bbr_set_pacing_rate(sk, bbr_bw(sk), BBR_UNIT);
      else if (b.bit("mode") === BBR_PROBE_RTT) bbr_check_probe_rtt_done(sk);
    }
  }

  /** gain * BDP in packets, rounded up; the initial window before any RTT sample. */
  function bbr_bdp(sk: TcpSock, bw: number, gain: number): number {
    const min_rtt = ca(sk).get("min_rtt_us");
    if (min_rtt === 0xffffffff) return TCP_INIT_CWND;
    const w = BigInt(bw) * BigInt(min_rtt);
    return Number((((w * BigInt(gain)) >> BigInt(BBR_SCALE)) + BigInt(BW_UNIT - 1)) / BigInt(BW_UNIT)) >>> 0;
  }

  function bbr_quantization_budget(sk: TcpSock, cwnd: number): number {
    const b = ca(sk);
    cwnd += 3 * bbr_tso_segs_goal(sk);
    cwnd = (cwnd + 1) & ~1;
    if (b.bit("mode") === BBR_PROBE_BW && b.bit("cycle_idx") === 0) cwnd += 2;
    return cwnd >>> 0;
  }

  function bbr_inflight(sk: TcpSock, bw: number, gain: number): number {
    return bbr_quantization_budget(sk, bbr_bdp(sk, bw, gain));
  }

  /** Packets still in the network when the next paced skb departs (EDT). */
  function bbr_packets_in_net_at_edt(sk: TcpSock, inflight_now: number): number {
    const now_ns = sk.tcp_clock_cache;
    const edt_ns = Math.max(sk.tcp_wstamp_ns, now_ns);
    const interval_us = Math.floor((edt_ns - now_ns) / 1000);
    const interval_delivered = Number((BigInt(bbr_bw(sk)) * BigInt(interval_us)) >> BigInt(BW_SCALE));
    let inflight_at_edt = inflight_now;
    if (ca(sk).bit("pacing_gain") > BBR_UNIT) inflight_at_edt += bbr_tso_segs_goal(sk);
    if (interval_delivered >= inflight_at_edt) return 0;
    return inflight_at_edt - interval_delivered;
  }

  function bbr_ack_aggregation_cwnd(sk: TcpSock): number {
    let aggr_cwnd = 0;
    if (bbr_extra_acked_gain && bbr_full_bw_reached(sk)) {
      const max_aggr_cwnd = Math.floor((bbr_bw(sk) * bbr_extra_acked_max_us) / BW_UNIT);
      aggr_cwnd = (bbr_extra_acked_gain * bbr_extra_acked(sk)) >>> BBR_SCALE;
      aggr_cwnd = Math.min(aggr_cwnd, max_aggr_cwnd);
    }
    return aggr_cwnd;
  }

  /** Losses cut cwnd; the first round of Recovery conserves packets; leaving it restores cwnd. */
  function bbr_set_cwnd_to_recover_or_restore(sk: TcpSock, rs: RateSample, acked: number): [boolean, number] {
    const b = ca(sk);
    const prev_state = b.bit("prev_ca_state");
    const state = sk.icsk_ca_state;
    let cwnd = sk.snd_cwnd;
    if (rs.losses > 0) cwnd = Math.max(cwnd - rs.losses, 1);
    if (state === TCP_CA_Recovery && prev_state !== TCP_CA_Recovery) {
      b.setBit("packet_conservation", 1);
      b.set("next_rtt_delivered", sk.delivered); // start round now
      cwnd = tcp_packets_in_flight(sk) + acked;
    } else if (prev_state >= TCP_CA_Recovery && state < TCP_CA_Recovery) {
      cwnd = Math.max(cwnd, b.get("prior_cwnd"));
      b.setBit("packet_conservation", 0);
    }
    b.setBit("prev_ca_state", state);
    if (b.bit("packet_conservation")) return [true, Math.max(cwnd, tcp_packets_in_flight(sk) + acked)];
    return [false, cwnd];
  }

  function bbr_target_cwnd(sk: TcpSock, rs: RateSample, acked: number, bw: number, gain: number): number {
    const [conserving, c] = bbr_set_cwnd_to_recover_or_restore(sk, rs, acked);
    let cwnd = c;
    if (conserving) return cwnd;
    let target_cwnd = bbr_bdp(sk, bw, gain);
    // Increment the cwnd to account for excess ACKed data that seems due to aggregation.
    target_cwnd += bbr_ack_aggregation_cwnd(sk);
    target_cwnd = bbr_quantization_budget(sk, target_cwnd);
    if (bbr_full_bw_reached(sk)) cwnd = Math.min(cwnd + acked, target_cwnd);
    else if (cwnd < target_cwnd || sk.delivered < TCP_INIT_CWND) cwnd = cwnd + acked;
    return Math.max(cwnd, bbr_cwnd_min_target);
  }

  /** Slow-start up toward the target cwnd (if bw estimate is growing, or packet loss is not). */
  function bbr_set_cwnd(sk: TcpSock, rs: RateSample, acked: number, bw: number, gain: number): void {
    const b = ca(sk);
    let cwnd = sk.snd_cwnd;
    // With no packet fully ACKed, only the caps below apply.
    if (acked) cwnd = bbr_target_cwnd(sk, rs, acked, bw, gain);
    sk.snd_cwnd = Math.min(cwnd, sk.snd_cwnd_clamp);
    if (b.bit("mode") === BBR_PROBE_RTT) sk.snd_cwnd = Math.min(sk.snd_cwnd, bbr_cwnd_min_target);
  }

  function bbr_is_next_cycle_phase(sk: TcpSock, rs: RateSample): boolean {
    const b = ca(sk);
    const is_full_length = usDelta(sk.delivered_mstamp, b.u64(BBR.cycle_mstamp)) > b.get("min_rtt_us");
    const gain = b.bit("pacing_gain");
    if (gain === BBR_UNIT) return is_full_length;
    const inflight = bbr_packets_in_net_at_edt(sk, rs.prior_in_flight);
    const bw = bbr_max_bw(sk);
    if (gain > BBR_UNIT) return is_full_length && (rs.losses !== 0 || inflight >= bbr_inflight(sk, bw, gain));
    return is_full_length || inflight <= bbr_inflight(sk, bw, BBR_UNIT);
  }

  function bbr_advance_cycle_phase(sk: TcpSock): void {
    const b = ca(sk);
    b.setBit("cycle_idx", (b.bit("cycle_idx") + 1) & (CYCLE_LEN - 1));
    b.setU64(BBR.cycle_mstamp, sk.delivered_mstamp);
  }

  function bbr_update_cycle_phase(sk: TcpSock, rs: RateSample): void {
    if (ca(sk).bit("mode") === BBR_PROBE_BW && bbr_is_next_cycle_phase(sk, rs)) bbr_advance_cycle_phase(sk);
  }

  function bbr_reset_probe_bw_mode(sk: TcpSock): void {
    const b = ca(sk);
    b.setBit("mode", BBR_PROBE_BW);
    b.setBit("cycle_idx", CYCLE_LEN - 1 - random_below(bbr_cycle_rand));
    bbr_advance_cycle_phase(sk);
  }

  function bbr_reset_mode(sk: TcpSock): void {
    if (!bbr_full_bw_reached(sk)) ca(sk).setBit("mode", BBR_STARTUP);
    else bbr_reset_probe_bw_mode(sk);
  }

  /** Start a new long-term sampling interval. */
  function bbr_reset_lt_bw_sampling_interval(sk: TcpSock): void {
    const b = ca(sk);
    b.set("lt_last_stamp", Math.floor(sk.delivered_mstamp / USEC_PER_MSEC));
    b.set("lt_last_delivered", sk.delivered);
    b.set("lt_last_lost", sk.lost);
    b.setBit("lt_rtt_cnt", 0);
  }

  function bbr_reset_lt_bw_sampling(sk: TcpSock): void {
    const b = ca(sk);
    b.set("lt_bw", 0);
    b.setBit("lt_use_bw", 0);
    b.setBit("lt_is_sampling", 0);
    bbr_reset_lt_bw_sampling_interval(sk);
  }

  /** Long-term bw sampling interval is done. Estimate whether we're policed. */
  function bbr_lt_bw_interval_done(sk: TcpSock, bw: number): void {
    const b = ca(sk);
    const lt_bw = b.get("lt_bw");
    if (lt_bw) {
      const diff = Math.abs(bw - lt_bw);
      if (diff * BBR_UNIT <= bbr_lt_bw_ratio * lt_bw || bbr_rate_bytes_per_sec(sk, diff, BBR_UNIT) <= bbr_lt_bw_diff) {
        // All criteria are met; estimate we're policed.
        b.set("lt_bw", (bw + lt_bw) >>> 1);
        b.setBit("lt_use_bw", 1);
        b.setBit("pacing_gain", BBR_UNIT);
        b.setBit("lt_rtt_cnt", 0);
        return;
      }
    }
    b.set("lt_bw", bw);
    bbr_reset_lt_bw_sampling_interval(sk);
  }

  /** Token-bucket traffic policing detection (long-term sampling). */
  function bbr_lt_bw_sampling(sk: TcpSock, losses: number, is_app_limited: boolean): void {
    const b = ca(sk);
    if (b.bit("lt_use_bw")) {
      if (b.bit("mode") === BBR_PROBE_BW && b.bit("round_start")) {
        const n = b.bit("lt_rtt_cnt") + 1;
        b.setBit("lt_rtt_cnt", n);
        if ((n & 0x7f) >= bbr_lt_bw_max_rtts) {
          bbr_reset_lt_bw_sampling(sk);
          bbr_reset_probe_bw_mode(sk);
        }
      }
      return;
    }
    // Wait for the first loss before sampling, to let the policer exhaust its tokens.
    if (!b.bit("lt_is_sampling")) {
      if (!losses) return;
      bbr_reset_lt_bw_sampling_interval(sk);
      b.setBit("lt_is_sampling", 1);
    }
    if (is_app_limited) {
      bbr_reset_lt_bw_sampling(sk);
      return;
    }
    if (b.bit("round_start")) b.setBit("lt_rtt_cnt", b.bit("lt_rtt_cnt") + 1);
    if (b.bit("lt_rtt_cnt") < bbr_lt_intvl_min_rtts) return;
    if (b.bit("lt_rtt_cnt") > 4 * bbr_lt_intvl_min_rtts) {
      bbr_reset_lt_bw_sampling(sk);
      return;
    }
    if (!losses) return;
    const lost = (sk.lost - b.get("lt_last_lost")) >>> 0;
    const delivered = (sk.delivered - b.get("lt_last_delivered")) >>> 0;
    if (!delivered || (lost << BBR_SCALE) >>> 0 < bbr_lt_loss_thresh * delivered) return;
    let t = (Math.floor(sk.delivered_mstamp / USEC_PER_MSEC) - b.get("lt_last_stamp")) >>> 0;
    if ((t | 0) < 1) return;
    if (t >= Math.floor(0xffffffff / USEC_PER_MSEC)) {
      bbr_reset_lt_bw_sampling(sk);
      return;
    }
    t *= USEC_PER_MSEC;
    bbr_lt_bw_interval_done(sk, Math.floor((delivered * BW_UNIT) / t) >>> 0);
  }

  /** Estimate the bandwidth based on how fast packets are delivered. */
  function bbr_update_bw(sk: TcpSock, rs: RateSample): void {
    const b = ca(sk);
    b.setBit("round_start", 0);
    if (rs.delivered < 0 || rs.interval_us <= 0) return;
    if (!before(rs.prior_delivered, b.get("next_rtt_delivered"))) {
      b.set("next_rtt_delivered", sk.delivered);
      b.set("rtt_cnt", b.get("rtt_cnt") + 1);
      b.setBit("round_start", 1);
      b.setBit("packet_conservation", 0);
    }
    bbr_lt_bw_sampling(sk, rs.losses, rs.is_app_limited !== 0);
    const bw = Math.floor((rs.delivered * BW_UNIT) / rs.interval_us);
    if (!rs.is_app_limited || bw >= bbr_max_bw(sk)) {
      minmax_running_max(b.bw, bbr_bw_rtts, b.get("rtt_cnt"), Math.min(bw, 0xffffffff));
    }
  }

  /** Estimate how much extra data was ACKed beyond the bw model (ACK aggregation). */
  function bbr_update_ack_aggregation(sk: TcpSock, rs: RateSample): void {
    const b = ca(sk);
    if (!bbr_extra_acked_gain || rs.acked_sacked <= 0 || rs.delivered < 0 || rs.interval_us <= 0) return;
    if (b.bit("round_start")) {
      b.setBit("extra_acked_win_rtts", Math.min(0x1f, b.bit("extra_acked_win_rtts") + 1));
      if (b.bit("extra_acked_win_rtts") >= bbr_extra_acked_win_rtts) {
        b.setBit("extra_acked_win_rtts", 0);
        b.setBit("extra_acked_win_idx", b.bit("extra_acked_win_idx") ? 0 : 1);
        b.setExtraAcked(b.bit("extra_acked_win_idx"), 0);
      }
    }
    const epoch_us = usDelta(sk.delivered_mstamp, b.u64(BBR.ack_epoch_mstamp)) >>> 0;
    let expected_acked = Number((BigInt(bbr_bw(sk)) * BigInt(epoch_us)) >> BigInt(BW_SCALE)) >>> 0;
    if (
      b.bit("ack_epoch_acked") <= expected_acked ||
      b.bit("ack_epoch_acked") + rs.acked_sacked >= bbr_ack_epoch_acked_reset_thresh
    ) {
      b.setBit("ack_epoch_acked", 0);
      b.setU64(BBR.ack_epoch_mstamp, sk.delivered_mstamp);
      expected_acked = 0;
    }
    b.setBit("ack_epoch_acked", Math.min(0xfffff, b.bit("ack_epoch_acked") + rs.acked_sacked));
    let extra_acked = (b.bit("ack_epoch_acked") - expected_acked) >>> 0;
    extra_acked = Math.min(extra_acked, sk.snd_cwnd);
    const idx = b.bit("extra_acked_win_idx");
    if (extra_acked > b.extraAcked(idx)) b.setExtraAcked(idx, extra_acked);
  }

  /** The pipe is full once bw stops growing by 25% for three rounds. */
  function bbr_check_full_bw_reached(sk: TcpSock, rs: RateSample): void {
    const b = ca(sk);
    if (bbr_full_bw_reached(sk) || !b.bit("round_start") || rs.is_app_limited) return;
    const bw_thresh = Math.floor((b.get("full_bw") * bbr_full_bw_thresh) / BBR_UNIT);
    if (bbr_max_bw(sk) >= bw_thresh) {
      b.set("full_bw", bbr_max_bw(sk));
      b.setBit("full_bw_cnt", 0);
      return;
    }
    b.setBit("full_bw_cnt", b.bit("full_bw_cnt") + 1);
    b.setBit("full_bw_reached", b.bit("full_bw_cnt") >= bbr_full_bw_cnt ? 1 : 0);
  }

  /** If pipe is probably full, drain the queue and then enter steady-state. */
  function bbr_check_drain(sk: TcpSock): void {
    const b = ca(sk);
    if (b.bit("mode") === BBR_STARTUP && bbr_full_bw_reached(sk)) {
      b.setBit("mode", BBR_DRAIN);
      sk.snd_ssthresh = bbr_inflight(sk, bbr_max_bw(sk), BBR_UNIT);
    }
    if (
      b.bit("mode") === BBR_DRAIN &&
      bbr_packets_in_net_at_edt(sk, tcp_packets_in_flight(sk)) <= bbr_inflight(sk, bbr_max_bw(sk), BBR_UNIT)
    ) {
      bbr_reset_probe_bw_mode(sk);
    }
  }

  function bbr_check_probe_rtt_done(sk: TcpSock): void {
    const b = ca(sk);
    const done = b.get("probe_rtt_done_stamp");
    if (!(done && after(jiffies(sk), done))) return;
    b.set("min_rtt_stamp", jiffies(sk));
    sk.snd_cwnd = Math.max(sk.snd_cwnd, b.get("prior_cwnd"));
    bbr_reset_mode(sk);
  }

  /** Track min RTT over 10 s; when it expires, spend 200 ms (and a round) at 4 packets to re-probe. */
  function bbr_update_min_rtt(sk: TcpSock, rs: RateSample): void {
    const b = ca(sk);
    const HZ = sk.clock.HZ;
    const filter_expired = after(jiffies(sk), (b.get("min_rtt_stamp") + bbr_min_rtt_win_sec * HZ) >>> 0);
    if (rs.rtt_us >= 0 && (rs.rtt_us < b.get("min_rtt_us") || (filter_expired && !rs.is_ack_delayed))) {
      b.set("min_rtt_us", rs.rtt_us);
      b.set("min_rtt_stamp", jiffies(sk));
    }
    if (bbr_probe_rtt_mode_ms > 0 && filter_expired && !b.bit("idle_restart") && b.bit("mode") !== BBR_PROBE_RTT) {
      b.setBit("mode", BBR_PROBE_RTT);
      bbr_save_cwnd(sk);
      b.set("probe_rtt_done_stamp", 0);
    }
    if (b.bit("mode") === BBR_PROBE_RTT) {
      // Ignore low rate samples during this mode.
      sk.app_limited = (sk.delivered + tcp_packets_in_flight(sk)) >>> 0 || 1;
      if (!b.get("probe_rtt_done_stamp") && tcp_packets_in_flight(sk) <= bbr_cwnd_min_target) {
        b.set("probe_rtt_done_stamp", jiffies(sk) + Math.ceil((bbr_probe_rtt_mode_ms * HZ) / 1000));
        b.setBit("probe_rtt_round_done", 0);
        b.set("next_rtt_delivered", sk.delivered);
      } else if (b.get("probe_rtt_done_stamp")) {
        if (b.bit("round_start")) b.setBit("probe_rtt_round_done", 1);
        if (b.bit("probe_rtt_round_done")) bbr_check_probe_rtt_done(sk);
      }
    }
    if (rs.delivered > 0) b.setBit("idle_restart", 0);
  }

  function bbr_update_gains(sk: TcpSock): void {
    const b = ca(sk);
    switch (b.bit("mode")) {
      case BBR_STARTUP:
        b.setBit("pacing_gain", bbr_high_gain);
        b.setBit("cwnd_gain", bbr_high_gain);
        break;
      case BBR_DRAIN:
        b.setBit("pacing_gain", bbr_drain_gain);
        b.setBit("cwnd_gain", bbr_high_gain);
        break;
      case BBR_PROBE_BW:
        b.setBit("pacing_gain", b.bit("lt_use_bw") ? BBR_UNIT : bbr_pacing_gain[b.bit("cycle_idx")]!);
        b.setBit("cwnd_gain", bbr_cwnd_gain);
        break;
      case BBR_PROBE_RTT:
        b.setBit("pacing_gain", BBR_UNIT);
        b.setBit("cwnd_gain", BBR_UNIT);
        break;
    }
  }

  function bbr_update_model(sk: TcpSock, rs: RateSample): void {
    bbr_update_bw(sk, rs);
    bbr_update_ack_aggregation(sk, rs);
    bbr_update_cycle_phase(sk, rs);
    bbr_check_full_bw_reached(sk, rs);
    bbr_check_drain(sk);
    bbr_update_min_rtt(sk, rs);
    bbr_update_gains(sk);
  }

  function bbr_main(sk: TcpSock, _ack: number, _flag: number, rs: RateSample): void {
    bbr_update_model(sk, rs);
    const bw = bbr_bw(sk);
    const b = ca(sk);
    bbr_set_pacing_rate(sk, bw, b.bit("pacing_gain"));
    bbr_set_cwnd(sk, rs, rs.acked_sacked, bw, b.bit("cwnd_gain"));
  }

  function bbr_init(sk: TcpSock): void {
    const b = ca(sk);
    b.set("prior_cwnd", 0);
    sk.snd_ssthresh = TCP_INFINITE_SSTHRESH;
    b.set("rtt_cnt", 0);
    b.set("next_rtt_delivered", sk.delivered);
    b.setBit("prev_ca_state", TCP_CA_Open);
    b.setBit("packet_conservation", 0);
    b.set("probe_rtt_done_stamp", 0);
    b.setBit("probe_rtt_round_done", 0);
    b.set("min_rtt_us", tcp_min_rtt(sk));
    b.set("min_rtt_stamp", jiffies(sk));
    minmax_reset(b.bw, b.get("rtt_cnt"), 0);
    b.setBit("has_seen_rtt", 0);
    bbr_init_pacing_rate_from_rtt(sk);
    b.setBit("round_start", 0);
    b.setBit("idle_restart", 0);
    b.setBit("full_bw_reached", 0);
    b.set("full_bw", 0);
    b.setBit("full_bw_cnt", 0);
    b.setU64(BBR.cycle_mstamp, 0);
    b.setBit("cycle_idx", 0);
    bbr_reset_lt_bw_sampling(sk);
    b.setBit("mode", BBR_STARTUP);
    b.setU64(BBR.ack_epoch_mstamp, sk.tcp_mstamp);
    b.setBit("ack_epoch_acked", 0);
    b.setBit("extra_acked_win_rtts", 0);
    b.setBit("extra_acked_win_idx", 0);
    b.setExtraAcked(0, 0);
    b.setExtraAcked(1, 0);
    // cmpxchg(&sk->sk_pacing_status, SK_PACING_NONE, SK_PACING_NEEDED): the stack paces for us.
    if (sk.sk_pacing_status === SK_PACING_NONE) sk.sk_pacing_status = SK_PACING_NEEDED;
  }

  function bbr_get_info(sk: TcpSock, ext: number): TcpCcInfo | undefined {
    if (!(ext & (1 << (INET_DIAG_BBRINFO - 1)) || ext & (1 << (INET_DIAG_VEGASINFO - 1)))) return undefined;
    const b = ca(sk);
    const bw = (BigInt(bbr_bw(sk)) * BigInt(sk.mss_cache) * BigInt(USEC_PER_SEC)) >> BigInt(BW_SCALE);
    const info: TcpBbrInfo = {
      bbr_bw_lo: Number(bw & 0xffffffffn),
      bbr_bw_hi: Number(bw >> 32n),
      bbr_min_rtt: b.get("min_rtt_us"),
      bbr_pacing_gain: b.bit("pacing_gain"),
      bbr_cwnd_gain: b.bit("cwnd_gain"),
    };
    return { attr: INET_DIAG_BBRINFO, size: 20, info: { ...info } };
  }

  return {
    name: "bbr",
    flags: TCP_CONG_NON_RESTRICTED,
    init: bbr_init,
    cong_control: bbr_main,
    sndbuf_expand: () => 3, // 3 * cwnd: BBR may slow-start even during recovery
    undo_cwnd(sk: TcpSock): number {
      const b = ca(sk);
      b.set("full_bw", 0); // spurious slow-down; reset full pipe detection
      b.setBit("full_bw_cnt", 0);
      bbr_reset_lt_bw_sampling(sk);
      return sk.snd_cwnd;
    },
    cwnd_event: bbr_cwnd_event,
    ssthresh(sk: TcpSock): number {
      bbr_save_cwnd(sk);
      return sk.snd_ssthresh;
    },
    min_tso_segs: bbr_min_tso_segs,
    get_info: bbr_get_info,
    set_state(sk: TcpSock, new_state: number): void {
      if (new_state === TCP_CA_Loss) {
        const b = ca(sk);
        b.setBit("prev_ca_state", TCP_CA_Loss);
        b.set("full_bw", 0);
        b.setBit("round_start", 1); // treat RTO like end of a round
        bbr_lt_bw_sampling(sk, 1, false);
      }
    },
    bbr: ca,
  };
}
