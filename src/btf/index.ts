export * from "./btf.js";
export * from "./builder.js";
export * from "./encode.js";
export * from "./resolve.js";
export * from "./types.js";
