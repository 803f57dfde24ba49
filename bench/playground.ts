// The playground in headless Chromium: first paint of the page against a page that does nothing,
// and the default 30 s simulation run in the page's worker against the same code run by Node, all
// in one run. Skipped without Chromium.
import { existsSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { repoRoot } from "../test/repo_root.js";
import { runTcp, TCP_DEFAULTS } from "../web/src/panels/tcp_run.js";
import { type BenchResult, median } from "./bench.js";

const ROUNDS = 5;
const SIM_ROUNDS = 3;

export async function run(): Promise<BenchResult[]> {
  const chromiumPath = [process.env.CHROMIUM, "/usr/bin/chromium"].find(
    (p): p is string => Boolean(p) && existsSync(p!),
  );
  if (!chromiumPath) {
    process.stderr.write("bench playground: no Chromium, skipped\n");
    return [];
  }
  const root = repoRoot();
  const site = (await import(pathToFileURL(join(root, "scripts/playground.mjs")).href)) as {
    buildSite(out?: string): Promise<string>;
    serveSite(dir: string, port?: number): Promise<Server>;
  };
  const out = await site.buildSite(join(root, "dist/playground-bench"));
  writeFileSync(join(out, "baseline.html"), "<!doctype html><html><body><p>baseline</p></body></html>");
  const server = await site.serveSite(out, 0);
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: chromiumPath });
  /** First contentful paint, and (the playground) when the default object is shown, verified. */
  const paint = async (path: string, readySel: string) => {
    const page = await browser.newPage();
    await page.goto(base + path);
    await page.waitForSelector(readySel);
    const fcp = (await page.evaluate(
      `performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN`,
    )) as number;
    const ready = Number(await page.locator("body").getAttribute("data-ready"));
    await page.close();
    return { fcp, ready };
  };
  try {
    const pageFp: number[] = [];
    const pageReady: number[] = [];
    const blankFp: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      blankFp.push((await paint("baseline.html", "p")).fcp);
      const p = await paint("", "body[data-ready]");
      pageFp.push(p.fcp);
      pageReady.push(p.ready);
    }
    // The default simulation (30 s of bpf-cubic), timed inside the worker, and the same in Node.
    const page = await browser.newPage();
    await page.goto(base);
    await page.waitForSelector("body[data-ready]");
    const inWorkerRuns: number[] = [];
    const walls: number[] = [];
    for (let i = 0; i < SIM_ROUNDS; i++) {
      await page.evaluate(`delete document.querySelector("#panel-tcp").dataset.done`);
      const t0 = Date.now();
      await page.click("#tcp-run");
      await page.waitForSelector("#panel-tcp[data-done]", { timeout: 600_000 });
      walls.push(Date.now() - t0);
      const status = (await page.locator("#tcp-status").textContent()) ?? "";
      inWorkerRuns.push(Number(/in ([\d.]+) s/.exec(status)?.[1]) * 1000);
    }
    await page.close();
    const inNodeRuns: number[] = [];
    let events = 0;
    for (let i = 0; i < SIM_ROUNDS; i++) {
      const n0 = performance.now();
      events = runTcp({ ...TCP_DEFAULTS }).events;
      inNodeRuns.push(performance.now() - n0);
    }
    const fp = median(pageFp);
    const blank = median(blankFp);
    const inWorker = median(inWorkerRuns);
    const inNode = median(inNodeRuns);
    return [
      {
        name: "first contentful paint of the playground",
        value: fp,
        unit: "ms",
        baseline: { name: "a page that does nothing", value: blank },
        ratio: fp / blank,
        note: `median of ${ROUNDS}, headless Chromium; the default object loaded, verified and shown at ${median(pageReady).toFixed(0)} ms; ratio = ours / baseline`,
      },
      {
        name: "default 30 s simulation (bpf-cubic) in the page's worker",
        value: inWorker,
        unit: "ms",
        baseline: { name: "the same run in Node", value: inNode },
        ratio: inWorker / inNode,
        note: `median of ${SIM_ROUNDS}; ${events} events; click to table and plot ${median(walls)} ms; ratio = page / Node`,
      },
    ];
  } finally {
    await browser.close();
    server.close();
  }
}
