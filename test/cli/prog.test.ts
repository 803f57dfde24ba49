import assert from "node:assert/strict";
import { test } from "node:test";
import { Command } from "commander";
import { progCommand } from "../../src/cli/prog.js";
import { register as registerDump } from "../../src/cli/prog_dump.js";
import { register as registerVerify } from "../../src/cli/prog_verify.js";

test("prog dump and prog verify hang off one `prog` command, in either registration order", () => {
  for (const order of [
    [registerDump, registerVerify],
    [registerVerify, registerDump],
  ]) {
    const program = new Command();
    for (const register of order) register(program);
    const progs = program.commands.filter((c) => c.name() === "prog");
    assert.equal(progs.length, 1);
    assert.deepEqual(progs[0].commands.map((c) => c.name()).sort(), ["dump", "verify"]);
    assert.equal(progCommand(program), progs[0], "found again, not created twice");
  }
});
