/**
 * `npm run fuzz -- --target elf|btf|insn|statemachine --seconds N [--inputs N] [--seed S]
 * [--out DIR] [--max-rss MB] [--json]`, or `--repro FILE` to run one saved input.
 *
 * Inputs run in a worker thread that publishes its current input and a heartbeat in shared
 * memory. No heartbeat for 2 s is a hang; an exception other than the kernel's or libbpf's
 * typed refusal (or a broken invariant) is a crash; the worker running out of its heap, or the
 * process passing --max-rss, is over-limit memory. Each finding is minimised (chunks removed
 * while it still fails the same way) and saved under --out with what it did; the worker then
 * goes on with the next input.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { inputRng } from "./target.js";
import { TARGETS } from "./targets.js";
import { tryInput, type WorkerData, type WorkerMessage } from "./worker.js";

const HANG_MS = 2000;
/**
 * However it beats (the verifier's walk beats as the kernel's cond_resched), one input may take
 * this much CPU and no more: past it, it is a hang.
 */
const INPUT_MAX_MS = 20_000;

/** The hang budget of a run's target. */
function hangMsOf(o: Options): number {
  return TARGETS[o.target]?.hangMs ?? HANG_MS;
}

interface Options {
  target: string;
  seconds: number;
  seed: number;
  out: string;
  maxRssMb: number;
  /** Stop after this many inputs (or --seconds, whichever comes first). */
  inputs: number;
  json: boolean;
  repro?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    target: "",
    seconds: 10,
    seed: 1,
    out: "fuzz-out",
    maxRssMb: 1024,
    inputs: Number.POSITIVE_INFINITY,
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === "--target") o.target = v();
    else if (a === "--seconds") o.seconds = Number(v());
    else if (a === "--seed") o.seed = Number(v());
    else if (a === "--out") o.out = v();
    else if (a === "--max-rss") o.maxRssMb = Number(v());
    else if (a === "--inputs") o.inputs = Number(v());
    else if (a === "--json") o.json = true;
    else if (a === "--repro") o.repro = v();
    else throw new Error(`unknown option ${a}`);
  }
  if (!TARGETS[o.target]) throw new Error(`--target must be one of ${Object.keys(TARGETS).join(", ")}`);
  if (!(o.seconds > 0)) throw new Error("--seconds must be positive");
  if (!(o.inputs > 0)) throw new Error("--inputs must be positive");
  return o;
}

type Kind = "crash" | "hang" | "memory";

interface Finding {
  kind: Kind;
  index: number;
  signature: string;
  file: string;
  size: number;
  minimisedSize: number;
}

function spawn(o: Options, mode: "fuzz" | "try", start: number): { w: Worker; progress: Int32Array } {
  const sab = new SharedArrayBuffer(8);
  new Int32Array(sab)[0] = start;
  const data: WorkerData = { target: o.target, mode, seed: o.seed, start, progress: sab };
  const w = new Worker(new URL("./worker.js", import.meta.url), {
    workerData: data,
    resourceLimits: { maxOldGenerationSizeMb: o.maxRssMb },
  });
  return { w, progress: new Int32Array(sab) };
}

const mb = (n: number) => Math.round(n / (1 << 20));

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * Shrink `input` while `fails` still says it fails the same way: remove chunks of halving size
 * (down to the target's unit), then zero single units. Bounded in tries and time.
 */
async function minimise(
  input: Uint8Array,
  unit: number,
  fails: (x: Uint8Array) => Promise<boolean>,
  maxTries: number,
  deadline: number,
): Promise<Uint8Array> {
  let best = input;
  let tries = 0;
  const budget = () => tries < maxTries && performance.now() < deadline;
  for (let chunk = Math.max(unit, 2 ** Math.floor(Math.log2(best.length / 2 || 1))); chunk >= unit && budget(); ) {
    let removed = false;
    for (let at = 0; at < best.length && budget(); ) {
      const cand = new Uint8Array(best.length - Math.min(chunk, best.length - at));
      cand.set(best.subarray(0, at));
      cand.set(best.subarray(at + chunk), at);
      tries++;
      if (cand.length > 0 && (await fails(cand))) {
        best = cand;
        removed = true;
      } else at += chunk;
    }
    if (!removed) chunk = Math.floor(chunk / 2);
    if (chunk < unit) break;
  }
  return best;
}

/** A worker for the minimiser: each try answers with its signature, a hang, or running out of memory. */
class Tryer {
  private cur?: { w: Worker; progress: Int32Array };
  private next = 0;

  constructor(private readonly o: Options) {}

  private ready?: Promise<void>;

  async run(input: Uint8Array): Promise<{ kind: Kind | null; signature: string | null }> {
    if (!this.cur) {
      const cur = spawn(this.o, "try", 0);
      this.cur = cur;
      this.ready = new Promise((resolve) => {
        const onReady = (m: WorkerMessage) => {
          if (m.type !== "ready") return;
          cur.w.off("message", onReady);
          resolve();
        };
        cur.w.on("message", onReady);
      });
    }
    await this.ready;
    const { w } = this.cur;
    const id = this.next++;
    return new Promise((resolve) => {
      const done = (r: { kind: Kind | null; signature: string | null }, kill: boolean) => {
        clearInterval(timer);
        w.off("message", onMsg);
        w.off("error", onErr);
        if (kill) {
          void w.terminate();
          this.cur = undefined;
        }
        resolve(r);
      };
      const onMsg = (m: WorkerMessage) => {
        if (m.type === "tried" && m.id === id)
          done({ kind: m.signature ? "crash" : null, signature: m.signature }, false);
      };
      const onErr = () => done({ kind: "memory", signature: "worker out of memory" }, true);
      const hangMs = hangMsOf(this.o);
      const cpu0 = cpuMs();
      const timer = setInterval(() => {
        if (cpuMs() - cpu0 > hangMs) done({ kind: "hang", signature: `no progress for ${hangMs / 1000} s` }, true);
      }, 100);
      w.on("message", onMsg);
      w.on("error", onErr);
      w.postMessage({ id, input });
    });
  }

  close(): void {
    if (this.cur) void this.cur.w.terminate();
  }
}

async function fuzz(o: Options): Promise<number> {
  const t = TARGETS[o.target];
  if (!t) return 2;
  const hangMs = hangMsOf(o);
  // --seconds counts from the first worker being ready (booting its kernel is not fuzzing)
  let start = performance.now();
  let end = Number.POSITIVE_INFINITY;
  const counts = { inputs: 0, crashes: 0, hangs: 0, memory: 0 };
  const outcomes: Record<string, number> = {};
  const findings: Finding[] = [];
  let peakRss = process.memoryUsage().rss;
  let nextIndex = 0;
  let lastPrint = start;

  const record = async (kind: Kind, index: number, input: Uint8Array, signature: string, detail: string) => {
    counts[kind === "crash" ? "crashes" : kind === "hang" ? "hangs" : "memory"]++;
    mkdirSync(o.out, { recursive: true });
    const tryer = new Tryer(o);
    const same = async (x: Uint8Array) => {
      const r = await tryer.run(x);
      return r.kind === kind && (kind !== "crash" || r.signature === signature);
    };
    const small = await minimise(input, t.unit, same, kind === "crash" ? 400 : 25, performance.now() + 60_000);
    tryer.close();
    const base = join(o.out, `${o.target}-${kind}-seed${o.seed}-${index}`);
    writeFileSync(`${base}.bin`, small);
    writeFileSync(
      `${base}.txt`,
      [
        `target: ${o.target} (${t.describe})`,
        `kind: ${kind}`,
        `input: seed ${o.seed}, index ${index}, ${input.length} bytes, minimised to ${small.length}`,
        `signature: ${signature}`,
        `reproduce: npm run -s fuzz -- --target ${o.target} --repro ${base}.bin`,
        "",
        detail,
        "",
      ].join("\n"),
    );
    findings.push({ kind, index, signature, file: `${base}.bin`, size: input.length, minimisedSize: small.length });
    process.stderr.write(`${o.target}: ${kind} at input ${index}: ${signature} -> ${base}.bin\n`);
  };

  while (performance.now() < end && counts.inputs < o.inputs) {
    const { w, progress } = spawn(o, "fuzz", nextIndex);
    const ended = await new Promise<{
      kind: Kind;
      index: number;
      input?: Uint8Array;
      sig: string;
      detail: string;
    } | null>((resolve) => {
      let beat = Atomics.load(progress, 1);
      // Hang time is the process's CPU time without a heartbeat (the worker is the one spinning),
      // so a machine too loaded to schedule us does not look like a hang.
      let beatAt = cpuMs();
      let current = Atomics.load(progress, 0);
      let currentAt = beatAt;
      let ready = false;
      let settled = false;
      const finish = (r: { kind: Kind; index: number; input?: Uint8Array; sig: string; detail: string } | null) => {
        if (settled) return;
        settled = true;
        clearInterval(tick);
        void w.terminate();
        resolve(r);
      };
      w.on("message", (m: WorkerMessage) => {
        if (m.type === "ready") {
          ready = true;
          if (end === Number.POSITIVE_INFINITY) {
            start = performance.now();
            end = start + o.seconds * 1000;
          }
          beatAt = cpuMs();
        } else if (m.type === "stats") {
          counts.inputs += m.done;
          for (const [k, n] of Object.entries(m.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + n;
        } else if (m.type === "defect") {
          finish({ kind: "crash", index: m.index, input: m.input, sig: m.signature, detail: m.detail });
        }
      });
      w.on("error", (e: Error & { code?: string }) => {
        const index = Atomics.load(progress, 0);
        if (e.code === "ERR_WORKER_OUT_OF_MEMORY")
          finish({ kind: "memory", index, sig: "worker heap limit reached", detail: e.message });
        else finish({ kind: "crash", index, sig: `worker died: ${e.name}: ${e.message}`, detail: e.stack ?? "" });
      });
      const tick = setInterval(() => {
        const now = performance.now();
        const rss = process.memoryUsage().rss;
        peakRss = Math.max(peakRss, rss);
        const b = Atomics.load(progress, 1);
        const c = Atomics.load(progress, 0);
        if (c !== current) {
          current = c;
          currentAt = cpuMs();
        }
        if (ready && cpuMs() - currentAt > INPUT_MAX_MS) {
          return finish({
            kind: "hang",
            index: c,
            sig: `over ${INPUT_MAX_MS / 1000} s`,
            detail: `input ${c} ran over ${INPUT_MAX_MS} ms of CPU`,
          });
        }
        if (b !== beat) {
          beat = b;
          beatAt = cpuMs();
        } else if (ready && cpuMs() - beatAt > hangMs) {
          const index = Atomics.load(progress, 0);
          return finish({
            kind: "hang",
            index,
            sig: `no progress for ${hangMs / 1000} s`,
            detail: `input ${index} ran over ${hangMs} ms`,
          });
        }
        if (mb(rss) > o.maxRssMb) {
          const index = Atomics.load(progress, 0);
          return finish({ kind: "memory", index, sig: `RSS over ${o.maxRssMb} MB`, detail: `RSS ${mb(rss)} MB` });
        }
        if (now >= end || counts.inputs >= o.inputs) return finish(null);
        if (now - lastPrint > 5000 && !o.json) {
          lastPrint = now;
          const s = (now - start) / 1000;
          process.stderr.write(
            `${o.target}: ${counts.inputs} inputs in ${s.toFixed(0)} s (${(counts.inputs / s).toFixed(0)}/s), crashes ${counts.crashes}, hangs ${counts.hangs}, memory ${counts.memory}, peak RSS ${mb(peakRss)} MB\n`,
          );
        }
      }, 100);
    });
    if (!ended) break;
    const input = ended.input ?? t.generate(inputRng(o.seed, ended.index), ended.index);
    counts.inputs++;
    await record(ended.kind, ended.index, input, ended.sig, ended.detail);
    nextIndex = ended.index + 1;
  }
  const secs = (performance.now() - start) / 1000;
  const summary = {
    target: o.target,
    seed: o.seed,
    seconds: Number(secs.toFixed(1)),
    inputs: counts.inputs,
    rate: Math.round(counts.inputs / secs),
    crashes: counts.crashes,
    hangs: counts.hangs,
    memory: counts.memory,
    peakRssMb: mb(peakRss),
    outcomes: Object.fromEntries(Object.entries(outcomes).sort((a, b) => b[1] - a[1])),
    findings,
  };
  if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    process.stdout.write(
      `${o.target}: ${summary.inputs} inputs in ${summary.seconds} s (${summary.rate}/s); crashes ${summary.crashes}, hangs ${summary.hangs}, memory ${summary.memory}; peak RSS ${summary.peakRssMb} MB\n`,
    );
    const top = Object.entries(summary.outcomes).slice(0, 10);
    for (const [k, n] of top) process.stdout.write(`  ${k}: ${n}\n`);
    for (const f of findings)
      process.stdout.write(`  ${f.kind} ${f.signature}: ${f.file} (${f.minimisedSize} bytes)\n`);
  }
  return findings.length ? 1 : 0;
}

async function main(): Promise<void> {
  let o: Options;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`fuzz: ${(e as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  if (o.repro) {
    const r = tryInput(o.target, new Uint8Array(readFileSync(o.repro)));
    process.stdout.write(r.signature ? `${r.detail}\n` : `handled: ${r.outcome}\n`);
    process.exitCode = r.signature ? 1 : 0;
    return;
  }
  process.exitCode = await fuzz(o);
}

await main();
