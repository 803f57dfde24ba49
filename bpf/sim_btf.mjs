// Write the simulated kernel's vmlinux BTF (src/subsys/vmlinux.ts: TCP, bpf_dummy_ops, qdiscs and
// sched_ext) to the file named by argv[2] and, with argv[3], the split BTF of
// the bpf_testmod module loaded into that kernel. Needs the compiled tree (npm run build).
import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const dist = (p) => import(pathToFileURL(join(root, "dist/src", p)).href);
const { Kernel } = await dist("kernel/kernel.js");
const { vmlinux } = await dist("subsys/vmlinux.js");
// The vmlinux a `structops` session boots (`structops btf dump id 1` prints the same BTF).
const kernel = new Kernel({ subsystems: vmlinux().subsystems });
writeFileSync(process.argv[2], kernel.btfVmlinux.encode());
if (process.argv[3]) {
  const { loadBpfTestmod } = await dist("subsys/testmod/bpf_testmod.js");
  writeFileSync(process.argv[3], loadBpfTestmod(kernel).btfObj.data);
}
