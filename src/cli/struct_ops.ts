/**
 * `structops struct_ops register OBJ | show | dump | unregister`, with bpftool's spellings and
 * output. Each invocation boots one simulated kernel (TCP congestion control glue and
 * bpf_dummy_ops): `register` loads the objects and registers every struct_ops map in them;
 * `show`, `dump` and `unregister` act on the maps registered by `--obj OBJ` in the same run.
 */
import type { Command } from "commander";
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

const STATE_NAMES = ["init", "inuse", "tobefree", "ready"];

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

  /** bpftool struct_ops register OBJ: load, then attach every struct_ops map (autoattach). */
  register(path: string): BpfStructOpsMap[] {
    const h = { kernel: this.kernel, process: this.proc };
    const obj = BpfObject.open(path);
    obj.load(h);
    const out: BpfStructOpsMap[] = [];
    for (const map of obj.maps) {
      if (!map.structOps || map.fd < 0) continue;
      bpfMapAttachStructOps(map, h);
      const st = this.proc.files.get(map.fd).private_data as BpfStructOpsMap;
      this.messages.push(`Registered ${st.desc.type.name} ${st.name} id ${st.id}`);
      out.push(st);
    }
    return out;
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

interface Opts {
  json?: boolean;
  pretty?: boolean;
  obj?: string[];
}

function session(objs: string[] | undefined): StructOpsSession {
  const s = new StructOpsSession();
  for (const o of objs ?? []) s.register(o);
  s.messages.length = 0;
  return s;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function register(program: Command): void {
  const cmd = program.command("struct_ops").description("register, show, dump and unregister struct_ops maps");
  cmd
    .command("register")
    .argument("<OBJ...>", "BPF object(s) whose struct_ops maps to register")
    .option("-j, --json", "JSON output")
    .description("load OBJ and register every struct_ops map in it")
    .action((objs: string[], o: Opts) => {
      const s = new StructOpsSession();
      const maps = objs.flatMap((f) => s.register(f));
      if (o.json) process.stdout.write(`${JSON.stringify(maps.map((m) => s.show(m)))}\n`);
      else for (const line of s.messages) process.stderr.write(`${line}\n`);
    });
  cmd
    .command("show")
    .alias("list")
    .argument("[SPEC...]", "id ID | name NAME")
    .option("--obj <OBJ>", "register this object first (repeatable)", collect)
    .option("-j, --json", "JSON output")
    .option("-p, --pretty", "pretty JSON")
    .description("show registered struct_ops maps")
    .action((spec: string[], o: Opts) => {
      const s = session(o.obj);
      const rows = s.select(spec).map((m) => s.show(m));
      if (o.json || o.pretty) process.stdout.write(`${JSON.stringify(rows, null, o.pretty ? 4 : undefined)}\n`);
      else for (const r of rows) process.stdout.write(`${r.id}: ${r.name.padEnd(15)} ${r.kernel_struct_ops}\n`);
    });
  cmd
    .command("dump")
    .argument("[SPEC...]", "id ID | name NAME")
    .option("--obj <OBJ>", "register this object first (repeatable)", collect)
    .description("dump struct_ops maps: map info and value")
    .action((spec: string[], o: Opts) => {
      const s = session(o.obj);
      for (const m of s.select(spec)) process.stdout.write(s.dump(m));
    });
  cmd
    .command("unregister")
    .argument("<SPEC...>", "id ID | name NAME")
    .option("--obj <OBJ>", "register this object first (repeatable)", collect)
    .description("unregister struct_ops maps")
    .action((spec: string[], o: Opts) => {
      const s = session(o.obj);
      for (const m of s.select(spec)) s.unregister(m);
      for (const line of s.messages) process.stderr.write(`${line}\n`);
      for (const m of s.maps()) process.stdout.write(`${m.id}: ${m.name} ${STATE_NAMES[m.state] ?? m.state}\n`);
    });
}
