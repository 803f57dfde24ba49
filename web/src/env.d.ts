/** The committed BPF objects (bpf/obj/*.bpf.o, and bpf/obj/sim/*.bpf.o as sim/NAME), bundled into the page by scripts/playground.mjs. */
declare module "structops:objects" {
  const files: Record<string, Uint8Array>;
  export default files;
}
