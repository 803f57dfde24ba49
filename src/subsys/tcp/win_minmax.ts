/**
 * lib/win_minmax.c: Kathleen Nichols' windowed min/max filter, three samples (t, v) kept in a
 * `struct minmax` in kernel memory (tcp_sock.rtt_min, BBR's bandwidth filter in icsk_ca_priv).
 * Times and values are u32 with wrapping differences, as in C.
 */

/** A struct minmax at byte offset `off` of `v`: s[i].t at off + 8i, s[i].v at off + 8i + 4. */
export interface MinmaxRef {
  readonly v: DataView;
  readonly off: number;
}

const t = (m: MinmaxRef, i: number) => m.v.getUint32(m.off + i * 8, true);
const val = (m: MinmaxRef, i: number) => m.v.getUint32(m.off + i * 8 + 4, true);
function set(m: MinmaxRef, i: number, st: number, sv: number): void {
  m.v.setUint32(m.off + i * 8, st >>> 0, true);
  m.v.setUint32(m.off + i * 8 + 4, sv >>> 0, true);
}

export function minmax_get(m: MinmaxRef): number {
  return val(m, 0);
}

export function minmax_reset(m: MinmaxRef, st: number, meas: number): number {
  for (let i = 0; i < 3; i++) set(m, i, st, meas);
  return meas >>> 0;
}

/** As time goes by, promote the 2nd and 3rd choices when the best one ages out of the window. */
function minmax_subwin_update(m: MinmaxRef, win: number, st: number, sv: number): number {
  const dt = (st - t(m, 0)) >>> 0;
  if (dt > win) {
    set(m, 0, t(m, 1), val(m, 1));
    set(m, 1, t(m, 2), val(m, 2));
    set(m, 2, st, sv);
    if ((st - t(m, 0)) >>> 0 > win) {
      set(m, 0, t(m, 1), val(m, 1));
      set(m, 1, t(m, 2), val(m, 2));
      set(m, 2, st, sv);
    }
  } else if (t(m, 1) === t(m, 0) && dt > win / 4) {
    set(m, 2, st, sv);
    set(m, 1, st, sv);
  } else if (t(m, 2) === t(m, 1) && dt > win / 2) {
    set(m, 2, st, sv);
  }
  return val(m, 0);
}

/** Check if a new measurement updates the 1st, 2nd or 3rd choice max. */
export function minmax_running_max(m: MinmaxRef, win: number, st: number, meas: number): number {
  const sv = meas >>> 0;
  if (sv >= val(m, 0) || (st - t(m, 2)) >>> 0 > win) return minmax_reset(m, st, sv);
  if (sv >= val(m, 1)) {
    set(m, 2, st, sv);
    set(m, 1, st, sv);
  } else if (sv >= val(m, 2)) {
    set(m, 2, st, sv);
  }
  return minmax_subwin_update(m, win, st, sv);
}

/** Check if a new measurement updates the 1st, 2nd or 3rd choice min. */
export function minmax_running_min(m: MinmaxRef, win: number, st: number, meas: number): number {
  const sv = meas >>> 0;
  if (sv <= val(m, 0) || (st - t(m, 2)) >>> 0 > win) return minmax_reset(m, st, sv);
  if (sv <= val(m, 1)) {
    set(m, 2, st, sv);
    set(m, 1, st, sv);
  } else if (sv <= val(m, 2)) {
    set(m, 2, st, sv);
  }
  return minmax_subwin_update(m, win, st, sv);
}
