import assert from "node:assert/strict";
import { test } from "node:test";
import { loadScenarios } from "../../src/fidelity/main.js";
import { parseFlags } from "../../src/fidelity/runner.js";
import { parseExpect, parseScenario, ScenarioError, tokenize, unquote } from "../../src/fidelity/scenario.js";
import { BPF_F_LINK, BPF_F_RDONLY, BPF_F_REPLACE } from "../../src/uapi/bpf.js";

const errorOf = (text: string): ScenarioError => {
  try {
    parseScenario(text, "t.scn");
  } catch (e) {
    assert.ok(e instanceof ScenarioError, String(e));
    return e;
  }
  assert.fail("parsed");
};

test("tokenize: words, quoted strings with spaces, braces as tokens", () => {
  assert.deepEqual(tokenize('update $m key=1 { name="a b" ssthresh=$p }'), [
    "update",
    "$m",
    "key=1",
    "{",
    'name="a b"',
    "ssthresh=$p",
    "}",
  ]);
  assert.deepEqual(tokenize('prog_asm x.y "mov %r0, 2\\nexit"'), ["prog_asm", "x.y", '"mov %r0, 2\\nexit"']);
  assert.throws(() => tokenize('name="open'), /unterminated/);
  assert.equal(unquote('"mov %r0, 2\\nexit"'), "mov %r0, 2\nexit");
  assert.equal(unquote("plain"), "plain");
});

test("expectations: ok, ok N (hex too), errno names, same-as-kernel default, any", () => {
  assert.deepEqual(parseExpect("ok"), { kind: "ok" });
  assert.deepEqual(parseExpect("ok 1"), { kind: "ok", value: 1 });
  assert.deepEqual(parseExpect("ok 0x10"), { kind: "ok", value: 16 });
  assert.deepEqual(parseExpect("ENOTSUPP"), { kind: "errno", name: "ENOTSUPP" });
  assert.deepEqual(parseExpect(""), { kind: "same-as-kernel" });
  assert.deepEqual(parseExpect("same-as-kernel"), { kind: "same-as-kernel" });
  assert.deepEqual(parseExpect("any"), { kind: "any" });
  assert.throws(() => parseExpect("fine"), /bad expectation/);
});

test("a scenario: headers, binds, positional and key=value args, member block in order, line numbers", () => {
  const sc = parseScenario(
    [
      "# comment",
      "name: demo",
      "ref: §3",
      "",
      "$m = map_create tcp_congestion_ops flags=LINK   => ok",
      'update $m key=1 { name="x" ssthresh=$p @hole=1 } => E2BIG  # trailing comment',
      "lookup $m",
    ].join("\n"),
    "demo.scn",
  );
  assert.equal(sc.name, "demo");
  assert.equal(sc.headers.ref, "§3");
  assert.equal(sc.steps.length, 3);
  const [create, update, lookup] = sc.steps;
  assert.equal(create!.bind, "$m");
  assert.equal(create!.op, "map_create");
  assert.deepEqual(create!.args, ["tcp_congestion_ops"]);
  assert.deepEqual(create!.opts, { flags: "LINK" });
  assert.equal(create!.line, 5);
  assert.deepEqual(update!.members, [
    ["name", '"x"'],
    ["ssthresh", "$p"],
    ["@hole", "1"],
  ]);
  assert.deepEqual(update!.opts, { key: "1" });
  assert.deepEqual(update!.expect, { kind: "errno", name: "E2BIG" });
  assert.equal(update!.members !== null && lookup!.members, null);
  assert.deepEqual(lookup!.expect, { kind: "same-as-kernel" });
});

test("parse errors name the file and line: unknown op, arity, binding a non-fd op, braces, missing name", () => {
  assert.match(errorOf("name: x\nfrobnicate $m").message, /t\.scn:2: unknown operation 'frobnicate'/);
  assert.match(errorOf("name: x\nupdate").message, /t\.scn:2: 'update' takes 1 positional args/);
  assert.match(errorOf("name: x\n$r = update $m").message, /returns no fd to bind/);
  assert.match(errorOf("name: x\nupdate $m { name=1").message, /unclosed \{/);
  assert.match(errorOf("name: x\nupdate $m { a=1 } { b=2 }").message, /only one \{ \} block/);
  assert.match(errorOf("name: x\nupdate $m { justaword }").message, /not member=value/);
  assert.match(errorOf("name: x\nlookup $m => maybe").message, /bad expectation/);
  assert.match(errorOf("lookup $m").message, /missing 'name:'/);
  assert.match(errorOf("name: x\n").message, /no operations/);
});

test("flag words combine with | and numbers", () => {
  assert.equal(parseFlags("LINK"), BPF_F_LINK);
  assert.equal(parseFlags("LINK|RDONLY"), BPF_F_LINK | BPF_F_RDONLY);
  assert.equal(parseFlags("REPLACE|0x100"), BPF_F_REPLACE | 0x100);
  assert.equal(parseFlags(undefined), 0);
  assert.throws(() => parseFlags("SHINY"), /unknown flag/);
});

test("every committed scenario parses, has a unique name and a ref to the semantics it covers", () => {
  const all = loadScenarios();
  assert.ok(all.length >= 10);
  const names = new Set<string>();
  for (const sc of all) {
    assert.ok(!names.has(sc.name), `duplicate scenario name ${sc.name}`);
    names.add(sc.name);
    assert.ok(sc.headers.ref, `${sc.file} has no ref: header`);
  }
});
