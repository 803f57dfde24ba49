import assert from "node:assert/strict";
import { test } from "node:test";
import { Command } from "commander";
import { register, StructOpsSession } from "../../src/cli/struct_ops.js";
import { BpfError, ENOENT, EOPNOTSUPP } from "../../src/uapi/errno.js";

async function cli(args: string[]): Promise<{ out: string; err: string }> {
  const program = new Command().exitOverride();
  register(program);
  let out = "";
  let err = "";
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => {
    out += s;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => {
    err += s;
    return true;
  }) as typeof process.stderr.write;
  try {
    await program.parseAsync(["node", "structops", "struct_ops", ...args]);
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
  return { out, err };
}

async function errnoOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    if (e instanceof BpfError) return e.errno;
    throw e;
  }
  return 0;
}

const RENO = "bpf/obj/tcp_reno.bpf.o";

/** Whether the loader can load the TCP object into a session yet (kfuncs, BTF). */
const renoSkip = (() => {
  try {
    new StructOpsSession().register(RENO);
    return false;
  } catch (e) {
    return `${RENO} does not load yet: ${(e as Error).message}`;
  }
})();

test("struct_ops show with nothing registered prints nothing; an unknown id is ENOENT", async () => {
  assert.deepEqual(await cli(["show"]), { out: "", err: "" });
  assert.equal(await errnoOf(cli(["show", "id", "42"])), ENOENT);
});

test("struct_ops register of bpf_dummy_ops fails with EOPNOTSUPP (it can never be registered)", async () => {
  assert.equal(await errnoOf(cli(["register", "bpf/obj/dummy_ops.bpf.o"])), EOPNOTSUPP);
});

test("struct_ops register / show / dump / unregister of a TCP congestion control", { skip: renoSkip }, async () => {
  const reg = await cli(["register", RENO]);
  assert.match(reg.err, /^Registered tcp_congestion_ops so_reno id \d+\n$/);
  const show = await cli(["show", "--obj", RENO]);
  assert.match(show.out, /^\d+: so_reno\s+tcp_congestion_ops\n$/);
  const js = JSON.parse((await cli(["show", "-j", "--obj", RENO])).out);
  assert.equal(js[0].kernel_struct_ops, "tcp_congestion_ops");
  const dump = await cli(["dump", "name", "so_reno", "--obj", RENO]);
  assert.match(dump.out, /"bpf_map_info"/);
  assert.match(dump.out, /so_reno/);
  const un = await cli(["unregister", "name", "so_reno", "--obj", RENO]);
  assert.match(un.err, /Unregistered tcp_congestion_ops so_reno id \d+/);
});
