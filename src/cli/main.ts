#!/usr/bin/env node
// The `structops` command from the compiled tree (dist/src/cli/main.js); the installed command is
// the bundle's launcher (src/cli/launcher.ts). Everything it does is in src/cli/cli.ts.
import "./v8_flags.js";
import { run } from "./bundle.js";

process.exitCode = await run(process.argv);
