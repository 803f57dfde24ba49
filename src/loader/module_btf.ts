/**
 * Module BTFs as libbpf finds them (libbpf.c load_module_btfs, find_ksym_btf_id): on the first
 * name vmlinux lacks, every BTF object is walked with BPF_BTF_GET_NEXT_ID, opened by id, and kept
 * when its info says `kernel_btf` under a name other than "vmlinux"; its raw data is read back as
 * split BTF over vmlinux. The fds stay open until the object's load ends, so that map creation
 * (value_type_btf_obj_fd), program loads (attach_btf_obj_fd) and kfunc calls (fd_array) can name
 * the module; then they are closed, as libbpf does.
 */
import { Btf } from "../btf/btf.js";
import { BpfError, E2BIG, EBADF, ENOENT, EPERM, ESRCH, errnoName } from "../uapi/errno.js";
import { type BpfHandle, bpf_btf_get_fd_by_id, bpf_btf_get_info_by_fd, bpf_btf_get_next_id, close } from "./bpf.js";

/** struct module_btf. */
export interface ModuleBtf {
  readonly btf: Btf;
  readonly name: string;
  readonly id: number;
  readonly fd: number;
}

const INT16_MAX = 0x7fff;

type Print = (level: "warn" | "info" | "debug", msg: string) => void;

/** The per-load state libbpf keeps in the bpf_object (btf_modules, btf_modules_loaded). */
export class ModuleBtfs {
  private modules: ModuleBtf[] | null = null;
  /** obj->fd_array: module BTF fds kfunc calls name by index (insn->off); index 0 is never used. */
  readonly fdArray: number[] = [];
  private readonly fdIdx = new Map<ModuleBtf, number>();

  constructor(
    private readonly h: BpfHandle,
    readonly vmlinux: Btf,
    private readonly print: Print,
  ) {}

  /** load_module_btfs(). */
  load(): readonly ModuleBtf[] {
    if (this.modules) return this.modules;
    const mods: ModuleBtf[] = [];
    this.modules = mods;
    const h = this.h;
    const next = { id: 0 };
    for (;;) {
      const err = bpf_btf_get_next_id(h, next.id, next);
      if (err === -ENOENT) return mods;
      if (err === -EPERM) {
        this.print("debug", "skipping module BTFs loading, missing privileges");
        return mods;
      }
      if (err) return this.fail(`failed to iterate BTF objects: ${strerr(err)}`, err);
      const id = next.id;
      const fd = bpf_btf_get_fd_by_id(h, id);
      if (fd === -ENOENT) continue; // unloaded meanwhile
      if (fd < 0) return this.fail(`failed to get BTF object #${id} FD: ${strerr(fd)}`, fd);
      const info: { name?: string; kernel_btf?: boolean; btf?: Uint8Array } = {};
      const ierr = bpf_btf_get_info_by_fd(h, fd, info);
      if (ierr) {
        close(h, fd);
        return this.fail(`failed to get BTF object #${id} info: ${strerr(ierr)}`, ierr);
      }
      if (!info.kernel_btf || info.name === "vmlinux" || !info.btf) {
        close(h, fd);
        continue;
      }
      let btf: Btf;
      try {
        btf = Btf.parse(info.btf, { base: this.vmlinux });
      } catch (e) {
        close(h, fd);
        const msg = `failed to load module [${info.name}]'s BTF object #${id}: ${(e as Error).message}`;
        this.print("warn", msg);
        throw new BpfError(e instanceof BpfError ? e.errno : EBADF, msg);
      }
      mods.push({ btf, name: info.name ?? "", id, fd });
    }
  }

  private fail(msg: string, err: number): never {
    this.print("warn", msg);
    this.closeAll();
    throw new BpfError(-err, msg);
  }

  /**
   * find_ksym_btf_id(): `name` of `kind` in vmlinux, else in the first module BTF that has it
   * among its own types. ESRCH when no BTF has it.
   */
  find(name: string, kind: number): { id: number; btf: Btf; mod: ModuleBtf | null } {
    const id = this.vmlinux.findByNameKind(name, kind);
    if (id > 0) return { id, btf: this.vmlinux, mod: null };
    for (const mod of this.load()) {
      const mid = findOwn(mod.btf, name, kind);
      if (mid > 0) return { id: mid, btf: mod.btf, mod };
    }
    throw new BpfError(ESRCH, `${name} is not found in kernel or module BTFs`);
  }

  /** The module's index in fd_array, added on first use (index 0 stays unused). */
  fdArrayIdx(mod: ModuleBtf, extName: string): number {
    let idx = this.fdIdx.get(mod);
    if (idx !== undefined) return idx;
    if (!this.fdArray.length) this.fdArray.push(0);
    if (this.fdArray.length === INT16_MAX) {
      const msg = `extern (func ksym) '${extName}': module BTF fd index ${this.fdArray.length} too big to fit in bpf_insn offset`;
      this.print("warn", msg);
      throw new BpfError(E2BIG, msg);
    }
    idx = this.fdArray.length;
    this.fdArray.push(mod.fd);
    this.fdIdx.set(mod, idx);
    return idx;
  }

  /** The end of bpf_object_load: module BTF fds are closed. */
  closeAll(): void {
    for (const m of this.modules ?? []) close(this.h, m.fd);
    this.modules = [];
  }
}

/** btf__find_by_name_kind_own(): only the split BTF's own types, not its base's. */
function findOwn(btf: Btf, name: string, kind: number): number {
  // Through the name index: no type is decoded.
  const id = btf.findByNameKindOwn(name, kind);
  return id > 0 ? id : -ENOENT;
}

function strerr(err: number): string {
  return `-${errnoName(-err)}`;
}
