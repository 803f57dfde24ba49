/** bench/RESULTS.md: the table of `npm run bench -- --write`, updated for the benches that ran. */

const HEADER = ["| bench | what | value | baseline | ratio | note |", "|---|---|---|---|---|---|"];
const INTRO =
  "Reproduce with `npm run bench -- --write`. Each baseline is measured in the same run; the ratio is ours divided by (or over) the baseline as each bench's note says.";

function benchOf(row: string): string {
  return row.split("|")[1]?.trim() ?? "";
}

/**
 * `old` with the table rows of the benches in `ran` replaced by `rows` (each bench's new rows where
 * its first old row was, else at the end of the table); every other row and all text around the
 * table kept. `latest` (a full run's machine line) replaces the "Latest run" line when given.
 */
export function mergeResults(
  old: string,
  ran: readonly string[],
  rows: readonly string[],
  latest: string | null,
): string {
  const lines = old ? old.split("\n") : [];
  const h = lines.indexOf(HEADER[0]!);
  if (h < 0) {
    const head = ["# Benchmark results", "", ...(latest ? [latest] : []), INTRO, ""];
    return [...head, ...HEADER, ...rows, "", ...(old ? [old.trimEnd(), ""] : [])].join("\n");
  }
  let end = h + 2;
  while (end < lines.length && lines[end]!.startsWith("|")) end++;
  const fresh = new Map<string, string[]>();
  for (const r of rows) {
    const b = benchOf(r);
    fresh.set(b, [...(fresh.get(b) ?? []), r]);
  }
  const table: string[] = [];
  for (const line of lines.slice(h + 2, end)) {
    const b = benchOf(line);
    if (!ran.includes(b)) table.push(line);
    else if (fresh.has(b)) {
      table.push(...fresh.get(b)!);
      fresh.delete(b);
    }
  }
  for (const r of fresh.values()) table.push(...r);
  const before = lines.slice(0, h).map((l) => (latest && l.startsWith("Latest run:") ? latest : l));
  return [...before, ...HEADER, ...table, ...lines.slice(end)].join("\n");
}
