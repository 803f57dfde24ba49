/**
 * Unit parsing for the sim CLI: rates (bit/s: kbit, mbit, gbit; bps), durations (ns, us, ms, s) and
 * buffer sizes (b, kb, mb in bytes, decimal as tc uses them; pkts for packets).
 */
const RATE: Record<string, number> = {
  bit: 1,
  bps: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
  kbps: 8e3,
  mbps: 8e6,
  gbps: 8e9,
};
const TIME: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9 };
const SIZE: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, kib: 1024, mib: 1024 * 1024 };

function split(what: string, s: string): [number, string] {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([a-z]*)\s*$/i.exec(s);
  if (!m) throw new Error(`invalid ${what} '${s}'`);
  return [Number(m[1]), m[2]!.toLowerCase()];
}

/** "12mbit" -> 12e6 bit/s; a bare number is bit/s. */
export function parseRate(s: string): number {
  const [v, u] = split("rate", s);
  const k = u === "" ? 1 : RATE[u];
  if (k === undefined)
    throw new Error(`invalid rate unit in '${s}' (use bit, kbit, mbit, gbit, or kbps/mbps/gbps bytes)`);
  return v * k;
}

/** "30ms" -> 30e6 ns; a bare number is seconds. */
export function parseDuration(s: string): number {
  const [v, u] = split("duration", s);
  const k = u === "" ? 1e9 : TIME[u];
  if (k === undefined) throw new Error(`invalid time unit in '${s}' (use ns, us, ms, s)`);
  return Math.round(v * k);
}

/** "45kb" -> { bytes: 45000 }, "30pkts" -> { packets: 30 }; a bare number is bytes. */
export function parseSize(s: string): { bytes: number } | { packets: number } {
  const [v, u] = split("size", s);
  if (u === "p" || u === "pkt" || u === "pkts" || u === "packets") return { packets: Math.round(v) };
  const k = u === "" ? 1 : SIZE[u];
  if (k === undefined) throw new Error(`invalid size unit in '${s}' (use b, kb, mb, or pkts)`);
  return { bytes: Math.round(v * k) };
}

export function formatRate(bps: number): string {
  if (bps >= 1e9) return `${(bps / 1e9).toFixed(2)} Gbit/s`;
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(2)} Mbit/s`;
  if (bps >= 1e3) return `${(bps / 1e3).toFixed(2)} kbit/s`;
  return `${bps.toFixed(0)} bit/s`;
}
