export * from "./btf.js";
export * from "./builder.js";
export * from "./dump_c.js";
export * from "./dump_raw.js";
export * from "./encode.js";
export * from "./json_writer.js";
export * from "./resolve.js";
export * from "./types.js";
