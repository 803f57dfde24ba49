// A session replayed from the verifier verdicts it keeps leaves the kernel exactly as a full
// replay does, and a verdict is used only for the very run it recorded.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { allIds, type Handle, objView } from "../../src/cli/bpf_info.js";
import { main } from "../../src/cli/cli.js";
import { StructOpsSession } from "../../src/cli/kernel_session.js";
import { linkJson } from "../../src/cli/link.js";
import { mapDumpJson, mapJson } from "../../src/cli/map.js";
import { xlatedDump } from "../../src/cli/prog_dump.js";
import { progJson } from "../../src/cli/prog_show.js";
import { CliSession, io } from "../../src/cli/session.js";
import { codeFingerprint, readVerdicts, VerdictCache, verdictPath } from "../../src/cli/verdict_cache.js";
import { verdictKey } from "../../src/cli/verdict_key.js";
import { verifierHookWith } from "../../src/kernel/bpf_verifier.js";
import { BpfCcHost } from "../../src/sim/bpf_cc.js";
import { DEFAULT_LINK, simulate } from "../../src/sim/sim.js";
import type { VerifierEnv } from "../../src/verifier/env.js";
import { bpfCheck } from "../../src/verifier/verifier.js";

const RENO = "bpf/obj/tcp_reno.bpf.o";
const CUBIC_LINK = "bpf/obj/tcp_cubic_link.bpf.o";
const KFUNC = "bpf/obj/tcp_ca_kfunc.bpf.o";
const CUBIC = "bpf/obj/tcp_cubic.bpf.o";

const fresh = () => join(mkdtempSync(join(tmpdir(), "structops-verdicts-")), "session.json");

async function run(state: string, ...args: string[]): Promise<string> {
  let out = "";
  const saved = { ...io };
  io.out = (s) => void (out += s);
  io.err = () => {};
  try {
    assert.equal(await main(["node", "structops", ...args, "--state", state]), 0, args.join(" "));
  } finally {
    Object.assign(io, saved);
    process.exitCode = 0;
  }
  return out;
}

const text = (v: unknown) =>
  JSON.stringify(v, (_k, x) =>
    typeof x === "bigint" ? `${x}n` : x instanceof Uint8Array ? Array.from(x).join(",") : x,
  );

/** Everything a user can read of the session's kernel, and what PROG_LOAD kept of each program. */
async function kernelState(h: Handle, ks: StructOpsSession): Promise<string> {
  const progs = [];
  for (const id of allIds(h, "prog")) {
    const p = ks.kernel.prog_idr.find(id)!;
    progs.push({
      show: progJson(h, id),
      info: objView(h, "prog", id).info,
      xlated: await xlatedDump(h, id),
      insnsi: p.insnsi,
      verifier: p.aux.verifier_result,
    });
  }
  const maps = allIds(h, "map").map((id) => ({ show: mapJson(h, id), dump: mapDumpJson(h, id) }));
  const links = allIds(h, "link").map((id) => linkJson(h, id));
  return text({ progs, maps, links });
}

test("a replay from recorded verdicts leaves the kernel byte for byte as a full replay", async () => {
  const st = fresh();
  await run(st, "struct_ops", "register", CUBIC_LINK, "/sys/fs/bpf/cc");
  await run(st, "struct_ops", "register", RENO);
  await run(st, "struct_ops", "register", KFUNC);
  const cached = verdictPath(st);
  const stored = readVerdicts(cached);
  assert.ok(Object.keys(stored).length >= 10, "each accepted program's verdict is kept beside the state");

  rmSync(cached);
  const full = await CliSession.open(st);
  assert.equal(full.verdicts?.hits, 0);
  const programs = full.verdicts!.misses;
  assert.ok(programs >= 10);
  const fromCache = await CliSession.open(st);
  assert.deepEqual(
    [fromCache.verdicts?.hits, fromCache.verdicts?.misses],
    [programs, 0],
    "every program from the cache",
  );
  assert.equal(await kernelState(fromCache, fromCache.kernel), await kernelState(full, full.kernel));

  // The verbs as a user runs them: the same bytes with and without the verdicts.
  const verbs = [
    ["struct_ops", "dump", "-j"],
    ["prog", "show"],
    ["link", "show", "-j"],
  ];
  const withCache = [];
  for (const v of verbs) withCache.push(await run(st, ...v));
  rmSync(cached);
  for (const [i, v] of verbs.entries()) assert.equal(await run(st, ...v), withCache[i], v.join(" "));
  assert.match(withCache[0]!, /"bpf_struct_ops_tcp_congestion_ops"/);

  await run(st, "session", "reset");
  assert.equal(existsSync(cached), false, "session reset forgets the verdicts too");
});

test("a BPF congestion control simulated with recorded verdicts behaves as one fully verified", () => {
  const sim = (cache: VerdictCache) => {
    const host = new BpfCcHost({ CONFIG_HZ: 1000 });
    host.kernel.verifier = verifierHookWith((env) => cache.check(env, bpfCheck));
    const cc = host.attach(CUBIC);
    const r = simulate({
      link: DEFAULT_LINK,
      durationNs: 2e9,
      flows: [{ cc }, { cc, startNs: 3e8 }],
      seed: 7,
      tcp: host.tcp,
    });
    return text({ metrics: r.metrics, trace: r.trace });
  };
  const first = new VerdictCache({}, "code");
  const a = sim(first);
  const second = new VerdictCache(first.toFile().verdicts, "code");
  const b = sim(second);
  assert.ok(second.hits > 0 && second.misses === 0);
  assert.equal(b, a);
});

/** The verifier's input of every program of OBJ's load, as the kernel hands it over. */
function envsOf(path: string, level?: number): VerifierEnv[] {
  const envs: VerifierEnv[] = [];
  const ks = new StructOpsSession();
  ks.kernel.verifier = verifierHookWith((env) => {
    envs.push(level === undefined ? env : { ...env, logLevel: level });
    return bpfCheck(env);
  });
  ks.register(new Uint8Array(readFileSync(path)), path);
  return envs;
}

test("a changed program, kernel, option or build is a different verifier run", () => {
  const [env] = envsOf(CUBIC);
  const code = codeFingerprint();
  const key = verdictKey(env!, code);
  assert.match(key ?? "", /^[0-9a-f]{64}$/);
  assert.equal(verdictKey(envsOf(CUBIC)[0]!, code), key, "the same load in another boot: the same run");
  const differs = (what: string, e: VerifierEnv, c = code) => assert.notEqual(verdictKey(e, c), key, what);
  // The object: one instruction, a map, func_info.
  const insns = env!.insns.map((i) => ({ ...i }));
  insns[0] = { ...insns[0]!, imm: insns[0]!.imm + 1 };
  differs("an instruction", { ...env!, insns });
  differs("a map's size", { ...env!, maps: [{ type: 2, keySize: 4, valueSize: 8, maxEntries: 1, flags: 0 }] });
  differs("func_info", { ...env!, funcInfo: [] });
  // The kernel: its BTF (a module's in vmlinux's place), its kfuncs, the build.
  differs("the kernel's BTF", { ...env!, btf: env!.progBtf });
  const kfuncs = new Map(env!.kfuncs);
  kfuncs.set(999_999, { name: "bpf_new_kfunc", btfId: 999_999 });
  differs("the kernel's kfuncs", { ...env!, kfuncs });
  differs("another build", env!, `${code}x`);
  // Options: capabilities, log level, attach member, sleepable.
  differs("unprivileged", { ...env!, privileged: false });
  differs("CAP_SYS_BOOT", { ...env!, capSysBoot: !env!.capSysBoot });
  differs("log level", { ...env!, logLevel: 2 });
  differs("the attach member", { ...env!, expectedAttachType: (env!.expectedAttachType ?? 0) + 1 });
  differs("sleepable", { ...env!, sleepable: !env!.sleepable });
  // An input the key cannot name is never answered from the cache.
  assert.equal(verdictKey({ ...env!, extra: 1 } as VerifierEnv, code), undefined);
  assert.equal(verdictKey({ ...env!, maps: [new (class X {})() as never] }, code), undefined);
});

test("the cache answers only the run it recorded; refusals and foreign builds verify again", () => {
  const envs = envsOf(RENO, 2);
  const cache = new VerdictCache({}, "build-a");
  let verified = 0;
  const verify = (e: VerifierEnv) => {
    verified++;
    return bpfCheck(e);
  };
  const full = envs.map((e) => cache.check(e, verify));
  assert.equal(verified, envs.length);
  const again = envs.map((e) => cache.check(e, verify));
  assert.equal(verified, envs.length, "answered from the cache");
  assert.equal(text(again), text(full), "log (level 2), statistics, stack depths and instruction facts");
  assert.ok(full[0]!.log.includes("R1=ctx()"), "a level-2 log is kept whole");

  const other = new VerdictCache(cache.toFile().verdicts, "build-b");
  other.check(envs[0]!, verify);
  assert.deepEqual([other.hits, other.misses], [0, 1], "another build's verdicts are not used");

  const refused = { ...envs[0]!, insns: envs[0]!.insns.slice(0, 1) };
  const r1 = cache.check(refused, verify);
  assert.equal(r1.ok, false);
  cache.check(refused, verify);
  assert.equal(cache.toFile().verdicts[verdictKey(refused, "build-a")!], undefined, "a refusal is not recorded");

  const st = fresh();
  writeFileSync(verdictPath(st), "{not json");
  assert.deepEqual(readVerdicts(verdictPath(st)), {}, "an unreadable cache is an empty one");
});
