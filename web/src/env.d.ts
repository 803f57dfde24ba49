/** The committed BPF objects (bpf/obj/*.bpf.o), bundled into the page by scripts/playground.mjs. */
declare module "structops:objects" {
  const files: Record<string, Uint8Array>;
  export default files;
}
