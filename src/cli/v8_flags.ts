/**
 * V8 settings of the command (importing this applies them; below the command nothing may touch
 * the engine's flags). BPF programs the VM gives the WebAssembly tier are compiled by V8's
 * optimising compiler from the start: by default V8 runs new Wasm code through its baseline
 * compiler (Liftoff) and recompiles hot functions on a background thread, so a short run got
 * the fast code or not depending on how busy the machine was (2x apart between fresh processes,
 * bench/RESULTS.md `vm.wasm.*.fresh_processes`). Set before anything is compiled: a code cache
 * made under other flags is refused (the launcher imports this first).
 */
import { setFlagsFromString } from "node:v8";

setFlagsFromString("--no-liftoff");
