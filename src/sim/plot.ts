/**
 * Plots of a simulation: cwnd, throughput, bottleneck queue, and each flow's queueing delay and drops
 * over time, as SVG through vega-lite and
 * vega (headless, no browser), or PNG through resvg when the path ends in .png.
 */
import { platform } from "../platform.js";
import { binRows, type Row } from "./plot_rows.js";
import type { SimTrace } from "./sim.js";

/** The vega-lite spec: five panels sharing the time axis. */
export function plotSpec(trace: SimTrace, names: string[], title: string, marksS: number[] = []): object {
  const cwnd: Row[] = [];
  const tput: Row[] = [];
  const queue: Row[] = [];
  // Thin samples to at most ~2000 points per series: SVG size stays reasonable for long runs.
  const step = Math.max(1, Math.ceil(trace.t_ms.length / 2000));
  trace.flows.forEach((f, i) => {
    for (let k = 0; k < trace.t_ms.length; k += step)
      cwnd.push({ t: trace.t_ms[k]! / 1000, v: f.cwnd[k]!, series: names[i]! });
  });
  trace.throughput_bps.forEach((bins, i) => {
    for (const [k, b] of bins.entries()) tput.push({ t: (k + 1) / 10, v: b / 1e6, series: names[i]! });
  });
  for (let k = 0; k < trace.t_ms.length; k += step)
    queue.push({ t: trace.t_ms[k]! / 1000, v: trace.queue_pkts[k]!, series: "queue" });
  const qdelay = binRows(trace.queue_delay_ms ?? [], names);
  const drops = binRows(trace.drops ?? [], names);
  const line = (values: Row[], y: string) => ({
    data: { values },
    mark: { type: "line", strokeWidth: 1, interpolate: y === "queue (packets)" ? "step-after" : "linear" },
    encoding: {
      x: { field: "t", type: "quantitative", title: "time (s)" },
      y: { field: "v", type: "quantitative", title: y },
      color: { field: "series", type: "nominal", title: null },
    },
  });
  // Vertical rules at events such as a live congestion-control switch.
  const rules = {
    data: { values: marksS.map((t) => ({ t })) },
    mark: { type: "rule", strokeDash: [4, 3], color: "gray" },
    encoding: { x: { field: "t", type: "quantitative" } },
  };
  const panel = (values: Row[], y: string) =>
    marksS.length
      ? { width: 720, height: 180, layer: [line(values, y), rules] }
      : { width: 720, height: 180, ...line(values, y) };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    vconcat: [
      panel(cwnd, "cwnd (packets)"),
      panel(tput, "throughput (Mbit/s)"),
      panel(queue, "queue (packets)"),
      panel(qdelay, "queueing delay (ms, mean per 100 ms)"),
      panel(drops, "drops (per 100 ms)"),
    ],
    config: { font: "sans-serif" },
  };
}

/** Render to SVG text. */
export async function renderSvg(spec: object): Promise<string> {
  const vega = await import("vega");
  const vl = await import("vega-lite");
  const compiled = vl.compile(spec as Parameters<typeof vl.compile>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** Write the plot to `path` (.svg, or .png rasterised at 2x). */
export async function writePlot(
  path: string,
  trace: SimTrace,
  names: string[],
  title: string,
  marksS: number[] = [],
): Promise<void> {
  const svg = await renderSvg(plotSpec(trace, names, title, marksS));
  if (path.toLowerCase().endsWith(".png")) {
    const { Resvg } = await import("@resvg/resvg-js");
    const png = new Resvg(svg, { fitTo: { mode: "zoom", value: 2 }, background: "white" }).render().asPng();
    platform().writeFile(path, png);
  } else {
    platform().writeFile(path, svg);
  }
}
