/**
 * The simulated kernel one CLI run talks to: TCP congestion control glue and bpf_dummy_ops, and a
 * process ("structops") the verbs open their fds in.
 */
import { verifierHookWith } from "../kernel/bpf_verifier.js";
import { Kernel } from "../kernel/kernel.js";
import { delete_module, load_module, type Module, type ModuleDef } from "../kernel/module.js";
import type { Process } from "../kernel/process.js";
import type { BpfStructOpsMap } from "../kernel/struct_ops.js";
import { fdinfo } from "../kernel/syscall.js";
import { BpfObject } from "../loader/object.js";
import { bpfMapAttachStructOps } from "../loader/struct_ops_attach.js";
import type { TcpCongControl } from "../subsys/tcp/tcp_cong.js";
import { bpfTestmodModule } from "../subsys/testmod/bpf_testmod.js";
import { vmlinux } from "../subsys/vmlinux.js";
import { bpf_cmd } from "../uapi/bpf.js";
import { BpfError, ENOENT } from "../uapi/errno.js";
import { bpfCheck } from "../verifier/verifier.js";
import type { Handle } from "./bpf_info.js";
import { strerrorOf } from "./errors.js";
import type { VerdictCache } from "./verdict_cache.js";

/** The modules `structops module load` knows. */
export const MODULES: Readonly<Record<string, ModuleDef>> = { bpf_testmod: bpfTestmodModule };

/** What `struct_ops register` did: the maps registered and, per failing map, bpftool's error line. */
export interface RegisterResult {
  maps: BpfStructOpsMap[];
  errors: string[];
}

/** A simulated kernel for one CLI run. */
export class StructOpsSession implements Handle {
  readonly kernel: Kernel;
  readonly proc: Process;
  readonly cong: TcpCongControl;
  /** bpftool's p_info lines (`Registered ...`, `Unregistered ...`), printed on stderr. */
  readonly messages: string[] = [];

  /** `verdicts`: answer the verifier from this cache where an identical run is recorded. */
  constructor(verdicts?: VerdictCache) {
    const v = vmlinux();
    this.kernel = new Kernel({ subsystems: v.subsystems });
    if (verdicts && this.kernel.verifier) {
      this.kernel.verifier = verifierHookWith((env) => verdicts.check(env, bpfCheck));
    }
    this.cong = v.tcp.cong;
    this.proc = this.kernel.newProcess({ comm: "structops" });
  }

  bpf(cmd: number, attr: Record<string, unknown>): number {
    return this.kernel.bpf(this.proc, cmd, attr);
  }
  fdinfo(fd: number): string {
    return fdinfo(this.proc, fd);
  }
  close(fd: number): void {
    this.proc.files.close(fd);
  }
  object(fd: number): unknown {
    return this.proc.files.get(fd).private_data;
  }

  /**
   * bpftool struct_ops register OBJ [LINK_DIR]: open and load the object (all or nothing, as
   * bpf_object__load), then attach every struct_ops map; a map that fails to attach is reported and
   * the others still register, as bpftool's do_register does. With LINK_DIR, each link is pinned
   * there under its map's name. It runs in a process of its own that exits afterwards, as bpftool
   * does: what survives is what the kernel holds (a registered map, a pinned link); a link nobody
   * pinned goes away with the process. `keep` leaves that process running (a one-run --obj kernel).
   */
  register(bytes: Uint8Array, path: string, linkDir?: string, keep = false): RegisterResult {
    const proc = this.kernel.newProcess({ comm: "bpftool" });
    const h = { kernel: this.kernel, process: proc };
    const out: RegisterResult = { maps: [], errors: [] };
    try {
      const obj = BpfObject.open(bytes, { path });
      obj.load(h);
      for (const map of obj.maps) {
        if (!map.structOps || map.fd < 0) continue;
        let link: ReturnType<typeof bpfMapAttachStructOps>;
        try {
          link = bpfMapAttachStructOps(map, h);
        } catch (e) {
          if (!(e instanceof BpfError)) throw e;
          out.errors.push(`can't register struct_ops ${map.name}: ${strerrorOf(e.errno)}`);
          continue;
        }
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
        out.maps.push(st);
      }
      return out;
    } finally {
      if (!keep) {
        this.kernel.exit(proc);
        // bpftool exits and the kernel's grace periods elapse long before the next command:
        // what the exit released (an unpinned link, its map, then the map's programs) is gone.
        this.kernel.quiesce();
      }
    }
  }

  /**
   * bpftool struct_ops unregister, for one map id: delete the value (a map registered without a
   * link) or detach the links on it, from a process that then exits; then let the grace periods
   * pass, so what nothing references any more (the map, its programs, their data maps) is gone.
   */
  unregister(mapId: number): void {
    const fd = this.bpf(bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: mapId });
    const m = this.object(fd) as BpfStructOpsMap;
    try {
      if (m.state === 3) {
        for (const link of [...this.kernel.link_idr.values()]) {
          if ((link as { map?: unknown }).map !== m) continue;
          const lfd = this.bpf(bpf_cmd.BPF_LINK_GET_FD_BY_ID, { link_id: link.id });
          try {
            this.bpf(bpf_cmd.BPF_LINK_DETACH, { link_fd: lfd });
          } finally {
            this.close(lfd);
          }
        }
      } else {
        this.bpf(bpf_cmd.BPF_MAP_DELETE_ELEM, { map_fd: fd, key: new Uint8Array(4) });
      }
    } finally {
      this.close(fd);
      this.kernel.quiesce();
    }
    this.messages.push(`Unregistered ${m.desc.type.name} ${m.name} id ${m.id}`);
  }

  /** modprobe NAME: one of the modules this kernel can load (MODULES). */
  loadModule(name: string): Module {
    const def = MODULES[name];
    if (!def) throw new BpfError(ENOENT, `Module ${name} not found (modules: ${Object.keys(MODULES).join(", ")})`);
    return load_module(this.kernel, def);
  }

  /** rmmod NAME: refused while a map, link or program holds the module. */
  unloadModule(name: string): void {
    // Whatever an exited process let go of is gone first, as it is by the time rmmod runs.
    this.kernel.quiesce();
    delete_module(this.kernel, name);
  }

  /** BPF_LINK_DETACH of the link with this id (bpftool link detach id ID), then the grace periods. */
  linkDetach(id: number): void {
    const lfd = this.bpf(bpf_cmd.BPF_LINK_GET_FD_BY_ID, { link_id: id });
    try {
      this.bpf(bpf_cmd.BPF_LINK_DETACH, { link_fd: lfd });
    } finally {
      this.close(lfd);
      this.kernel.quiesce();
    }
  }
}
