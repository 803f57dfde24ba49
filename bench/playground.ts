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
  const paint = async (path: string, readySel: string) => {
    const page = await browser.newPage();
    await page.goto(base + path);
    await page.waitForSelector(readySel);
    const t = await page.evaluate(() => {
      const fcp = performance.getEntriesByName("first-contentful-paint")[0];
      return fcp ? fcp.startTime : Number.NaN;
    });
    await page.close();
    return t;
  };
  try {
    const pageFp: number[] = [];
    const blankFp: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      blankFp.push(await paint("baseline.html", "p"));
      pageFp.push(await paint("", "body[data-ready]"));
    }
    // The default simulation (30 s of bpf-cubic), timed inside the worker, and the same in Node.
    const page = await browser.newPage();
    await page.goto(base);
    await page.waitForSelector("body[data-ready]");
    const t0 = Date.now();
    await page.click("#tcp-run");
    await page.waitForSelector("#panel-tcp[data-done]", { timeout: 600_000 });
    const wall = Date.now() - t0;
    const status = (await page.locator("#tcp-status").textContent()) ?? "";
    const inWorker = Number(/in ([\d.]+) s/.exec(status)?.[1]) * 1000;
    await page.close();
    const n0 = performance.now();
    const r = runTcp({ ...TCP_DEFAULTS });
    const inNode = performance.now() - n0;
    const fp = median(pageFp);
    const blank = median(blankFp);
    return [
      {
        name: "first contentful paint of the playground (default object inspected)",
        value: fp,
        unit: "ms",
        baseline: { name: "a page that does nothing", value: blank },
        ratio: fp / blank,
        note: `median of ${ROUNDS}, Chromium headless; ratio = ours / baseline`,
      },
      {
        name: "default 30 s simulation (bpf-cubic) in the page's worker",
        value: inWorker,
        unit: "ms",
        baseline: { name: "same run in Node", value: inNode },
        ratio: inWorker / inNode,
        note: `${r.events} events; click to table and plot ${wall} ms; ratio = page / Node`,
      },
    ];
  } finally {
    await browser.close();
    server.close();
  }
}
