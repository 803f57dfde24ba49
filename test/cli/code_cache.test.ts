// The launcher's V8 code cache (src/cli/code_cache.ts, src/cli/launcher.ts): a cache that is
// stale, damaged, foreign or refused by V8 is ignored and the command prints exactly what it
// prints from a good one; a run that had none leaves one for the next run.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import vm from "node:vm";
import { cacheKey, pruneUserCaches, readCodeCache, writeCodeCache } from "../../src/cli/code_cache.js";

const BUILT = join(process.cwd(), "dist", "cli");
const FILES = ["main.js", "structops.cjs", "structops.cjs.cache", "BUILD_ID", "package.json"];
const built = FILES.every((f) => existsSync(join(BUILT, f)));
const RENO = "bpf/obj/tcp_reno.bpf.o";

test("a cache is read back only for its key and intact", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "structops-code-cache-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "c.bin");
  const data = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) & 0xff));
  writeCodeCache(path, "k1", { data, kernel: true });
  assert.deepEqual(readdirSync(dir), ["c.bin"], "no temporary file left");
  const back = readCodeCache(path, "k1");
  assert.ok(back);
  assert.deepEqual([...back.data], [...data]);
  assert.equal(back.kernel, true);
  assert.equal(readCodeCache(path, "k2"), undefined, "another bundle, node or flags");
  assert.equal(readCodeCache(join(dir, "none.bin"), "k1"), undefined, "absent");
  const bytes = readFileSync(path);
  const flipped = Buffer.from(bytes);
  flipped[bytes.length - 100]! ^= 1;
  writeFileSync(path, flipped);
  assert.equal(readCodeCache(path, "k1"), undefined, "one bit of the payload changed");
  writeFileSync(path, bytes.subarray(0, bytes.length - 1));
  assert.equal(readCodeCache(path, "k1"), undefined, "truncated");
  writeFileSync(path, bytes.subarray(0, 30));
  assert.equal(readCodeCache(path, "k1"), undefined, "no header line");
  writeFileSync(path, Buffer.concat([Buffer.from("structops code cache 1\n{not json\n"), data]));
  assert.equal(readCodeCache(path, "k1"), undefined, "bad header");
  assert.notEqual(cacheKey("a", ""), cacheKey("b", ""), "the source is part of the key");
  assert.notEqual(cacheKey("a", ""), cacheKey("a", "--jitless"), "so are node's flags");
});

test("a user's cache directory keeps the newest caches", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "structops-code-cache-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const names = Array.from({ length: 6 }, (_, i) => `code-${String(i).repeat(16)}.bin`);
  names.forEach((n, i) => {
    writeFileSync(join(dir, n), "x");
    utimesSync(join(dir, n), 1_000_000 + i, 1_000_000 + i);
  });
  writeFileSync(join(dir, "other"), "not a cache");
  pruneUserCaches(join(dir, names[5]!), 4);
  assert.deepEqual(readdirSync(dir).sort(), [...names.slice(2), "other"].sort());
});

interface Out {
  code: number;
  out: string;
  err: string;
}
function launch(dir: string, state: string, env: NodeJS.ProcessEnv, ...args: string[]): Promise<Out> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(dir, "main.js"), ...args, "--state", state],
      { env: { PATH: process.env.PATH, HOME: dir, ...env } },
      (error, out, err) => resolve({ code: error ? Number(error.code ?? 255) : 0, out, err }),
    );
  });
}

test("the command's output does not depend on the state of its code cache", {
  skip: !built || !existsSync(RENO) ? "no built command (npm run build) or no bpf/obj" : false,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "structops-launcher-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of FILES) copyFileSync(join(BUILT, f), join(dir, f));
  const cachePath = join(dir, "structops.cjs.cache");
  const good = readFileSync(cachePath);
  const xdg = join(dir, "xdg");
  const env = { XDG_CACHE_HOME: xdg };
  const state = join(dir, "session.json");
  const reg = await launch(dir, state, env, "struct_ops", "register", RENO);
  assert.equal(reg.code, 0, reg.err);
  const want = await launch(dir, state, env, "prog", "show");
  assert.equal(want.code, 0, want.err);
  assert.match(want.out, /so_reno_ssthresh/);
  assert.equal(want.err, "");
  assert.ok(!existsSync(xdg), "the build's cache served: nothing written");

  const key = cacheKey(readFileSync(join(dir, "structops.cjs"), "latin1"), " ");
  const head = good.subarray(0, good.indexOf(10, good.indexOf(10) + 1) + 1);
  const payload = good.subarray(head.length);
  const damaged = Buffer.from(good);
  for (let i = head.length + (payload.length >> 1); i < head.length + (payload.length >> 1) + 256; i++) {
    damaged[i]! ^= 0x5a;
  }
  const variants: [string, Buffer | undefined][] = [
    ["damaged payload", damaged],
    ["truncated", good.subarray(0, good.length >> 1)],
    [
      "another bundle's",
      Buffer.concat([
        head.subarray(0, head.indexOf(key)),
        Buffer.from("0".repeat(64)),
        head.subarray(head.indexOf(key) + 64),
        payload,
      ]),
    ],
    ["garbage", Buffer.from("not a cache")],
    ["absent", undefined],
  ];
  // Intact and made for this bundle, but V8's cache of another script: V8 refuses it.
  const refused = join(dir, "refused.bin");
  writeCodeCache(refused, key, { data: new vm.Script("1 + 1").createCachedData(), kernel: true });
  assert.ok(readCodeCache(refused, key), "the launcher's own checks pass");
  variants.push(["refused by V8", readFileSync(refused)]);
  for (const [what, bytes] of variants) {
    if (bytes) writeFileSync(cachePath, bytes);
    else rmSync(cachePath);
    const got = await launch(
      dir,
      state,
      { XDG_CACHE_HOME: join(dir, `xdg-${what.replace(/\W/g, "")}`) },
      "prog",
      "show",
    );
    assert.deepEqual(got, want, what);
    // The run had no cache that served: it left one in the user's cache directory.
    const left = join(dir, `xdg-${what.replace(/\W/g, "")}`, "structops");
    assert.equal(readdirSync(left).length, 1, what);
  }

  // Without the build's cache, a run uses the one an earlier run left, and leaves it alone.
  rmSync(cachePath);
  const first = await launch(dir, state, env, "prog", "show");
  assert.deepEqual(first, want);
  const [name] = readdirSync(join(xdg, "structops"));
  const userCache = join(xdg, "structops", name!);
  assert.ok(readCodeCache(userCache, key)?.kernel, "made by a run that booted the session's kernel");
  const before = statSync(userCache).mtimeMs;
  assert.deepEqual(await launch(dir, state, env, "prog", "show"), want);
  assert.equal(statSync(userCache).mtimeMs, before, "a cache that served is not rewritten");
  // STRUCTOPS_CODE_CACHE=off: compiled from source, nothing read or written.
  assert.deepEqual(await launch(dir, state, { ...env, STRUCTOPS_CODE_CACHE: "off" }, "prog", "show"), want);
  assert.equal(statSync(userCache).mtimeMs, before);
});
