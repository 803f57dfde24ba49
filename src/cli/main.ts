#!/usr/bin/env node
// structops: a bpftool-like command over the simulated kernel.
import { Command } from "commander";
import { BpfError } from "../uapi/errno.js";
import * as btf from "./btf.js";
import * as conformance from "./conformance.js";
import * as link from "./link.js";
import * as map from "./map.js";
import * as progDump from "./prog_dump.js";
import * as progShow from "./prog_show.js";
import * as progVerify from "./prog_verify.js";
import * as session from "./session.js";
import * as sim from "./sim.js";
import * as structOps from "./struct_ops.js";
import * as sweep from "./sweep.js";

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("structops")
    .description("BPF struct_ops, the kernel subsystem and the userspace BPF stack around it, in TypeScript")
    .version("0.1.0");
  btf.register(program);
  conformance.register(program);
  progDump.register(program);
  progVerify.register(program);
  progShow.register(program);
  map.register(program);
  link.register(program);
  session.register(program);
  structOps.register(program);
  sim.register(program);
  sweep.register(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof BpfError) {
      process.stderr.write(`Error: ${e.message} (${e.code})\n`);
      process.exitCode = 1;
      return;
    }
    throw e;
  }
}

// `structops ... | head` closes the pipe early: stop quietly, as bpftool does.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});

await main(process.argv);
