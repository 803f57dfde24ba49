/**
 * Comparing a scenario's two runs: each step's result must match the scenario's expectation on
 * each target (or, for `same-as-kernel`, the kernel's result), and when both succeeded their
 * decoded details (lookup members, info fields, retval, counters) must be equal.
 */

import type { Observation } from "./runner.js";
import type { Expect } from "./scenario.js";

export type Verdict = { kind: "same" } | { kind: "differs"; diffs: string[] } | { kind: "skip"; why: string };

/** Does `result` ("ok", "ok 1", "EINVAL") satisfy `e`? (`same-as-kernel` is checked by the caller.) */
export function meetsExpect(result: string, e: Expect): boolean {
  switch (e.kind) {
    case "any":
    case "same-as-kernel":
      return true;
    case "ok":
      return e.value === undefined
        ? result === "ok" || result.startsWith("ok ")
        : result === `ok ${e.value}` || (e.value === 0 && result === "ok");
    case "errno":
      return result === e.name;
  }
}

export function expectText(e: Expect): string {
  return e.kind === "ok" ? (e.value === undefined ? "ok" : `ok ${e.value}`) : e.kind === "errno" ? e.name : e.kind;
}

/** Detail maps: "key: kernel X, structops Y" for each key whose value differs. */
export function diffDetail(a: Map<string, string> | undefined, b: Map<string, string> | undefined): string[] {
  if (!a || !b) return [];
  const out: string[] = [];
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(k);
    const y = b.get(k);
    if (x !== y) out.push(`${k}: kernel ${x ?? "(absent)"}, structops ${y ?? "(absent)"}`);
  }
  return out;
}

/**
 * Compare the kernel's observations with structops'. `kernel` null means the host could not run
 * the scenario: structops is then checked against the written expectations alone.
 */
export function compareRuns(kernel: Observation[] | null, sim: Observation[]): Verdict {
  const unsupported = (kernel ?? []).concat(sim).find((o) => o.unsupported);
  if (unsupported) return { kind: "skip", why: unsupported.unsupported! };
  const diffs: string[] = [];
  const n = Math.max(kernel?.length ?? 0, sim.length);
  for (let i = 0; i < n; i++) {
    const k = kernel?.[i];
    const s = sim[i];
    const step = (k ?? s)!.step;
    const where = `line ${step.line} (${step.op})`;
    if (k && !meetsExpect(k.result, step.expect))
      diffs.push(`${where}: kernel ${k.result}, scenario expects ${expectText(step.expect)}`);
    if (s && !meetsExpect(s.result, step.expect))
      diffs.push(`${where}: structops ${s.result}, scenario expects ${expectText(step.expect)}`);
    if (k && s && step.expect.kind !== "any") {
      if (k.result !== s.result) {
        if (
          step.expect.kind === "same-as-kernel" ||
          (meetsExpect(k.result, step.expect) && meetsExpect(s.result, step.expect))
        )
          diffs.push(`${where}: kernel ${k.result}, structops ${s.result}`);
      } else {
        for (const d of diffDetail(k.detail, s.detail)) diffs.push(`${where}: ${d}`);
      }
    }
  }
  return diffs.length ? { kind: "differs", diffs } : { kind: "same" };
}
