/**
 * A target a scenario runs on: the host kernel (through the native helper) or structops (the
 * simulated kernel through the libbpf-shaped API). Every operation resolves to an Outcome; the
 * runner turns scenario names into fds, type ids and value bytes for each target separately,
 * using that target's own vmlinux BTF.
 */
import type { Btf } from "../btf/btf.js";

export interface Outcome {
  ok: boolean;
  /** Positive errno when !ok. */
  errno?: number;
  /** The syscall's return value when ok (an fd, 0, or the odd positive value). */
  ret?: number;
  /** Bytes returned (lookup value, next key, test_run state). */
  bytes?: Uint8Array;
  /** Named results (info fields, test_run retval, transfer counters). */
  fields?: Record<string, string>;
  /** The operation cannot run on this target at all (reason); the scenario is skipped. */
  unsupported?: string;
}

export interface MapCreateArgs {
  map_type: number;
  key_size: number;
  value_size: number;
  max_entries: number;
  map_flags: number;
  btf_fd: number;
  btf_vmlinux_value_type_id: number;
  map_name: string;
  map_extra: number;
  value_type_btf_obj_fd: number;
}

export interface ProgLoadArgs {
  prog_type: number;
  expected_attach_type: number;
  attach_btf_id: number;
  prog_flags: number;
  license: string;
  /** Encoded `struct bpf_insn` slots. */
  insns: Uint8Array;
  name: string;
}

export interface Target {
  readonly name: "kernel" | "structops";
  /** The target's vmlinux BTF: value layouts and type ids come from here. */
  readonly btf: Btf;
  btfLoad(data: Uint8Array): Promise<Outcome>;
  btfFdById(id: number): Promise<Outcome>;
  mapCreate(a: MapCreateArgs): Promise<Outcome>;
  update(fd: number, key: Uint8Array, value: Uint8Array, flags: number): Promise<Outcome>;
  lookup(fd: number, key: Uint8Array, size: number, flags: number): Promise<Outcome>;
  delete(fd: number, key: Uint8Array): Promise<Outcome>;
  nextKey(fd: number, key: Uint8Array | null, size: number): Promise<Outcome>;
  freeze(fd: number): Promise<Outcome>;
  progLoad(a: ProgLoadArgs): Promise<Outcome>;
  /** Load the programs of a committed object (bpf/obj/<file>) and return the named one's fd. */
  objProg(path: string, prog: string): Promise<Outcome>;
  /** A map of that object (e.g. `.bss`), loaded as objProg loads it. */
  objMap(path: string, map: string): Promise<Outcome>;
  linkCreate(mapFd: number, attachType: number, flags: number): Promise<Outcome>;
  linkUpdate(linkFd: number, newMapFd: number, flags: number, oldMapFd: number): Promise<Outcome>;
  linkDetach(fd: number): Promise<Outcome>;
  close(fd: number): Promise<Outcome>;
  info(kind: "map" | "link" | "prog", fd: number): Promise<Outcome>;
  mapFdById(id: number, openFlags: number): Promise<Outcome>;
  poll(fd: number): Promise<Outcome>;
  /** PROG_TEST_RUN; `state` (when not null) is copied to user memory and its address put in args[0]. */
  testRun(fd: number, ctx: Uint8Array, state: Uint8Array | null, opts?: TestRunOpts): Promise<Outcome>;
  /**
   * A loopback transfer of `bytes` using congestion control `cc` on the sender; with `dropEvery`,
   * one data packet in that many is lost (host: an XDP dropper on lo in a private netns;
   * structops: that random loss rate on the simulated link).
   */
  tcpXfer(cc: string, bytes: number, dropEvery: number): Promise<Outcome>;
  /** The text of /proc/self/fdinfo/<fd>, as bytes. */
  fdinfo(fd: number): Promise<Outcome>;
  /** Drop every capability of the process running the scenario. */
  dropCaps(): Promise<Outcome>;
  /** Free everything (registered struct_ops maps included). */
  shutdown(): Promise<void>;
}

/** PROG_TEST_RUN attributes a scenario may set besides the ctx (default: ctx's length, 0, 0). */
export interface TestRunOpts {
  ctxSize?: number;
  flags?: number;
  cpu?: number;
}
