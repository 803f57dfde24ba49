import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { BpfObject } from "../../src/loader/object.js";
import { OBJ_DIR, OBJECTS } from "../elf/helpers.js";

/** What open saw, in a form two builds of the same source must share. */
function summary(obj: BpfObject) {
  return {
    license: obj.license,
    programs: obj.allPrograms.map((p) => [p.name, p.secName, p.type, p.autoload, p.progFlags, p.isSubprog]),
    maps: obj.maps.map((m) => [m.name, m.type, m.flags, m.autocreate, m.keySize, m.maxEntries]),
    bindings: obj.maps
      .filter((m) => m.structOps)
      .map((m) => [m.name, m.structOps?.tname, ...(m.structOps?.progs.map((p) => p?.name ?? null) ?? [])]),
    externs: obj.externs.map((e) => [e.name, e.type]),
  };
}

for (const name of OBJECTS) {
  const sim = join(OBJ_DIR, "sim", `${name}.bpf.o`);
  const skip = existsSync(sim) ? false : `${sim} is not built (bpf/build.sh after npm run build)`;
  test(`${name}: the simulated-kernel build opens like the host build`, { skip }, () => {
    const host = BpfObject.open(join(OBJ_DIR, `${name}.bpf.o`));
    const s = BpfObject.open(sim);
    const a = summary(host);
    const b = summary(s);
    assert.deepEqual(b.programs, a.programs);
    assert.deepEqual(
      b.bindings.map((x) => [x[0], ...x.slice(2)]),
      a.bindings.map((x) => [x[0], ...x.slice(2)]),
    );
    assert.deepEqual(b.externs, a.externs);
    assert.equal(b.license, a.license);
    // Internal map value sizes may differ (e.g. struct layouts); names and kinds must not.
    assert.deepEqual(
      b.maps.map((m) => m.slice(0, 4)),
      a.maps.map((m) => m.slice(0, 4)),
    );
  });
}
