/** Rows of the simulation plots (the command's and the playground's), free of any renderer. */

export interface Row {
  t: number;
  v: number;
  series: string;
}

/** Per-flow rows of 100 ms bins (the value at the bin's end; null bins left out). */
export function binRows(bins: (number | null)[][], names: string[]): Row[] {
  const out: Row[] = [];
  bins.forEach((b, i) => {
    for (const [k, v] of b.entries()) if (v !== null) out.push({ t: (k + 1) / 10, v, series: names[i]! });
  });
  return out;
}
