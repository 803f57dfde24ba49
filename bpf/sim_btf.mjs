// Write the simulated kernel's vmlinux BTF (the kernel structops boots for TCP and
// bpf_dummy_ops) to the file named by argv[2]. Needs the compiled tree (npm run build).
import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const { SimTarget } = await import(pathToFileURL(join(root, "dist/src/fidelity/sim.js")).href);
writeFileSync(process.argv[2], new SimTarget().btf.encode());
