/** The command's platform (src/platform.ts): Node's file system. Importing this installs it. */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { setPlatform } from "../platform.js";

setPlatform({
  readFile: (path) => new Uint8Array(readFileSync(path)),
  writeFile: (path, data) => writeFileSync(path, data),
  readDir: (path) => readdirSync(path),
});
