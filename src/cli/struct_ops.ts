/**
 * `structops struct_ops register OBJ [LINK_DIR] | show | dump | unregister`, bpftool's struct_ops
 * verbs (tools/bpf/bpftool/struct_ops.c) with its spellings, output and exit status, on the
 * session's persistent simulated kernel (src/cli/session.ts): `register` and `unregister` are
 * recorded in the state file, so a later invocation shows them. `--obj OBJ` keeps the older
 * one-run behaviour: a fresh kernel with OBJ registered (its links held for the run), nothing saved.
 *
 * The maps are found as bpftool finds them: walk the map ids, open each, keep the struct_ops ones.
 */
import type { Command } from "commander";
import type { Btf } from "../btf/btf.js";
import { JsonWriter } from "../btf/json_writer.js";
import { btfTypeSeqShow } from "../btf/seq_show.js";
import { bpf_cmd, bpf_map_type } from "../uapi/bpf.js";
import { BpfError } from "../uapi/errno.js";
import { allIds, type Handle } from "./bpf_info.js";
import { funcPtrAsProg } from "./btf_dumper.js";
import { CliError, EXIT_ERROR, strerrorOf } from "./errors.js";
import { io, openSession, optsOf, readBytes, type SessionOpts, sessionOptions } from "./session.js";

interface Opts extends SessionOpts {
  obj?: string[];
}

const VALUE_PREFIX = "bpf_struct_ops_";

/** One struct_ops map as bpftool's work functions see it: its info, the kernel's BTF, its fd. */
interface Found {
  fd: number;
  info: Record<string, unknown>;
  btf: Btf;
}

function mapInfo(h: Handle, fd: number): Record<string, unknown> {
  const attr: Record<string, unknown> = { bpf_fd: fd };
  h.bpf(bpf_cmd.BPF_OBJ_GET_INFO_BY_FD, attr);
  return attr.info as Record<string, unknown>;
}

/** The kernel BTF the map's value is described in (what libbpf_find_kernel_btf() gives bpftool). */
function kernelBtf(h: Handle, fd: number): Btf {
  return (h.object(fd) as { btfData: Btf }).btfData;
}

function kernStructOpsName(f: Found): string {
  return f.btf.typeById(Number(f.info.btf_vmlinux_value_type_id)).name.slice(VALUE_PREFIX.length);
}

/**
 * bpftool's do_work_on_struct_ops(): `id ID` (one map, checked to be struct_ops), `name NAME` or
 * nothing (every struct_ops map, by name). `fn` runs with each map's fd open.
 */
function forEachStructOps(h: Handle, spec: string[], fn: (f: Found) => void): { byId: boolean; found: number } {
  if (spec.length !== 0 && spec.length !== 2) throw new CliError(usageLine(spec));
  const [kw, term] = spec;
  if (kw !== undefined && !"id".startsWith(kw) && !"name".startsWith(kw)) throw new CliError(usageLine(spec));
  const visit = (fd: number, info: Record<string, unknown>) => {
    try {
      fn({ fd, info, btf: kernelBtf(h, fd) });
    } finally {
      h.close(fd);
    }
  };
  if (kw !== undefined && "id".startsWith(kw)) {
    const id = parseStrtoul(term!);
    if (id === undefined || id === 0 || id > 0xffffffff) throw new CliError(`invalid id ${term}`);
    let fd: number;
    try {
      fd = h.bpf(bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: id });
    } catch (e) {
      if (e instanceof BpfError) throw new CliError(`can't get map by id (${id}): ${strerrorOf(e.errno)}`);
      throw e;
    }
    const info = mapInfo(h, fd);
    if (Number(info.type) !== bpf_map_type.BPF_MAP_TYPE_STRUCT_OPS) {
      h.close(fd);
      throw new CliError(`${info.name} id ${info.id} is not a struct_ops map`);
    }
    visit(fd, info);
    return { byId: true, found: 1 };
  }
  let found = 0;
  for (const id of allIds(h, "map")) {
    let fd: number;
    try {
      fd = h.bpf(bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: id });
    } catch (e) {
      if (e instanceof BpfError && e.code === "ENOENT") continue;
      throw e;
    }
    const info = mapInfo(h, fd);
    if (Number(info.type) !== bpf_map_type.BPF_MAP_TYPE_STRUCT_OPS || (term !== undefined && info.name !== term)) {
      h.close(fd);
      continue;
    }
    found++;
    visit(fd, info);
  }
  return { byId: false, found };
}

/** strtoul(s, &end, 0) over the whole word: decimal, 0x hex or 0 octal. */
function parseStrtoul(s: string): number | undefined {
  if (/^0x[0-9a-f]+$/i.test(s)) return Number.parseInt(s.slice(2), 16);
  if (/^0[0-7]*$/.test(s)) return Number.parseInt(s, 8);
  if (/^[1-9]\d*$/.test(s)) return Number(s);
  return undefined;
}

function usageLine(spec: string[]): string {
  return `expected [id STRUCT_OPS_MAP_ID | name STRUCT_OPS_MAP_NAME], got: '${spec.join(" ")}'`;
}

/** The one-run kernel of --obj, or the session's. */
async function handleFor(o: Opts): Promise<Handle> {
  if (!o.obj?.length) return openSession(o.state);
  const { StructOpsSession } = await import("./kernel_session.js");
  const s = new StructOpsSession();
  for (const f of o.obj) {
    const r = s.register(readBytes("object", f), f, undefined, true);
    for (const e of r.errors) io.err(`Error: ${e}\n`);
  }
  return s;
}

/** bpftool's __do_show line: "%u: %-15s %-32s". */
export function showLine(id: number, name: string, kern: string): string {
  return `${id}: ${name.padEnd(15)} ${kern.padEnd(32)}\n`;
}

/** bpf_map_info as bpftool dumps it through the kernel's BTF for the struct (6.18's members, in order). */
function writeMapInfo(w: JsonWriter, info: Record<string, unknown>): void {
  w.startObject();
  w.name("bpf_map_info");
  w.startObject();
  const num = (k: string, v: unknown = info[k]) => {
    w.name(k);
    w.raw(String(Number(v ?? 0)));
  };
  for (const k of ["type", "id", "key_size", "value_size", "max_entries", "map_flags"]) num(k);
  w.name("name");
  w.string(String(info.name));
  for (const k of [
    "ifindex",
    "btf_vmlinux_value_type_id",
    "netns_dev",
    "netns_ino",
    "btf_id",
    "btf_key_type_id",
    "btf_value_type_id",
    "btf_vmlinux_id",
    "map_extra",
    "hash",
    "hash_size",
  ])
    num(k);
  w.endObject();
  w.endObject();
}

/** bpftool's __do_dump: the map's info, then its value under the kernel's value type name. */
function writeDump(h: Handle, w: JsonWriter, f: Found, plain: boolean, pretty: boolean, depth: number): void {
  const value = new Uint8Array(Number(f.info.value_size));
  try {
    h.bpf(bpf_cmd.BPF_MAP_LOOKUP_ELEM, { map_fd: f.fd, key: new Uint8Array(4), value });
  } catch (e) {
    if (e instanceof BpfError) throw new CliError(`can't lookup struct_ops map ${f.info.name} id ${f.info.id}`);
    throw e;
  }
  writeMapInfo(w, f.info);
  const typeId = Number(f.info.btf_vmlinux_value_type_id);
  w.startObject();
  w.name(f.btf.typeById(typeId).name);
  const text = btfTypeSeqShow(f.btf, typeId, value, {
    json: !plain,
    pretty: pretty || plain,
    funcPtr: (v, protoId) => funcPtrAsProg(h, f.btf, v, protoId),
  });
  w.raw(pretty || plain ? text.replace(/\n/g, `\n${"    ".repeat(depth + 1)}`) : text);
  w.endObject();
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function register(program: Command): void {
  const cmd = program.command("struct_ops").description("register, show, dump and unregister struct_ops maps");
  sessionOptions(cmd.command("register"))
    .argument("<OBJ>", "BPF object whose struct_ops maps to register")
    .argument("[LINK_DIR]", "bpffs directory to pin the links in (under /sys/fs/bpf)")
    .description("load OBJ and register every struct_ops map in it (recorded in the session)")
    .action(async (obj: string, linkDir: string | undefined, _o: Opts, c: Command) => {
      const o = optsOf<Opts>(c);
      const s = await openSession(o.state, true);
      const r = s.registerRecorded(obj, linkDir);
      s.save();
      // bpftool's p_info is silent under -j.
      if (!o.json && !o.pretty) for (const line of s.kernel.messages) io.err(`${line}\n`);
      if (r.errors.length) {
        for (const e of r.errors.slice(0, -1)) io.err(`Error: ${e}\n`);
        throw new CliError(r.errors.at(-1)!);
      }
      if (!r.maps.length) throw new CliError(`no struct_ops found in ${obj}`);
      if (o.json || o.pretty) io.out("null\n");
    });
  sessionOptions(cmd.command("show"))
    .alias("list")
    .argument("[SPEC...]", "id ID | name NAME")
    .option("--obj <OBJ>", "one-run kernel: register this object first (repeatable)", collect)
    .description("show registered struct_ops maps")
    .action(async (spec: string[], _o: Opts, c: Command) => {
      const o = optsOf<Opts>(c);
      const h = await handleFor(o);
      const json = o.json || o.pretty;
      const w = new JsonWriter(o.pretty ?? false);
      const byId = spec.length > 0 && "id".startsWith(spec[0]!);
      if (json && !byId) w.startArray();
      const r = forEachStructOps(h, spec, (f) => {
        if (!json) return void io.out(showLine(Number(f.info.id), String(f.info.name), kernStructOpsName(f)));
        w.startObject();
        w.uintField("id", Number(f.info.id));
        w.stringField("name", String(f.info.name));
        w.stringField("kernel_struct_ops", kernStructOpsName(f));
        w.endObject();
      });
      if (json && !byId) w.endArray();
      if (json) io.out(w.toString());
      if (spec.length && !r.found) {
        if (json) process.exitCode = EXIT_ERROR;
        else throw new CliError(`no struct_ops found for ${spec[1]}`);
      }
    });
  sessionOptions(cmd.command("dump"))
    .argument("[SPEC...]", "id ID | name NAME")
    .option("--obj <OBJ>", "one-run kernel: register this object first (repeatable)", collect)
    .description("dump struct_ops maps: map info and value")
    .action(async (spec: string[], _o: Opts, c: Command) => {
      const o = optsOf<Opts>(c);
      const h = await handleFor(o);
      const plain = !(o.json || o.pretty);
      const pretty = plain || (o.pretty ?? false);
      const w = new JsonWriter(pretty);
      const byId = spec.length > 0 && "id".startsWith(spec[0]!);
      if (!byId) w.startArray();
      const r = forEachStructOps(h, spec, (f) => writeDump(h, w, f, plain, pretty, byId ? 0 : 1));
      if (!byId) w.endArray();
      io.out(w.toString());
      // bpftool prints the (empty) array, then fails: a name that matched nothing.
      if (spec.length && !r.found) process.exitCode = EXIT_ERROR;
    });
  sessionOptions(cmd.command("unregister"))
    .argument("<SPEC...>", "id ID | name NAME")
    .option("--obj <OBJ>", "one-run kernel: register this object first (repeatable)", collect)
    .description("unregister struct_ops maps (recorded in the session)")
    .action(async (spec: string[], _o: Opts, c: Command) => {
      const o = optsOf<Opts>(c);
      if (spec.length !== 2) throw new CliError(usageLine(spec));
      const persist = o.obj?.length ? undefined : await openSession(o.state);
      const h = persist ?? (await handleFor(o));
      const ids: number[] = [];
      const r = forEachStructOps(h, spec, (f) => void ids.push(Number(f.info.id)));
      if (!r.found) throw new CliError(`no struct_ops found for ${spec[1]}`);
      const ks = persist ? persist.kernel : (h as import("./kernel_session.js").StructOpsSession);
      for (const id of ids) {
        try {
          if (persist) persist.record({ op: "unregister", map_id: id });
          else ks.unregister(id);
        } catch (e) {
          if (!(e instanceof BpfError)) throw e;
          throw new CliError(`can't unload struct_ops map id ${id}: ${strerrorOf(e.errno)}`);
        }
      }
      persist?.save();
      if (o.json || o.pretty) io.out("null\n");
      else for (const line of ks.messages) io.err(`${line}\n`);
    });
}
