/**
 * structops as a target: a simulated kernel booted with the TCP types, the bpf_tcp_ca glue and
 * bpf_dummy_ops, driven through src/loader/bpf.ts exactly as a libbpf user would drive bpf().
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Btf } from "../btf/btf.js";
import { decodeInsns } from "../isa/insn.js";
import { ALL_CAPS } from "../kernel/capability.js";
import { Kernel } from "../kernel/kernel.js";
import * as bpf from "../loader/bpf.js";
import { BpfObject } from "../loader/object.js";
import { Simulation } from "../sim/sim.js";
import { bpfDummyStructOpsSubsystem, bpfDummyUserPtr } from "../subsys/dummy/bpf_dummy_struct_ops.js";
import { QdiscKernel, qdiscSubsystem } from "../subsys/qdisc/qdisc_init.js";
import { bpfTcpCaSubsystem } from "../subsys/tcp/bpf_tcp_ca.js";
import type { TcpCongControl } from "../subsys/tcp/tcp_cong.js";
import { TcpKernel, tcpSubsystem } from "../subsys/tcp/tcp_init.js";
import { BpfError } from "../uapi/errno.js";
import { repoRoot } from "./host.js";
import type { MapCreateArgs, Outcome, ProgLoadArgs, Target, TestRunOpts } from "./target.js";

/** An outcome from a libbpf-convention return (fd/0 or -errno). */
function rc(r: number, extra: Partial<Outcome> = {}): Outcome {
  return r < 0 ? { ok: false, errno: -r } : { ok: true, ret: r, ...extra };
}

export class SimTarget implements Target {
  readonly name = "structops" as const;
  readonly btf: Btf;
  readonly kernel: Kernel;
  readonly cong: TcpCongControl;
  readonly tcp: TcpKernel;
  private readonly h: bpf.BpfHandle;

  constructor() {
    const tcp = new TcpKernel();
    this.kernel = new Kernel({
      subsystems: [
        tcpSubsystem(tcp),
        bpfTcpCaSubsystem(() => tcp.cong),
        bpfDummyStructOpsSubsystem,
        qdiscSubsystem(new QdiscKernel()),
      ],
    });
    this.tcp = tcp;
    this.cong = tcp.cong;
    this.h = { kernel: this.kernel, process: this.kernel.newProcess() };
    this.btf = this.kernel.btfVmlinux!;
  }

  private async wrap(fn: () => Outcome): Promise<Outcome> {
    try {
      return fn();
    } catch (e) {
      if (e instanceof BpfError) {
        if (process.env.FIDELITY_DEBUG) console.error(`structops: ${e.message}`);
        return { ok: false, errno: e.errno };
      }
      throw e;
    }
  }

  btfLoad(data: Uint8Array) {
    return this.wrap(() => rc(bpf.bpf_btf_load(this.h, data)));
  }
  btfFdById(id: number) {
    return this.wrap(() => rc(bpf.bpf_btf_get_fd_by_id(this.h, id)));
  }
  mapCreate(a: MapCreateArgs) {
    return this.wrap(() =>
      rc(
        bpf.bpf_map_create(this.h, a.map_type, a.map_name || null, a.key_size, a.value_size, a.max_entries, {
          map_flags: a.map_flags,
          btf_fd: a.btf_fd,
          btf_vmlinux_value_type_id: a.btf_vmlinux_value_type_id,
          map_extra: a.map_extra,
          value_type_btf_obj_fd: a.value_type_btf_obj_fd,
        }),
      ),
    );
  }
  update(fd: number, key: Uint8Array, value: Uint8Array, flags: number) {
    return this.wrap(() => rc(bpf.bpf_map_update_elem(this.h, fd, key, value, flags)));
  }
  lookup(fd: number, key: Uint8Array, size: number, flags: number) {
    const v = new Uint8Array(size);
    return this.wrap(() => rc(bpf.bpf_map_lookup_elem_flags(this.h, fd, key, v, flags), { bytes: v }));
  }
  delete(fd: number, key: Uint8Array) {
    return this.wrap(() => rc(bpf.bpf_map_delete_elem(this.h, fd, key)));
  }
  nextKey(fd: number, key: Uint8Array | null, size: number) {
    const next = new Uint8Array(size);
    return this.wrap(() => rc(bpf.bpf_map_get_next_key(this.h, fd, key, next), { bytes: next }));
  }
  freeze(fd: number) {
    return this.wrap(() => rc(bpf.bpf_map_freeze(this.h, fd)));
  }
  progLoad(a: ProgLoadArgs) {
    return this.wrap(() =>
      rc(
        bpf.bpf_prog_load(this.h, a.prog_type, a.name || null, a.license, decodeInsns(a.insns), {
          expected_attach_type: a.expected_attach_type,
          attach_btf_id: a.attach_btf_id,
          prog_flags: a.prog_flags,
        }),
      ),
    );
  }
  private readonly objs = new Map<string, BpfObject>();

  /**
   * Open and load a committed object once. Unlike the host helper (libbpf 1.1, where struct_ops
   * maps can be left uncreated), the maps are created here (in INIT, never updated): libbpf >= 1.4
   * does not load struct_ops programs whose maps are not created, and BpfObject follows it.
   */
  private loadObj(path: string): BpfObject {
    let obj = this.objs.get(path);
    if (!obj) {
      obj = BpfObject.open(new Uint8Array(readFileSync(join(repoRoot(), "bpf/obj", path))));
      obj.load(this.h);
      this.objs.set(path, obj);
    }
    return obj;
  }

  async objProg(path: string, prog: string): Promise<Outcome> {
    return this.wrap(() => {
      const p = this.loadObj(path).findProgram(prog);
      if (!p || p.fd < 0) return { ok: false, unsupported: `structops: no loaded program ${prog} in ${path}` };
      return rc(p.fd);
    });
  }

  async objMap(path: string, map: string): Promise<Outcome> {
    return this.wrap(() => {
      const m = this.loadObj(path).findMap(map);
      if (!m || m.fd < 0) return { ok: false, unsupported: `structops: no map ${map} in ${path}` };
      return rc(m.fd);
    });
  }

  linkCreate(mapFd: number, attachType: number, flags: number) {
    return this.wrap(() => rc(bpf.bpf_link_create(this.h, mapFd, 0, attachType, { flags })));
  }
  linkUpdate(linkFd: number, newMapFd: number, flags: number, oldMapFd: number) {
    return this.wrap(() => rc(bpf.bpf_link_update(this.h, linkFd, newMapFd, { flags, old_map_fd: oldMapFd })));
  }
  linkDetach(fd: number) {
    return this.wrap(() => rc(bpf.bpf_link_detach(this.h, fd)));
  }
  close(fd: number) {
    return this.wrap(() => rc(bpf.close(this.h, fd)));
  }
  info(kind: "map" | "link" | "prog", fd: number) {
    return this.wrap(() => {
      const info: Record<string, unknown> = {};
      const r =
        kind === "map"
          ? bpf.bpf_map_get_info_by_fd(this.h, fd, info)
          : kind === "link"
            ? bpf.bpf_link_get_info_by_fd(this.h, fd, info)
            : bpf.bpf_prog_get_info_by_fd(this.h, fd, info);
      if (r < 0) return rc(r);
      const fields: Record<string, string> = {};
      for (const [k, v] of Object.entries(info)) {
        if (typeof v === "number" || typeof v === "bigint") fields[k] = String(v);
        else if (typeof v === "string") fields[k] = v || "-";
        else if (v && typeof v === "object" && !(v instanceof Uint8Array))
          for (const [k2, v2] of Object.entries(v)) if (typeof v2 === "number") fields[k2] = String(v2);
      }
      return { ok: true, ret: 0, fields };
    });
  }
  mapFdById(id: number, openFlags: number) {
    return this.wrap(() => rc(bpf.bpf_map_get_fd_by_id_opts(this.h, id, { open_flags: openFlags })));
  }
  poll(fd: number) {
    return this.wrap(() => {
      const f = this.h.process.files.get(fd);
      const revents = f.f_op.poll ? f.f_op.poll(f) : 0;
      return { ok: true, ret: revents ? 1 : 0, fields: { revents: String(revents) } };
    });
  }
  testRun(fd: number, ctx: Uint8Array, state: Uint8Array | null, o: TestRunOpts = {}) {
    return this.wrap(() => {
      const c = ctx.slice();
      const st = state ? state.slice() : null;
      if (st && c.length >= 8) new DataView(c.buffer).setBigUint64(0, bpfDummyUserPtr(this.h.process, st), true);
      const opts: bpf.BpfTestRunOpts = { ctx_in: c, ctx_size_in: o.ctxSize ?? c.length, flags: o.flags, cpu: o.cpu };
      const r = bpf.bpf_prog_test_run_opts(this.h, fd, opts);
      if (r < 0) return rc(r);
      return { ok: true, ret: r, fields: { retval: String((opts.retval ?? 0) >>> 0) }, bytes: st ?? undefined };
    });
  }
  fdinfo(fd: number) {
    return this.wrap(() => ({
      ok: true,
      ret: 0,
      bytes: new TextEncoder().encode(this.kernel.fdinfo(this.h.process, fd)),
    }));
  }
  async dropCaps(): Promise<Outcome> {
    for (const cap of ALL_CAPS) this.h.process.setCap(cap, false);
    return { ok: true, ret: 0 };
  }
  async tcpXfer(cc: string, bytes: number, dropEvery: number): Promise<Outcome> {
    const ca = this.cong.tcp_ca_find(cc);
    if (!ca) return { ok: false, errno: 2 /* ENOENT, as setsockopt(TCP_CONGESTION) */ };
    const mss = 1448;
    return this.wrap(() => {
      const sim = new Simulation({
        // A loopback-like path: fast, short, deep enough not to drop.
        link: { rateBps: 10e9, delayNs: 20e3, buffer: { bytes: 4 << 20 }, lossRate: dropEvery ? 1 / dropEvery : 0 },
        durationNs: 10e9,
        // Only the client sets TCP_CONGESTION: the accepted socket runs the netns default.
        flows: [{ cc: ca, segments: Math.ceil(bytes / mss), rcvCc: this.cong.tcp_get_default_congestion_control() }],
        mss,
        tcp: this.tcp,
      });
      const res = sim.run();
      const done = sim.conns[0]?.done() ?? false;
      const used = res.metrics.flows[0]?.cc ?? "?";
      return { ok: true, ret: bytes, fields: { received: done ? String(bytes) : "incomplete", cc: used } };
    });
  }
  async shutdown(): Promise<void> {
    this.kernel.flushWork();
  }
}
