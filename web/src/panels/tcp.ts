/** The TCP congestion-control panel: `structops sim`'s parameters, progress, metrics and plots. */
import type { View } from "vega";
import type { FlowMetrics } from "../../../src/sim/metrics.js";
import { formatRate, parseDuration } from "../../../src/sim/units.js";
import { h } from "../dom.js";
import type { SimPanel } from "../panels.js";
import { drawPlot, interactiveSpec } from "../plot.js";
import { BPF_CC_ALIASES, KERNEL_CCS, TCP_DEFAULTS, type TcpResult } from "./tcp_run.js";

const FIELDS: [keyof typeof TCP_DEFAULTS, string, string][] = [
  ["cc", "congestion control", "bpf-cubic, reno, a,b (one flow each), dropped/x.bpf.o"],
  ["rate", "rate", "12mbit"],
  ["delay", "one-way delay", "30ms"],
  ["buffer", "buffer", "45kb or 30pkts"],
  ["flows", "flows", "one per cc entry"],
  ["qdisc", "qdisc", "droptail; pfifo, fq, fq_codel, bpf-fq"],
  ["seed", "seed", "1"],
  ["duration", "duration", "30s"],
];

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function metricsTable(r: TcpResult): HTMLTableElement {
  const m = r.metrics;
  // The packets the bottleneck (its queue or qdisc) dropped, per flow.
  const drops = m.flows.some((f) => f.drops !== undefined);
  const cell = (key: string, v: number | string, text: string) =>
    h("td", { "data-key": key, "data-value": String(v), class: typeof v === "number" ? "n" : undefined }, text);
  const row = (f: FlowMetrics) =>
    h(
      "tr",
      { "data-flow": f.flow },
      cell("flow", f.flow, String(f.flow)),
      cell("cc", f.cc, f.cc),
      cell("throughputBps", f.throughputBps, formatRate(f.throughputBps)),
      cell("utilisation", f.utilisation, pct(f.utilisation)),
      cell("p95QueueDelayMs", f.p95QueueDelayMs, `${f.p95QueueDelayMs.toFixed(1)} ms`),
      cell("lossRate", f.lossRate, pct(f.lossRate)),
      cell("retransmits", f.retransmits, String(f.retransmits)),
      cell("rtos", f.rtos, String(f.rtos)),
      ...(drops ? [cell("drops", f.drops ?? 0, String(f.drops ?? 0))] : []),
    );
  return h(
    "table",
    { id: "tcp-metrics", class: "metrics" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...[
          "flow",
          "cc",
          "throughput",
          "util",
          "p95 qdelay",
          "loss",
          "retrans",
          "rto",
          ...(drops ? ["drops"] : []),
        ].map((x) => h("th", {}, x)),
      ),
    ),
    h(
      "tbody",
      {},
      ...m.flows.map(row),
      h(
        "tr",
        { "data-flow": "all", class: "all" },
        h("td", {}, "all"),
        h("td", {}, ""),
        cell("throughputBps", m.throughputBps, formatRate(m.throughputBps)),
        cell("utilisationOfRate", m.throughputBps / m.rateBps, pct(m.throughputBps / m.rateBps)),
        cell("p95QueueDelayMs", m.p95QueueDelayMs, `${m.p95QueueDelayMs.toFixed(1)} ms`),
        cell("lossRate", m.lossRate, pct(m.lossRate)),
        h("td", {}, ""),
        h("td", {}, ""),
        ...(drops ? [h("td", {}, "")] : []),
      ),
    ),
    h(
      "caption",
      { id: "tcp-footer" },
      `window ${(m.fromMs / 1000).toFixed(1)}-${(m.toMs / 1000).toFixed(1)} s, link ${formatRate(m.rateBps)} busy `,
      h("span", { "data-key": "utilisation", "data-value": m.utilisation }, pct(m.utilisation)),
      ", Jain's fairness ",
      h("span", { "data-key": "jain", "data-value": m.jain }, m.jain.toFixed(3)),
      ", ",
      h("span", { "data-key": "events", "data-value": r.events }, String(r.events)),
      " events",
    ),
  );
}

export const tcpPanel: SimPanel = {
  id: "tcp",
  title: "TCP congestion control",
  defaults: { ...TCP_DEFAULTS },
  mount(root, ctx) {
    const p = { ...ctx.params };
    const choices = () => [...Object.keys(BPF_CC_ALIASES), ...KERNEL_CCS, ...ctx.dropped()];
    const list = h("datalist", { id: "tcp-cc-choices" });
    const refreshChoices = () => list.replaceChildren(...choices().map((c) => h("option", { value: c })));
    refreshChoices();
    const inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();
    // The receiving sockets' CA (`--rcv-cc`): the sender's unless one is picked.
    const rcv = h("select", { name: "rcvCc", id: "tcp-rcvCc" });
    const refreshRcv = () => {
      rcv.replaceChildren(
        h("option", { value: "" }, "(the sender's)"),
        ...choices().map((c) => h("option", { value: c }, c)),
      );
      rcv.value = p.rcvCc ?? "";
    };
    refreshRcv();
    inputs.set("rcvCc", rcv);
    const form = h("form", { class: "params", id: "tcp-form" });
    for (const [key, label, hint] of FIELDS) {
      const input = h("input", {
        name: key,
        id: `tcp-${key}`,
        value: p[key] ?? "",
        placeholder: hint,
        list: key === "cc" ? "tcp-cc-choices" : undefined,
        size: key === "cc" ? 22 : 8,
      });
      inputs.set(key, input);
      form.append(h("label", {}, label, input));
      if (key === "cc")
        form.append(h("label", { title: "setsockopt(TCP_CONGESTION) on the listener" }, "receiver's", rcv));
    }
    const to = h("select", { name: "to", id: "tcp-to" });
    const refreshTo = () => {
      to.replaceChildren(
        h("option", { value: "" }, "(no switch)"),
        ...choices().map((c) => h("option", { value: c }, c)),
      );
      to.value = p.to ?? "";
    };
    refreshTo();
    inputs.set("to", to);
    const at = h("input", { name: "at", id: "tcp-at", value: p.at ?? "", placeholder: "10s", size: 6 });
    inputs.set("at", at);
    form.append(
      h(
        "label",
        { title: "BPF_LINK_UPDATE mid-flow for a .struct_ops.link of the same CA name" },
        "switch to",
        to,
        "at",
        at,
      ),
    );
    const runBtn = h("button", { type: "submit", id: "tcp-run" }, "Run");
    form.append(runBtn, list);

    const progress = h("progress", { id: "tcp-progress", max: 1, value: 0 });
    const status = h("span", { id: "tcp-status", class: "status" });
    const out = h("div", { id: "tcp-result" });
    const plotEl = h("div", { id: "tcp-plot", class: "plot" });
    root.append(form, h("div", { class: "progress" }, progress, status), out, plotEl);
    let view: View | undefined;

    const collect = () => {
      for (const [k, el] of inputs) p[k] = el.value.trim();
      ctx.save(p);
      return p;
    };
    form.addEventListener("change", () => collect());
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      refreshChoices();
      const params = collect();
      runBtn.disabled = true;
      progress.value = 0;
      status.textContent = "starting";
      status.classList.remove("error");
      try {
        const r = (await ctx.run(params, (now, dur) => {
          progress.value = now / dur;
          status.textContent = `simulated ${(now / 1e9).toFixed(0)} of ${(dur / 1e9).toFixed(0)} s`;
        })) as TcpResult & { ms: number };
        progress.value = 1;
        status.textContent = `done: ${r.events} events in ${(r.ms / 1000).toFixed(1)} s`;
        out.replaceChildren(
          ...r.objects.map((o) => h("div", { class: "note" }, `bpf: ${o}`)),
          ...r.changes.map((c) => h("div", { class: "note switch" }, `switch: ${c}`)),
          metricsTable(r),
        );
        view?.finalize();
        plotEl.replaceChildren();
        const names = r.metrics.flows.map((f) => `flow ${f.flow} (${f.cc})`);
        const atS = params.to ? [parseDuration(params.at) / 1e9] : [];
        view = await drawPlot(plotEl, interactiveSpec(r.trace, names, atS));
        root.dataset.done = "1";
      } catch (e) {
        status.textContent = (e as Error).message;
        status.classList.add("error");
      } finally {
        runBtn.disabled = false;
      }
    });
    root.addEventListener("dropped", () => {
      refreshChoices();
      refreshTo();
      refreshRcv();
    });
  },
};
