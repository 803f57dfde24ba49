/** BTF as a kernel object (kernel/bpf/btf.c): BTF_LOAD, btf fds and ids, get/put. */
import { Btf } from "../btf/btf.js";
import { BPF_KPTR_REF, btfCheckAndFixupFields, btfParseStructMetas, type KptrResolver } from "../btf/record.js";
import { btfCheckMetas } from "../btf/validate.js";
import { BPF_F_TOKEN_FD } from "../uapi/bpf.js";
import { BTF_KIND_MAX, BTF_KIND_NAMES, BTF_MAX_NAME_OFFSET } from "../uapi/btf.js";
import { BpfError, E2BIG, EINVAL, ENOENT, ENOTSUPP, EPERM } from "../uapi/errno.js";
import { BtfObject } from "./bpf.js";
import type { BtfLoadAttr } from "./bpf_attr.js";
import { num } from "./bpf_attr.js";
import { btfFindDtorKfunc } from "./bpf_kptr.js";
import { btfVerifierLine } from "./btf_verifier_log.js";
import { File, type FileOps, O_CLOEXEC, O_RDONLY } from "./file.js";
import type { Kernel } from "./kernel.js";
import type { Process } from "./process.js";
import { BpfLog, fdinfoHeader } from "./syscall_common.js";

/** BTF_MAX_SIZE. */
export const BTF_MAX_SIZE = 16 * 1024 * 1024;

const kernelOf = new WeakMap<BtfObject, Kernel>();

export function btf_get(btf: BtfObject): void {
  btf.refcnt++;
}

export function btf_put(btf: BtfObject): void {
  if (btf.refcnt <= 0) throw new Error(`btf_put: BTF ${btf.id} refcnt underflow`);
  if (--btf.refcnt > 0) return;
  const k = kernelOf.get(btf);
  if (k && btf.id) k.btf_idr.remove(btf.id);
  // BTF is read under RCU by the verifier and by btf_get_fd_by_id.
  if (k) k.rcu.callRcu(() => (btf.freed = true));
  else btf.freed = true;
}

export const btf_fops: FileOps<BtfObject> = {
  kind: "btf",
  release: (f) => btf_put(f.private_data),
  show_fdinfo: (f) => `${fdinfoHeader(f)}btf_id:\t${f.private_data.id}\n`,
};

export function btf_new_fd(proc: Process, btf: BtfObject): number {
  return proc.files.install(new File(btf_fops, btf, O_RDONLY | O_CLOEXEC));
}

/** btf_get_by_fd(): a new reference, EBADF for a closed fd, EINVAL for a non-BTF fd. */
export function btf_get_by_fd(proc: Process, fd: number): BtfObject {
  const f = proc.files.get(fd);
  if (f.f_op !== btf_fops) throw new BpfError(EINVAL, `fd ${fd} is not a BTF object`, { fd });
  const btf = f.private_data as BtfObject;
  btf_get(btf);
  return btf;
}

/** Register a BTF object (user-loaded or kernel) under a new id. */
export function btf_alloc_id(k: Kernel, btf: BtfObject): void {
  kernelOf.set(btf, k);
  btf.id = k.btf_idr.allocCyclic(btf);
}

/** The kernel's own BTF (vmlinux or a module's) as an object with an id and refcount 1 held by the kernel. */
export function btf_register_kernel(k: Kernel, btf: Btf, data: Uint8Array, name: string): BtfObject {
  const obj = new BtfObject(btf, data, true, name, name === "vmlinux" ? null : { name, live: true });
  btf_alloc_id(k, obj);
  return obj;
}

const BTF_HEADER_SIZE = 24;

/** The header fields btf_parse_hdr read (zero where hdr_len stops short of them). */
interface BtfHdr {
  hdrLen: number;
  typeOff: number;
  typeLen: number;
  strOff: number;
  strLen: number;
}

/**
 * btf_parse_hdr(), btf_check_sec_info(), btf_parse_str_sec() and the start of btf_parse_type_sec():
 * the header is logged as read (btf_verifier_log_hdr), then the first problem found, in the
 * kernel's words. The kernel takes BTF in its own byte order only, and reports an unknown version
 * or flags as ENOTSUPP and a header longer than it knows with non-zero extra bytes as E2BIG.
 */
function btf_parse_hdr(data: Uint8Array, log: BpfLog): BtfHdr {
  const fail = (msg: string, errno = EINVAL): never => {
    log.log(msg);
    throw new BpfError(errno, msg);
  };
  const size = data.length;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (size < 8) fail("hdr_len not found");
  const hdrLen = dv.getUint32(4, true);
  if (size < hdrLen) fail("btf_header not found");
  if (hdrLen > BTF_HEADER_SIZE && data.subarray(BTF_HEADER_SIZE, hdrLen).some((b) => b !== 0)) {
    fail("Unsupported btf_header", E2BIG);
  }
  // the kernel copies min(hdr_len, sizeof(struct btf_header)) bytes over a zeroed header
  const hdr = new Uint8Array(BTF_HEADER_SIZE);
  hdr.set(data.subarray(0, Math.min(hdrLen, BTF_HEADER_SIZE)));
  const h = new DataView(hdr.buffer);
  const magic = h.getUint16(0, true);
  const version = hdr[2];
  const flags = hdr[3];
  const typeOff = h.getUint32(8, true);
  const typeLen = h.getUint32(12, true);
  const strOff = h.getUint32(16, true);
  const strLen = h.getUint32(20, true);
  log.log(`magic: 0x${magic.toString(16)}`);
  log.log(`version: ${version}`);
  log.log(`flags: 0x${flags.toString(16)}`);
  log.log(`hdr_len: ${hdrLen}`);
  log.log(`type_off: ${typeOff}`);
  log.log(`type_len: ${typeLen}`);
  log.log(`str_off: ${strOff}`);
  log.log(`str_len: ${strLen}`);
  log.log(`btf_total_size: ${size}`);
  if (magic !== 0xeb9f) fail("Invalid magic");
  if (version !== 1) fail("Unsupported version", ENOTSUPP);
  if (flags !== 0) fail("Unsupported flags", ENOTSUPP);
  if (size === hdrLen) fail("No data");
  // btf_check_sec_info: the sections sorted by offset, no gap, no overlap, nothing after them
  const secs = [
    { off: typeOff, len: typeLen },
    { off: strOff, len: strLen },
  ].sort((a, b) => (a.off !== b.off ? a.off - b.off : a.len - b.len));
  const expected = size - hdrLen;
  let total = 0;
  for (const sec of secs) {
    if (expected < sec.off) fail("Invalid section offset");
    if (total < sec.off) fail("Unsupported section found");
    if (total > sec.off) fail("Section overlap found");
    if (expected - total < sec.len) fail("Total section length too long");
    total += sec.len;
  }
  if (expected !== total) fail("Unsupported section found");
  // btf_parse_str_sec
  const start = hdrLen + strOff;
  if (start + strLen !== size) fail("String section is not at the end");
  if (!strLen || strLen - 1 > BTF_MAX_NAME_OFFSET || data[size - 1] !== 0) fail("Invalid string section");
  if (data[start] !== 0) fail("Invalid string section");
  // btf_parse_type_sec
  if (typeOff & 3) fail("Unaligned type_off");
  if (!typeLen) fail("No type found");
  return { hdrLen, typeOff, typeLen, strOff, strLen };
}

/**
 * Btf.parse reads every record before any is checked; the kernel checks each record as it reads
 * it (btf_check_meta: room for the record, btf_info bits, kind, name offset, the kind's own
 * checks). When a record cannot be read, the records before it are checked first, and then its
 * own problems in the kernel's order.
 */
function parseInOrder(bytes: Uint8Array, hdr: BtfHdr): Btf {
  try {
    return Btf.parse(bytes);
  } catch (e) {
    const id = e instanceof BpfError ? e.context.typeId : undefined;
    const p = e instanceof BpfError ? e.context.offset : undefined;
    if (typeof id !== "number" || typeof p !== "number") throw e;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const { hdrLen, strLen } = hdr;
    const typeStart = hdrLen + hdr.typeOff;
    const strStart = hdrLen + hdr.strOff;
    // the records before this one, with the strings: a BTF of their own
    if (p > typeStart) {
      const types = bytes.subarray(typeStart, p);
      const strs = bytes.subarray(strStart, strStart + strLen);
      const head = new Uint8Array(BTF_HEADER_SIZE + types.length + strs.length);
      head.set(bytes.subarray(0, 8));
      const hv = new DataView(head.buffer);
      hv.setUint32(4, BTF_HEADER_SIZE, true);
      hv.setUint32(8, 0, true);
      hv.setUint32(12, types.length, true);
      hv.setUint32(16, types.length, true);
      hv.setUint32(20, strs.length, true);
      head.set(types, BTF_HEADER_SIZE);
      head.set(strs, BTF_HEADER_SIZE + types.length);
      const before = Btf.parse(head);
      try {
        btfCheckMetas(before);
      } catch (m) {
        if (!(m instanceof BpfError)) throw m;
        throw new BpfError(m.errno, btfVerifierLine(m, before), { rendered: 1 });
      }
    }
    const end = typeStart + hdr.typeLen;
    if (end - p >= 12) {
      const info = dv.getUint32(p + 4, true);
      const nameOff = dv.getUint32(p, true);
      const kind = (info >>> 24) & 0x1f;
      if (info & ~0x9f00ffff) throw new BpfError(EINVAL, `[${id}] Invalid btf_info:${info.toString(16)}`);
      if (kind === 0 || kind > BTF_KIND_MAX) throw new BpfError(EINVAL, `[${id}] Invalid kind:${kind}`);
      if (nameOff >= strLen) throw new BpfError(EINVAL, `[${id}] Invalid name_offset:${nameOff}`);
      // btf_verifier_log_basic: the kind's own "meta_left" with the record's name
      const name = nameOff
        ? new TextDecoder("latin1").decode(bytes.subarray(strStart + nameOff, bytes.indexOf(0, strStart + nameOff)))
        : "(anon)";
      const m = / meta_left:(\d+) meta_needed:(\d+)$/.exec((e as BpfError).message);
      if (m)
        throw new BpfError(EINVAL, `[${id}] ${BTF_KIND_NAMES[kind]} ${name} meta_left:${m[1]} meta_needed:${m[2]}`);
    }
    throw e;
  }
}

/** BPF_BTF_LOAD. */
export function bpf_btf_load(k: Kernel, proc: Process, attr: BtfLoadAttr): number {
  if (num(attr.btf_flags) & ~BPF_F_TOKEN_FD) throw new BpfError(EINVAL, "invalid btf_flags");
  if (num(attr.btf_flags) & BPF_F_TOKEN_FD || num(attr.btf_token_fd)) {
    throw new BpfError(EINVAL, "BPF tokens are not supported");
  }
  if (!proc.cred.bpfCapable()) throw new BpfError(EPERM, "BTF_LOAD needs CAP_BPF");
  const log = new BpfLog(num(attr.btf_log_level), attr.btf_log_buf, num(attr.btf_log_size));
  const size = num(attr.btf_size);
  if (size > BTF_MAX_SIZE) throw new BpfError(E2BIG, `btf_size ${size} is over ${BTF_MAX_SIZE}`);
  const data = attr.btf;
  if (!data || data.length < size) throw new BpfError(EINVAL, "btf buffer is smaller than btf_size");
  const bytes = data.slice(0, size);
  let btf: Btf;
  let hdr: BtfHdr;
  try {
    hdr = btf_parse_hdr(bytes, log);
  } catch (e) {
    if (e instanceof BpfError) attr.btf_log_true_size = log.finalize();
    throw e;
  }
  let parsed: Btf | undefined;
  try {
    btf = parseInOrder(bytes, hdr);
    parsed = btf;
    (btf as unknown as { validate?: () => void }).validate?.();
  } catch (e) {
    if (e instanceof BpfError) {
      log.log(btfVerifierLine(e, parsed));
      attr.btf_log_true_size = log.finalize();
    }
    throw e;
  }
  // btf_parse_struct_metas + btf_check_and_fixup_fields: program-allocatable types get their
  // record now; a bad one fails the load with the errno alone (the kernel logs nothing there).
  const metas = btfParseStructMetas(btf, kptrResolver(k));
  for (const m of metas.values()) btfCheckAndFixupFields(metas, m.record);
  attr.btf_log_true_size = log.finalizeOk();
  const obj = new BtfObject(btf, bytes, false);
  obj.structMetas = metas;
  btf_alloc_id(k, obj);
  try {
    return btf_new_fd(proc, obj);
  } catch (e) {
    btf_put(obj);
    throw e;
  }
}

/** BPF_BTF_GET_FD_BY_ID body (capability and attr checks done by the caller). */
export function btf_get_fd_by_id(k: Kernel, proc: Process, id: number): number {
  const btf = k.btf_idr.find(id);
  if (!btf || btf.refcnt <= 0) throw new BpfError(ENOENT, `no BTF with id ${id}`);
  btf_get(btf);
  try {
    return btf_new_fd(proc, btf);
  } catch (e) {
    btf_put(btf);
    throw e;
  }
}

export interface BpfBtfInfo {
  btf: Uint8Array;
  btf_size: number;
  id: number;
  name: string;
  kernel_btf: boolean;
}

export function btf_get_info(btf: BtfObject): BpfBtfInfo {
  return { btf: btf.data, btf_size: btf.data.length, id: btf.id, name: btf.name, kernel_btf: btf.kernelBtf };
}

/**
 * btf_parse_kptr: a kptr's type is looked up by name and kind in vmlinux (bpf_find_btf_id;
 * modules' BTF is not searched: no module here defines kptr types), else it is the program's
 * own (an allocated object). A referenced kptr of a kernel type needs the type's destructor
 * (btf_find_dtor_kfunc): the types without one may not be held by a map (ENOENT).
 */
export function kptrResolver(k: Kernel): KptrResolver {
  return (name, kind, type) => {
    const v = k.btfVmlinux;
    const id = v ? v.findByNameKind(name, kind) : -1;
    if (!v || id <= 0) return undefined;
    if (type === BPF_KPTR_REF && !btfFindDtorKfunc(k, name))
      throw new BpfError(ENOENT, `struct ${name} has no destructor kfunc: it cannot be a referenced kptr`);
    return { btf: v, id };
  };
}
