/**
 * libbpf's BTF attach targets of fentry/fexit (and other SEC_ATTACH_BTF) programs:
 * bpf_program__set_attach_target(), libbpf_find_prog_btf_id() (a function of another loaded
 * program's BTF, found through its bpf_prog_info.btf_id), the resolution at load
 * (libbpf_prepare_prog_load) from the section name, and bpf_program__attach_trace().
 */
import { Btf } from "../btf/btf.js";
import { bpf_attach_type } from "../uapi/bpf.js";
import { BTF_KIND_FUNC, BTF_KIND_TYPEDEF } from "../uapi/btf.js";
import { BpfError, EINVAL, ESRCH } from "../uapi/errno.js";
import {
  type BpfHandle,
  bpf_btf_get_fd_by_id,
  bpf_btf_get_info_by_fd,
  bpf_link_create,
  bpf_prog_get_info_by_fd,
  close,
} from "./bpf.js";
import type { BpfProgram } from "./program.js";
import { SEC_ATTACH_BTF } from "./section_defs.js";

type Print = (level: "warn" | "debug", msg: string) => void;

/** btf_load_from_kernel(): a loaded BTF object by id, parsed. */
function btfLoadFromKernel(h: BpfHandle, id: number): Btf | number {
  const fd = bpf_btf_get_fd_by_id(h, id);
  if (fd < 0) return fd;
  try {
    const info: { btf?: Uint8Array } = {};
    const err = bpf_btf_get_info_by_fd(h, fd, info as never);
    if (err < 0) return err;
    return Btf.parse(info.btf!);
  } finally {
    close(h, fd);
  }
}

/** libbpf_find_prog_btf_id(): the FUNC `name` in the BTF of program `attachProgFd`; -errno. */
export function libbpf_find_prog_btf_id(h: BpfHandle, name: string, attachProgFd: number, print: Print): number {
  const info: { btf_id?: number } = {};
  const err = bpf_prog_get_info_by_fd(h, attachProgFd, info as never);
  if (err < 0) {
    print("warn", `failed get_prog_info_by_fd for FD ${attachProgFd}: ${err}`);
    return err;
  }
  if (!info.btf_id) {
    print("warn", "The target program doesn't have BTF");
    return -EINVAL;
  }
  const btf = btfLoadFromKernel(h, info.btf_id);
  if (typeof btf === "number") {
    print("warn", `Failed to get BTF ${info.btf_id} of the program: ${btf}`);
    return btf;
  }
  const id = btf.findByNameKind(name, BTF_KIND_FUNC);
  if (id <= 0) {
    print("warn", `${name} is not found in prog's BTF`);
    return -EINVAL;
  }
  return id;
}

/**
 * find_kernel_btf_id(): the target in the kernel's BTF (vmlinux; modules are not searched), named
 * with the attach type's prefix (btf_attach_type_prefix): tp_btf programs name the tracepoint's
 * `btf_trace_` typedef, LSM programs the `bpf_lsm_` function, iterators `bpf_iter_`.
 */
function findKernelBtfId(h: BpfHandle, name: string, attachType = -1): number {
  const [prefix, kind] =
    attachType === bpf_attach_type.BPF_TRACE_RAW_TP
      ? ["btf_trace_", BTF_KIND_TYPEDEF]
      : attachType === bpf_attach_type.BPF_LSM_MAC
        ? ["bpf_lsm_", BTF_KIND_FUNC]
        : attachType === bpf_attach_type.BPF_TRACE_ITER
          ? ["bpf_iter_", BTF_KIND_FUNC]
          : ["", BTF_KIND_FUNC];
  const id = h.kernel.btfVmlinux?.findByNameKind(prefix + name, kind) ?? -1;
  return id > 0 ? id : -ESRCH;
}

/**
 * bpf_program__set_attach_target(): with a program fd, the function is looked up in that
 * program's BTF now (or at load, when no name is given); without one, in the kernel's.
 */
export function bpf_program__set_attach_target(
  h: BpfHandle,
  prog: BpfProgram,
  attachProgFd: number,
  funcName: string | null,
  print: Print = () => {},
): void {
  if (attachProgFd < 0 || prog.loaded) throw new BpfError(EINVAL, `prog '${prog.name}': cannot set attach target`);
  if (attachProgFd && !funcName) {
    prog.attachProgFd = attachProgFd;
    return;
  }
  let id: number;
  if (attachProgFd) {
    id = libbpf_find_prog_btf_id(h, funcName!, attachProgFd, print);
  } else {
    if (!funcName) throw new BpfError(EINVAL, `prog '${prog.name}': attach target needs a function name`);
    id = findKernelBtfId(h, funcName, prog.expectedAttachType);
  }
  if (id < 0) throw new BpfError(-id, `prog '${prog.name}': cannot find BTF id of '${funcName}'`);
  prog.attachBtfId = id;
  prog.attachBtfObjFd = 0;
  prog.attachProgFd = attachProgFd;
}

/**
 * libbpf_prepare_prog_load's SEC_ATTACH_BTF part: a target not set at runtime comes from the
 * section name (`fentry/<func>`), in the attach program's BTF when one was given, else the kernel's.
 */
export function prepareAttachBtf(h: BpfHandle, prog: BpfProgram, print: Print): void {
  if (!prog.secDef || !(prog.secDef.flags & SEC_ATTACH_BTF) || prog.attachBtfId) return;
  const slash = prog.secName.indexOf("/");
  if (slash < 0) {
    const msg = `prog '${prog.name}': no BTF-based attach target is specified, use bpf_program__set_attach_target()`;
    print("warn", msg);
    throw new BpfError(EINVAL, msg, { prog: prog.name });
  }
  const name = prog.secName.slice(slash + 1);
  if (prog.attachProgFd) {
    const id = libbpf_find_prog_btf_id(h, name, prog.attachProgFd, print);
    if (id < 0) {
      const msg = `prog '${prog.name}': failed to find BPF program (FD ${prog.attachProgFd}) BTF ID for '${name}': ${id}`;
      print("warn", msg);
      throw new BpfError(-id, msg, { prog: prog.name });
    }
    prog.attachBtfId = id;
    return;
  }
  const id = findKernelBtfId(h, name, prog.expectedAttachType);
  if (id < 0) {
    const msg = `prog '${prog.name}': failed to find kernel BTF type ID of '${name}': ${id}`;
    print("warn", msg);
    throw new BpfError(-id, msg, { prog: prog.name });
  }
  prog.attachBtfId = id;
}

/** bpf_program__attach_trace(): a tracing link through LINK_CREATE; the link fd, or -errno. */
export function bpf_program__attach_trace(h: BpfHandle, prog: BpfProgram, cookie: bigint | number = 0): number {
  if (prog.fd < 0) return -EINVAL;
  return bpf_link_create(h, prog.fd, 0, prog.expectedAttachType, { cookie });
}
