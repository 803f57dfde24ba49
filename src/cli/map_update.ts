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
import { JsonWriter } from "../btf/json_writer.js";
import { btfTypeSeqShow, btfTypeSeqShowJson } from "../btf/seq_show.js";
import { bpf_cmd, bpf_map_type } from "../uapi/bpf.js";
import { BpfError } from "../uapi/errno.js";
import { allIds, btfById, type Handle, hexBytes } from "./bpf_info.js";
import { CliError, EXIT_ERROR, EXIT_NO, strerrorOf } from "./errors.js";
import {
  type CliSession,
  io,
  jsonOut,
  openSession,
  optsOf,
  type SessionOp,
  type SessionOpts,
  sessionOptions,
} from "./session.js";

const BPF_ANY = 0;
const BPF_NOEXIST = 1;
const BPF_EXIST = 2;
const BPF_OBJ_NAME_LEN = 16;

/** bpftool's is_prefix(): the word typed is a prefix of the keyword. */
const isPrefix = (word: string | undefined, keyword: string): boolean => word !== undefined && keyword.startsWith(word);

/** A failure bpftool reports with no message (a name no map or program has): exit 255, silently. */
class SilentFailure extends Error {}

const fail = (msg: string): never => {
  throw new CliError(msg);
};

/**
 * strtoul(s, &end, base) for one argument: the value, or null when characters are left after the
 * number (`*endptr` set). No digits at all leaves end at the start, so only "" passes as 0.
 */
function strtoul(s: string, base: number): bigint | null {
  let i = 0;
  while (i < s.length && /\s/.test(s[i]!)) i++;
  let neg = false;
  if (s[i] === "+" || s[i] === "-") neg = s[i++] === "-";
  let b = base;
  if ((b === 0 || b === 16) && /^0[xX][0-9a-fA-F]/.test(s.slice(i))) {
    i += 2;
    b = 16;
  } else if (b === 0) b = s[i] === "0" ? 8 : 10;
  const digit = b === 16 ? /[0-9a-fA-F]/ : b === 8 ? /[0-7]/ : /[0-9]/;
  const start = i;
  let v = 0n;
  while (i < s.length && digit.test(s[i]!)) v = v * BigInt(b) + BigInt(Number.parseInt(s[i++]!, b));
  if (i === start) return s === "" ? 0n : null;
  if (i !== s.length) return null;
  return BigInt.asUintN(64, neg ? -v : v);
}

/** parse_bytes(): `n` bytes (after an optional `hex`), returning the arguments left. */
function parseBytes(argv: string[], name: string, out: Uint8Array, n: number): string[] {
  let base = 0;
  if (isPrefix(argv[0], "hex")) {
    base = 16;
    argv = argv.slice(1);
  }
  let i = 0;
  while (i < n && argv[i] !== undefined) {
    const v = strtoul(argv[i]!, base);
    if (v === null) fail(`error parsing byte: ${argv[i]}`);
    out[i] = Number(v! & 0xffn);
    i++;
  }
  if (i !== n) fail(`${name} expected ${n} bytes got ${i}`);
  return argv.slice(i);
}

interface MapInfo {
  id: number;
  type: number;
  name: string;
  key_size: number;
  value_size: number;
  btf_id: number;
  btf_key_type_id: number;
  btf_value_type_id: number;
  btf_vmlinux_value_type_id: number;
}

function objInfo(h: Handle, fd: number): Record<string, unknown> {
  const attr: Record<string, unknown> = { bpf_fd: fd };
  h.bpf(bpf_cmd.BPF_OBJ_GET_INFO_BY_FD, attr);
  return attr.info as Record<string, unknown>;
}

function mapInfo(h: Handle, fd: number): MapInfo {
  let i: Record<string, unknown>;
  try {
    i = objInfo(h, fd);
  } catch (e) {
    if (e instanceof BpfError) fail(`can't get map info: ${strerrorOf(e.errno)}`);
    throw e;
  }
  const n = (k: string) => Number(i[k] ?? 0);
  return {
    id: n("id"),
    type: n("type"),
    name: String(i.name ?? ""),
    key_size: n("key_size"),
    value_size: n("value_size"),
    btf_id: n("btf_id"),
    btf_key_type_id: n("btf_key_type_id"),
    btf_value_type_id: n("btf_value_type_id"),
    btf_vmlinux_value_type_id: n("btf_vmlinux_value_type_id"),
  };
}

/** get_fd_type(): what an fd is, from its fdinfo (bpftool reads the anon inode's name). */
function fdTypeName(h: Handle, fd: number): string {
  const info = h.fdinfo(fd);
  if (/^map_type:/m.test(info)) return "map";
  if (/^prog_type:/m.test(info)) return "prog";
  if (/^link_type:/m.test(info)) return "link";
  return "unknown";
}

/** open_obj_pinned_any(): BPF_OBJ_GET on the path, then the object's kind must be `want`. */
function openPinned(h: Handle, path: string, want: "map" | "prog"): number {
  let fd: number;
  try {
    fd = h.bpf(bpf_cmd.BPF_OBJ_GET, { pathname: path, bpf_fd: 0, file_flags: 0 });
  } catch (e) {
    if (e instanceof BpfError) fail(`bpf obj get (${path}): ${strerrorOf(e.errno)}`);
    throw e;
  }
  const t = fdTypeName(h, fd);
  if (t !== want) {
    h.close(fd);
    fail(`incorrect object type: ${t}`);
  }
  return fd;
}

function parseIdArg(word: string | undefined): number {
  const v = word === undefined ? null : strtoul(word, 0);
  if (v === null || v > 0xffffffffn) fail(`can't parse ${word} as ID`);
  return Number(v);
}

/** Every object of a kind whose info passes `match`, opened (bpftool's *_fd_by_name / _by_tag). */
function fdsWhere(h: Handle, kind: "map" | "prog", match: (info: Record<string, unknown>) => boolean): number[] {
  const get = kind === "map" ? bpf_cmd.BPF_MAP_GET_FD_BY_ID : bpf_cmd.BPF_PROG_GET_FD_BY_ID;
  const key = kind === "map" ? "map_id" : "prog_id";
  const out: number[] = [];
  for (const id of allIds(h, kind)) {
    let fd: number;
    try {
      fd = h.bpf(get, { [key]: id });
    } catch (e) {
      if (e instanceof BpfError && e.code === "ENOENT") continue;
      throw e;
    }
    if (match(objInfo(h, fd))) out.push(fd);
    else h.close(fd);
  }
  return out;
}

/** One fd from a name or tag search: several is an error, none fails without a message. */
function onlyOne(h: Handle, fds: number[], what: string): number {
  if (fds.length === 1) return fds[0]!;
  for (const fd of fds) h.close(fd);
  if (fds.length > 1) fail(`several ${what} match this handle`);
  throw new SilentFailure();
}

/** map_parse_fd(): MAP at the front of argv; the fd and the arguments left. */
function mapParseFd(h: Handle, argv: string[]): [number, string[]] {
  const [kw, val] = argv;
  if (isPrefix(kw, "id")) {
    const id = parseIdArg(val);
    try {
      return [h.bpf(bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: id }), argv.slice(2)];
    } catch (e) {
      if (e instanceof BpfError) fail(`get map by id (${id}): ${strerrorOf(e.errno)}`);
      throw e;
    }
  }
  if (isPrefix(kw, "name")) {
    if ((val ?? "").length > BPF_OBJ_NAME_LEN - 1) fail("can't parse name");
    return [
      onlyOne(
        h,
        fdsWhere(h, "map", (i) => i.name === val),
        "maps",
      ),
      argv.slice(2),
    ];
  }
  if (isPrefix(kw, "pinned")) return [openPinned(h, val ?? "", "map"), argv.slice(2)];
  return fail(`expected 'id', 'name' or 'pinned', got: '${kw}'?`);
}

/** prog_parse_fd(): PROG at the front of argv. */
function progParseFd(h: Handle, argv: string[]): [number, string[]] {
  const [kw, val] = argv;
  if (isPrefix(kw, "id")) {
    const id = parseIdArg(val);
    try {
      return [h.bpf(bpf_cmd.BPF_PROG_GET_FD_BY_ID, { prog_id: id }), argv.slice(2)];
    } catch (e) {
      if (e instanceof BpfError) fail(`get by id (${id}): ${strerrorOf(e.errno)}`);
      throw e;
    }
  }
  if (isPrefix(kw, "tag")) {
    const m = /^[0-9a-fA-F]{16}$/.test(val ?? "") ? val!.toLowerCase() : null;
    if (!m) fail("can't parse tag");
    return [
      onlyOne(
        h,
        fdsWhere(h, "prog", (i) => hexBytes(i.tag as Uint8Array) === m),
        "programs",
      ),
      argv.slice(2),
    ];
  }
  if (isPrefix(kw, "name")) {
    if ((val ?? "").length > BPF_OBJ_NAME_LEN - 1) fail("can't parse name");
    return [
      onlyOne(
        h,
        fdsWhere(h, "prog", (i) => i.name === val),
        "programs",
      ),
      argv.slice(2),
    ];
  }
  if (isPrefix(kw, "pinned")) return [openPinned(h, val ?? "", "prog"), argv.slice(2)];
  return fail(`expected 'id', 'tag', 'name' or 'pinned', got: '${kw}'?`);
}

const isPerCpu = (t: number) =>
  t === bpf_map_type.BPF_MAP_TYPE_PERCPU_HASH ||
  t === bpf_map_type.BPF_MAP_TYPE_PERCPU_ARRAY ||
  t === bpf_map_type.BPF_MAP_TYPE_LRU_PERCPU_HASH ||
  t === bpf_map_type.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
const isMapOfMaps = (t: number) =>
  t === bpf_map_type.BPF_MAP_TYPE_ARRAY_OF_MAPS || t === bpf_map_type.BPF_MAP_TYPE_HASH_OF_MAPS;
const isProgArray = (t: number) => t === bpf_map_type.BPF_MAP_TYPE_PROG_ARRAY;

/** What parse_elem found: the key, the value, the flags, and the fd a map-of-maps or prog-array value holds. */
interface Elem {
  key?: Uint8Array;
  value?: Uint8Array;
  flags: number;
  valueFd?: number;
  /** The kind of object valueFd is. */
  valueKind?: "map" | "prog";
}

/** parse_elem(): `want` says which of key, value, flags the verb takes. */
function parseElem(
  h: Handle,
  argv: string[],
  info: MapInfo,
  want: { key: boolean; value: boolean; flags: boolean },
  out: Elem,
): void {
  let needKey = want.key;
  let needValue = want.value;
  let flagsOk = want.flags;
  let args = argv;
  for (;;) {
    const w = args[0];
    if (w === undefined) {
      if (!needKey && !needValue) return;
      fail(`did not find ${needKey ? "key" : "value"}`);
    }
    if (isPrefix(w, "key")) {
      if (!needKey) fail(want.key ? "duplicate key" : "unnecessary key");
      out.key = new Uint8Array(info.key_size);
      args = parseBytes(args.slice(1), "key", out.key, info.key_size);
      needKey = false;
    } else if (isPrefix(w, "value")) {
      if (!needValue) fail(want.value ? "duplicate value" : "unnecessary value");
      args = args.slice(1);
      out.value = new Uint8Array(info.value_size);
      if (isMapOfMaps(info.type) || isProgArray(info.type)) {
        const maps = isMapOfMaps(info.type);
        if (info.value_size !== 4) fail(`value smaller than 4B for ${maps ? "map in map" : "map of progs"}?`);
        if (args[0] === undefined || args[1] === undefined)
          fail(`not enough value arguments for ${maps ? "map in map" : "map of progs"}`);
        if (!maps && isPrefix(args[0], "id") && !jsonMode) {
          io.err(
            "Warning: updating program array via MAP_ID, make sure this map is kept open\n         by some process or pinned otherwise update will be lost\n",
          );
        }
        const [fd, rest] = maps ? mapParseFd(h, args) : progParseFd(h, args);
        out.valueFd = fd;
        out.valueKind = maps ? "map" : "prog";
        new DataView(out.value.buffer).setUint32(0, fd, true);
        args = rest;
      } else {
        args = parseBytes(args, "value", out.value, info.value_size);
      }
      needValue = false;
    } else if (isPrefix(w, "any") || isPrefix(w, "noexist") || isPrefix(w, "exist")) {
      if (!flagsOk) fail(`flags specified multiple times: ${w}`);
      out.flags = isPrefix(w, "any") ? BPF_ANY : isPrefix(w, "noexist") ? BPF_NOEXIST : BPF_EXIST;
      flagsOk = false;
      args = args.slice(1);
    } else {
      fail(`expected key or value, got: ${w}`);
    }
  }
}

/** Whether the command prints JSON (warnings, p_info, are left out then). */
let jsonMode = false;

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

/** do_dump_btf() as a JS value: the key and the value (per-CPU: every CPU's). */
function btfEntry(h: Handle, btf: Btf, info: MapInfo, key: Uint8Array, value: Uint8Array, plain: boolean): unknown {
  const show = (id: number, b: Uint8Array) =>
    plain ? new RawJson(btfTypeSeqShow(btf, id, b)) : btfTypeSeqShowJson(btf, id, b);
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

/** Text the BTF printer already laid out (pretty, at depth 0), placed as one value of an object. */
class RawJson {
  constructor(readonly text: string) {}
}

/** bpftool's pretty JSON writer, with the printer's texts (laid out from depth 0) shifted to where they go. */
function prettyWithRaw(v: unknown): string {
  const w = new JsonWriter(true);
  const put = (x: unknown, depth: number): void => {
    if (x instanceof RawJson) w.raw(x.text.replace(/\n/g, `\n${"    ".repeat(depth)}`));
    else if (Array.isArray(x)) {
      w.startArray();
      for (const y of x) put(y, depth + 1);
      w.endArray();
    } else if (x && typeof x === "object") {
      w.startObject();
      for (const [k, y] of Object.entries(x as Record<string, unknown>)) {
        w.name(k);
        put(y, depth + 1);
      }
      w.endObject();
    } else if (typeof x === "string") w.string(x);
    else w.raw(String(x));
  };
  put(v, 0);
  return w.toString();
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
 * do_dump(): every entry, as `lookup` prints one: plain, a JSON array through the map's BTF where it
 * has BTF, else hex rows and the count. An entry gone between get_next_key and lookup (or a
 * struct_ops map's unset value) is left out.
 */
export function dumpMap(h: Handle, id: number, json: boolean): string | unknown[] {
  return withMap(h, ["id", String(id)], (fd, info) => {
    const btf = mapKvBtf(h, fd, info);
    const rows: unknown[] = [];
    let text = "";
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
      else if (btf) rows.push(btfEntry(h, btf, info, key, value, true));
      else text += entryPlain(h, info, key, value);
    }
    if (json) return rows;
    if (btf) return prettyWithRaw(rows);
    return `${text}Found ${n} element${n === 1 ? "" : "s"}\n`;
  });
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
    if (btf) return { text: prettyWithRaw(btfEntry(h, btf, info, e.key!, value, true)), found: true };
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

async function runVerb(c: Command, boot: boolean, fn: (s: CliSession, o: SessionOpts) => void): Promise<void> {
  const o = optsOf<SessionOpts>(c);
  jsonMode = !!(o.json || o.pretty);
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
