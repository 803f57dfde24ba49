/**
 * The CLI as the bundle (dist/cli/structops.cjs, scripts/bundle-cli.mjs) exports it to the
 * launcher (src/cli/launcher.ts), and as src/cli/main.ts runs it from the compiled tree.
 */
import "./platform_node.js";
import { main } from "./cli.js";

export { sessionBooted } from "./session.js";

/** Run one command line (`argv` as process.argv); its exit status. */
export function run(argv: string[]): Promise<number> {
  // `structops ... | head` closes the pipe early: stop quietly, as bpftool does.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
    throw e;
  });
  return main(argv);
}
