/**
 * struct bpf_map of libbpf and the two ways open creates maps from an object:
 * BTF-defined maps in `.maps` (parse_btf_map_def: an anonymous struct whose members
 * encode the definition: `__uint(x, N)` is a pointer to an array of N elements,
 * `__type(x, T)` a pointer to T) and internal maps for global data (`.data`, `.rodata`,
 * `.bss`, `.kconfig`), each a one-element ARRAY whose value is the section.
 */
import type { Btf } from "../btf/btf.js";
import type { BtfComposite, BtfMember, BtfType } from "../btf/types.js";
import { BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, BPF_OBJ_NAME_LEN, bpf_map_type } from "../uapi/bpf.js";
import {
  BTF_KIND_ARRAY,
  BTF_KIND_DATASEC,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_NAMES,
  BTF_KIND_PTR,
  BTF_KIND_STRUCT,
  BTF_KIND_VAR,
  BTF_VAR_GLOBAL_ALLOCATED,
  BTF_VAR_STATIC,
} from "../uapi/btf.js";
import { BpfError, EBUSY, EINVAL, ENOMEM, ENOTSUP } from "../uapi/errno.js";
import type { BpfHandle } from "./bpf.js";
import { resolveSize, skipModsAndTypedefs } from "./btf_helpers.js";
import type { BpfStructOps, BpfStructOpsValue } from "./struct_ops.js";
import { type BpfStructOpsLink, bpfMapAttachStructOps } from "./struct_ops_attach.js";

/** enum libbpf_map_type. */
export const LIBBPF_MAP_UNSPEC = 0;
export const LIBBPF_MAP_DATA = 1;
export const LIBBPF_MAP_BSS = 2;
export const LIBBPF_MAP_RODATA = 3;
export const LIBBPF_MAP_KCONFIG = 4;

export interface BpfMapDef {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  mapFlags: number;
  numaNode: number;
  mapExtra: bigint;
  pinning: number;
}

export class BpfMap {
  name: string;
  /** ELF section name for internal maps (`.rodata`), which `name` truncates. */
  realName?: string;
  readonly secIdx: number;
  readonly secOffset: number;
  readonly libbpfType: number;
  readonly def: BpfMapDef;
  btfKeyTypeId = 0;
  btfValueTypeId = 0;
  btfVmlinuxValueTypeId = 0;
  /** The module BTF fd a struct_ops map's type was found in (map->mod_btf_fd), -1 for vmlinux. */
  modBtfFd = -1;
  autocreate = true;
  autoattach = false;
  /** A map-in-map's template (`__array(values, struct inner_def)`), created just for its fd. */
  innerMap?: BpfMap;
  /** Bytes of `.maps` the definition takes (the VAR's size: more than its type's with `.values`). */
  secSize = 0;
  /** The definition's type (the VAR's type in the object's BTF). */
  btfVarType = 0;
  /** Inner maps to put in the new map's slots (libbpf's init_slots, from `.values`). */
  initSlots: (BpfMap | undefined)[] = [];
  /** A prog array's `.values = { [i] = &prog }`: filled once the programs are loaded. */
  initProgSlots: import("./program.js").BpfProgram[] = [];
  /**
   * Initial contents of internal maps (libbpf's mmaped buffer). Like the anonymous mapping it
   * models, its pages exist once touched: a large .bss costs nothing until it is read or loaded.
   */
  get mmaped(): Uint8Array | undefined {
    if (!this.mmapedBuf && this.mmapedInit) {
      const { size, data } = this.mmapedInit;
      this.mmapedBuf = new Uint8Array(size);
      if (data) this.mmapedBuf.set(data.subarray(0, size));
      this.mmapedInit = undefined;
    }
    return this.mmapedBuf;
  }
  set mmaped(buf: Uint8Array | undefined) {
    this.mmapedBuf = buf;
    this.mmapedInit = undefined;
  }
  private mmapedBuf?: Uint8Array;
  /** The contents before the first touch: `size` bytes starting with `data`. */
  mmapedInit?: { size: number; data?: Uint8Array };
  /** The struct_ops state of a BPF_MAP_TYPE_STRUCT_OPS map (the shadow). */
  structOps?: BpfStructOps;
  fd = -1;
  loaded = false;
  /** The caller that loaded the object (set by load), for attach. */
  handle?: BpfHandle;

  constructor(name: string, secIdx: number, secOffset: number, libbpfType: number, def: Partial<BpfMapDef>) {
    this.name = name;
    this.secIdx = secIdx;
    this.secOffset = secOffset;
    this.libbpfType = libbpfType;
    this.def = {
      type: 0,
      keySize: 0,
      valueSize: 0,
      maxEntries: 0,
      mapFlags: 0,
      numaNode: 0,
      mapExtra: 0n,
      pinning: 0,
      ...def,
    };
  }

  get type(): number {
    return this.def.type;
  }
  get keySize(): number {
    return this.def.keySize;
  }
  get valueSize(): number {
    return this.def.valueSize;
  }
  get maxEntries(): number {
    return this.def.maxEntries;
  }
  get flags(): number {
    return this.def.mapFlags;
  }
  get isInternal(): boolean {
    return this.libbpfType !== LIBBPF_MAP_UNSPEC;
  }

  /** The typed shadow of a struct_ops map (skel->struct_ops.<map>); undefined for other maps. */
  get structOpsValue(): BpfStructOpsValue | undefined {
    return this.structOps?.value;
  }

  /** bpf_map__initial_value: the global-data buffer, or a struct_ops map's shadow bytes. */
  initialValue(): Uint8Array | undefined {
    return this.structOps ? this.structOps.data : this.mmaped;
  }

  /** bpf_map__set_initial_value: internal maps but .kconfig, same size, before load (-EINVAL, -EBUSY). */
  setInitialValue(bytes: Uint8Array): void {
    if (this.loaded) throw new BpfError(EBUSY, `map '${this.name}': already created`, { map: this.name });
    // .kconfig is filled by libbpf from the kernel's config, never by the user.
    if (!this.mmaped || this.libbpfType === LIBBPF_MAP_KCONFIG || bytes.length !== this.def.valueSize) {
      throw new BpfError(EINVAL, `map '${this.name}': no initial value of ${bytes.length} bytes to set`, {
        map: this.name,
      });
    }
    this.mmaped.set(bytes);
  }

  /** bpf_map__set_autocreate: -EBUSY once loaded. */
  setAutocreate(autocreate: boolean): void {
    if (this.loaded) throw new BpfError(EBUSY, `map '${this.name}': cannot change autocreate after load`);
    this.autocreate = autocreate;
  }

  /** bpf_map__set_autoattach: struct_ops maps only. */
  setAutoattach(autoattach: boolean): void {
    if (!this.structOps) throw new BpfError(EINVAL, `map '${this.name}': autoattach is for struct_ops maps`);
    this.autoattach = autoattach;
  }

  /** bpf_map__attach_struct_ops: register the loaded struct_ops map (through a link for .struct_ops.link). */
  attachStructOps(): BpfStructOpsLink {
    return bpfMapAttachStructOps(this, this.handle);
  }

  setMaxEntries(n: number): void {
    if (this.loaded) throw new BpfError(EBUSY, `map '${this.name}': already created`);
    this.def.maxEntries = n;
  }
}

function kindName(t: BtfType): string {
  return BTF_KIND_NAMES[t.kind] ?? `kind ${t.kind}`;
}

/** get_map_field_int: `__uint(name, N)` is PTR -> ARRAY[N]. */
function mapFieldInt(btf: Btf, mapName: string, attr: string, typeId: number): number {
  const t = skipModsAndTypedefs(btf, typeId).t;
  if (t.kind !== BTF_KIND_PTR) {
    throw new BpfError(EINVAL, `map '${mapName}': attr '${attr}': expected PTR, got ${kindName(t)}.`, { map: mapName });
  }
  const arr = btf.typeById(t.type);
  if (arr.kind !== BTF_KIND_ARRAY) {
    throw new BpfError(EINVAL, `map '${mapName}': attr '${attr}': expected ARRAY, got ${kindName(arr)}.`, {
      map: mapName,
    });
  }
  return arr.nelems;
}

function typeSpec(btf: Btf, mapName: string, what: "key" | "value", typeId: number): { id: number; size: number } {
  const t = skipModsAndTypedefs(btf, typeId).t;
  if (t.kind !== BTF_KIND_PTR) {
    throw new BpfError(EINVAL, `map '${mapName}': ${what} spec is not PTR: ${kindName(t)}.`, { map: mapName });
  }
  let size: number;
  try {
    size = resolveSize(btf, t.type);
  } catch (e) {
    const err = e instanceof BpfError ? e.errno : EINVAL;
    throw new BpfError(err, `map '${mapName}': can't determine ${what} size for type [${t.type}]: -${err}.`, {
      map: mapName,
    });
  }
  return { id: t.type, size };
}

/** parse_btf_map_def + bpf_object__init_user_btf_map for one VAR of `.maps`. */
export function parseBtfMapDef(
  btf: Btf,
  varId: number,
  secIdx: number,
  offset: number,
  varSize: number,
  debug: (msg: string) => void = () => {},
): BpfMap {
  const v = btf.typeById(varId);
  if (v.kind !== BTF_KIND_VAR) {
    throw new BpfError(EINVAL, `map #${varId}: unexpected var kind ${kindName(v)}.`);
  }
  const mapName = v.name;
  if (v.linkage !== BTF_VAR_GLOBAL_ALLOCATED && v.linkage !== BTF_VAR_STATIC) {
    throw new BpfError(ENOTSUP, `map '${mapName}': unsupported map linkage ${v.linkage}.`, { map: mapName });
  }
  const def = skipModsAndTypedefs(btf, v.type).t;
  if (def.kind !== BTF_KIND_STRUCT) {
    throw new BpfError(EINVAL, `map '${mapName}': unexpected def kind ${kindName(def)}.`, { map: mapName });
  }
  if (varSize < def.size) throw new BpfError(EINVAL, `map '${mapName}': invalid def size.`, { map: mapName });

  const map = new BpfMap(mapName, secIdx, offset, LIBBPF_MAP_UNSPEC, {});
  map.secSize = varSize;
  map.btfVarType = v.type;
  debug(`map '${mapName}': at sec_idx ${secIdx}, offset ${offset}.`);
  parseMapDefMembers(btf, mapName, def as BtfComposite, map, false, debug);
  return map;
}

/** parse_btf_map_def's member loop, for a map or (`is_inner`) a map-in-map's template. */
function parseMapDefMembers(
  btf: Btf,
  mapName: string,
  def: BtfComposite,
  map: BpfMap,
  isInner: boolean,
  debug: (msg: string) => void,
): void {
  const conflict = (what: string, a: number, b: number) =>
    new BpfError(EINVAL, `map '${mapName}': conflicting ${what} size ${a} != ${b}.`, { map: mapName });
  for (const m of def.members) {
    switch (m.name) {
      case "type":
        map.def.type = mapFieldInt(btf, mapName, m.name, m.type);
        debug(`map '${mapName}': found type = ${map.def.type}.`);
        break;
      case "max_entries":
        map.def.maxEntries = mapFieldInt(btf, mapName, m.name, m.type);
        debug(`map '${mapName}': found max_entries = ${map.def.maxEntries}.`);
        break;
      case "map_flags":
        map.def.mapFlags = mapFieldInt(btf, mapName, m.name, m.type);
        debug(`map '${mapName}': found map_flags = 0x${map.def.mapFlags.toString(16)}.`);
        break;
      case "numa_node":
        map.def.numaNode = mapFieldInt(btf, mapName, m.name, m.type);
        break;
      case "map_extra":
        map.def.mapExtra = BigInt(mapFieldInt(btf, mapName, m.name, m.type));
        break;
      case "pinning": {
        const p = mapFieldInt(btf, mapName, m.name, m.type);
        if (p > 1) throw new BpfError(EINVAL, `map '${mapName}': invalid pinning value ${p}.`, { map: mapName });
        map.def.pinning = p;
        break;
      }
      case "key_size":
      case "value_size": {
        const sz = mapFieldInt(btf, mapName, m.name, m.type);
        const which = m.name === "key_size" ? "keySize" : "valueSize";
        if (map.def[which] && map.def[which] !== sz)
          throw conflict(m.name === "key_size" ? "key" : "value", map.def[which], sz);
        map.def[which] = sz;
        debug(`map '${mapName}': found ${m.name} = ${sz}.`);
        break;
      }
      case "key":
      case "value": {
        const spec = typeSpec(btf, mapName, m.name, m.type);
        const which = m.name === "key" ? "keySize" : "valueSize";
        if (map.def[which] && map.def[which] !== spec.size) throw conflict(m.name, map.def[which], spec.size);
        map.def[which] = spec.size;
        if (m.name === "key") map.btfKeyTypeId = spec.id;
        else map.btfValueTypeId = spec.id;
        debug(`map '${mapName}': found ${m.name} [${spec.id}], sz = ${spec.size}.`);
        break;
      }
      case "values":
        parseInnerMapDef(btf, mapName, def, m, map, isInner, debug);
        break;
      default:
        // libbpf 1.0 is strict about unknown fields.
        throw new BpfError(ENOTSUP, `map '${mapName}': unknown field '${m.name}'.`, { map: mapName });
    }
  }
  if (map.def.type === 0) {
    throw new BpfError(EINVAL, `map '${mapName}': map type isn't specified.`, { map: mapName });
  }
}

/**
 * parse_btf_map_def's `values`: a map of maps declares its template as a zero-length array of
 * pointers to a map definition, parsed like a map of its own named `<outer>.inner`; a prog array
 * an array of pointers to a function prototype.
 */
function parseInnerMapDef(
  btf: Btf,
  mapName: string,
  def: BtfComposite,
  m: BtfMember,
  map: BpfMap,
  isInner: boolean,
  debug: (msg: string) => void,
): void {
  const fail = (errno: number, msg: string) => new BpfError(errno, `map '${mapName}': ${msg}`, { map: mapName });
  const inMap =
    map.def.type === bpf_map_type.BPF_MAP_TYPE_ARRAY_OF_MAPS || map.def.type === bpf_map_type.BPF_MAP_TYPE_HASH_OF_MAPS;
  if (isInner) throw fail(ENOTSUP, "multi-level inner maps not supported.");
  if (def.members[def.members.length - 1] !== m) throw fail(EINVAL, "'values' member should be last.");
  const progArray = map.def.type === bpf_map_type.BPF_MAP_TYPE_PROG_ARRAY;
  if (!inMap && !progArray) throw fail(ENOTSUP, "should be map-in-map or prog-array.");
  if (map.def.valueSize && map.def.valueSize !== 4)
    throw fail(EINVAL, `conflicting value size ${map.def.valueSize} != 4.`);
  map.def.valueSize = 4;
  const arr = btf.typeById(m.type);
  if (arr.kind !== BTF_KIND_ARRAY || arr.nelems)
    throw fail(EINVAL, "map-in-map inner type should be an array with zero elements");
  const desc = progArray ? "prog-array value" : "map-in-map inner";
  const ptr = skipModsAndTypedefs(btf, arr.type).t;
  if (ptr.kind !== BTF_KIND_PTR) throw fail(EINVAL, `${desc} def is of unexpected kind ${kindName(ptr)}.`);
  const inner = skipModsAndTypedefs(btf, ptr.type).t;
  // A prog array's values are programs: a pointer to a function prototype, nothing to parse.
  if (progArray) {
    if (inner.kind !== BTF_KIND_FUNC_PROTO) throw fail(EINVAL, `${desc} def is of unexpected kind ${kindName(inner)}.`);
    return;
  }
  if (inner.kind !== BTF_KIND_STRUCT)
    throw fail(EINVAL, `map-in-map inner def is of unexpected kind ${kindName(inner)}.`);
  const name = `${mapName}.inner`;
  const im = new BpfMap(name, map.secIdx, map.secOffset, LIBBPF_MAP_UNSPEC, {});
  parseMapDefMembers(btf, name, inner, im, true, debug);
  map.innerMap = im;
}

/** internal_map_name: `<obj prefix><section>`, at most 15 characters, as libbpf composes it. */
export function internalMapName(objName: string, realName: string): string {
  let sfxLen = Math.max(7, realName.length);
  if (sfxLen >= BPF_OBJ_NAME_LEN) sfxLen = BPF_OBJ_NAME_LEN - 1;
  // Custom `.data.foo`/`.rodata.foo` sections keep their own name, with no object prefix.
  const pfxLen = realName.indexOf(".", 1) >= 0 ? 0 : Math.min(BPF_OBJ_NAME_LEN - sfxLen - 1, objName.length);
  const name = (objName.slice(0, pfxLen) + realName.slice(0, sfxLen)).slice(0, BPF_OBJ_NAME_LEN - 1);
  return name.replace(/[^A-Za-z0-9_.]/g, "_");
}

const MMAP_PAGE_SIZE = 4096;
/**
 * The largest anonymous mapping the simulated process can back (the simulated kernel's own memory
 * for maps is no larger): libbpf's content buffer for an internal map past it is ENOMEM at open.
 */
export const MMAP_MAX = 1 << 30;

/** bpf_object__init_internal_map: a one-element ARRAY holding a data section. */
export function initInternalMap(
  btf: Btf | undefined,
  objName: string,
  type: number,
  realName: string,
  secIdx: number,
  data: Uint8Array | undefined,
  size: number,
  debug: (msg: string) => void = () => {},
): BpfMap {
  const map = new BpfMap(internalMapName(objName, realName), secIdx, 0, type, {
    type: bpf_map_type.BPF_MAP_TYPE_ARRAY,
    keySize: 4,
    valueSize: size,
    maxEntries: 1,
    mapFlags: type === LIBBPF_MAP_RODATA || type === LIBBPF_MAP_KCONFIG ? BPF_F_RDONLY_PROG : 0,
  });
  map.realName = realName;
  // map_fill_btf_type_info: the value type is the section's DATASEC (absent for e.g. .rodata.str1.1).
  const ds = btf ? btf.findByNameKind(realName, BTF_KIND_DATASEC) : -1;
  if (btf && ds > 0) {
    map.btfValueTypeId = ds;
    // map_is_mmapable: some variable is visible to userspace (not static).
    const sec = btf.typeById(ds);
    if (
      sec.kind === BTF_KIND_DATASEC &&
      sec.vars.some((v) => {
        const vt = btf.typeById(v.type);
        return vt.kind === BTF_KIND_VAR && vt.linkage !== BTF_VAR_STATIC;
      })
    ) {
      map.def.mapFlags |= BPF_F_MMAPABLE;
    }
  }
  // mmap(MAP_SHARED | MAP_ANONYMOUS) of bpf_map_mmap_sz fails past what the machine can back.
  const mmapSz = Math.ceil((Math.ceil(size / 8) * 8) / MMAP_PAGE_SIZE) * MMAP_PAGE_SIZE;
  if (mmapSz > MMAP_MAX) {
    throw new BpfError(ENOMEM, `map '${map.name}': failed to alloc content buffer: -${ENOMEM}`, { map: map.name });
  }
  map.mmapedInit = { size, data };
  debug(`map '${map.name}' (global data): at sec_idx ${secIdx}, offset 0, flags ${map.def.mapFlags.toString(16)}.`);
  return map;
}
