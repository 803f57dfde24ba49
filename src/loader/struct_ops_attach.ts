/**
 * Attaching a loaded struct_ops map (libbpf bpf_map__attach_struct_ops): push the kernel
 * value built at load into the map (which registers a non-link map), then, for
 * `.struct_ops.link` maps (BPF_F_LINK), create the struct_ops link that registers it.
 */
import { BPF_F_LINK, bpf_attach_type } from "../uapi/bpf.js";
import { BpfError, EBUSY, EINVAL } from "../uapi/errno.js";
import {
  type BpfHandle,
  bpf_link_create,
  bpf_link_update,
  bpf_map_delete_elem,
  bpf_map_update_elem,
  close,
} from "./bpf.js";
import type { BpfMap } from "./maps.js";

const ZERO_KEY = new Uint8Array(4);

/** struct bpf_link_struct_ops: a real link (fd) or, without BPF_F_LINK, the map itself. */
export class BpfStructOpsLink {
  readonly k: BpfHandle;
  /** The link fd, or the map fd for a map attached without a link. */
  readonly fd: number;
  /** The map fd behind a real link, -1 without one. */
  mapFd: number;
  private detached = false;

  constructor(k: BpfHandle, fd: number, mapFd: number) {
    this.k = k;
    this.fd = fd;
    this.mapFd = mapFd;
  }

  get isRealLink(): boolean {
    return this.mapFd >= 0;
  }

  /** bpf_link__detach_struct_ops: delete the value (no link) or close the link. */
  detach(): void {
    if (this.detached) return;
    this.detached = true;
    const r = this.mapFd < 0 ? bpf_map_delete_elem(this.k, this.fd, ZERO_KEY) : close(this.k, this.fd);
    if (r < 0) throw new BpfError(-r, `struct_ops link: detach failed: ${r}`);
  }

  /** bpf_link__update_map: swap the link's map for another loaded struct_ops map. */
  updateMap(map: BpfMap): void {
    if (!map.structOps || map.fd < 0) throw new BpfError(EINVAL, `map '${map.name}': not a created struct_ops map`);
    if (this.mapFd < 0) throw new BpfError(EINVAL, "struct_ops link: not a real link");
    const st = map.structOps;
    const up = bpf_map_update_elem(this.k, map.fd, ZERO_KEY, st.kernVdata as Uint8Array, 0);
    if (up < 0 && up !== -EBUSY)
      throw new BpfError(-up, `map '${map.name}': failed to set the struct_ops value: ${up}`);
    const r = bpf_link_update(this.k, this.fd, map.fd);
    if (r < 0) throw new BpfError(-r, `struct_ops link: update to map '${map.name}' failed: ${r}`);
    this.mapFd = map.fd;
  }
}

export function bpfMapAttachStructOps(map: BpfMap, k: BpfHandle | undefined): BpfStructOpsLink {
  const st = map.structOps;
  if (!st) throw new BpfError(EINVAL, `map '${map.name}': can't attach non-struct_ops map`, { map: map.name });
  if (map.fd < 0 || !k || !st.kernVdata) {
    throw new BpfError(EINVAL, `map '${map.name}': can't attach BPF map without FD (was it created?)`, {
      map: map.name,
    });
  }
  const err = bpf_map_update_elem(k, map.fd, ZERO_KEY, st.kernVdata, 0);
  // EBUSY: the value was set by an earlier link; it never changes once set.
  if (err < 0 && (!(map.flags & BPF_F_LINK) || err !== -EBUSY)) {
    throw new BpfError(-err, `map '${map.name}': failed to update the struct_ops value: ${err}`, { map: map.name });
  }
  if (!(map.flags & BPF_F_LINK)) return new BpfStructOpsLink(k, map.fd, -1);
  const fd = bpf_link_create(k, map.fd, 0, bpf_attach_type.BPF_STRUCT_OPS);
  if (fd < 0)
    throw new BpfError(-fd, `map '${map.name}': failed to create the struct_ops link: ${fd}`, { map: map.name });
  return new BpfStructOpsLink(k, fd, map.fd);
}
