/**
 * Plots of a scheduling run (vega-lite, rendered like src/sim/plot.ts: SVG, or PNG through resvg):
 * a per-CPU timeline of which task ran when, with a rule where the scheduler was replaced, and
 * the distribution of wake-up latencies per task group.
 */
import { platform } from "../../platform.js";
import { renderSvg } from "../plot.js";
import type { Segment } from "./machine.js";

/** Segments drawn at most: a longer run shows its beginning. */
export const MAX_SEGMENTS = 20000;
/** Tasks coloured by name at most; the rest are "other". */
const MAX_COLOURS = 16;

export interface SchedPlotInput {
  title: string;
  cpus: number;
  segments: readonly Segment[];
  /** Wake-up latencies (ns) by task group. */
  latencies: ReadonlyMap<string, readonly number[]>;
  /** Times (ns) where the scheduler was replaced, with a label. */
  marks: readonly { t: number; label: string }[];
}

/** A task's group: its template name (hog-3 -> hog). */
export function groupOf(name: string): string {
  return name.replace(/-\d+$/, "");
}

export function schedPlotSpec(inp: SchedPlotInput): object {
  let segs = inp.segments;
  let window = "";
  if (segs.length > MAX_SEGMENTS) {
    const sorted = [...segs].sort((a, b) => a.start - b.start);
    const end = sorted[MAX_SEGMENTS - 1]!.end;
    segs = sorted.filter((s) => s.start < end);
    window = ` (first ${(end / 1e6).toFixed(1)} ms)`;
  }
  const byGroup = new Map<string, number>();
  for (const s of segs) byGroup.set(groupOf(s.name), (byGroup.get(groupOf(s.name)) ?? 0) + s.end - s.start);
  const top = new Set(
    [...byGroup.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, MAX_COLOURS)
      .map(([g]) => g),
  );
  const rows = segs.map((s) => ({
    cpu: `cpu${s.cpu}`,
    t0: s.start / 1e6,
    t1: s.end / 1e6,
    task: top.has(groupOf(s.name)) ? groupOf(s.name) : "other",
    name: s.name,
  }));
  const timeline = {
    title: `per-CPU timeline${window}`,
    width: 760,
    height: Math.max(60, 18 * inp.cpus),
    layer: [
      {
        data: { values: rows },
        mark: { type: "rect" },
        encoding: {
          x: { field: "t0", type: "quantitative", title: "time (ms)" },
          x2: { field: "t1" },
          y: { field: "cpu", type: "ordinal", title: null, sort: null },
          color: { field: "task", type: "nominal", title: "task" },
          tooltip: [{ field: "name" }, { field: "t0" }, { field: "t1" }],
        },
      },
      {
        data: { values: inp.marks.map((m) => ({ t: m.t / 1e6, label: m.label })) },
        mark: { type: "rule", color: "black", strokeDash: [4, 3], strokeWidth: 2 },
        encoding: { x: { field: "t", type: "quantitative" } },
      },
    ],
  };
  // Empirical CDF per group, thinned to 400 points each.
  const cdf: { us: number; f: number; group: string }[] = [];
  for (const [g, xs] of [...inp.latencies.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (!xs.length) continue;
    const s = [...xs].sort((a, b) => a - b);
    const step = Math.max(1, Math.floor(s.length / 400));
    for (let i = 0; i < s.length; i += step)
      cdf.push({ us: Math.max(0.1, s[i]! / 1e3), f: (i + 1) / s.length, group: g });
    cdf.push({ us: Math.max(0.1, s[s.length - 1]! / 1e3), f: 1, group: g });
  }
  const latency = {
    title: "wake-up latency (CDF)",
    width: 760,
    height: 220,
    data: { values: cdf },
    mark: { type: "line", interpolate: "step-after" },
    encoding: {
      x: { field: "us", type: "quantitative", title: "wake-up latency (us)", scale: { type: "log" } },
      y: { field: "f", type: "quantitative", title: "fraction of wake-ups" },
      color: { field: "group", type: "nominal", title: "task" },
    },
  };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: inp.title,
    vconcat: [timeline, latency],
    resolve: { scale: { color: "independent" } },
    config: { font: "sans-serif" },
  };
}

/** Write the plot to `path` (.svg, or .png rasterised at 2x). */
export async function writeSchedPlot(path: string, inp: SchedPlotInput): Promise<void> {
  const svg = await renderSvg(schedPlotSpec(inp));
  if (path.toLowerCase().endsWith(".png")) {
    const { Resvg } = await import("@resvg/resvg-js");
    platform().writeFile(
      path,
      new Resvg(svg, { fitTo: { mode: "zoom", value: 2 }, background: "white" }).render().asPng(),
    );
  } else platform().writeFile(path, svg);
}
