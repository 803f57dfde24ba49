export * from "./bpf.js";
export * from "./btf.js";
export * from "./errno.js";
