/**
 * BPF congestion controls as simulation sources: boot a kernel with TCP and bpf_tcp_ca, load a BPF object
 * with the loader, attach its struct_ops map (the CA registers under its .name), and later swap it live
 * with BPF_LINK_UPDATE ("Transit between BPF TCP congestion controls").
 */
import { Kernel } from "../kernel/kernel.js";
import { type BpfHandle, bpf_map_lookup_elem } from "../loader/bpf.js";
import type { BpfMap } from "../loader/maps.js";
import { BpfObject } from "../loader/object.js";
import type { BpfStructOpsLink } from "../loader/struct_ops_attach.js";
import { basename } from "../platform.js";
import { QdiscKernel, qdiscSubsystem } from "../subsys/qdisc/qdisc_init.js";
import { bpfTcpCaSubsystem } from "../subsys/tcp/bpf_tcp_ca.js";
import type { TcpCongestionOps } from "../subsys/tcp/tcp_cong.js";
import { TcpKernel, tcpSubsystem } from "../subsys/tcp/tcp_init.js";
import { BTF_KIND_DATASEC } from "../uapi/btf.js";
import { BpfError, EINVAL, ENOENT } from "../uapi/errno.js";
import type { Tier, VmProgram } from "../vm/program.js";

/** An object's struct_ops map: MAP, or the only one; ENOENT naming the maps otherwise. */
export function structOpsMapOf(obj: BpfObject, path: string, map?: string): BpfMap {
  const maps = obj.maps.filter((m) => m.structOps);
  const m = map ? maps.find((x) => x.name === map) : maps.length === 1 ? maps[0] : undefined;
  if (!m) {
    const names = maps.map((x) => x.name).join(", ") || "none";
    throw new BpfError(
      ENOENT,
      `${path}: ${map ? `no struct_ops map '${map}'` : "pick a map with OBJ:MAP"} (maps: ${names})`,
    );
  }
  return m;
}

/** "path/to/x.bpf.o[:map]" */
export function parseObjSpec(spec: string): { path: string; map?: string } {
  const m = /^(.*\.o)(?::([A-Za-z_][\w]*))?$/.exec(spec);
  if (!m) throw new BpfError(EINVAL, `'${spec}' is not OBJ[:MAP] (a BPF object file ending in .o)`);
  return { path: m[1]!, map: m[2] };
}

export function isObjSpec(spec: string): boolean {
  return /\.o(:[A-Za-z_]\w*)?$/.test(spec);
}

/** tcp_congestion_ops.name in a struct_ops map's data (offset 88 in the kernel's layout, §1). */
function caNameOf(map: BpfMap): string {
  const d = map.structOps!.data;
  const name = d.subarray(88, 104);
  const nul = name.indexOf(0);
  return new TextDecoder().decode(nul >= 0 ? name.subarray(0, nul) : name);
}

export class BpfCcHost {
  readonly tcp = new TcpKernel();
  readonly kernel: Kernel;
  readonly h: BpfHandle;
  private readonly links = new Map<string, BpfStructOpsLink>();
  /** Every object loaded, in order, with the spec it came from. */
  readonly objects: { spec: string; obj: BpfObject }[] = [];
  /** Which object each registered ops came from (the trace's cc labels). */
  private readonly origin = new WeakMap<TcpCongestionOps, string>();

  /** The packet scheduler, when the kernel was booted with one (`{ qdisc: true }`). */
  readonly qdisc?: QdiscKernel;

  constructor(config: Record<string, number | string | boolean> = {}, o: { qdisc?: boolean } = {}) {
    const qdisc = o.qdisc ? new QdiscKernel() : undefined;
    this.qdisc = qdisc;
    this.kernel = new Kernel({
      subsystems: [
        tcpSubsystem(this.tcp),
        bpfTcpCaSubsystem(() => this.tcp.cong),
        ...(qdisc ? [qdiscSubsystem(qdisc)] : []),
      ],
      config,
    });
    this.h = { kernel: this.kernel, process: this.kernel.newProcess() };
  }

  /** Open and load OBJ, return its struct_ops map (MAP, or the only one). */
  load(spec: string): BpfMap {
    const { path, map } = parseObjSpec(spec);
    const obj = BpfObject.open(path);
    obj.load(this.h);
    this.objects.push({ spec, obj });
    return structOpsMapOf(obj, path, map);
  }

  /** Load and attach: the CA is registered; returns its name. */
  attach(spec: string): string {
    const m = this.load(spec);
    const link = m.attachStructOps();
    const name = caNameOf(m);
    this.links.set(name, link);
    const ops = this.tcp.cong.tcp_ca_find(name);
    if (!ops) throw new BpfError(ENOENT, `${spec}: '${name}' did not register`);
    this.origin.set(ops, basename(parseObjSpec(spec).path));
    return name;
  }

  /**
   * Load a BPF qdisc and register its struct_ops map (the skeleton's attach: a map update, no
   * link): its `id` becomes a qdisc kind. Returns the kind.
   */
  attachQdisc(spec: string): string {
    const qk = this.qdisc;
    if (!qk) throw new BpfError(EINVAL, `${spec}: the kernel was booted without the packet scheduler`);
    const before = new Set(qk.sched.kindNames());
    const m = this.load(spec);
    m.attachStructOps();
    const kind = qk.sched.kindNames().find((x) => !before.has(x));
    if (!kind) throw new BpfError(ENOENT, `${spec}: no qdisc kind registered`);
    return kind;
  }

  /**
   * A global data section (`.bss` by default) of the last object loaded from PATH, read from the kernel
   * map as bpf_map_lookup_elem does: how tests see BPF-side counters.
   */
  globals(path: string, section = ".bss"): DataView | undefined {
    const o = [...this.objects].reverse().find((x) => parseObjSpec(x.spec).path === path)?.obj;
    const m = o?.internalMap(section);
    if (!m) return undefined;
    const out = new Uint8Array(m.valueSize);
    const err = bpf_map_lookup_elem(this.h, m.fd, new Uint8Array(4), out);
    if (err) throw new BpfError(-err, `${path}: cannot read ${section}`);
    return new DataView(out.buffer);
  }

  /** A global variable of the last object loaded from PATH (a u32 or u64 in .bss/.data), by its BTF name. */
  global(path: string, name: string, section = ".bss"): bigint {
    const o = [...this.objects].reverse().find((x) => parseObjSpec(x.spec).path === path)?.obj;
    const btf = o?.btf;
    const sec = btf?.findByNameKind(section, BTF_KIND_DATASEC) ?? -1;
    const t = sec > 0 ? btf!.typeById(sec) : undefined;
    const v = t?.kind === BTF_KIND_DATASEC ? t.vars.find((x) => btf!.typeById(x.type).name === name) : undefined;
    const data = this.globals(path, section);
    if (!v || !data) throw new BpfError(ENOENT, `${path}: no variable '${name}' in ${section}`);
    return v.size === 8 ? data.getBigUint64(v.offset, true) : BigInt(data.getUint32(v.offset, true));
  }

  /** Run every loaded program in this VM tier from now on (benchmarks: the interpreter against the JIT). */
  setTier(tier: Tier): void {
    const vm = this.kernel.vm;
    if (!vm) throw new BpfError(EINVAL, "the kernel has no VM");
    for (const prog of this.kernel.prog_idr.values()) if (prog.vmProg) vm.setTier(prog.vmProg as VmProgram, tier);
  }

  /** "name (object.bpf.o)" for ops that came from a BPF object, else undefined. */
  describe(ops: TcpCongestionOps): string | undefined {
    const o = this.origin.get(ops);
    return o === undefined ? undefined : `${ops.name} (${o})`;
  }

  /**
   * Prepare a live switch to OBJ2: load it now; the returned function performs the switch at the chosen
   * time: BPF_LINK_UPDATE when a link of the same CA name exists (tcp_update_congestion_control),
   * otherwise a plain attach under the new name. It returns the ops sockets should re-select.
   */
  prepareSwitch(spec: string): () => TcpCongestionOps {
    const m = this.load(spec);
    const name = caNameOf(m);
    return () => {
      const link = this.links.get(name);
      if (link?.isRealLink) link.updateMap(m);
      else this.links.set(name, m.attachStructOps());
      const ops = this.tcp.cong.tcp_ca_find(name);
      if (!ops) throw new BpfError(ENOENT, `${spec}: '${name}' is not registered after the switch`);
      this.origin.set(ops, basename(parseObjSpec(spec).path));
      return ops;
    };
  }
}
