/**
 * bpffs pins (kernel/bpf/inode.c): BPF_OBJ_PIN gives an object a path under /sys/fs/bpf that holds
 * a reference of its own (for a map: a user reference too), BPF_OBJ_GET opens it again, unlink
 * drops the pin's reference.
 */
import { BPF_F_PATH_FD, BPF_F_RDONLY, BPF_F_WRONLY } from "../uapi/bpf.js";
import { BpfError, EEXIST, EFAULT, EINVAL, ENOENT, EPERM } from "../uapi/errno.js";
import type { BpfLink, BpfMap, BpfProg } from "./bpf.js";
import type { AttrTail } from "./bpf_attr.js";
import { num } from "./bpf_attr.js";
import { File, type FileOps, O_CLOEXEC, O_RDONLY, O_RDWR } from "./file.js";
import type { Kernel } from "./kernel.js";
import type { Process } from "./process.js";
import { bpf_link_fops, bpf_link_inc, bpf_link_put } from "./syscall_link.js";
import { bpf_get_file_flag, bpf_map_fops, bpf_map_inc_with_uref, bpf_map_put_with_uref } from "./syscall_map.js";
import { bpf_prog_fops, bpf_prog_inc, bpf_prog_put } from "./syscall_prog.js";

export const BPFFS_ROOT = "/sys/fs/bpf/";

export interface ObjPinAttr extends AttrTail {
  pathname?: string;
  bpf_fd?: number;
  file_flags?: number;
  path_fd?: number;
}

interface Pin {
  fops: FileOps<never>;
  obj: unknown;
}

const pins = new WeakMap<Kernel, Map<string, Pin>>();

function table(k: Kernel): Map<string, Pin> {
  let t = pins.get(k);
  if (!t) pins.set(k, (t = new Map()));
  return t;
}

function get(fops: FileOps<never>, obj: unknown): void {
  if (fops === (bpf_map_fops as FileOps<unknown>)) bpf_map_inc_with_uref(obj as BpfMap);
  else if (fops === (bpf_prog_fops as FileOps<unknown>)) bpf_prog_inc(obj as BpfProg);
  else bpf_link_inc(obj as BpfLink);
}

function put(fops: FileOps<never>, obj: unknown): void {
  if (fops === (bpf_map_fops as FileOps<unknown>)) bpf_map_put_with_uref(obj as BpfMap);
  else if (fops === (bpf_prog_fops as FileOps<unknown>)) bpf_prog_put(obj as BpfProg);
  else bpf_link_put(obj as BpfLink);
}

function checkPath(path: unknown): string {
  if (path !== undefined && path !== null && typeof path !== "string")
    throw new BpfError(EFAULT, "pathname is not a string");
  if (!path) throw new BpfError(ENOENT, "empty pathname");
  // Only bpffs can hold BPF objects; anything else refuses the pin.
  if (!path.startsWith(BPFFS_ROOT) || path.length === BPFFS_ROOT.length) {
    throw new BpfError(EPERM, `${path} is not in a bpf filesystem`);
  }
  return path;
}

/** BPF_OBJ_PIN. */
export function bpf_obj_pin(k: Kernel, proc: Process, attr: ObjPinAttr): number {
  if (num(attr.file_flags) & ~BPF_F_PATH_FD) throw new BpfError(EINVAL, "invalid file_flags");
  if (num(attr.file_flags) & BPF_F_PATH_FD || num(attr.path_fd)) throw new BpfError(EINVAL, "path_fd is not supported");
  const path = checkPath(attr.pathname);
  const f = proc.files.get(num(attr.bpf_fd));
  // bpf_fd_probe_obj(): maps, programs and links; nothing else (not even BTF) can be pinned.
  const known = [bpf_map_fops, bpf_prog_fops, bpf_link_fops] as FileOps<unknown>[];
  if (!known.includes(f.f_op as FileOps<unknown>))
    throw new BpfError(EINVAL, "only maps, programs and links can be pinned");
  const t = table(k);
  if (t.has(path)) throw new BpfError(EEXIST, `${path} exists`);
  get(f.f_op as FileOps<never>, f.private_data);
  t.set(path, { fops: f.f_op as FileOps<never>, obj: f.private_data });
  return 0;
}

/** BPF_OBJ_GET: a new fd on the pinned object, opened read-only or write-only as asked. */
export function bpf_obj_get(k: Kernel, proc: Process, attr: ObjPinAttr): number {
  const flags = num(attr.file_flags);
  if (num(attr.bpf_fd) || flags & ~(BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_PATH_FD)) {
    throw new BpfError(EINVAL, "invalid bpf_fd or file_flags");
  }
  if (flags & BPF_F_PATH_FD || num(attr.path_fd)) throw new BpfError(EINVAL, "path_fd is not supported");
  const f_flags = bpf_get_file_flag(flags);
  const path = checkPath(attr.pathname);
  const pin = table(k).get(path);
  if (!pin) throw new BpfError(ENOENT, `${path} does not exist`);
  // Programs and links open read-write only; maps honour the requested mode.
  if (pin.fops !== (bpf_map_fops as FileOps<unknown>) && f_flags !== O_RDWR) {
    throw new BpfError(EINVAL, "programs and links cannot be opened read-only or write-only");
  }
  get(pin.fops, pin.obj);
  try {
    // Links reopen as bpf_link_new_fd() makes them: O_CLOEXEC only (read-only).
    const flags = pin.fops === (bpf_link_fops as FileOps<unknown>) ? O_RDONLY : f_flags;
    return proc.files.install(new File(pin.fops, pin.obj as never, flags | O_CLOEXEC));
  } catch (e) {
    put(pin.fops, pin.obj);
    throw e;
  }
}

/** unlink(2) of a pin: its reference goes. */
export function bpf_obj_unpin(k: Kernel, path: string): void {
  const t = table(k);
  const pin = t.get(path);
  if (!pin) throw new BpfError(ENOENT, `${path} does not exist`);
  t.delete(path);
  put(pin.fops, pin.obj);
  k.flushWork();
}

/** The pinned paths, sorted (ls -R /sys/fs/bpf). */
export function bpf_obj_pins(k: Kernel): string[] {
  return [...table(k).keys()].sort();
}
