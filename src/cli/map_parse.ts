/**
 * bpftool's argument parsing for the map verbs (tools/bpf/bpftool/common.c and map.c, 7.x):
 * map_parse_fd(s), prog_parse_fd, parse_elem and parse_bytes, with their error lines.
 */
import { bpf_cmd, bpf_map_type } from "../uapi/bpf.js";
import { BpfError } from "../uapi/errno.js";
import { allIds, type Handle, hexBytes } from "./bpf_info.js";
import { CliError, strerrorOf } from "./errors.js";
import { io } from "./session.js";

/** Whether the command prints JSON (warnings, p_info, are left out then). */
export const output = { json: false };

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
const BPF_OBJ_NAME_LEN = 16;

/** bpftool's is_prefix(): the word typed is a prefix of the keyword. */
export const isPrefix = (word: string | undefined, keyword: string): boolean =>
  word !== undefined && keyword.startsWith(word);

/** A failure bpftool reports with no message (a name no map or program has): exit 255, silently. */
export class SilentFailure extends Error {}

export const fail = (msg: string): never => {
  throw new CliError(msg);
};

/**
 * strtoul(s, &end, base) for one argument: the value, or null when characters are left after the
 * number (`*endptr` set). No digits at all leaves end at the start, so only "" passes as 0.
 */
export function strtoul(s: string, base: number): bigint | null {
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
export function parseBytes(argv: string[], name: string, out: Uint8Array, n: number): string[] {
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

export interface MapInfo {
  id: number;
  type: number;
  name: string;
  key_size: number;
  value_size: number;
  map_flags: number;
  btf_id: number;
  btf_key_type_id: number;
  btf_value_type_id: number;
  btf_vmlinux_value_type_id: number;
}

export function objInfo(h: Handle, fd: number): Record<string, unknown> {
  const attr: Record<string, unknown> = { bpf_fd: fd };
  h.bpf(bpf_cmd.BPF_OBJ_GET_INFO_BY_FD, attr);
  return attr.info as Record<string, unknown>;
}

export function mapInfo(h: Handle, fd: number): MapInfo {
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
    map_flags: n("map_flags"),
    btf_id: n("btf_id"),
    btf_key_type_id: n("btf_key_type_id"),
    btf_value_type_id: n("btf_value_type_id"),
    btf_vmlinux_value_type_id: n("btf_vmlinux_value_type_id"),
  };
}

/** get_fd_type(): what an fd is, from its fdinfo (bpftool reads the anon inode's name). */
export function fdTypeName(h: Handle, fd: number): string {
  const info = h.fdinfo(fd);
  if (/^map_type:/m.test(info)) return "map";
  if (/^prog_type:/m.test(info)) return "prog";
  if (/^link_type:/m.test(info)) return "link";
  return "unknown";
}

/** open_obj_pinned_any(): BPF_OBJ_GET on the path, then the object's kind must be `want`. */
export function openPinned(h: Handle, path: string, want: "map" | "prog"): number {
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

export function parseIdArg(word: string | undefined): number {
  const v = word === undefined ? null : strtoul(word, 0);
  if (v === null || v > 0xffffffffn) fail(`can't parse ${word} as ID`);
  return Number(v);
}

/** Every object of a kind whose info passes `match`, opened (bpftool's *_fd_by_name / _by_tag). */
export function fdsWhere(h: Handle, kind: "map" | "prog", match: (info: Record<string, unknown>) => boolean): number[] {
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
export function onlyOne(h: Handle, fds: number[], what: string): number {
  if (fds.length === 1) return fds[0]!;
  for (const fd of fds) h.close(fd);
  if (fds.length > 1) fail(`several ${what} match this handle`);
  throw new SilentFailure();
}

/** map_parse_fds(): every map MAP names (a name may match several, or none: no message then). */
export function mapParseFds(h: Handle, argv: string[]): number[] {
  if (isPrefix(argv[0], "name")) {
    if ((argv[1] ?? "").length > BPF_OBJ_NAME_LEN - 1) fail("can't parse name");
    return fdsWhere(h, "map", (i) => i.name === argv[1]);
  }
  return [mapParseFd(h, argv)[0]];
}

/** map_parse_fd(): MAP at the front of argv; the fd and the arguments left. */
export function mapParseFd(h: Handle, argv: string[]): [number, string[]] {
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
export function progParseFd(h: Handle, argv: string[]): [number, string[]] {
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

export const isPerCpu = (t: number) =>
  t === bpf_map_type.BPF_MAP_TYPE_PERCPU_HASH ||
  t === bpf_map_type.BPF_MAP_TYPE_PERCPU_ARRAY ||
  t === bpf_map_type.BPF_MAP_TYPE_LRU_PERCPU_HASH ||
  t === bpf_map_type.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
export const isMapOfMaps = (t: number) =>
  t === bpf_map_type.BPF_MAP_TYPE_ARRAY_OF_MAPS || t === bpf_map_type.BPF_MAP_TYPE_HASH_OF_MAPS;
export const isProgArray = (t: number) => t === bpf_map_type.BPF_MAP_TYPE_PROG_ARRAY;

/** What parse_elem found: the key, the value, the flags, and the fd a map-of-maps or prog-array value holds. */
export interface Elem {
  key?: Uint8Array;
  value?: Uint8Array;
  flags: number;
  valueFd?: number;
  /** The kind of object valueFd is. */
  valueKind?: "map" | "prog";
}

/** parse_elem(): `want` says which of key, value, flags the verb takes. */
export function parseElem(
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
        if (!maps && isPrefix(args[0], "id") && !output.json) {
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
