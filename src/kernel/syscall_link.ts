/**
 * Links in kernel/bpf/syscall.c: bpf_link_init / prime / settle / cleanup, refcounts, the link fd,
 * and LINK_CREATE / LINK_UPDATE / LINK_DETACH dispatched to the link kind's ops.
 */
import { BPF_F_REPLACE, bpf_attach_type, bpf_link_type, nameOf } from "../uapi/bpf.js";
import { BpfError, EAGAIN, EINVAL, ENOENT, EOPNOTSUPP } from "../uapi/errno.js";
import { BpfLink, type BpfLinkInfo, type BpfLinkOps, type BpfMap, type BpfProg } from "./bpf.js";
import type { LinkCreateAttr, LinkDetachAttr, LinkUpdateAttr } from "./bpf_attr.js";
import { num } from "./bpf_attr.js";
import { File, type FileOps, O_CLOEXEC, O_RDONLY } from "./file.js";
import type { Kernel } from "./kernel.js";
import type { Process } from "./process.js";
import { fdinfoHeader, hex } from "./syscall_common.js";
import { bpf_map_get, bpf_map_put } from "./syscall_map.js";
import { bpf_prog_get, bpf_prog_put } from "./syscall_prog.js";

/** Extra behaviour a link kind may ask for (bpf_link_ops.dealloc_deferred, and `sleepable`). */
export interface BpfLinkOpsExt extends BpfLinkOps {
  /** Dealloc after an RCU grace period (tasks-trace too when the program sleeps). */
  dealloc_deferred?: boolean;
}

/** bpf_link_init(): refcnt 1, no id until settled. */
export function bpf_link_init(k: Kernel, type: number, ops: BpfLinkOps, prog: BpfProg | null, attachType = 0): BpfLink {
  return new BpfLink(k, type, ops, prog, attachType);
}

export function bpf_link_inc(link: BpfLink): void {
  link.refcnt++;
}

function bpf_link_dealloc(link: BpfLink): void {
  link.freed = true;
  if (link.prog) bpf_prog_put(link.prog);
  link.ops.dealloc(link);
}

function bpf_link_free(link: BpfLink): void {
  const k = link.kernel;
  if (link.id) k.link_idr.remove(link.id);
  // Detach the program and clean up what it used.
  if (link.prog) link.ops.release?.(link);
  const ops = link.ops as BpfLinkOpsExt;
  if (ops.dealloc_deferred) {
    if (link.prog?.sleepable) k.rcu.callRcuTasksTrace(() => k.rcu.callRcu(() => bpf_link_dealloc(link)));
    else k.rcu.callRcu(() => bpf_link_dealloc(link));
  } else {
    bpf_link_dealloc(link);
  }
}

export function bpf_link_put(link: BpfLink): void {
  if (link.refcnt <= 0) throw new Error(`bpf_link_put: link ${link.id} refcnt underflow`);
  if (--link.refcnt === 0) bpf_link_free(link);
}

const LINK_TYPE_STRS: Record<number, string> = Object.fromEntries(
  Object.entries(bpf_link_type).map(([n, v]) => [v, n.replace("BPF_LINK_TYPE_", "").toLowerCase()]),
);

export const bpf_link_fops: FileOps<BpfLink> = {
  kind: "link",
  release: (f) => bpf_link_put(f.private_data),
  show_fdinfo: (f) => {
    const link = f.private_data;
    let s = `${fdinfoHeader(f)}link_type:\t${LINK_TYPE_STRS[link.type] ?? `<${link.type}>`}\nlink_id:\t${link.id}\n`;
    if (link.prog) s += `prog_tag:\t${hex(link.prog.tag)}\nprog_id:\t${link.prog.id}\n`;
    if (link.ops.show_fdinfo) s += link.ops.show_fdinfo(link);
    return s;
  },
  poll: (f) => f.private_data.ops.poll?.(f.private_data) ?? 0,
};

/** A link on its way to userspace: id and fd reserved, not yet visible (struct bpf_link_primer). */
export interface BpfLinkPrimer {
  link: BpfLink;
  file: File<BpfLink>;
  id: number;
  proc: Process;
  fd: number;
}

/** bpf_link_prime(): the file, an fd slot (EMFILE here, not later) and an id, none visible yet. */
export function bpf_link_prime(link: BpfLink, proc: Process): BpfLinkPrimer {
  const fd = proc.files.getUnusedFd();
  // anon_inode_getfile("bpf_link", ..., O_CLOEXEC): a link file is opened read-only.
  const file = new File(bpf_link_fops, link, O_RDONLY | O_CLOEXEC);
  let id: number;
  try {
    id = link.kernel.link_idr.allocCyclic(link);
  } catch (e) {
    proc.files.putUnusedFd(fd);
    throw e;
  }
  return { link, file, id, proc, fd };
}

/** bpf_link_settle(): the id becomes visible and the fd is installed; cannot fail. */
export function bpf_link_settle(p: BpfLinkPrimer): number {
  p.link.id = p.id;
  p.proc.files.fdInstall(p.fd, p.file);
  return p.fd;
}

/** bpf_link_cleanup(): undo prime after the attach failed; the program is not the link's to put. */
export function bpf_link_cleanup(p: BpfLinkPrimer): void {
  p.link.prog = null;
  p.link.kernel.link_idr.remove(p.id);
  p.proc.files.putUnusedFd(p.fd);
  p.file.fput();
}

/** bpf_link_get_from_fd(): a new reference; EBADF, or EINVAL for a non-link fd. */
export function bpf_link_get_from_fd(proc: Process, fd: number): BpfLink {
  const f = proc.files.get(fd);
  if (f.f_op !== bpf_link_fops) throw new BpfError(EINVAL, `fd ${fd} is not a BPF link`, { fd });
  const link = f.private_data as BpfLink;
  bpf_link_inc(link);
  return link;
}

export function bpf_link_get_fd_by_id(k: Kernel, proc: Process, id: number): number {
  if (!id) throw new BpfError(ENOENT, "link id 0");
  const link = k.link_idr.find(id);
  if (!link) throw new BpfError(ENOENT, `no link with id ${id}`);
  if (!link.id) throw new BpfError(EAGAIN, `link ${id} is not settled yet`);
  if (link.refcnt <= 0) throw new BpfError(ENOENT, `link ${id} is being freed`);
  bpf_link_inc(link);
  try {
    return proc.files.install(new File(bpf_link_fops, link, O_RDONLY | O_CLOEXEC));
  } catch (e) {
    bpf_link_put(link);
    throw e;
  }
}

export function bpf_link_get_info(link: BpfLink): BpfLinkInfo {
  const info: BpfLinkInfo = { type: link.type, id: link.id, prog_id: link.prog?.id ?? 0 };
  link.ops.fill_link_info?.(link, info);
  return info;
}

// ---- commands ----

export function link_create(k: Kernel, proc: Process, attr: LinkCreateAttr): number {
  const attachType = num(attr.attach_type);
  if (attachType === bpf_attach_type.BPF_STRUCT_OPS) {
    const fn = k.linkCreateByAttachType.get(attachType);
    if (!fn) throw new BpfError(EINVAL, "struct_ops links are not supported by this kernel");
    return fn(attr, proc, null);
  }
  const prog = bpf_prog_get(proc, num(attr.prog_fd ?? attr.map_fd));
  try {
    const fn = k.linkCreateByAttachType.get(attachType);
    if (!fn) {
      throw new BpfError(EINVAL, `attach type ${nameOf(bpf_attach_type, attachType) ?? attachType} is not supported`);
    }
    return fn(attr, proc, prog);
  } finally {
    bpf_prog_put(prog);
  }
}

export function link_update(_k: Kernel, proc: Process, attr: LinkUpdateAttr): number {
  const flags = num(attr.flags);
  if (flags & ~BPF_F_REPLACE) throw new BpfError(EINVAL, `unknown link_update flags 0x${flags.toString(16)}`);
  const link = bpf_link_get_from_fd(proc, num(attr.link_fd));
  try {
    if (link.ops.update_map) return link_update_map(proc, link, attr);
    const newProg = bpf_prog_get(proc, num(attr.new_prog_fd));
    let oldProg: BpfProg | null = null;
    try {
      if (flags & BPF_F_REPLACE) oldProg = bpf_prog_get(proc, num(attr.old_prog_fd));
      else if (num(attr.old_prog_fd)) throw new BpfError(EINVAL, "old_prog_fd without BPF_F_REPLACE");
      if (!link.ops.update_prog) throw new BpfError(EINVAL, "this link kind cannot change its program");
      link.ops.update_prog(link, newProg, oldProg);
      return 0;
    } finally {
      if (oldProg) bpf_prog_put(oldProg);
      bpf_prog_put(newProg);
    }
  } finally {
    bpf_link_put(link);
  }
}

function link_update_map(proc: Process, link: BpfLink, attr: LinkUpdateAttr): number {
  const newMap = bpf_map_get(proc, num(attr.new_map_fd ?? attr.new_prog_fd));
  let oldMap: BpfMap | null = null;
  try {
    if (num(attr.flags) & BPF_F_REPLACE) oldMap = bpf_map_get(proc, num(attr.old_map_fd ?? attr.old_prog_fd));
    else if (num(attr.old_map_fd ?? attr.old_prog_fd)) throw new BpfError(EINVAL, "old_map_fd without BPF_F_REPLACE");
    link.ops.update_map!(link, newMap, oldMap);
    return 0;
  } finally {
    if (oldMap) bpf_map_put(oldMap);
    bpf_map_put(newMap);
  }
}

export function link_detach(_k: Kernel, proc: Process, attr: LinkDetachAttr): number {
  const link = bpf_link_get_from_fd(proc, num(attr.link_fd));
  try {
    if (!link.ops.detach) throw new BpfError(EOPNOTSUPP, "this link kind cannot be detached");
    link.ops.detach(link);
    return 0;
  } finally {
    bpf_link_put(link);
  }
}
