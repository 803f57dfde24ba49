/**
 * Interactive plots of a TCP run: cwnd, throughput, queue, per-flow queueing delay and drops over time (vega-lite compiled by vega,
 * drawn on a canvas). Drag to pan, wheel to zoom (each panel's time axis), hover a point for its
 * values; dashed rules mark a congestion-control switch.
 */
import { parse, View } from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { binRows } from "../../src/sim/plot_rows.js";
import type { SimTrace } from "../../src/sim/sim.js";

interface Row {
  t: number;
  v: number;
  series: string;
}

/** At most ~1500 points a series: hover stays quick on long runs. */
function thin(n: number): number {
  return Math.max(1, Math.ceil(n / 1500));
}

export function interactiveSpec(trace: SimTrace, names: string[], marksS: number[]): TopLevelSpec {
  const cwnd: Row[] = [];
  const tput: Row[] = [];
  const queue: Row[] = [];
  const step = thin(trace.t_ms.length);
  trace.flows.forEach((f, i) => {
    for (let k = 0; k < trace.t_ms.length; k += step)
      cwnd.push({ t: trace.t_ms[k]! / 1000, v: f.cwnd[k]!, series: names[i]! });
  });
  trace.throughput_bps.forEach((bins, i) => {
    for (const [k, b] of bins.entries()) tput.push({ t: (k + 1) / 10, v: b / 1e6, series: names[i]! });
  });
  for (let k = 0; k < trace.t_ms.length; k += step)
    queue.push({ t: trace.t_ms[k]! / 1000, v: trace.queue_pkts[k]!, series: "queue" });
  const panel = (id: string, values: Row[], y: string, step: boolean) => ({
    width: 760,
    height: 170,
    data: { values },
    layer: [
      {
        params: [{ name: `zoom_${id}`, select: { type: "interval", encodings: ["x"] }, bind: "scales" }],
        mark: { type: "line", strokeWidth: 1.2, interpolate: step ? "step-after" : "linear" },
        encoding: {
          x: { field: "t", type: "quantitative", title: "time (s)" },
          y: { field: "v", type: "quantitative", title: y },
          color: { field: "series", type: "nominal", title: null },
        },
      },
      {
        mark: { type: "point", opacity: 0, size: 60 },
        encoding: {
          x: { field: "t", type: "quantitative" },
          y: { field: "v", type: "quantitative" },
          tooltip: [
            { field: "series", type: "nominal", title: "series" },
            { field: "t", type: "quantitative", title: "time (s)", format: ".2f" },
            { field: "v", type: "quantitative", title: y, format: ".3~f" },
          ],
        },
      },
      ...(marksS.length
        ? [
            {
              data: { values: marksS.map((t) => ({ t })) },
              mark: { type: "rule", strokeDash: [4, 3], color: "gray" },
              encoding: { x: { field: "t", type: "quantitative" } },
            },
          ]
        : []),
    ],
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    vconcat: [
      panel("cwnd", cwnd, "cwnd (packets)", false),
      panel("tput", tput, "throughput (Mbit/s)", false),
      panel("queue", queue, "queue (packets)", true),
      panel("qdelay", binRows(trace.queue_delay_ms, names), "queueing delay (ms)", false),
      panel("drops", binRows(trace.drops, names), "drops (per 100 ms)", false),
    ],
    config: { font: "system-ui, sans-serif" },
  } as TopLevelSpec;
}

/** Draw into `el`; the previous view (if any) is finalized by the caller. */
export async function drawPlot(el: HTMLElement, spec: TopLevelSpec): Promise<View> {
  const view = new View(parse(compile(spec).spec), { renderer: "canvas", container: el, hover: true });
  await view.runAsync();
  return view;
}
