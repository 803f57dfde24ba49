/** Small pieces of kernel/bpf/syscall.c shared by every object kind. */
import { BPF_OBJ_NAME_LEN } from "../uapi/bpf.js";
import { BpfError, EFAULT, EINVAL, ENOSPC } from "../uapi/errno.js";

/** Log level bit: keep the start of the log instead of its end when the buffer is too small. */
export const BPF_LOG_FIXED = 8;

import type { File } from "./file.js";

/**
 * bpf_obj_name_cpy(): object names are [A-Za-z0-9_.]* and NUL-terminated within `size` bytes
 * (BPF_OBJ_NAME_LEN, 16, for map and program names; a struct_ops type's own name field may be
 * longer, e.g. sched_ext_ops.name's 128), so at most size - 1 characters; anything else is EINVAL.
 */
export function bpf_obj_name_cpy(src: string | Uint8Array | undefined | null, size = BPF_OBJ_NAME_LEN): string {
  if (src === undefined || src === null) return "";
  if (typeof src !== "string" && !(src instanceof Uint8Array))
    throw new BpfError(EFAULT, "object name is not a string");
  const bytes = typeof src === "string" ? new TextEncoder().encode(src) : src;
  let i = 0;
  for (; i < size && i < bytes.length && bytes[i] !== 0; i++) {
    const c = bytes[i];
    const ok =
      (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x2e;
    if (!ok) throw new BpfError(EINVAL, `invalid character 0x${c.toString(16)} in object name`);
  }
  if (i === size) throw new BpfError(EINVAL, `object name longer than ${size - 1} characters`);
  return new TextDecoder().decode(bytes.subarray(0, i));
}

/** The generic lines /proc/<pid>/fdinfo/<fd> prints before a file's own show_fdinfo. */
export function fdinfoHeader(f: File): string {
  return `pos:\t0\nflags:\t0${f.f_flags.toString(8)}\nmnt_id:\t15\nino:\t${inoOf(f)}\n`;
}

const inos = new WeakMap<object, number>();
let nextIno = 1024;
function inoOf(f: File): number {
  let ino = inos.get(f);
  if (ino === undefined) inos.set(f, (ino = nextIno++));
  return ino;
}

export function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The NUL-terminated text in a user buffer (license strings, names given as bytes). */
export function cString(v: string | Uint8Array | null | undefined, max: number): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v.slice(0, max);
  if (!(v instanceof Uint8Array)) throw new BpfError(EFAULT, "string field is not a string");
  let end = 0;
  while (end < v.length && end < max && v[end] !== 0) end++;
  return new TextDecoder().decode(v.subarray(0, end));
}

/**
 * A verifier-style log into a user buffer (kernel/bpf/log.c): attr checks of
 * bpf_verifier_log_attr_valid, text truncated to the buffer with a NUL, true size reported.
 */
export class BpfLog {
  readonly lines: string[] = [];

  constructor(
    readonly level: number,
    readonly buf: Uint8Array | null | undefined,
    readonly size: number,
  ) {
    if (!!buf !== !!size) throw new BpfError(EINVAL, "log_buf and log_size must be given together");
    if (buf && size < 128) throw new BpfError(EINVAL, `log_size ${size} is below 128`);
    if (size > 0xffffffff >>> 2) throw new BpfError(EINVAL, `log_size ${size} is too large`);
    if (level & ~(1 | 2 | 4 | 8 | 16)) throw new BpfError(EINVAL, `invalid log_level ${level}`);
    if (level && !buf) throw new BpfError(EINVAL, "log_level without log_buf");
    if (buf && buf.length < size) throw new BpfError(EINVAL, "log_buf is smaller than log_size");
  }

  log(line: string): void {
    this.lines.push(line);
  }

  get text(): string {
    return this.lines.map((l) => (l.endsWith("\n") ? l : `${l}\n`)).join("");
  }

  /** The log did not fit the buffer (bpf_vlog_finalize then makes a successful load ENOSPC). */
  truncated = false;

  /**
   * Copy out (bpf_vlog_finalize); returns log_true_size (bytes incl. NUL). The log rotates by
   * default, keeping its tail; BPF_LOG_FIXED (level 8) keeps its head.
   */
  finalize(): number {
    const bytes = new TextEncoder().encode(this.text);
    if (this.buf && this.level) {
      const n = Math.min(bytes.length, this.size - 1);
      const fixed = (this.level & BPF_LOG_FIXED) !== 0;
      this.buf.set(fixed ? bytes.subarray(0, n) : bytes.subarray(bytes.length - n));
      this.buf[n] = 0;
      this.truncated = bytes.length > n;
    }
    return bytes.length + 1;
  }

  /** Finalize after a successful load: a truncated log turns success into ENOSPC. */
  finalizeOk(): number {
    const trueSize = this.finalize();
    if (this.truncated)
      throw new BpfError(ENOSPC, `log buffer of ${this.size} bytes is too small (${trueSize} needed)`);
    return trueSize;
  }
}
