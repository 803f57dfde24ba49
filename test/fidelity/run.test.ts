import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { hostAvailable } from "../../src/fidelity/host.js";
import { formatResult, loadScenarios, runScenario } from "../../src/fidelity/main.js";

const scenarios = loadScenarios();
const hostWhy = hostAvailable();

/** A scenario whose difference is reported but not yet fixed (header `known:`) is skipped, saying why. */
const skipKnown = (known: string | undefined) => (known ? `known difference: ${known}` : false);

describe("structops meets every scenario's written expectations", () => {
  for (const sc of scenarios) {
    test(sc.name, { skip: skipKnown(sc.headers.known) }, async () => {
      const r = await runScenario(sc, false);
      assert.notEqual(r.verdict.kind, "differs", formatResult(r, true));
    });
  }
});

describe("the host kernel and structops agree on every scenario", () => {
  for (const sc of scenarios) {
    test(sc.name, { skip: hostWhy ?? skipKnown(sc.headers.known) }, async () => {
      const r = await runScenario(sc, true);
      if (r.verdict.kind === "skip") {
        // The host refused something the scenario needs (a type missing from its BTF...): say so.
        assert.ok(r.verdict.why.length > 0);
        return;
      }
      assert.ok(r.kernel && r.kernel.length === sc.steps.length, "every step ran on the host");
      assert.ok(r.verdict.kind === "same" || r.deliberate, formatResult(r, true));
    });
  }
});
