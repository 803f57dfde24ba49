/**
 * The fuzzing worker. "fuzz": run inputs start, start+1, ... of the seed, publishing the current
 * index and a heartbeat in shared memory after every input and outcome counts now and then; a
 * defect is reported and ends the worker. "try": run the inputs the main thread sends (the
 * minimiser) and answer each with its signature.
 */
import { parentPort, workerData } from "node:worker_threads";
import { resched } from "./kernel.js";
import { inputRng, isRefusal } from "./target.js";
import { TARGETS } from "./targets.js";

export interface WorkerData {
  target: string;
  mode: "fuzz" | "try";
  seed: number;
  start: number;
  /** Int32Array over a SharedArrayBuffer: [current index, heartbeat]. */
  progress: SharedArrayBuffer;
}

export type WorkerMessage =
  | { type: "ready" }
  | { type: "stats"; done: number; outcomes: Record<string, number> }
  | { type: "defect"; index: number; input: Uint8Array; signature: string; detail: string }
  | { type: "tried"; id: number; signature: string | null; detail: string };

/** What identifies a defect across minimisation steps: its class and the message's first line. */
export function signatureOf(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${(e.message.split("\n")[0] ?? "").replace(/\d+/g, "N")}`;
  return `thrown: ${String(e).slice(0, 80)}`;
}

export function detailOf(e: unknown): string {
  return e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e);
}

/** Run one input: null if it is handled (refused or accepted), else the defect's signature. */
export function tryInput(
  target: string,
  input: Uint8Array,
): { signature: string | null; detail: string; outcome: string } {
  const t = TARGETS[target];
  if (!t) throw new Error(`unknown target ${target}`);
  try {
    return { signature: null, detail: "", outcome: t.run(input) };
  } catch (e) {
    if (isRefusal(e)) return { signature: null, detail: "", outcome: `escaped/${e.code}` };
    return { signature: signatureOf(e), detail: detailOf(e), outcome: "defect" };
  }
}

function main(): void {
  const port = parentPort;
  if (!port) return;
  const data = workerData as WorkerData;
  const t = TARGETS[data.target];
  if (!t) throw new Error(`unknown target ${data.target}`);
  const progress = new Int32Array(data.progress);
  resched.beat = () => void Atomics.add(progress, 1, 1);
  t.setup?.();
  port.postMessage({ type: "ready" } satisfies WorkerMessage);
  if (data.mode === "try") {
    port.on("message", (m: { id: number; input: Uint8Array }) => {
      Atomics.store(progress, 1, Atomics.load(progress, 1) + 1);
      const r = tryInput(data.target, m.input);
      port.postMessage({ type: "tried", id: m.id, signature: r.signature, detail: r.detail } satisfies WorkerMessage);
    });
    return;
  }
  let outcomes: Record<string, number> = {};
  let last = performance.now();
  let done = 0;
  // Most inputs end in a thrown refusal, and capturing its stack costs more than much of the
  // code under test: inputs run without stacks, and a defect runs again with them for its report.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  for (let i = data.start; ; i++) {
    Atomics.store(progress, 0, i);
    Atomics.add(progress, 1, 1);
    const input = t.generate(inputRng(data.seed, i), i);
    const r = tryInput(data.target, input);
    if (r.signature) {
      Error.stackTraceLimit = stackTraceLimit;
      const again = tryInput(data.target, input);
      port.postMessage({ type: "stats", done, outcomes } satisfies WorkerMessage);
      port.postMessage({
        type: "defect",
        index: i,
        input,
        signature: r.signature,
        detail: again.signature === r.signature ? again.detail : r.detail,
      } satisfies WorkerMessage);
      return;
    }
    done++;
    outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
    const now = performance.now();
    if (now - last > 200) {
      port.postMessage({ type: "stats", done, outcomes } satisfies WorkerMessage);
      outcomes = {};
      done = 0;
      last = now;
    }
  }
}

main();
