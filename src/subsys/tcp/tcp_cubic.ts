/**
 * TCP CUBIC (net/ipv4/tcp_cubic.c): BIC-scaled fixed-point cubic growth, fast convergence, TCP
 * friendliness and HyStart, with its state in icsk_ca_priv laid out exactly as Linux's struct bictcp,
 * so a BPF CUBIC (selftests' bpf_cubic.c, struct bpf_bictcp) sees and produces the same bytes.
 */
import { TCP_CA_Loss } from "./btf.js";
import type { TcpCongestionOps } from "./tcp_cong.js";
import {
  tcp_cong_avoid_ai,
  tcp_in_slow_start,
  tcp_is_cwnd_limited,
  tcp_reno_undo_cwnd,
  tcp_slow_start,
} from "./tcp_reno.js";
import { type AckSample, type TcpSock, tcp_jiffies32 } from "./tcp_sock.js";

export const BICTCP_BETA_SCALE = 1024;
/** BIC HZ 2^10 = 1024 */
export const BICTCP_HZ = 10;
export const HYSTART_ACK_TRAIN = 0x1;
export const HYSTART_DELAY = 0x2;
const HYSTART_MIN_SAMPLES = 8;
const HYSTART_DELAY_MIN = 4000;
const HYSTART_DELAY_MAX = 16000;
const USEC_PER_MSEC = 1000;
const USEC_PER_SEC = 1_000_000;

/** Module parameters of tcp_cubic (/sys/module/tcp_cubic/parameters). */
export interface CubicParams {
  fast_convergence: number;
  beta: number;
  initial_ssthresh: number;
  bic_scale: number;
  tcp_friendliness: number;
  hystart: number;
  hystart_detect: number;
  hystart_low_window: number;
  hystart_ack_delta_us: number;
}

export const CUBIC_DEFAULTS: CubicParams = {
  fast_convergence: 1,
  beta: 717, // 717/1024 = 0.7
  initial_ssthresh: 0,
  bic_scale: 41,
  tcp_friendliness: 1,
  hystart: 1,
  hystart_detect: HYSTART_ACK_TRAIN | HYSTART_DELAY,
  hystart_low_window: 16,
  hystart_ack_delta_us: 2000,
};

/** struct bictcp field offsets in icsk_ca_priv (60 bytes). */
export const BICTCP = {
  cnt: 0,
  last_max_cwnd: 4,
  last_cwnd: 8,
  last_time: 12,
  bic_origin_point: 16,
  bic_K: 20,
  delay_min: 24,
  epoch_start: 28,
  ack_cnt: 32,
  tcp_cwnd: 36,
  unused: 40,
  sample_cnt: 42,
  found: 43,
  round_start: 44,
  end_seq: 48,
  last_ack: 52,
  curr_rtt: 56,
  size: 60,
} as const;

type U32Field = Exclude<keyof typeof BICTCP, "unused" | "sample_cnt" | "found" | "size">;

/** A typed window on the CA private area. */
class Bictcp {
  constructor(readonly v: DataView) {}
  get(f: U32Field): number {
    return this.v.getUint32(BICTCP[f], true);
  }
  set(f: U32Field, x: number): void {
    this.v.setUint32(BICTCP[f], x >>> 0, true);
  }
  get sample_cnt(): number {
    return this.v.getUint8(BICTCP.sample_cnt);
  }
  set sample_cnt(x: number) {
    this.v.setUint8(BICTCP.sample_cnt, x);
  }
  get found(): number {
    return this.v.getUint8(BICTCP.found);
  }
  set found(x: number) {
    this.v.setUint8(BICTCP.found, x);
  }
}

const after = (a: number, b: number) => ((b - a) | 0) < 0;
const s32 = (x: number) => x | 0;

/** cbrt(a) by table lookup and one Newton-Raphson step (avg error ~0.195%), as Linux computes it. */
const CUBIC_V = [
  0, 54, 54, 54, 118, 118, 118, 118, 123, 129, 134, 138, 143, 147, 151, 156, 157, 161, 164, 168, 170, 173, 176, 179,
  181, 185, 187, 190, 192, 194, 197, 199, 200, 202, 204, 206, 209, 211, 213, 215, 217, 219, 221, 222, 224, 225, 227,
  229, 231, 232, 234, 236, 237, 239, 240, 242, 244, 245, 246, 248, 250, 251, 252, 254,
];

export function cubic_root(a: bigint): number {
  const b0 = a === 0n ? 0 : a.toString(2).length; // fls64
  if (b0 < 7) return (CUBIC_V[Number(a)]! + 35) >>> 6;
  const b = ((b0 * 84) >> 8) - 1;
  const shift = Number(a >> BigInt(b * 3));
  let x = (((CUBIC_V[shift]! + 10) << b) >>> 0) >>> 6;
  x = (2 * x + Number(a / (BigInt(x) * BigInt(x - 1)))) >>> 0;
  x = ((x * 341) >>> 0) >>> 10;
  return x;
}

/** Build a CUBIC ops table; tunables are read once, as cubictcp_register precomputes its scale factors. */
export function tcpCubic(params: Partial<CubicParams> = {}, name = "cubic"): TcpCongestionOps {
  const p: CubicParams = { ...CUBIC_DEFAULTS, ...params };
  const beta_scale = Math.floor(Math.floor((8 * (BICTCP_BETA_SCALE + p.beta)) / 3) / (BICTCP_BETA_SCALE - p.beta));
  const cube_rtt_scale = p.bic_scale * 10; // 1024*c/rtt
  // K = cubic_root((wmax-cwnd) * rtt / c), in bictcp_HZ units, for srtt = 100 ms.
  const cube_factor = (1n << BigInt(10 + 3 * BICTCP_HZ)) / BigInt(p.bic_scale * 10);

  const bics = new WeakMap<DataView, Bictcp>();
  const ca = (sk: TcpSock) => {
    const v = sk.inet_csk_ca();
    let b = bics.get(v);
    if (!b) bics.set(v, (b = new Bictcp(v)));
    return b;
  };

  function bictcp_reset(c: Bictcp): void {
    // memset(ca, 0, offsetof(struct bictcp, unused)); ca->found = 0;
    for (let i = 0; i < BICTCP.unused; i++) c.v.setUint8(i, 0);
    c.found = 0;
  }

  function bictcp_hystart_reset(sk: TcpSock): void {
    const c = ca(sk);
    const now = sk.tcp_mstamp >>> 0; // bictcp_clock_us
    c.set("round_start", now);
    c.set("last_ack", now);
    c.set("end_seq", sk.snd_nxt);
    c.set("curr_rtt", 0xffffffff);
    c.sample_cnt = 0;
  }

  /** usecs_to_jiffies rounds up. */
  function usecs_to_jiffies(sk: TcpSock, us: number): number {
    return Math.ceil((us * sk.clock.HZ) / USEC_PER_SEC);
  }

  function bictcp_update(sk: TcpSock, c: Bictcp, cwnd: number, acked: number): void {
    const HZ = sk.clock.HZ;
    const now = tcp_jiffies32(sk.clock);
    c.set("ack_cnt", c.get("ack_cnt") + acked);
    if (c.get("last_cwnd") === cwnd && s32(now - c.get("last_time")) <= Math.floor(HZ / 32)) return;

    // The CUBIC function can update ca->cnt at most once per jiffy; reductions zero epoch_start.
    if (!(c.get("epoch_start") && now === c.get("last_time"))) {
      c.set("last_cwnd", cwnd);
      c.set("last_time", now);
      if (c.get("epoch_start") === 0) {
        c.set("epoch_start", now);
        c.set("ack_cnt", acked);
        c.set("tcp_cwnd", cwnd);
        const wmax = c.get("last_max_cwnd");
        if (wmax <= cwnd) {
          c.set("bic_K", 0);
          c.set("bic_origin_point", cwnd);
        } else {
          c.set("bic_K", cubic_root(BigInt.asUintN(64, cube_factor * BigInt(wmax - cwnd))));
          c.set("bic_origin_point", wmax);
        }
      }
      // t = (now - epoch_start + rtt_min) in bictcp_HZ units; delta = c/rtt * (t-K)^3
      let t = s32(now - c.get("epoch_start"));
      t += usecs_to_jiffies(sk, c.get("delay_min"));
      t = Math.floor((t * 1024) / HZ);
      const K = c.get("bic_K");
      const offs = t < K ? K - t : t - K;
      // c/rtt * (t-K)^3 in u64, then >> 40 into a u32; exact in doubles while the product stays below 2^53.
      const prod = cube_rtt_scale * offs * offs * offs;
      let delta: number;
      if (prod < 2 ** 53) {
        delta = Math.floor(prod / 2 ** (10 + 3 * BICTCP_HZ)) >>> 0;
      } else {
        const o = BigInt(offs);
        const big = BigInt.asUintN(64, BigInt(cube_rtt_scale) * o * o * o) >> BigInt(10 + 3 * BICTCP_HZ);
        delta = Number(BigInt.asUintN(32, big));
      }
      const origin = c.get("bic_origin_point");
      const bic_target = t < K ? (origin - delta) >>> 0 : (origin + delta) >>> 0;
      if (bic_target > cwnd) c.set("cnt", Math.floor(cwnd / (bic_target - cwnd)));
      else c.set("cnt", 100 * cwnd); // very small increment
      // The initial growth of cubic function may be too conservative when bandwidth is still unknown.
      if (c.get("last_max_cwnd") === 0 && c.get("cnt") > 20) c.set("cnt", 20);
    }

    // tcp_friendliness: never grow slower than Reno would.
    if (p.tcp_friendliness) {
      const d = (cwnd * beta_scale) >>> 3;
      let ack_cnt = c.get("ack_cnt");
      let tcp_cwnd = c.get("tcp_cwnd");
      if (d > 0) {
        while (ack_cnt > d) {
          ack_cnt -= d;
          tcp_cwnd++;
        }
      }
      c.set("ack_cnt", ack_cnt);
      c.set("tcp_cwnd", tcp_cwnd);
      if (tcp_cwnd > cwnd) {
        const max_cnt = Math.floor(cwnd / (tcp_cwnd - cwnd));
        if (c.get("cnt") > max_cnt) c.set("cnt", max_cnt);
      }
    }
    // At most 1 packet per 2 ACKed: cwnd grows at most 1.5x per RTT.
    c.set("cnt", Math.max(c.get("cnt"), 2));
  }

  function hystart_ack_delay(sk: TcpSock): number {
    const rate = sk.sk_pacing_rate;
    if (!rate) return 0;
    return Math.min(USEC_PER_MSEC, Math.floor((sk.sk_gso_max_size * 4 * USEC_PER_SEC) / rate));
  }

  function hystart_update(sk: TcpSock, delay: number): void {
    const c = ca(sk);
    if (after(sk.snd_una, c.get("end_seq"))) bictcp_hystart_reset(sk);
    if (sk.snd_cwnd < p.hystart_low_window) return;
    if (p.hystart_detect & HYSTART_ACK_TRAIN) {
      const now = sk.tcp_mstamp >>> 0; // bictcp_clock_us
      // first detection parameter - ack-train detection
      if (s32(now - c.get("last_ack")) <= p.hystart_ack_delta_us) {
        c.set("last_ack", now);
        let threshold = c.get("delay_min") + hystart_ack_delay(sk);
        // Pacing might have delayed packets up to RTT/2 during slow start.
        if (sk.sk_pacing_status === 0) threshold >>>= 1;
        // (s32)(now - round_start) > threshold: Linux compares the s32 with a u32, so unsigned.
        if ((now - c.get("round_start")) >>> 0 > threshold) {
          c.found = 1;
          sk.snd_ssthresh = sk.snd_cwnd;
        }
      }
    }
    if (p.hystart_detect & HYSTART_DELAY) {
      if (c.get("curr_rtt") > delay) c.set("curr_rtt", delay);
      if (c.sample_cnt < HYSTART_MIN_SAMPLES) {
        c.sample_cnt = c.sample_cnt + 1;
      } else {
        const dm = c.get("delay_min");
        const thresh = Math.min(Math.max(dm >>> 3, HYSTART_DELAY_MIN), HYSTART_DELAY_MAX);
        if (c.get("curr_rtt") > dm + thresh) {
          c.found = 1;
          sk.snd_ssthresh = sk.snd_cwnd;
        }
      }
    }
  }

  return {
    name,
    flags: 0,
    init(sk: TcpSock): void {
      bictcp_reset(ca(sk));
      if (p.hystart) bictcp_hystart_reset(sk);
      if (!p.hystart && p.initial_ssthresh) sk.snd_ssthresh = p.initial_ssthresh;
    },
    ssthresh(sk: TcpSock): number {
      const c = ca(sk);
      c.set("epoch_start", 0); // end of epoch
      // Wmax and fast convergence
      if (sk.snd_cwnd < c.get("last_max_cwnd") && p.fast_convergence) {
        c.set("last_max_cwnd", Math.floor((sk.snd_cwnd * (BICTCP_BETA_SCALE + p.beta)) / (2 * BICTCP_BETA_SCALE)));
      } else {
        c.set("last_max_cwnd", sk.snd_cwnd);
      }
      return Math.max(Math.floor((sk.snd_cwnd * p.beta) / BICTCP_BETA_SCALE), 2);
    },
    cong_avoid(sk: TcpSock, _ack: number, acked: number): void {
      const c = ca(sk);
      if (!tcp_is_cwnd_limited(sk)) return;
      if (tcp_in_slow_start(sk)) {
        acked = tcp_slow_start(sk, acked);
        if (!acked) return;
      }
      bictcp_update(sk, c, sk.snd_cwnd, acked);
      tcp_cong_avoid_ai(sk, c.get("cnt"), acked);
    },
    set_state(sk: TcpSock, new_state: number): void {
      if (new_state === TCP_CA_Loss) {
        bictcp_reset(ca(sk));
        bictcp_hystart_reset(sk);
      }
    },
    undo_cwnd: tcp_reno_undo_cwnd,
    cwnd_event(sk: TcpSock, ev: number): void {
      if (ev !== 0 /* CA_EVENT_TX_START */) return;
      const c = ca(sk);
      const now = tcp_jiffies32(sk.clock);
      const delta = s32(now - sk.lsndtime);
      // We were application limited (idle) for a while: shift epoch_start to keep cwnd growth cubic.
      if (c.get("epoch_start") && delta > 0) {
        c.set("epoch_start", c.get("epoch_start") + delta);
        if (after(c.get("epoch_start"), now)) c.set("epoch_start", now);
      }
    },
    pkts_acked(sk: TcpSock, sample: AckSample): void {
      const c = ca(sk);
      // Some calls are for duplicates without timestamps
      if (sample.rtt_us < 0) return;
      // Discard delay samples right after fast recovery
      if (c.get("epoch_start") && s32(tcp_jiffies32(sk.clock) - c.get("epoch_start")) < sk.clock.HZ) return;
      let delay = sample.rtt_us;
      if (delay === 0) delay = 1;
      // first time call or link delay decreases
      if (c.get("delay_min") === 0 || c.get("delay_min") > delay) c.set("delay_min", delay);
      if (!c.found && tcp_in_slow_start(sk) && p.hystart) hystart_update(sk, delay);
    },
  };
}
