/**
 * The simulated kernel one CLI run talks to: TCP congestion control glue and bpf_dummy_ops, and a
 * process ("structops") the show verbs open their fds in.
 */
import { Kernel, type Subsystem } from "../kernel/kernel.js";
import type { Process } from "../kernel/process.js";
import { type BpfStructOpsMap, isStructOpsMap } from "../kernel/struct_ops.js";
import { bpf_map_get_info } from "../kernel/syscall.js";
import { BpfObject } from "../loader/object.js";
import { bpfMapAttachStructOps } from "../loader/struct_ops_attach.js";
import { bpfDummyStructOpsSubsystem } from "../subsys/dummy/bpf_dummy_struct_ops.js";
import { bpfTcpCaSubsystem } from "../subsys/tcp/bpf_tcp_ca.js";
import { registerTcpBpf } from "../subsys/tcp/bpf_tcp_ca_kfuncs.js";
import { TcpCongControl } from "../subsys/tcp/tcp_cong.js";
import { tcpReno } from "../subsys/tcp/tcp_reno.js";
import { bpf_cmd } from "../uapi/bpf.js";
import { BpfError, EINVAL, ENOENT } from "../uapi/errno.js";

/** A simulated kernel for one CLI run. */
export class StructOpsSession {
  readonly kernel: Kernel;
  readonly proc: Process;
  readonly cong: TcpCongControl;
  readonly messages: string[] = [];

  constructor() {
    const cong = new TcpCongControl(tcpReno());
    const kfuncs: Subsystem = {
      name: "tcp_bpf",
      register: (k) => registerTcpBpf(k, { cong, sockByAddr: () => undefined }),
    };
    this.kernel = new Kernel({ subsystems: [bpfTcpCaSubsystem(() => cong), kfuncs, bpfDummyStructOpsSubsystem] });
    this.cong = cong;
    this.proc = this.kernel.newProcess({ comm: "structops" });
  }

  /**
   * bpftool struct_ops register OBJ [LINK_DIR]: load, then attach every struct_ops map
   * (autoattach); with LINK_DIR, pin each link there under its map's name. It runs in a process of
   * its own that exits afterwards, as bpftool does: what survives is what the kernel holds (a
   * registered map, a pinned link); a link nobody pinned goes away with the process.
   */
  register(path: string, linkDir?: string): BpfStructOpsMap[] {
    const proc = this.kernel.newProcess({ comm: "bpftool" });
    const h = { kernel: this.kernel, process: proc };
    try {
      const obj = BpfObject.open(path);
      obj.load(h);
      const out: BpfStructOpsMap[] = [];
      for (const map of obj.maps) {
        if (!map.structOps || map.fd < 0) continue;
        const link = bpfMapAttachStructOps(map, h);
        const st = proc.files.get(map.fd).private_data as BpfStructOpsMap;
        if (link.mapFd < 0) {
          this.messages.push(`Registered ${st.desc.type.name} ${st.name} id ${st.id}`);
        } else {
          const linkId = (proc.files.get(link.fd).private_data as { id: number }).id;
          if (linkDir) {
            const pathname = `${linkDir.replace(/\/+$/, "")}/${map.name}`;
            this.kernel.bpf(proc, bpf_cmd.BPF_OBJ_PIN, { pathname, bpf_fd: link.fd });
          }
          this.messages.push(`Registered ${st.desc.type.name} ${st.name} map id ${st.id} link id ${linkId}`);
        }
        out.push(st);
      }
      return out;
    } finally {
      this.kernel.exit(proc);
      // bpftool exits and the kernel's grace periods elapse long before the next command:
      // what the exit released (an unpinned link, its map, then the map's programs) is gone.
      this.kernel.quiesce();
    }
  }

  /** Every struct_ops map of the kernel, by id. */
  maps(): BpfStructOpsMap[] {
    return [...this.kernel.map_idr.values()].filter(isStructOpsMap).sort((a, b) => a.id - b.id);
  }

  /** `id ID` or `name NAME` (bpftool's STRUCT_OPS_MAP). */
  select(spec: string[]): BpfStructOpsMap[] {
    if (spec.length === 0) return this.maps();
    const [kw, val] = spec;
    if (kw === "id") {
      const m = this.maps().filter((x) => x.id === Number(val));
      if (!m.length) throw new BpfError(ENOENT, `can't get map by id (${val})`);
      return m;
    }
    if (kw === "name") {
      const m = this.maps().filter((x) => x.name === val);
      if (!m.length) throw new BpfError(ENOENT, `no struct_ops found with name ${val}`);
      return m;
    }
    throw new BpfError(EINVAL, `expected 'id' or 'name', got: '${kw ?? ""}'`);
  }

  show(m: BpfStructOpsMap): { id: number; name: string; kernel_struct_ops: string } {
    return { id: m.id, name: m.name, kernel_struct_ops: m.desc.type.name };
  }

  /** bpftool struct_ops dump: the map's info and its value through the BTF pretty-printer. */
  dump(m: BpfStructOpsMap): string {
    const info = bpf_map_get_info(m);
    const value = m.ops.map_seq_show_elem?.(m, new Uint8Array(4)) ?? "";
    return `${JSON.stringify({ bpf_map_info: info }, (_k, v) => (typeof v === "bigint" ? Number(v) : v))}\n${value}`;
  }

  /** bpftool struct_ops unregister: delete the value (legacy maps) or detach the links on it. */
  unregister(m: BpfStructOpsMap): void {
    const fd = this.kernel.bpf(this.proc, bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: m.id });
    try {
      if (m.state === 3) {
        for (const link of [...this.kernel.link_idr.values()]) {
          if ((link as { map?: unknown }).map !== m) continue;
          const lfd = this.kernel.bpf(this.proc, bpf_cmd.BPF_LINK_GET_FD_BY_ID, { link_id: link.id });
          this.kernel.bpf(this.proc, bpf_cmd.BPF_LINK_DETACH, { link_fd: lfd });
          this.proc.files.close(lfd);
        }
      } else {
        this.kernel.bpf(this.proc, bpf_cmd.BPF_MAP_DELETE_ELEM, { map_fd: fd, key: new Uint8Array(4) });
      }
    } finally {
      this.proc.files.close(fd);
    }
    this.messages.push(`Unregistered ${m.desc.type.name} ${m.name} id ${m.id}`);
  }
}
