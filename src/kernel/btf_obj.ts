/** BTF as a kernel object (kernel/bpf/btf.c): BTF_LOAD, btf fds and ids, get/put. */
import { Btf } from "../btf/btf.js";
import { BPF_KPTR_REF, btfCheckAndFixupFields, btfParseStructMetas, type KptrResolver } from "../btf/record.js";
import { BPF_F_TOKEN_FD } from "../uapi/bpf.js";
import { BpfError, E2BIG, EINVAL, ENOENT, ENOTSUPP, EPERM } from "../uapi/errno.js";
import { BtfObject } from "./bpf.js";
import type { BtfLoadAttr } from "./bpf_attr.js";
import { num } from "./bpf_attr.js";
import { btfFindDtorKfunc } from "./bpf_kptr.js";
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

/**
 * btf_parse_hdr(): the kernel takes BTF in its own byte order only, and reports an unknown version
 * or flags as ENOTSUPP and a header longer than it knows with non-zero extra bytes as E2BIG.
 */
function btf_parse_hdr(data: Uint8Array): void {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length < 8) throw new BpfError(EINVAL, "hdr_len not found");
  const hdrLen = dv.getUint32(4, true);
  if (data.length < hdrLen) throw new BpfError(EINVAL, "btf_header not found");
  if (hdrLen > BTF_HEADER_SIZE && data.subarray(BTF_HEADER_SIZE, hdrLen).some((b) => b !== 0)) {
    throw new BpfError(E2BIG, "Unsupported btf_header");
  }
  if (dv.getUint16(0, true) !== 0xeb9f) throw new BpfError(EINVAL, "Invalid magic");
  if (data[2] !== 1) throw new BpfError(ENOTSUPP, "Unsupported version");
  if (data[3] !== 0) throw new BpfError(ENOTSUPP, "Unsupported flags");
  if (data.length === hdrLen) throw new BpfError(EINVAL, "No data");
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
  try {
    btf_parse_hdr(bytes);
    btf = Btf.parse(bytes);
    (btf as unknown as { validate?: () => void }).validate?.();
  } catch (e) {
    if (e instanceof BpfError) {
      log.log(e.message);
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
