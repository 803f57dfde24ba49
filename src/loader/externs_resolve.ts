/**
 * Extern resolution at load (libbpf bpf_object__resolve_externs): `.kconfig` values from
 * the open options' kconfig text, else the kernel's config (libbpf reads /proc/config.gz),
 * parsed and range-checked per the extern's type; `.ksyms` kfuncs and variables found by
 * name in kernel BTF, kfunc prototypes checked for compatibility.
 */
import type { Btf } from "../btf/btf.js";
import { BTF_KIND_FUNC, BTF_KIND_VAR } from "../uapi/btf.js";
import { BpfError, EINVAL, ERANGE, ESRCH } from "../uapi/errno.js";
import type { BpfHandle } from "./bpf.js";
import { LIBBPF_MAP_KCONFIG } from "./maps.js";
import type { ModuleBtf, ModuleBtfs } from "./module_btf.js";
import type { BpfObject } from "./object.js";
import { typesAreCompat } from "./relo_core.js";

/** Parse `CONFIG_X=value` lines into the .kconfig map buffer (bpf_object__process_kconfig_line). */
export function fillKconfig(obj: BpfObject, data: Uint8Array, config: Record<string, number | string | boolean>): void {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (const ext of obj.externs) {
    if (!ext.kcfg) continue;
    const raw = config[ext.name];
    if (raw === undefined) continue;
    const { type, size, dataOff } = ext.kcfg;
    let v: bigint;
    if (typeof raw === "boolean" || raw === "y" || raw === "n" || raw === "m") {
      const c = raw === true ? "y" : raw === false ? "n" : raw;
      if (type === "char") v = BigInt(c.charCodeAt(0));
      else if (type === "bool" && c !== "m") v = c === "y" ? 1n : 0n;
      else if (type === "tristate") v = c === "y" ? 1n : c === "m" ? 2n : 0n;
      else throw new BpfError(EINVAL, `extern (kcfg) '${ext.name}': value '${c}' implies bool, tristate, or char type`);
    } else if (typeof raw === "string" && raw.startsWith('"')) {
      if (type !== "char_arr") {
        throw new BpfError(EINVAL, `extern (kcfg) '${ext.name}': value '${raw}' implies char array type`);
      }
      const s = new TextEncoder().encode(raw.slice(1, -1)).subarray(0, size - 1);
      data.set(s, dataOff);
      ext.isSet = true;
      continue;
    } else {
      try {
        v = BigInt(raw);
      } catch {
        throw new BpfError(EINVAL, `extern (kcfg) '${ext.name}': value '${raw}' isn't a valid integer`);
      }
      if (type !== "int" && type !== "char") {
        throw new BpfError(EINVAL, `extern (kcfg) '${ext.name}': value '${raw}' implies integer type`);
      }
      const bits = BigInt(size * 8);
      const fits = ext.kcfg.isSigned
        ? BigInt.asIntN(Number(bits), v) === v
        : size === 8 || BigInt.asUintN(Number(bits), v) === v;
      if (!fits) throw new BpfError(ERANGE, `extern (kcfg) '${ext.name}': value '${v}' doesn't fit in ${size} bytes`);
    }
    const u = BigInt.asUintN(size * 8, v);
    for (let i = 0; i < size; i++) dv.setUint8(dataOff + i, Number((u >> BigInt(8 * i)) & 0xffn));
    ext.isSet = true;
  }
}

/** Kconfig text (`CONFIG_HZ=250` lines, # comments) as a record. */
export function parseKconfig(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const l = line.trim();
    if (!l.startsWith("CONFIG_")) continue;
    const eq = l.indexOf("=");
    if (eq < 0) throw new BpfError(EINVAL, `failed to parse '${l}': no separator`);
    if (eq === l.length - 1) throw new BpfError(EINVAL, `failed to parse '${l}': no value`);
    out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

/** bpf_object__resolve_externs. */
export function resolveExterns(obj: BpfObject, k: BpfHandle, kbtf: Btf | undefined, mods?: ModuleBtfs | null): void {
  const kcfgMap = obj.maps.find((m) => m.libbpfType === LIBBPF_MAP_KCONFIG);
  if (kcfgMap?.mmaped) {
    fillKconfig(obj, kcfgMap.mmaped, obj.kconfig !== undefined ? parseKconfig(obj.kconfig) : {});
    if (obj.externs.some((e) => e.kcfg && !e.isSet)) fillKconfig(obj, kcfgMap.mmaped, k.kernel.config);
  }
  for (const ext of obj.externs) {
    if (ext.kcfg) continue;
    const ksym = ext.ksym;
    if (!ksym || !kbtf) continue;
    // find_ksym_btf_id(): vmlinux, then the modules' own types.
    const kind = ksym.isFunc ? BTF_KIND_FUNC : BTF_KIND_VAR;
    let kid = kbtf.findByNameKind(ext.name, kind);
    let btf = kbtf;
    let mod: ModuleBtf | null = null;
    if (kid < 0 && mods) {
      try {
        ({ id: kid, btf, mod } = mods.find(ext.name, kind));
      } catch (e) {
        if (!(e instanceof BpfError) || e.errno !== ESRCH) throw e;
      }
    }
    if (kid < 0) {
      if (ext.isWeak) continue;
      if (ksym.isFunc) {
        // libbpf warns so, and bpf_object__load returns -EINVAL for it (libbpf 1.1 on a 6.18 host,
        // loading an object whose strong kfunc the running kernel lacks).
        const msg = `extern (func ksym) '${ext.name}': not found in kernel or module BTFs`;
        obj.print("warn", msg);
        throw new BpfError(EINVAL, msg);
      }
      throw new BpfError(ESRCH, `extern (var ksym) '${ext.name}': not found in kernel BTF`);
    }
    if (ksym.isFunc) {
      const kproto = (btf.typeById(kid) as { type: number }).type;
      if (!typesAreCompat(obj.btf as Btf, ksym.typeId, btf, kproto)) {
        if (ext.isWeak) continue; // an incompatible weak kfunc is left unresolved, as if absent
        throw new BpfError(
          EINVAL,
          `extern (func ksym) '${ext.name}': func_proto [${ksym.typeId}] incompatible with ${mod ? mod.name : "vmlinux"} [${kproto}]`,
        );
      }
      ksym.btfFdIdx = mod && mods ? mods.fdArrayIdx(mod, ext.name) : 0;
    }
    ksym.kernelBtfId = kid;
    ksym.kernelBtfObjFd = mod ? mod.fd : 0;
    ext.isSet = true;
  }
  // After every source had its turn: a strong extern nothing set fails the load (weak ones stay 0).
  for (const ext of obj.externs) {
    if (!ext.isSet && !ext.isWeak) throw new BpfError(ESRCH, `extern '${ext.name}' (strong): not resolved`);
  }
}
