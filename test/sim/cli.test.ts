import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Command } from "commander";
import { expandCcSpec, register, type SimCliDeps } from "../../src/cli/sim.js";
import { tcpReno } from "../../src/subsys/tcp/tcp_reno.js";
import { bpfObj } from "./helpers.js";

async function run(args: string[], deps: SimCliDeps = {}): Promise<string> {
  const p = new Command();
  p.exitOverride();
  let out = "";
  register(p, { ...deps, out: (s) => void (out += s) });
  await p.parseAsync(["sim", "--no-progress", ...args], { from: "user" });
  return out;
}

test("structops sim with no arguments runs the default scenario with the BPF CUBIC object", {
  skip: existsSync(bpfObj("tcp_cubic")) ? false : "bpf/obj/tcp_cubic.bpf.o not built",
}, async () => {
  const out = await run(["--duration", "5s"]);
  assert.match(out, /^flow\s+cc\s+throughput/m);
  assert.match(out, /^0\s+so_cubic\s+\d+\.\d+ Mbit\/s/m, "the CA registered by bpf/obj/tcp_cubic.bpf.o");
  assert.ok(out.includes(`bpf: ${bpfObj("tcp_cubic")} (7 struct_ops programs`), out);
  assert.match(out, /link 12\.00 Mbit\/s busy \d+\.\d%, Jain's fairness 1\.000/);
  // found from the package root, whatever the working directory
  const cwd = process.cwd();
  process.chdir(tmpdir());
  try {
    assert.equal(expandCcSpec("bpf-cubic"), bpfObj("tcp_cubic"));
    assert.match(await run(["--duration", "2s"]), /^0\s+so_cubic\s/m);
  } finally {
    process.chdir(cwd);
  }
});

test("--cc cubic keeps the built-in TypeScript CUBIC", async () => {
  const out = await run(["--duration", "5s", "--cc", "cubic"]);
  assert.match(out, /^0\s+cubic\s+\d+\.\d+ Mbit\/s/m);
  assert.ok(!out.includes("bpf:"));
});

test("--json gives metrics and traces; --flows and --stagger start several flows", async () => {
  const j = JSON.parse(await run(["--json", "--duration", "4s", "--flows", "2", "--stagger", "1s", "--cc", "reno"]));
  assert.equal(j.metrics.flows.length, 2);
  assert.equal(j.metrics.flows[1].cc, "reno");
  assert.equal(j.trace.flows.length, 2);
  assert.equal(j.trace.flows[1].cwnd[0], 0, "flow 1 has not started at t=0");
});

test("a CC resolver supplied by the CLI's builder provides other sources; unknown names are ENOENT", async () => {
  const out = await run(["--duration", "3s", "--cc", "mine"], {
    resolveCc: (s: string) => (s === "mine" ? { ...tcpReno(), name: "mine" } : undefined),
  });
  assert.match(out, /^0\s+mine\s/m);
  await assert.rejects(run(["--duration", "1s", "--cc", "nope"]), /--cc "nope": unknown congestion control/);
});

test("--plot writes an SVG with the three panels", async () => {
  const dir = mkdtempSync(join(tmpdir(), "structops-sim-"));
  try {
    const path = join(dir, "p.svg");
    await run(["--duration", "3s", "--plot", path]);
    assert.ok(existsSync(path));
    const svg = readFileSync(path, "utf8");
    assert.match(svg, /^<svg/);
    for (const label of ["cwnd (packets)", "throughput (Mbit/s)", "queue (packets)"])
      assert.ok(svg.includes(label), label);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const RENO_OBJ = bpfObj("tcp_reno");

test("--cc OBJ loads a BPF congestion control into a simulated kernel and runs it", {
  skip: existsSync(RENO_OBJ) ? false : "bpf/obj/tcp_reno.bpf.o not built",
}, async () => {
  const out = await run(["--duration", "3s", "--cc", RENO_OBJ, "--switch-at", "2s", "--to", "cubic"]);
  assert.match(out, /^0\s+cubic\s/m, "switched from so_reno to the built-in cubic");
});

test("--cc a,b runs the algorithms side by side on one bottleneck", async () => {
  const j = JSON.parse(await run(["--json", "--duration", "4s", "--cc", "reno,cubic"]));
  assert.deepEqual(
    j.metrics.flows.map((f: { cc: string }) => f.cc),
    ["reno", "cubic"],
  );
});

test("--cc OBJ --switch-at T --to OBJ2 (same CA name, .struct_ops.link): BPF_LINK_UPDATE, the trace's cc changes at T", {
  skip: [bpfObj("tcp_reno_link"), bpfObj("tcp_cubic_link")].every(existsSync) ? false : "link variants not built",
}, async () => {
  const j = JSON.parse(
    await run([
      "--json",
      "--duration",
      "4s",
      "--cc",
      bpfObj("tcp_reno_link"),
      "--switch-at",
      "2s",
      "--to",
      bpfObj("tcp_cubic_link"),
    ]),
  );
  const cc: string[] = j.trace.flows[0].cc;
  const at = j.trace.t_ms.indexOf(2000);
  assert.equal(cc[at - 1], "so_cc (tcp_reno_link.bpf.o)");
  assert.equal(cc[at], "so_cc (tcp_cubic_link.bpf.o)");
  assert.equal(new Set(cc).size, 2);
  assert.equal(j.metrics.flows[0].cc, "so_cc");
  // the same by the short names, from the package root
  const text = await run(["--duration", "3s", "--cc", "bpf-reno-link", "--switch-at", "2s", "--to", "bpf-cubic-link"]);
  assert.ok(
    text.includes("switch: flow 0 at 2.00 s: so_cc (tcp_reno_link.bpf.o) -> so_cc (tcp_cubic_link.bpf.o)"),
    text,
  );
});
