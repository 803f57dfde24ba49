/**
 * DCTCP (net/ipv4/tcp_dctcp.c, RFC 8257): once per window, alpha (scaled by 1024) moves towards the
 * fraction of delivered packets that were CE-marked, alpha = (1 - g) * alpha + g * F with g = 1/16;
 * on congestion cwnd shrinks by alpha/2. On the receiving side it echoes CE exactly: a change of
 * CE state flushes a delayed ACK for the old state first (dctcp_ece_ack_update). Without ECN
 * negotiated it falls back to Reno ("dctcp-reno"), as Linux does.
 *
 * State in icsk_ca_priv as Linux's struct dctcp. PLB (tcp_plb.c) is off by default
 * (net.ipv4.tcp_plb_enabled = 0), so its hooks are no-ops here.
 */
import {
  CA_EVENT_ECN_IS_CE,
  CA_EVENT_ECN_NO_CE,
  CA_EVENT_LOSS,
  ICSK_ACK_NOW,
  ICSK_ACK_TIMER,
  INET_DIAG_DCTCPINFO,
  INET_DIAG_VEGASINFO,
  TCP_CA_Recovery,
  TCP_CLOSE,
  TCP_CONG_NEEDS_ECN,
  TCP_ECN_DEMAND_CWR,
  TCP_ECN_OK,
  TCP_LISTEN,
} from "./btf.js";
import type { TcpCcInfo, TcpCongestionOps } from "./tcp_cong.js";
import { tcp_reno_cong_avoid, tcp_reno_ssthresh, tcp_reno_undo_cwnd } from "./tcp_reno.js";
import type { TcpSock } from "./tcp_sock.js";

export const DCTCP_MAX_ALPHA = 1024;

/** struct dctcp offsets in icsk_ca_priv. */
export const DCTCP = {
  old_delivered: 0,
  old_delivered_ce: 4,
  prior_rcv_nxt: 8,
  dctcp_alpha: 12,
  next_seq: 16,
  ce_state: 20,
  loss_cwnd: 24,
} as const;

type Field = keyof typeof DCTCP;
const get = (sk: TcpSock, f: Field) => sk.inet_csk_ca().getUint32(DCTCP[f], true);
const set = (sk: TcpSock, f: Field, x: number) => sk.inet_csk_ca().setUint32(DCTCP[f], x >>> 0, true);
const before = (a: number, b: number) => ((a - b) | 0) < 0;

export interface DctcpParams {
  /** dctcp_shift_g: g = 1/2^shift_g. */
  shift_g: number;
  alpha_on_init: number;
}

/** What the DCTCP ops need from the stack: __tcp_send_ack for the receive-side CE echo. */
export interface DctcpStack {
  sendAck?(sk: TcpSock, rcv_nxt: number): void;
  /** INET_ECN_dontxmit when falling back to Reno. */
  dontXmitEcn?(sk: TcpSock): void;
}

export function tcpDctcp(
  stack: DctcpStack = {},
  params: Partial<DctcpParams> = {},
): TcpCongestionOps & { reno: TcpCongestionOps } {
  const p: DctcpParams = { shift_g: 4, alpha_on_init: DCTCP_MAX_ALPHA, ...params };

  function dctcp_reset(sk: TcpSock): void {
    set(sk, "next_seq", sk.snd_nxt);
    set(sk, "old_delivered", sk.delivered);
    set(sk, "old_delivered_ce", sk.delivered_ce);
  }

  function get_info(sk: TcpSock, ext: number): TcpCcInfo | undefined {
    if (!(ext & (1 << (INET_DIAG_DCTCPINFO - 1)) || ext & (1 << (INET_DIAG_VEGASINFO - 1)))) return undefined;
    const info = { dctcp_enabled: 0, dctcp_ce_state: 0, dctcp_alpha: 0, dctcp_ab_ecn: 0, dctcp_ab_tot: 0 };
    if (sk.icsk_ca_ops !== reno) {
      info.dctcp_enabled = 1;
      info.dctcp_ce_state = get(sk, "ce_state") & 0xffff;
      info.dctcp_alpha = get(sk, "dctcp_alpha");
      info.dctcp_ab_ecn = (sk.mss_cache * ((sk.delivered_ce - get(sk, "old_delivered_ce")) >>> 0)) >>> 0;
      info.dctcp_ab_tot = (sk.mss_cache * ((sk.delivered - get(sk, "old_delivered")) >>> 0)) >>> 0;
    }
    return { attr: INET_DIAG_DCTCPINFO, size: 16, info };
  }

  const reno: TcpCongestionOps = {
    name: "dctcp-reno",
    flags: 0,
    ssthresh: tcp_reno_ssthresh,
    cong_avoid: tcp_reno_cong_avoid,
    undo_cwnd: tcp_reno_undo_cwnd,
    get_info,
  };

  function dctcp_react_to_loss(sk: TcpSock): void {
    set(sk, "loss_cwnd", sk.snd_cwnd);
    sk.snd_ssthresh = Math.max(sk.snd_cwnd >>> 1, 2);
  }

  function dctcp_ece_ack_cwr(sk: TcpSock, ce_state: number): void {
    if (ce_state === 1) sk.ecn_flags = sk.ecn_flags | TCP_ECN_DEMAND_CWR;
    else sk.ecn_flags = sk.ecn_flags & ~TCP_ECN_DEMAND_CWR;
  }

  /** tcp_dctcp.h dctcp_ece_ack_update: echo CE state changes at once, flushing a delayed ACK first. */
  function dctcp_ece_ack_update(sk: TcpSock, evt: number): void {
    const new_ce_state = evt === CA_EVENT_ECN_IS_CE ? 1 : 0;
    const ce_state = get(sk, "ce_state");
    if (ce_state !== new_ce_state) {
      if (sk.icsk_ack_pending & ICSK_ACK_TIMER) {
        dctcp_ece_ack_cwr(sk, ce_state);
        stack.sendAck?.(sk, get(sk, "prior_rcv_nxt"));
      }
      sk.icsk_ack_pending = sk.icsk_ack_pending | ICSK_ACK_NOW;
    }
    set(sk, "prior_rcv_nxt", sk.rcv_nxt);
    set(sk, "ce_state", new_ce_state);
    dctcp_ece_ack_cwr(sk, new_ce_state);
  }

  return {
    name: "dctcp",
    flags: TCP_CONG_NEEDS_ECN,
    init(sk: TcpSock): void {
      if (sk.ecn_flags & TCP_ECN_OK || sk.sk_state === TCP_LISTEN || sk.sk_state === TCP_CLOSE) {
        set(sk, "prior_rcv_nxt", sk.rcv_nxt);
        set(sk, "dctcp_alpha", Math.min(p.alpha_on_init, DCTCP_MAX_ALPHA));
        set(sk, "loss_cwnd", 0);
        set(sk, "ce_state", 0);
        dctcp_reset(sk);
        return;
      }
      // No ECN support? Fall back to Reno, and stop sending ECT.
      sk.icsk_ca_ops = reno;
      stack.dontXmitEcn?.(sk);
    },
    in_ack_event(sk: TcpSock, _flags: number): void {
      // dctcp_update_alpha: once per window of data (an RTT has expired).
      if (before(sk.snd_una, get(sk, "next_seq"))) return;
      const delivered = (sk.delivered - get(sk, "old_delivered")) >>> 0;
      let delivered_ce = (sk.delivered_ce - get(sk, "old_delivered_ce")) >>> 0;
      let alpha = get(sk, "dctcp_alpha");
      // alpha = (1 - g) * alpha + g * F; min_not_zero(alpha, alpha >> g)
      const dec = alpha >>> p.shift_g;
      alpha -= dec === 0 ? alpha : Math.min(alpha, dec);
      if (delivered_ce) {
        delivered_ce = (delivered_ce << (10 - p.shift_g)) >>> 0;
        delivered_ce = Math.floor(delivered_ce / Math.max(1, delivered));
        alpha = Math.min(alpha + delivered_ce, DCTCP_MAX_ALPHA);
      }
      set(sk, "dctcp_alpha", alpha);
      dctcp_reset(sk);
    },
    cwnd_event(sk: TcpSock, ev: number): void {
      if (ev === CA_EVENT_ECN_IS_CE || ev === CA_EVENT_ECN_NO_CE) dctcp_ece_ack_update(sk, ev);
      else if (ev === CA_EVENT_LOSS) dctcp_react_to_loss(sk);
    },
    ssthresh(sk: TcpSock): number {
      set(sk, "loss_cwnd", sk.snd_cwnd);
      return Math.max(sk.snd_cwnd - ((sk.snd_cwnd * get(sk, "dctcp_alpha")) >>> 11), 2);
    },
    cong_avoid: tcp_reno_cong_avoid,
    undo_cwnd(sk: TcpSock): number {
      return Math.max(sk.snd_cwnd, get(sk, "loss_cwnd"));
    },
    set_state(sk: TcpSock, new_state: number): void {
      // RTOs are handled in cwnd_event (CA_EVENT_LOSS), once per RTT.
      if (new_state === TCP_CA_Recovery && new_state !== sk.icsk_ca_state) dctcp_react_to_loss(sk);
    },
    get_info,
    reno,
  };
}
