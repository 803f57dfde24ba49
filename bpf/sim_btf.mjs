// Write the simulated kernel's vmlinux BTF (the kernel structops boots for TCP and
// bpf_dummy_ops, with sched_ext) to the file named by argv[2] and, with argv[3], the split BTF of
// the bpf_testmod module loaded into that kernel. Needs the compiled tree (npm run build).
import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const dist = (p) => import(pathToFileURL(join(root, "dist/src", p)).href);
const { SimTarget } = await dist("fidelity/sim.js");
const { Kernel } = await dist("kernel/kernel.js");
const { schedExtSubsystem } = await dist("subsys/sched_ext/index.js");
// The fidelity target's subsystems first, so their type ids stay where they were.
const kernel = new Kernel({ subsystems: [...new SimTarget().kernel.subsystems, schedExtSubsystem] });
writeFileSync(process.argv[2], kernel.btfVmlinux.encode());
if (process.argv[3]) {
  const { loadBpfTestmod } = await dist("subsys/testmod/bpf_testmod.js");
  writeFileSync(process.argv[3], loadBpfTestmod(kernel).btfObj.data);
}
