/**
 * bpftool's `map update|lookup|delete|getnext` (tools/bpf/bpftool/map.c, 7.x) over the session's
 * kernel, with bpftool's argument grammar and messages:
 *
 *     MAP   := { id MAP_ID | pinned FILE | name MAP_NAME }
 *     DATA  := { [hex] BYTES }
 *     PROG  := { id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }
 *     VALUE := { DATA | MAP | PROG }      (MAP for maps of maps, PROG for program arrays)
 *     UPDATE_FLAGS := { any | exist | noexist }
 *
 * Keywords may be abbreviated (bpftool's is_prefix); a byte is parsed as strtoul does (base 0, or 16
 * after `hex`) and truncated to 8 bits. A per-CPU map's value is given once and written for every
 * CPU. Entries print as bpftool prints them: hex rows of 16 bytes, or the BTF-formatted key and
 * value when the map has BTF. Updates and deletes change the kernel, so the session records them
 * (by map id, and the id of the program or map a slot is given) and replays them.
 *
 * Exit status: 0 done; 1 when `lookup` finds no such key (bpftool prints "Not found" and returns
 * -ENOENT); 255 for every error, each one of bpftool's lines.
 */
import type { Command } from "commander";
import type { Btf } from "../btf/btf.js";
import { btfTypeSeqShow } from "../btf/seq_show.js";
import { bpf_cmd } from "../uapi/bpf.js";
import { BpfError } from "../uapi/errno.js";
import { btfById, type Handle, hexBytes, mapTypeName } from "./bpf_info.js";
import { EXIT_ERROR, EXIT_NO, strerrorOf } from "./errors.js";
import {
  BPF_ANY,
  type Elem,
  fail,
  isPerCpu,
  type MapInfo,
  mapInfo,
  mapParseFd,
  mapParseFds,
  objInfo,
  output,
  parseElem,
  SilentFailure,
} from "./map_parse.js";
import {
  type CliSession,
  io,
  jsonOut,
  jsonText,
  openSession,
  optsOf,
  RawJson,
  type SessionOp,
  type SessionOpts,
  sessionOptions,
} from "./session.js";

/** bpftool's fprint_hex(): bytes separated by spaces, two after every 8th, a new line every 16. */
export function fprintHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) {
    const sep = i === 0 ? "" : i % 16 === 0 ? "\n" : i % 8 === 0 ? "  " : " ";
    s += sep + b[i]!.toString(16).padStart(2, "0");
  }
  return s;
}

const hexJson = (b: Uint8Array) => Array.from(b, (x) => `0x${x.toString(16).padStart(2, "0")}`);

/** The number of possible CPUs of the session's kernel (per-CPU values come one per CPU). */
function possibleCpus(h: Handle): number {
  return (h as CliSession).kernel.kernel.nrCpus;
}

const roundUp8 = (n: number) => Math.ceil(n / 8) * 8;

/** The size of the value buffer the syscall takes: per-CPU maps one 8-aligned slot per CPU. */
function valueBufSize(h: Handle, info: MapInfo): number {
  return isPerCpu(info.type) ? roundUp8(info.value_size) * possibleCpus(h) : info.value_size;
}

/** get_map_kv_btf(): the kernel's BTF for a struct_ops value, else the map's own. */
function mapKvBtf(h: Handle, fd: number, info: MapInfo): Btf | undefined {
  if (info.btf_vmlinux_value_type_id) return (h.object(fd) as { btfData?: Btf }).btfData;
  if (info.btf_value_type_id) return btfById(h, info.btf_id);
  return undefined;
}

/**
 * do_dump_btf() as a JS value: the key and the value (per-CPU: every CPU's). `plain`: the
 * plain-text form bpftool prints without -j (pointers in hex, always pretty).
 */
function btfEntry(h: Handle, btf: Btf, info: MapInfo, key: Uint8Array, value: Uint8Array, plain: boolean): unknown {
  const show = (id: number, b: Uint8Array) =>
    new RawJson((pretty) => btfTypeSeqShow(btf, id, b, { json: !plain, pretty: pretty || plain }));
  const out: Record<string, unknown> = {};
  if (info.btf_key_type_id) out.key = show(info.btf_key_type_id, key);
  const vid = info.btf_vmlinux_value_type_id || info.btf_value_type_id;
  if (!isPerCpu(info.type)) out.value = show(vid, value);
  else {
    const step = roundUp8(info.value_size);
    out.values = Array.from({ length: possibleCpus(h) }, (_, cpu) => ({
      cpu,
      value: show(vid, value.subarray(cpu * step, cpu * step + info.value_size)),
    }));
  }
  return out;
}

/** print_entry_plain(). */
function entryPlain(h: Handle, info: MapInfo, key: Uint8Array, value: Uint8Array): string {
  if (!isPerCpu(info.type)) {
    const breakNames = info.key_size > 16 || info.value_size > 16;
    const single = info.key_size + info.value_size <= 24 && !breakNames;
    let s = "";
    if (info.key_size) s += `key:${breakNames ? "\n" : " "}${fprintHex(key)}${single ? "  " : "\n"}`;
    if (info.value_size) s += `value:${breakNames ? "\n" : " "}${fprintHex(value.subarray(0, info.value_size))}`;
    return `${s}\n`;
  }
  const step = roundUp8(info.value_size);
  let s = info.key_size ? `key:\n${fprintHex(key)}\n` : "";
  for (let cpu = 0; cpu < possibleCpus(h); cpu++) {
    const v = value.subarray(cpu * step, cpu * step + info.value_size);
    s += `value (CPU ${String(cpu).padStart(2, "0")}):${info.value_size > 16 ? "\n" : " "}${fprintHex(v)}\n`;
  }
  return s;
}

/** print_entry_json(). */
function entryJson(h: Handle, info: MapInfo, key: Uint8Array, value: Uint8Array, btf?: Btf): unknown {
  const out: Record<string, unknown> = { key: hexJson(key) };
  if (!isPerCpu(info.type)) out.value = hexJson(value.subarray(0, info.value_size));
  else {
    const step = roundUp8(info.value_size);
    out.values = Array.from({ length: possibleCpus(h) }, (_, cpu) => ({
      cpu,
      value: hexJson(value.subarray(cpu * step, cpu * step + info.value_size)),
    }));
  }
  if (btf) out.formatted = btfEntry(h, btf, info, key, value, false);
  return out;
}

/**
 * map_dump(): every entry of the map open at `fd`, as `lookup` prints one: through the map's BTF
 * where `wtr` (a JSON array, pushed to `out`), else hex rows and the count. An entry gone between
 * get_next_key and lookup (or a struct_ops map's unset value) is left out. `header`: several maps
 * are dumped, each under its id, type, name and flags.
 */
function mapDump(
  h: Handle,
  fd: number,
  info: MapInfo,
  json: boolean,
  plainBtf: boolean,
  header: boolean,
  out: unknown[],
): string {
  const btf = json || plainBtf ? mapKvBtf(h, fd, info) : undefined;
  const rows: unknown[] = [];
  let text = "";
  if (header && (json || plainBtf))
    out.push({
      id: info.id,
      type: mapTypeName(info.type) ?? info.type,
      name: info.name || undefined,
      flags: info.map_flags,
      elements: rows,
    });
  else if (json || plainBtf) out.push(rows);
  else if (header)
    text += `${info.id}: ${mapTypeName(info.type) ? `${mapTypeName(info.type)}  ` : `type ${info.type}  `}${info.name ? `name ${info.name}  ` : ""}flags 0x${info.map_flags.toString(16)}\n`;
  let n = 0;
  let prev: Uint8Array | null = null;
  for (;;) {
    const key = new Uint8Array(info.key_size);
    try {
      h.bpf(bpf_cmd.BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key: prev, next_key: key });
    } catch (e) {
      if (e instanceof BpfError && e.code === "ENOENT") break;
      throw e;
    }
    prev = key;
    const value = new Uint8Array(valueBufSize(h, info));
    try {
      h.bpf(bpf_cmd.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key, value });
    } catch (e) {
      if (e instanceof BpfError && e.code === "ENOENT") continue;
      throw e;
    }
    n++;
    if (json) rows.push(entryJson(h, info, key, value, btf));
    else if (plainBtf) rows.push(btf ? btfEntry(h, btf, info, key, value, true) : entryJson(h, info, key, value));
    else text += entryPlain(h, info, key, value);
  }
  return json || plainBtf ? "" : `${text}Found ${n} element${n === 1 ? "" : "s"}\n`;
}

/**
 * do_dump(): `map dump MAP`, every map MAP names. Without -j the dump is pretty JSON through BTF
 * when every one of them has BTF (maps_have_btf), else hex rows.
 */
export function dumpMaps(h: Handle, argv: string[], json: boolean): string | unknown {
  if (argv.length !== 2) fail("expected 'id', 'name' or 'pinned' and a map: bpftool map dump MAP");
  const fds = mapParseFds(h, argv);
  if (!fds.length) throw new SilentFailure();
  try {
    const infos = fds.map((fd) => mapInfo(h, fd));
    const plainBtf = !json && infos.every((i) => i.btf_id);
    const out: unknown[] = [];
    const texts = fds.map((fd, i) => mapDump(h, fd, infos[i]!, json, plainBtf, fds.length > 1, out));
    const tree = fds.length > 1 ? out : out[0];
    if (json) return tree;
    return plainBtf ? jsonText(tree, true) : texts.join("\n");
  } finally {
    for (const fd of fds) h.close(fd);
  }
}

/** Run `fn` with the map of argv open; a kernel error comes out as bpftool's `<what> failed: <strerror>`. */
function withMap<T>(h: Handle, argv: string[], fn: (fd: number, info: MapInfo, rest: string[]) => T): T {
  const [fd, rest] = mapParseFd(h, argv);
  try {
    return fn(fd, mapInfo(h, fd), rest);
  } finally {
    h.close(fd);
  }
}

function kernelErr(what: string, e: unknown): never {
  if (e instanceof BpfError) fail(`${what}: ${strerrorOf(e.errno)}`);
  throw e;
}

/** The recorded form of an update: the map by id, the fd value by the id of what it names. */
export type MapUpdateOp = Extract<SessionOp, { op: "map_update" }>;
export type MapDeleteOp = Extract<SessionOp, { op: "map_delete" }>;

/** do_update(); the op to record. */
function doUpdate(h: Handle, argv: string[]): MapUpdateOp {
  return withMap(h, argv, (fd, info, rest) => {
    const e: Elem = { flags: BPF_ANY };
    try {
      parseElem(h, rest, info, { key: true, value: true, flags: true }, e);
      const value = new Uint8Array(valueBufSize(h, info));
      value.set(e.value!);
      // fill_per_cpu_value(): the one value given, for every CPU.
      const step = roundUp8(info.value_size);
      if (isPerCpu(info.type)) for (let c = 1; c < possibleCpus(h); c++) value.set(e.value!, c * step);
      try {
        h.bpf(bpf_cmd.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: e.key, value, flags: e.flags });
      } catch (err) {
        kernelErr("update failed", err);
      }
      const op: MapUpdateOp = { op: "map_update", map_id: info.id, key: hexBytes(e.key!), flags: e.flags };
      if (e.valueFd !== undefined) {
        const id = Number(objInfo(h, e.valueFd).id);
        if (e.valueKind === "prog") op.value_prog_id = id;
        else op.value_map_id = id;
      } else op.value = hexBytes(e.value!);
      return op;
    } finally {
      if (e.valueFd !== undefined) h.close(e.valueFd);
    }
  });
}

const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (x) => Number.parseInt(x, 16));

/** Replay a recorded update or delete in a freshly booted session kernel. */
export function replayMapOp(h: Handle, op: MapUpdateOp | MapDeleteOp): void {
  const fd = h.bpf(bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: op.map_id });
  const fds = [fd];
  try {
    const info = mapInfo(h, fd);
    const key = unhex(op.key);
    if (op.op === "map_delete") {
      h.bpf(bpf_cmd.BPF_MAP_DELETE_ELEM, { map_fd: fd, key });
      return;
    }
    const value = new Uint8Array(valueBufSize(h, info));
    if (op.value_prog_id !== undefined || op.value_map_id !== undefined) {
      const vfd =
        op.value_prog_id !== undefined
          ? h.bpf(bpf_cmd.BPF_PROG_GET_FD_BY_ID, { prog_id: op.value_prog_id })
          : h.bpf(bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: op.value_map_id });
      fds.push(vfd);
      new DataView(value.buffer).setUint32(0, vfd, true);
    } else {
      const v = unhex(op.value ?? "");
      const step = roundUp8(info.value_size);
      for (let c = 0; c < (isPerCpu(info.type) ? possibleCpus(h) : 1); c++) value.set(v, c * step);
    }
    h.bpf(bpf_cmd.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key, value, flags: op.flags });
  } finally {
    for (const f of fds) h.close(f);
  }
}

/** do_lookup(): the entry's text or JSON; null when there is no such key. */
function doLookup(
  h: Handle,
  argv: string[],
  json: boolean,
): { text: string; found: boolean } | { json: unknown; found: boolean } {
  return withMap(h, argv, (fd, info, rest) => {
    const e: Elem = { flags: BPF_ANY };
    parseElem(h, rest, info, { key: true, value: false, flags: false }, e);
    const value = new Uint8Array(valueBufSize(h, info));
    try {
      h.bpf(bpf_cmd.BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: e.key, value });
    } catch (err) {
      if (err instanceof BpfError && err.code === "ENOENT") {
        return json
          ? { json: null, found: false }
          : { text: `key:\n${fprintHex(e.key!)}\n\nNot found\n`, found: false };
      }
      kernelErr("lookup failed", err);
    }
    const btf = mapKvBtf(h, fd, info);
    if (json) return { json: entryJson(h, info, e.key!, value, btf), found: true };
    if (btf) return { text: jsonText(btfEntry(h, btf, info, e.key!, value, true), true), found: true };
    return { text: entryPlain(h, info, e.key!, value), found: true };
  });
}

/** do_delete(); the op to record. */
function doDelete(h: Handle, argv: string[]): MapDeleteOp {
  return withMap(h, argv, (fd, info, rest) => {
    const e: Elem = { flags: BPF_ANY };
    parseElem(h, rest, info, { key: true, value: false, flags: false }, e);
    try {
      h.bpf(bpf_cmd.BPF_MAP_DELETE_ELEM, { map_fd: fd, key: e.key });
    } catch (err) {
      kernelErr("delete failed", err);
    }
    return { op: "map_delete", map_id: info.id, key: hexBytes(e.key!) };
  });
}

/** do_getnext(): the key given (or none) and the one after it. */
function doGetnext(h: Handle, argv: string[], json: boolean): string | unknown {
  return withMap(h, argv, (fd, info, rest) => {
    const e: Elem = { flags: BPF_ANY };
    if (rest.length) parseElem(h, rest, info, { key: true, value: false, flags: false }, e);
    const next = new Uint8Array(info.key_size);
    try {
      h.bpf(bpf_cmd.BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key: e.key ?? null, next_key: next });
    } catch (err) {
      kernelErr("can't get next key", err);
    }
    if (json) return { key: e.key ? hexJson(e.key) : null, next_key: hexJson(next) };
    return `${e.key ? `key:\n${fprintHex(e.key)}\n` : "key: None\n"}next key:\n${fprintHex(next)}\n`;
  });
}

/** bpftool's `usage()` for a verb given too few words, as one line. */
function needArgs(argv: string[], verb: string, synopsis: string): void {
  if (argv.length < 2) fail(`expected more arguments: bpftool map ${verb} ${synopsis}`);
}

export async function runVerb(c: Command, boot: boolean, fn: (s: CliSession, o: SessionOpts) => void): Promise<void> {
  const o = optsOf<SessionOpts>(c);
  output.json = !!(o.json || o.pretty);
  const s = await openSession(o.state, boot);
  try {
    fn(s, o);
  } catch (e) {
    if (e instanceof SilentFailure) {
      process.exitCode = EXIT_ERROR;
      return;
    }
    throw e;
  }
}

/** Add update, lookup, delete and getnext to `structops map`. */
export function registerMapElemVerbs(cmd: Command): void {
  sessionOptions(cmd.command("update"))
    .argument("[ARGS...]", "MAP [key DATA] [value VALUE] [UPDATE_FLAGS]")
    .description("update (or create) a map entry")
    .action((argv: string[], _o: SessionOpts, c: Command) =>
      runVerb(c, true, (s, o) => {
        needArgs(argv, "update", "MAP [key DATA] [value VALUE] [UPDATE_FLAGS]");
        const op = doUpdate(s, argv);
        s.state.ops.push(op);
        s.save();
        jsonOut(o, null);
      }),
    );
  sessionOptions(cmd.command("lookup"))
    .argument("[ARGS...]", "MAP [key DATA]")
    .description("look up a map entry")
    .action((argv: string[], _o: SessionOpts, c: Command) =>
      runVerb(c, false, (s, o) => {
        needArgs(argv, "lookup", "MAP [key DATA]");
        const r = doLookup(s, argv, !!(o.json || o.pretty));
        if ("json" in r) jsonOut(o, r.json);
        else io.out(r.text);
        if (!r.found) process.exitCode = EXIT_NO;
      }),
    );
  sessionOptions(cmd.command("delete"))
    .argument("[ARGS...]", "MAP key DATA")
    .description("delete a map entry")
    .action((argv: string[], _o: SessionOpts, c: Command) =>
      runVerb(c, true, (s, o) => {
        needArgs(argv, "delete", "MAP key DATA");
        const op = doDelete(s, argv);
        s.state.ops.push(op);
        s.save();
        jsonOut(o, null);
      }),
    );
  sessionOptions(cmd.command("getnext"))
    .argument("[ARGS...]", "MAP [key DATA]")
    .description("the key after a key (or the first key)")
    .action((argv: string[], _o: SessionOpts, c: Command) =>
      runVerb(c, false, (s, o) => {
        needArgs(argv, "getnext", "MAP [key DATA]");
        const r = doGetnext(s, argv, !!(o.json || o.pretty));
        if (!jsonOut(o, r)) io.out(r as string);
      }),
    );
}
