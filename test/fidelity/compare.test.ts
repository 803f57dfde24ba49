import assert from "node:assert/strict";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/builder.js";
import { compareRuns, diffDetail, meetsExpect } from "../../src/fidelity/compare.js";
import { parseAnswer } from "../../src/fidelity/host.js";
import type { Observation } from "../../src/fidelity/runner.js";
import { parseScenario } from "../../src/fidelity/scenario.js";
import { buildValue, decodeValue, diffDecoded, firstHole, structOpsLayout } from "../../src/fidelity/value.js";
import { declareStructOpsValueType } from "../../src/kernel/struct_ops.js";
import { BTF_INT_SIGNED } from "../../src/uapi/btf.js";

/**
 * struct demo_ops { int (*f)(void); char name[8]; int x; long y; int (*g)(int); }: a 4-byte hole
 * after x; `pad` shifts every member by 8 bytes in the second layout, as another kernel might.
 */
function demoBtf(pad: boolean): Btf {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const long = b.addInt("long", 8, BTF_INT_SIGNED);
  const char = b.addInt("char", 1, BTF_INT_SIGNED);
  const f = b.addPtr(b.addFuncProto(int, []));
  const g = b.addPtr(b.addFuncProto(int, [{ name: "a", type: int }]));
  b.addStructAuto("demo_ops", [
    ...(pad ? [{ name: "reserved", type: long }] : []),
    { name: "f", type: f },
    { name: "name", type: b.addArray(char, int, 8) },
    { name: "x", type: int },
    { name: "y", type: long },
    { name: "g", type: g },
  ]);
  declareStructOpsValueType(b, "demo_ops");
  return Btf.parse(b.build());
}

const resolveWith =
  (progs: Record<string, number>) =>
  (tok: string): bigint | string =>
    tok.startsWith('"') ? tok.slice(1, -1) : tok.startsWith("$") ? BigInt(progs[tok]!) : BigInt(tok);

test("values are built per target from member names: same members land at each layout's offsets", () => {
  const members: [string, string][] = [
    ["f", "$p"],
    ["name", '"cc"'],
    ["x", "7"],
  ];
  const a = demoBtf(false);
  const b = demoBtf(true);
  const la = structOpsLayout(a, "demo_ops")!;
  const lb = structOpsLayout(b, "demo_ops")!;
  const va = buildValue(a, la, members, resolveWith({ $p: 5 }));
  const vb = buildValue(b, lb, members, resolveWith({ $p: 9 }));
  assert.equal(va.length, la.valueType.size);
  assert.equal(vb.length, lb.valueType.size);
  // The prog fd (5 vs 9) sits at data+0 on one side and data+8 on the other.
  assert.equal(va[la.dataOff], 5);
  assert.equal(vb[lb.dataOff + 8], 9);
  // Decoding maps ids back to names: both sides read the same members.
  const da = decodeValue(a, la, va, (id) => (id === 5 ? "$p" : `id ${id}`));
  const db = decodeValue(b, lb, vb, (id) => (id === 9 ? "$p" : `id ${id}`));
  db.delete("data.reserved");
  assert.deepEqual(diffDecoded(da, db), []);
  assert.equal(da.get("data.f"), "$p");
  assert.equal(da.get("data.name"), '"cc"');
  assert.equal(da.get("data.x"), "7");
  assert.equal(da.get("data.g"), "0");
});

test("member-aware diff names the member, not a byte offset; a member one side lacks is reported", () => {
  const a = demoBtf(false);
  const la = structOpsLayout(a, "demo_ops")!;
  const names = (id: number) => (id === 5 ? "$p" : id === 6 ? "$q" : `id ${id}`);
  const v1 = buildValue(a, la, [["f", "$p"]], resolveWith({ $p: 5 }));
  const v2 = buildValue(a, la, [["f", "$q"]], resolveWith({ $q: 6 }));
  assert.deepEqual(diffDecoded(decodeValue(a, la, v1, names), decodeValue(a, la, v2, names)), [
    "data.f: kernel $p, structops $q",
  ]);
  const b = demoBtf(true);
  const lb = structOpsLayout(b, "demo_ops")!;
  const other = decodeValue(b, lb, buildValue(b, lb, [["f", "$p"]], resolveWith({ $p: 5 })), names);
  assert.deepEqual(diffDecoded(decodeValue(a, la, v1, names), other), ["data.reserved: kernel (absent), structops 0"]);
});

test("special members: @state/@refcnt in common, @hole between common and data, @data_hole inside the ops", () => {
  const a = demoBtf(false);
  const la = structOpsLayout(a, "demo_ops")!;
  const r = resolveWith({});
  const st = buildValue(a, la, [["@state", "3"]], r);
  assert.equal(new DataView(st.buffer).getUint32(4, true), 3);
  assert.equal(decodeValue(a, la, st, String).get("common.state"), "3");
  const hole = buildValue(a, la, [["@hole", "1"]], r);
  assert.equal(hole[8], 1, "first padding byte after the 8-byte common");
  assert.equal(decodeValue(a, la, hole, String).get("padding"), "non-zero");
  const dh = firstHole(a, la.type);
  assert.equal(dh, 8 + 8 + 4, "after f, name[8] and x");
  const inner = buildValue(a, la, [["@data_hole", "2"]], r);
  assert.equal(inner[la.dataOff + dh], 2);
  assert.throws(() => buildValue(a, la, [["nope", "1"]], r), /no member nope/);
  assert.throws(() => buildValue(a, la, [["x", '"text"']], r), /not a number/);
});

const obs = (line: string, result: string, detail?: Record<string, string>): Observation => {
  const sc = parseScenario(`name: t\n${line}`);
  return { step: sc.steps[0]!, result, detail: detail ? new Map(Object.entries(detail)) : undefined };
};

test("expectations: ok N must match the returned value; an errno name must match exactly", () => {
  const e = (s: string) => parseScenario(`name: t\nlookup $m => ${s}`).steps[0]!.expect;
  assert.ok(meetsExpect("ok", e("ok")));
  assert.ok(meetsExpect("ok 1", e("ok")));
  assert.ok(meetsExpect("ok 1", e("ok 1")));
  assert.ok(!meetsExpect("ok", e("ok 1")));
  assert.ok(meetsExpect("ok", e("ok 0")));
  assert.ok(!meetsExpect("EINVAL", e("E2BIG")));
  assert.ok(meetsExpect("EBUSY", e("same-as-kernel")));
});

test("compareRuns: same results and details -> same; errno, expectation and detail differences are reported", () => {
  const k = [obs("update $m => EINVAL", "EINVAL"), obs("lookup $m", "ok", { "data.f": "$p" })];
  assert.deepEqual(compareRuns(k, k), { kind: "same" });
  const errno = compareRuns(k, [obs("update $m => EINVAL", "EBUSY"), k[1]!]);
  assert.equal(errno.kind, "differs");
  assert.match((errno as { diffs: string[] }).diffs[0]!, /line 2 \(update\): structops EBUSY, scenario expects EINVAL/);
  const sak = compareRuns([obs("update $m", "EINVAL")], [obs("update $m", "ok")]);
  assert.deepEqual((sak as { diffs: string[] }).diffs, ["line 2 (update): kernel EINVAL, structops ok"]);
  const detail = compareRuns(k, [k[0]!, obs("lookup $m", "ok", { "data.f": "$q" })]);
  assert.deepEqual((detail as { diffs: string[] }).diffs, ["line 2 (lookup): data.f: kernel $p, structops $q"]);
  // `any` accepts whatever both sides did.
  assert.equal(compareRuns([obs("lookup $m => any", "EPERM")], [obs("lookup $m => any", "ok")]).kind, "same");
});

test("compareRuns: without the host, structops is checked against the written expectations alone", () => {
  assert.equal(compareRuns(null, [obs("update $m => E2BIG", "E2BIG")]).kind, "same");
  assert.equal(compareRuns(null, [obs("update $m => E2BIG", "EINVAL")]).kind, "differs");
  const skip = compareRuns(null, [{ ...obs("prog x.o p", "unsupported"), unsupported: "no loader" }]);
  assert.deepEqual(skip, { kind: "skip", why: "no loader" });
});

test("diffDetail lists each differing key with both values", () => {
  const a = new Map([
    ["retval", "1"],
    ["state", "90"],
  ]);
  const b = new Map([["retval", "2"]]);
  assert.deepEqual(diffDetail(a, b), ["retval: kernel 1, structops 2", "state: kernel 90, structops (absent)"]);
  assert.deepEqual(diffDetail(a, undefined), []);
});

test("helper answers: ok with value, fields and hex; err with errno; fail marks the op unsupported", () => {
  assert.deepEqual(parseAnswer("ok 3"), { ok: true, ret: 3 });
  const look = parseAnswer("ok 0 00ff");
  assert.deepEqual([...look.bytes!], [0, 255]);
  assert.deepEqual(parseAnswer("ok 0 retval=7 state=5a000000").fields, { retval: "7", state: "5a000000" });
  assert.deepEqual(parseAnswer("err 524"), { ok: false, errno: 524 });
  assert.match(parseAnswer("fail unknown command x").unsupported!, /helper: unknown command x/);
});
