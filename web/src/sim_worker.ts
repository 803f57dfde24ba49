/**
 * The simulations run here, off the page's thread: the page posts a panel's name and parameters,
 * the worker posts progress about once per simulated second, then the result (or the error's line).
 */
import { errorLine } from "./inspect.js";
import { installPlatform } from "./objects.js";
import { SIMULATORS } from "./simulators.js";

export interface SimRequest {
  panel: string;
  params: Record<string, string>;
  /** Objects the user dropped, by path (dropped/NAME). */
  files: Record<string, Uint8Array>;
}

export type SimMessage =
  | { type: "progress"; nowNs: number; durationNs: number }
  | { type: "done"; result: unknown; ms: number }
  | { type: "error"; message: string };

const mem = installPlatform();
const post = (m: SimMessage) => (self as unknown as Worker).postMessage(m);

self.onmessage = (e: MessageEvent<SimRequest>) => {
  const { panel, params, files } = e.data;
  for (const [path, bytes] of Object.entries(files)) mem.files.set(path, bytes);
  const t0 = performance.now();
  try {
    const sim = SIMULATORS[panel];
    if (!sim) throw new Error(`no simulator '${panel}'`);
    const result = sim(params, (nowNs, durationNs) => post({ type: "progress", nowNs, durationNs }));
    post({ type: "done", result, ms: performance.now() - t0 });
  } catch (err) {
    post({ type: "error", message: errorLine(err) });
  }
};
