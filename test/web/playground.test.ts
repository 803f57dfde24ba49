// The playground driven as a person would, in real headless Chromium: the built site served on
// localhost, a committed object inspected, a 10 s simulation whose rendered metrics must equal
// `structops sim --json` for the same seed, a live switch, a broken object's one-line error, the
// state in the URL. Skips where no Chromium is installed (CHROMIUM overrides where it is found).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
import type { Browser, Locator, Page } from "playwright-core";
import { Kernel } from "../../src/kernel/kernel.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpfDummyStructOpsSubsystem } from "../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { TcpKernel, tcpSubsystem } from "../../src/subsys/tcp/tcp_init.js";
import { BpfError, errnoName } from "../../src/uapi/errno.js";
import { repoRoot } from "../repo_root.js";

// Rendered text as a reader sees it (table cells apart), which textContent does not give.
// biome-ignore lint/performance/useDomNodeTextContent: Playwright's Locator.innerText, not the DOM property
const text = (l: Locator) => l.innerText();

const root = repoRoot();
const chromiumPath = [process.env.CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"].find(
  (p): p is string => Boolean(p) && existsSync(p!),
);
const skip = chromiumPath ? false : "no Chromium (apt-get install chromium, or CHROMIUM=path)";
/** Screenshots and other artifacts of the run (gitignored). */
export const ARTIFACTS = join(root, "tmp/playground");

interface Site {
  buildSite(out?: string): Promise<string>;
  serveSite(dir: string, port?: number): Promise<Server>;
}

let browser: Browser;
let server: Server;
let base: string;

before(async () => {
  if (skip) return;
  const site = (await import(pathToFileURL(join(root, "scripts/playground.mjs")).href)) as Site;
  const out = await site.buildSite(join(root, "dist/playground-test"));
  server = await site.serveSite(out, 0);
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({ executablePath: chromiumPath });
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.close();
});

async function open(hash = ""): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${base}#${hash}`);
  await page.waitForSelector("body[data-ready]", { timeout: 30_000 });
  assert.deepEqual(errors, []);
  return page;
}

function cliSim(args: string[]): {
  metrics: Record<string, unknown> & { flows: Record<string, unknown>[] };
  events: number;
} {
  const r = spawnSync(process.execPath, [join(root, "dist/cli/main.js"), "sim", ...args, "--json"], {
    encoding: "utf8",
    maxBuffer: 1 << 28,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** The metrics the page rendered: each cell's exact value, as the table keeps it. */
// Runs in the page (as text: this file is compiled without the DOM's types).
const READ_METRICS = `(() => {
  const num = (el) => (el ? Number(el.dataset.value) : undefined);
  const flows = [...document.querySelectorAll("#tcp-metrics tr[data-flow]")]
    .filter((tr) => tr.dataset.flow !== "all")
    .map((tr) => {
      const o = {};
      for (const td of tr.querySelectorAll("td[data-key]")) {
        const k = td.dataset.key;
        o[k] = k === "cc" ? td.dataset.value : num(td);
      }
      return o;
    });
  const all = document.querySelector('#tcp-metrics tr[data-flow="all"]');
  return {
    flows,
    throughputBps: num(all.querySelector('[data-key="throughputBps"]')),
    p95QueueDelayMs: num(all.querySelector('[data-key="p95QueueDelayMs"]')),
    lossRate: num(all.querySelector('[data-key="lossRate"]')),
    utilisation: num(document.querySelector('#tcp-footer [data-key="utilisation"]')),
    jain: num(document.querySelector('#tcp-footer [data-key="jain"]')),
    events: num(document.querySelector('#tcp-footer [data-key="events"]')),
  };
})()`;

interface Rendered {
  flows: Record<string, unknown>[];
  throughputBps: number;
  p95QueueDelayMs: number;
  lossRate: number;
  utilisation: number;
  jain: number;
  events: number;
}

/** The metrics the page rendered: each cell's exact value, as the table keeps it. */
function renderedMetrics(page: Page): Promise<Rendered> {
  return page.evaluate(READ_METRICS) as Promise<Rendered>;
}

function assertSameMetrics(page: Rendered, cli: ReturnType<typeof cliSim>) {
  const m = cli.metrics;
  assert.equal(page.events, cli.events);
  for (const k of ["throughputBps", "p95QueueDelayMs", "lossRate", "utilisation", "jain"])
    assert.equal(page[k as "jain"], m[k], k);
  assert.equal(page.flows.length, m.flows.length);
  page.flows.forEach((f, i) => {
    for (const k of [
      "flow",
      "cc",
      "throughputBps",
      "utilisation",
      "p95QueueDelayMs",
      "lossRate",
      "retransmits",
      "rtos",
    ])
      assert.equal(f[k], m.flows[i]![k], `flow ${i} ${k}`);
  });
}

async function runSim(page: Page): Promise<void> {
  await page.click("#tcp-run");
  await page.waitForSelector("#panel-tcp[data-done]", { timeout: 120_000 });
  // The plot is drawn after the table: wait for its canvas.
  await page.waitForSelector("#tcp-plot canvas", { timeout: 30_000 });
}

test("a committed object: sections, programs with source lines and verifier log, BTF, registration", {
  skip,
}, async () => {
  const page = await open("obj=tcp_reno.bpf.o&log=2");
  assert.match(
    await text(page.locator("#summary")),
    /tcp_reno — \d+ bytes, \d+ sections, \d+ maps, \d+ programs \(\d+ accepted/,
  );
  const progs = await page.locator("#programs li").allInnerTexts();
  const obj = BpfObject.open(join(root, "bpf/obj/tcp_reno.bpf.o"));
  assert.deepEqual(
    progs,
    obj.programs.map((p) => p.name),
  );
  // Source lines from .BTF.ext above the instructions, and a level-2 log (states at each insn).
  const disasm = await text(page.locator("#disasm"));
  assert.match(disasm, /^; .+ \[.+\.bpf\.c:\d+:\d+\]$/m);
  assert.match(disasm, /^\s+0: /m);
  assert.match(await text(page.locator("#verifier-log")), /processed \d+ insns/);
  await page.click('button[data-tab="sections"]');
  assert.ok((await page.locator("#sections tbody tr").count()) === obj.elf.sections.length - 1);
  await page.click('button[data-tab="btf"]');
  await page.fill("#btf-search", "tcp_congestion_ops");
  await page.locator("#btf-types li").first().click();
  assert.match(await text(page.locator("#btf-c")), /struct tcp_congestion_ops \{/);
  await page.click('button[data-tab="registration"]');
  const reg = await text(page.locator("#registrations tbody tr").first());
  assert.match(reg, /tcp_congestion_ops\s+\d+\s+registered\s+BPF_STRUCT_OPS_STATE_INUSE\s+1/);
  await page.close();
});

test('a program not loaded by default (SEC("?tc")) is verified alone, with the kernel\'s refusal', {
  skip,
}, async () => {
  const path = join(root, "bpf/obj/graph_bad.bpf.o");
  const obj = BpfObject.open(path);
  const name = "push_without_lock";
  for (const p of obj.programs) p.setAutoload(p.name === name);
  const kernel = new Kernel({
    verifier: true,
    subsystems: [tcpSubsystem(new TcpKernel()), bpfDummyStructOpsSubsystem],
  });
  let refusal = "";
  try {
    obj.load({ kernel, process: kernel.newProcess() });
  } catch (e) {
    assert.ok(e instanceof BpfError);
    refusal = e.message;
  }
  assert.notEqual(refusal, "");
  const page = await open(`obj=graph_bad.bpf.o&prog=${name}`);
  const verdict = await text(page.locator(".verdict"));
  assert.ok(verdict.startsWith("refused: "), verdict);
  assert.ok(
    refusal.includes(verdict.replace(/^refused: /, "").replace(/ \(E[A-Z0-9]+\)( at insn \d+)?$/, "")),
    `${verdict} / ${refusal}`,
  );
  assert.match(await text(page.locator("#verifier-log")), /\d+: \(/);
  await page.close();
});

test("an optional struct_ops program verified alone gets its own verdict, not another program's of the load", {
  skip,
}, async () => {
  // Switched on alone, tm_unsupported loads with the programs of the maps the object creates
  // (accepted, and loaded first) once its optional map is created; its own verdict is the
  // kernel's refusal of its member.
  const page = await open("obj=sim/testmod_module.bpf.o&prog=tm_unsupported");
  const verdict = await text(page.locator(".verdict"));
  assert.match(
    verdict,
    /^refused: .*attach to unsupported member unsupported_ops of struct bpf_testmod_ops \(ENOTSUPP\)/,
  );
  await page.close();
  // In no map: libbpf refuses it by name, whatever the other programs' verdicts.
  const spare = await open("obj=sim/testmod_module.bpf.o&prog=tm_test_3");
  assert.match(await text(spare.locator(".verdict")), /^refused: prog 'tm_test_3': .* isn't referenced anywhere/);
  await spare.close();
});

test("registration refused with the kernel's errno, and a struct_ops type of a module", { skip }, async () => {
  // bpf_dummy_ops is for BPF_PROG_TEST_RUN only: its reg() is EOPNOTSUPP (dummy_st_ops_attach).
  const page = await open("obj=dummy_ops.bpf.o&tab=registration");
  await page.waitForSelector("#registrations");
  assert.match(
    await text(page.locator("#registrations tbody tr").first()),
    /bpf_dummy_ops\s+\d+\s+refused: .+\(EOPNOTSUPP\)/,
  );
  await page.close();
  // Built against the simulated kernel and bpf_testmod's BTF: its type is found in the module's BTF.
  const mod = await open("obj=sim/testmod_module.bpf.o&tab=registration");
  await mod.waitForSelector("#registrations");
  const rows = await mod.locator("#registrations tbody tr").allInnerTexts();
  assert.match(rows[0]!, /^testmod_1\s+bpf_testmod_ops\s+\d+\s+registered\s+BPF_STRUCT_OPS_STATE_READY\s+1$/);
  // Maps the loader leaves uncreated (autocreate off) are said to be so, not attempted.
  assert.ok(
    rows.some((r) => /^ops3_a\s+bpf_testmod_ops3\s+not created \(autocreate off\)/.test(r)),
    rows.join("\n"),
  );
  await mod.close();
});

test("a 10 s simulation in the page gives the numbers of structops sim --json with the same seed", {
  skip,
}, async () => {
  const page = await open("tcp.duration=10s&tcp.seed=7&tcp.flows=2");
  await runSim(page);
  assertSameMetrics(await renderedMetrics(page), cliSim(["--duration", "10s", "--seed", "7", "--flows", "2"]));
  await page.screenshot({ path: join(ARTIFACTS, "playground.png"), fullPage: true });
  await page.close();
});

test("a BPF qdisc at the bottleneck: the page's numbers and per-flow drops are the command's", { skip }, async () => {
  const page = await open("tcp.cc=cubic,bbr&tcp.duration=6s&tcp.qdisc=bpf-fq");
  await runSim(page);
  const cli = cliSim(["--cc", "cubic,bbr", "--duration", "6s", "--qdisc", "bpf-fq"]);
  const shown = await renderedMetrics(page);
  assertSameMetrics(shown, cli);
  assert.deepEqual(
    shown.flows.map((f) => f.drops),
    cli.metrics.flows.map((f) => f.drops),
  );
  await page.close();
});

test("the receivers' congestion control (--rcv-cc): the select beside the sender's, the command's numbers", {
  skip,
}, async () => {
  // DCTCP over fq_codel (CoDel marks CE): a Reno receiver echoes the marks the classic way, so the
  // run differs from one where the receiver runs the sender's DCTCP.
  const page = await open("tcp.cc=dctcp&tcp.duration=6s&tcp.qdisc=fq_codel&tcp.rcvCc=reno");
  assert.equal(await page.inputValue("#tcp-rcvCc"), "reno");
  assert.ok((await page.locator("#tcp-rcvCc option").allInnerTexts()).includes("bpf-dctcp"));
  await runSim(page);
  const shown = await renderedMetrics(page);
  const args = ["--cc", "dctcp", "--duration", "6s", "--qdisc", "fq_codel"];
  assertSameMetrics(shown, cliSim([...args, "--rcv-cc", "reno"]));
  const own = cliSim(args);
  assert.notDeepEqual(
    shown.flows.map((f) => f.throughputBps),
    own.metrics.flows.map((f) => f.throughputBps),
  );
  await page.close();
});

test("switch to another BPF congestion control mid-flow (BPF_LINK_UPDATE), same as the command", { skip }, async () => {
  const page = await open("tcp.cc=bpf-reno-link&tcp.duration=6s&tcp.to=bpf-cubic-link&tcp.at=3s");
  await runSim(page);
  const notes = await page.locator("#tcp-result .switch").allInnerTexts();
  assert.deepEqual(notes, ["switch: flow 0 at 3.00 s: so_cc (tcp_reno_link.bpf.o) -> so_cc (tcp_cubic_link.bpf.o)"]);
  const cli = cliSim(["--cc", "bpf-reno-link", "--duration", "6s", "--switch-at", "3s", "--to", "bpf-cubic-link"]);
  assertSameMetrics(await renderedMetrics(page), cli);
  await page.close();
});

test("parameters live in the URL: a reload keeps them", { skip }, async () => {
  const page = await open();
  await page.fill("#tcp-rate", "24mbit");
  await page.fill("#tcp-seed", "3");
  await page.locator("#tcp-seed").dispatchEvent("change");
  await page.selectOption("#object", "tcp_dctcp.bpf.o");
  const url = page.url();
  assert.match(url, /tcp\.rate=24mbit/);
  assert.match(url, /obj=tcp_dctcp\.bpf\.o/);
  const again = await open(url.split("#")[1]);
  assert.equal(await again.inputValue("#tcp-rate"), "24mbit");
  assert.equal(await again.inputValue("#tcp-seed"), "3");
  assert.equal(await again.inputValue("#object"), "tcp_dctcp.bpf.o");
  await page.close();
  await again.close();
});

test("a dropped broken object is one line of error naming what is wrong", { skip }, async () => {
  const good = readFileSync(join(root, "bpf/obj/tcp_reno.bpf.o"));
  const broken = good.subarray(0, 200);
  let expected = "";
  try {
    BpfObject.open(new Uint8Array(broken), { path: "dropped/broken.bpf.o" });
  } catch (e) {
    assert.ok(e instanceof BpfError);
    expected = `Error: ${e.message} (${errnoName(e.errno)})`;
  }
  assert.notEqual(expected, "");
  const page = await open();
  await page.setInputFiles("#file", { name: "broken.bpf.o", mimeType: "application/octet-stream", buffer: broken });
  await page.waitForSelector("#error:not(:empty)");
  assert.equal(await text(page.locator("#error")), expected);
  assert.equal(await page.locator("#programs li").count(), 0);
  // A good object dropped afterwards is inspected, and the simulator can run it.
  await page.setInputFiles("#file", { name: "mine.bpf.o", mimeType: "application/octet-stream", buffer: good });
  await page.waitForSelector("#programs li");
  assert.equal(await text(page.locator("#error")), "");
  await page.close();
});
