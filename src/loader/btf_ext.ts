/**
 * `.BTF.ext` (libbpf btf.c: btf_ext__new): a header, then three info sections (func_info,
 * line_info, core_relo), each a record size followed by per-ELF-section blocks
 * `{ sec_name_off, num_info, records[num_info] }`. Section names are strings of the
 * object's `.BTF`. insn_off stays in bytes from the start of the ELF section, as on disk;
 * the loader turns it into an instruction index when it splits programs.
 */
import type { Btf } from "../btf/btf.js";
import { BTF_MAGIC } from "../uapi/btf.js";
import { BpfError, EINVAL } from "../uapi/errno.js";

export interface BpfFuncInfo {
  insnOff: number;
  typeId: number;
}

export interface BpfLineInfo {
  insnOff: number;
  fileNameOff: number;
  lineOff: number;
  /** line_num << 10 | column, as stored. */
  lineCol: number;
}

/** enum bpf_core_relo_kind. */
export const BPF_CORE_FIELD_BYTE_OFFSET = 0;
export const BPF_CORE_FIELD_BYTE_SIZE = 1;
export const BPF_CORE_FIELD_EXISTS = 2;
export const BPF_CORE_FIELD_SIGNED = 3;
export const BPF_CORE_FIELD_LSHIFT_U64 = 4;
export const BPF_CORE_FIELD_RSHIFT_U64 = 5;
export const BPF_CORE_TYPE_ID_LOCAL = 6;
export const BPF_CORE_TYPE_ID_TARGET = 7;
export const BPF_CORE_TYPE_EXISTS = 8;
export const BPF_CORE_TYPE_SIZE = 9;
export const BPF_CORE_ENUMVAL_EXISTS = 10;
export const BPF_CORE_ENUMVAL_VALUE = 11;
export const BPF_CORE_TYPE_MATCHES = 12;

export interface BpfCoreRelo {
  insnOff: number;
  typeId: number;
  accessStrOff: number;
  kind: number;
}

export interface BtfExtSection<T> {
  /** ELF section name the records belong to. */
  secName: string;
  records: T[];
}

/** Minimum record sizes libbpf accepts; larger records are allowed (forward compatible). */
const MIN_FUNC_INFO = 8;
const MIN_LINE_INFO = 16;
const MIN_CORE_RELO = 16;
const BTF_EXT_HDR_MIN = 24;

function einval(message: string): BpfError {
  return new BpfError(EINVAL, message, { section: ".BTF.ext" });
}

export class BtfExt {
  readonly littleEndian: boolean;
  readonly funcInfo: BtfExtSection<BpfFuncInfo>[];
  readonly lineInfo: BtfExtSection<BpfLineInfo>[];
  readonly coreRelos: BtfExtSection<BpfCoreRelo>[];
  readonly funcInfoRecSize: number;
  readonly lineInfoRecSize: number;
  readonly coreReloRecSize: number;

  private constructor(data: Uint8Array, btf: Btf) {
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (data.length < 8) throw einval("BTF.ext header not found");
    if (dv.getUint16(0, true) === BTF_MAGIC) this.littleEndian = true;
    else if (dv.getUint16(0, false) === BTF_MAGIC) this.littleEndian = false;
    else throw einval(`Invalid BTF.ext magic:${dv.getUint16(0, true).toString(16)}`);
    const le = this.littleEndian;
    if (data[2] !== 1) throw einval(`Unsupported BTF.ext version:${data[2]}`);
    if (data[3] !== 0) throw einval(`Unsupported BTF.ext flags:${data[3]}`);
    const hdrLen = dv.getUint32(4, le);
    if (hdrLen < BTF_EXT_HDR_MIN || hdrLen > data.length) throw einval(`BTF.ext header length ${hdrLen} is invalid`);
    const body = data.subarray(hdrLen);
    const field = (off: number) => (off + 4 <= hdrLen ? dv.getUint32(off, le) : 0);

    const parse = <T>(
      what: string,
      off: number,
      len: number,
      minRec: number,
      read: (v: DataView, o: number) => T,
    ): { size: number; secs: BtfExtSection<T>[] } => {
      if (len === 0) return { size: 0, secs: [] };
      if (off % 4 !== 0) throw einval(`${what} section is not aligned to 4 bytes`);
      if (off > body.length || len > body.length - off) {
        throw einval(`${what} section (off:${off} len:${len}) is beyond the end of the ELF section .BTF.ext`);
      }
      const sec = body.subarray(off, off + len);
      const sv = new DataView(sec.buffer, sec.byteOffset, sec.byteLength);
      if (sec.length < 4) throw einval(`.BTF.ext ${what} record size not found`);
      const recSize = sv.getUint32(0, le);
      if (recSize < minRec || recSize % 4 !== 0) throw einval(`.BTF.ext ${what} record size ${recSize} is invalid`);
      let p = 4;
      if (p === sec.length) throw einval(`.BTF.ext ${what} section has no records`);
      const secs: BtfExtSection<T>[] = [];
      while (p < sec.length) {
        if (sec.length - p < 8) throw einval(`.BTF.ext ${what} section header is truncated`);
        const nameOff = sv.getUint32(p, le);
        const n = sv.getUint32(p + 4, le);
        p += 8;
        if (!btf.validStrOff(nameOff)) throw einval(`.BTF.ext ${what} section name offset ${nameOff} is invalid`);
        const secName = btf.str(nameOff);
        if (n === 0) throw einval(`.BTF.ext ${what} section '${secName}' has no records`);
        if (n > (sec.length - p) / recSize) throw einval(`.BTF.ext ${what} section '${secName}' has too many records`);
        const records: T[] = new Array(n);
        for (let i = 0; i < n; i++, p += recSize) records[i] = read(sv, p);
        secs.push({ secName, records });
      }
      return { size: recSize, secs };
    };

    const fi = parse("func_info", field(8), field(12), MIN_FUNC_INFO, (v, o) => ({
      insnOff: v.getUint32(o, le),
      typeId: v.getUint32(o + 4, le),
    }));
    const li = parse("line_info", field(16), field(20), MIN_LINE_INFO, (v, o) => ({
      insnOff: v.getUint32(o, le),
      fileNameOff: v.getUint32(o + 4, le),
      lineOff: v.getUint32(o + 8, le),
      lineCol: v.getUint32(o + 12, le),
    }));
    // core_relo exists only in headers of 32 bytes or more.
    const cr = parse("core_relo", field(24), field(28), MIN_CORE_RELO, (v, o) => ({
      insnOff: v.getUint32(o, le),
      typeId: v.getUint32(o + 4, le),
      accessStrOff: v.getUint32(o + 8, le),
      kind: v.getUint32(o + 12, le),
    }));
    this.funcInfo = fi.secs;
    this.funcInfoRecSize = fi.size;
    this.lineInfo = li.secs;
    this.lineInfoRecSize = li.size;
    this.coreRelos = cr.secs;
    this.coreReloRecSize = cr.size;
  }

  static parse(data: Uint8Array, btf: Btf): BtfExt {
    return new BtfExt(data, btf);
  }

  funcInfoFor(secName: string): BpfFuncInfo[] {
    return this.funcInfo.find((s) => s.secName === secName)?.records ?? [];
  }

  lineInfoFor(secName: string): BpfLineInfo[] {
    return this.lineInfo.find((s) => s.secName === secName)?.records ?? [];
  }

  coreRelosFor(secName: string): BpfCoreRelo[] {
    return this.coreRelos.find((s) => s.secName === secName)?.records ?? [];
  }
}
