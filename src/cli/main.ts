#!/usr/bin/env node
// The `structops` command (package.json "bin"); everything it does is in src/cli/cli.ts.
import "./platform_node.js";
import { main } from "./cli.js";

// `structops ... | head` closes the pipe early: stop quietly, as bpftool does.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});

process.exitCode = await main(process.argv);
