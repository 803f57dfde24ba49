import { BpfError, EBADF, EMFILE } from "../uapi/errno.js";

/** What a file refers to; the BPF core dispatches on it like on f_op (bpf_map_fops, bpf_prog_fops...). */
export type FileKind = "map" | "prog" | "link" | "btf" | "sock" | "other";

/** The file_operations a file kind provides. */
export interface FileOps<T> {
  readonly kind: FileKind;
  /** Called once the last reference to the file is dropped (->release). */
  release(file: File<T>): void;
  /** /proc/<pid>/fdinfo/<fd> lines after pos/flags/mnt_id/ino (->show_fdinfo). */
  show_fdinfo?(file: File<T>): string;
  /** ->poll: EPOLL* mask. */
  poll?(file: File<T>): number;
}

export const FMODE_READ = 1;
export const FMODE_WRITE = 2;
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CLOEXEC = 0o2000000;

/** struct file: shared by every fd that dup()s it; released when the last one closes. */
export class File<T = unknown> {
  f_count = 1;
  readonly f_flags: number;
  readonly f_mode: number;

  constructor(
    readonly f_op: FileOps<T>,
    readonly private_data: T,
    flags = O_RDWR | O_CLOEXEC,
  ) {
    this.f_flags = flags;
    const acc = flags & 3;
    this.f_mode = acc === O_RDONLY ? FMODE_READ : acc === O_WRONLY ? FMODE_WRITE : FMODE_READ | FMODE_WRITE;
  }

  get kind(): FileKind {
    return this.f_op.kind;
  }

  get_file(): this {
    this.f_count++;
    return this;
  }

  /** fput(): the last put calls the kind's release. */
  fput(): void {
    if (this.f_count <= 0) throw new Error("fput on a released file");
    if (--this.f_count === 0) this.f_op.release(this);
  }
}

const STDIO = ["stdin", "stdout", "stderr"] as const;

/** A terminal or /dev/null: nothing the BPF core knows. */
const stdio_fops: FileOps<string> = { kind: "other", release: () => {} };

/** A process's file-descriptor table: lowest free fd, as open()/dup() give. */
export class FdTable {
  private readonly fds = new Map<number, File>();
  /** Slots taken by get_unused_fd() and not yet installed. */
  private readonly reserved = new Set<number>();

  constructor(private readonly max = 1024) {
    // A process starts with stdin, stdout and stderr open on ordinary files: BPF objects get 3
    // and up, and fd 0 given where a BPF fd is expected is "not a BPF object" (EINVAL), as on Linux.
    for (const name of STDIO) this.install(new File(stdio_fops, name, name === "stdin" ? O_RDONLY : O_WRONLY));
  }

  /** fd_install into the lowest free slot; the table takes over the caller's file reference. */
  install(file: File): number {
    const fd = this.getUnusedFd();
    this.fdInstall(fd, file);
    return fd;
  }

  /** get_unused_fd_flags(): reserve the lowest free slot (EMFILE when none). */
  getUnusedFd(): number {
    for (let fd = 0; fd < this.max; fd++) {
      if (!this.fds.has(fd) && !this.reserved.has(fd)) {
        this.reserved.add(fd);
        return fd;
      }
    }
    throw new BpfError(EMFILE, "too many open files");
  }

  /** fd_install(): a reserved slot gets its file. */
  fdInstall(fd: number, file: File): void {
    if (!this.reserved.delete(fd)) throw new Error(`fd_install: fd ${fd} was not reserved`);
    this.fds.set(fd, file);
  }

  /** put_unused_fd(): give a reserved slot back. */
  putUnusedFd(fd: number): void {
    this.reserved.delete(fd);
  }

  /** fdget(): the file behind fd, or EBADF. The table keeps its reference. */
  get(fd: number): File {
    const f = Number.isInteger(fd) ? this.fds.get(fd) : undefined;
    if (!f) throw new BpfError(EBADF, `fd ${fd} is not open`, { fd });
    return f;
  }

  has(fd: number): boolean {
    return this.fds.has(fd);
  }

  close(fd: number): void {
    const f = this.get(fd);
    this.fds.delete(fd);
    f.fput();
  }

  dup(fd: number): number {
    const f = this.get(fd);
    f.get_file();
    try {
      return this.install(f);
    } catch (e) {
      f.fput();
      throw e;
    }
  }

  /** Every open fd, ascending. */
  list(): number[] {
    return [...this.fds.keys()].sort((a, b) => a - b);
  }

  /** Process exit: every fd is closed, lowest first. */
  closeAll(): void {
    for (const fd of this.list()) this.close(fd);
  }
}
