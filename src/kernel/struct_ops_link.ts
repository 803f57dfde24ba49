/**
 * struct_ops links (kernel/bpf/bpf_struct_ops.c, "Transit between BPF TCP congestion controls"):
 * BPF_LINK_CREATE with attach type BPF_STRUCT_OPS registers a READY BPF_F_LINK map with its
 * subsystem, BPF_LINK_UPDATE swaps in another map of the same type atomically, BPF_LINK_DETACH
 * (or the last close) unregisters. One global update_mutex orders create, update and detach; in
 * this single-threaded kernel it is the order of the checks that matters, and it is kept.
 */
import { BPF_F_LINK, bpf_link_type, bpf_map_type, bpf_struct_ops_state } from "../uapi/bpf.js";
import { BpfError, EINVAL, ENOLINK, EOPNOTSUPP, EPERM } from "../uapi/errno.js";
import { BpfLink, type BpfLinkInfo, type BpfLinkOps, type BpfMap } from "./bpf.js";
import type { LinkCreateAttr } from "./bpf_attr.js";
import type { Kernel } from "./kernel.js";
import type { Process } from "./process.js";
import { type BpfStructOpsMap, isStructOpsMap } from "./struct_ops_map.js";
import { bpf_link_cleanup, bpf_link_prime, bpf_link_settle } from "./syscall_link.js";
import { bpf_map_get, bpf_map_inc, bpf_map_put } from "./syscall_map.js";

export const EPOLLHUP = 0x10;

/** struct bpf_struct_ops_link. */
export class BpfStructOpsLink extends BpfLink {
  /** The registered map; null once detached (or before registration completed). */
  map: BpfStructOpsMap | null = null;
  /** wait_hup: pollers woken with EPOLLHUP on detach. */
  readonly waitHup = new Set<(events: number) => void>();
}

/** bpf_struct_ops_valid_to_reg(). */
export function bpfStructOpsValidToReg(map: BpfMap): map is BpfStructOpsMap {
  return (
    map.map_type === bpf_map_type.BPF_MAP_TYPE_STRUCT_OPS &&
    isStructOpsMap(map) &&
    (map.map_flags & BPF_F_LINK) !== 0 &&
    map.state === bpf_struct_ops_state.BPF_STRUCT_OPS_STATE_READY
  );
}

function stLink(link: BpfLink): BpfStructOpsLink {
  return link as BpfStructOpsLink;
}

/** bpf_struct_ops_map_link_dealloc(): last reference gone; unregister if still attached. */
function linkDealloc(link: BpfLink): void {
  const l = stLink(link);
  const map = l.map;
  if (map) {
    l.map = null;
    map.desc.stOps.unreg(map.kdata as never, l);
    bpf_map_put(map);
  }
}

/** bpf_struct_ops_map_link_detach(): idempotent; wakes pollers. */
function linkDetach(link: BpfLink): void {
  const l = stLink(link);
  const map = l.map;
  if (!map) return;
  map.desc.stOps.unreg(map.kdata as never, l);
  l.map = null;
  // Pairs with the reference link_create took from the fd, or link_update's bpf_map_inc.
  bpf_map_put(map);
  for (const wake of [...l.waitHup]) wake(EPOLLHUP);
}

/** bpf_struct_ops_map_link_update(). */
function linkUpdateMap(link: BpfLink, newMap: BpfMap, expectedOldMap: BpfMap | null): void {
  const l = stLink(link);
  if (!bpfStructOpsValidToReg(newMap)) {
    throw new BpfError(EINVAL, "new map must be a READY struct_ops map created with BPF_F_LINK");
  }
  const stOps = newMap.desc.stOps;
  if (!stOps.update) throw new BpfError(EOPNOTSUPP, `struct_ops ${stOps.name} cannot be updated`);
  const oldMap = l.map;
  if (!oldMap) throw new BpfError(ENOLINK, "struct_ops link is detached");
  if (expectedOldMap && oldMap !== expectedOldMap) {
    throw new BpfError(EPERM, `link ${l.id} is attached to map ${oldMap.id}, not map ${expectedOldMap.id}`);
  }
  if (newMap.desc !== oldMap.desc) {
    throw new BpfError(EINVAL, `cannot replace struct ${oldMap.desc.type.name} with struct ${newMap.desc.type.name}`);
  }
  stOps.update(newMap.kdata as never, oldMap.kdata as never, l);
  bpf_map_inc(newMap);
  l.map = newMap;
  bpf_map_put(oldMap);
}

function linkShowFdinfo(link: BpfLink): string {
  const map = stLink(link).map;
  return map ? `map_id:\t${map.id}\n` : "";
}

function linkFillInfo(link: BpfLink, info: BpfLinkInfo): void {
  const map = stLink(link).map;
  // A detached link leaves map_id as the caller passed it.
  if (map) info.struct_ops = { map_id: map.id };
}

function linkPoll(link: BpfLink): number {
  return stLink(link).map ? 0 : EPOLLHUP;
}

export const bpfStructOpsMapLops: BpfLinkOps = {
  // No release: link->prog is NULL, so bpf_link_free never calls it.
  release(): void {},
  dealloc: linkDealloc,
  detach: linkDetach,
  show_fdinfo: linkShowFdinfo,
  fill_link_info: linkFillInfo,
  update_map: linkUpdateMap,
  poll: linkPoll,
};

/** bpf_struct_ops_link_create(): returns the link fd. */
export function bpfStructOpsLinkCreate(k: Kernel, attr: LinkCreateAttr, proc: Process): number {
  const map = bpf_map_get(proc, attr.map_fd || attr.prog_fd || 0);
  let link: BpfStructOpsLink | null = null;
  try {
    if (!bpfStructOpsValidToReg(map)) {
      throw new BpfError(EINVAL, `map ${map.id} is not a READY struct_ops map created with BPF_F_LINK`);
    }
    link = new BpfStructOpsLink(
      k,
      bpf_link_type.BPF_LINK_TYPE_STRUCT_OPS,
      bpfStructOpsMapLops,
      null,
      attr.attach_type ?? 0,
    );
    const primer = bpf_link_prime(link, proc);
    try {
      map.desc.stOps.reg(map.kdata as never, link);
    } catch (e) {
      // dealloc later sees map == NULL: no unreg.
      bpf_link_cleanup(primer);
      link = null;
      throw e;
    }
    link.map = map;
    return bpf_link_settle(primer);
  } catch (e) {
    bpf_map_put(map);
    throw e;
  }
}
