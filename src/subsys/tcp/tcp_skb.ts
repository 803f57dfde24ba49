/**
 * The sk_buff side of TCP: segments and ACKs as the network carries them, the retransmission-queue entry
 * with its scoreboard bits, and the stack's constants. Kept apart from tcp.ts so the input/output paths
 * can import them without an import cycle.
 */

/** sk_buff control-block bits of the scoreboard (TCP_SKB_CB(skb)->sacked). */
export const TCPCB_SACKED_ACKED = 0x01;
export const TCPCB_SACKED_RETRANS = 0x02;
export const TCPCB_LOST = 0x04;
export const TCPCB_EVER_RETRANS = 0x80;

/** A data segment as the network carries it. */
export interface TcpSegment {
  flow: number;
  /** Segment number (byte seq = isn + idx * mss). */
  idx: number;
  bytes: number;
  /** ECN-capable transport, and Congestion Experienced once a queue marked it. */
  ect: boolean;
  ce: boolean;
  cwr: boolean;
  /** TSval in ms. */
  tsval: number;
  retrans: boolean;
  /** FIN set (tcp_send_fin): on the last data segment, or alone (`empty`: no payload, one sequence number). */
  fin?: boolean;
  empty?: boolean;
  /** A zero-window probe (tcp_xmit_probe_skb): no payload, sequence snd_una - 1, below the peer's window. */
  probe?: boolean;
}

/** An ACK as the network carries it: cumulative next expected segment, SACK and D-SACK blocks. */
export interface TcpAck {
  flow: number;
  ack: number;
  sack: [number, number][];
  dsack?: [number, number];
  ece: boolean;
  tsecr: number;
  /** The segment carrying this ACK is the peer's FIN (no payload), sent with this TSval. */
  fin?: boolean;
  tsval?: number;
  /** The window field (scaled down by the receiver's rcv_wscale); absent where receive windows are not modelled. */
  win?: number;
}

/** One entry of the retransmission queue. */
export interface TcpSkb {
  idx: number;
  sacked: number;
  /** Last (re)transmission time, us, and the connection-wide transmit counter at that moment
   * (RACK's "sent after" order: the simulated sender sends whole bursts within one microsecond). */
  mstamp: number;
  txSeq: number;
  tx_delivered: number;
  tx_delivered_ce: number;
  tx_first_tx_mstamp: number;
  tx_delivered_mstamp: number;
  tx_is_app_limited: boolean;
}

export const TCP_INIT_CWND = 10;
export const TCP_RTO_MIN_US = 200_000;
export const TCP_RTO_MAX_S = 120;
export const TCP_TIMEOUT_INIT_S = 1;
/** TCP_TIMEOUT_MIN_US: the smallest probe timeout. */
export const TCP_TIMEOUT_MIN_US = 2000;

/** What an ACK did (tcp_input.c FLAG_*). */
export const FLAG_DATA = 0x01;
export const FLAG_WIN_UPDATE = 0x02;
export const FLAG_DATA_ACKED = 0x04;
export const FLAG_RETRANS_DATA_ACKED = 0x08;
export const FLAG_SYN_ACKED = 0x10;
export const FLAG_DATA_SACKED = 0x20;
export const FLAG_ECE = 0x40;
export const FLAG_LOST_RETRANS = 0x80;
export const FLAG_SLOWPATH = 0x100;
export const FLAG_ORIG_SACK_ACKED = 0x200;
export const FLAG_SND_UNA_ADVANCED = 0x400;
export const FLAG_DSACKING_ACK = 0x800;
export const FLAG_DSACK_TLP = 0x20000;
export const FLAG_ACKED = FLAG_DATA_ACKED | FLAG_SYN_ACKED;
export const FLAG_NOT_DUP = FLAG_DATA | FLAG_WIN_UPDATE | FLAG_ACKED;
export const FLAG_CA_ALERT = FLAG_DATA_SACKED | FLAG_ECE | FLAG_DSACKING_ACK;
export const FLAG_FORWARD_PROGRESS = FLAG_ACKED | FLAG_DATA_SACKED;
