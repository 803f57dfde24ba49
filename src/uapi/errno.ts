/**
 * errno values as Linux (x86-64, asm-generic) defines them, plus the kernel-internal
 * ENOTSUPP (524) that the verifier and struct_ops leak to userspace, and libbpf's own
 * LIBBPF_ERRNO__* range.
 */
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const ENOEXEC = 8;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const EXDEV = 18;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOTTY = 25;
export const EFBIG = 27;
export const ENOSPC = 28;
export const ESPIPE = 29;
export const EROFS = 30;
export const EPIPE = 32;
export const EDOM = 33;
export const ERANGE = 34;
export const EDEADLK = 35;
export const ENAMETOOLONG = 36;
export const ENOSYS = 38;
export const ELOOP = 40;
export const ENOMSG = 42;
export const ENODATA = 61;
export const ETIME = 62;
export const ENOLINK = 67;
export const EPROTO = 71;
export const EOVERFLOW = 75;
export const EBADFD = 77;
export const EOPNOTSUPP = 95;
export const ENOTSUP = EOPNOTSUPP;
export const ETIMEDOUT = 110;
export const EALREADY = 114;
export const EINPROGRESS = 115;
/** Kernel-internal "operation not supported"; distinct from EOPNOTSUPP (95). */
export const ENOTSUPP = 524;

export const LIBBPF_ERRNO__LIBELF = 4000;
export const LIBBPF_ERRNO__FORMAT = 4001;
export const LIBBPF_ERRNO__KVERSION = 4002;
export const LIBBPF_ERRNO__ENDIAN = 4003;
export const LIBBPF_ERRNO__INTERNAL = 4004;
export const LIBBPF_ERRNO__RELOC = 4005;
export const LIBBPF_ERRNO__LOAD = 4006;
export const LIBBPF_ERRNO__VERIFY = 4007;
export const LIBBPF_ERRNO__PROG2BIG = 4008;
export const LIBBPF_ERRNO__KVER = 4009;
export const LIBBPF_ERRNO__PROGTYPE = 4010;
export const LIBBPF_ERRNO__WRNGPID = 4011;
export const LIBBPF_ERRNO__INVSEQ = 4012;
export const LIBBPF_ERRNO__NLPARSE = 4013;

const NAMES: Record<number, string> = {
  [EPERM]: "EPERM",
  [ENOENT]: "ENOENT",
  [ESRCH]: "ESRCH",
  [EINTR]: "EINTR",
  [EIO]: "EIO",
  [ENXIO]: "ENXIO",
  [E2BIG]: "E2BIG",
  [ENOEXEC]: "ENOEXEC",
  [EBADF]: "EBADF",
  [EAGAIN]: "EAGAIN",
  [ENOMEM]: "ENOMEM",
  [EACCES]: "EACCES",
  [EFAULT]: "EFAULT",
  [EBUSY]: "EBUSY",
  [EEXIST]: "EEXIST",
  [EXDEV]: "EXDEV",
  [ENODEV]: "ENODEV",
  [ENOTDIR]: "ENOTDIR",
  [EINVAL]: "EINVAL",
  [ENFILE]: "ENFILE",
  [EMFILE]: "EMFILE",
  [ENOTTY]: "ENOTTY",
  [EFBIG]: "EFBIG",
  [ENOSPC]: "ENOSPC",
  [ESPIPE]: "ESPIPE",
  [EROFS]: "EROFS",
  [EPIPE]: "EPIPE",
  [EDOM]: "EDOM",
  [ERANGE]: "ERANGE",
  [EDEADLK]: "EDEADLK",
  [ENAMETOOLONG]: "ENAMETOOLONG",
  [ENOSYS]: "ENOSYS",
  [ELOOP]: "ELOOP",
  [ENOMSG]: "ENOMSG",
  [ENODATA]: "ENODATA",
  [ETIME]: "ETIME",
  [ENOLINK]: "ENOLINK",
  [EPROTO]: "EPROTO",
  [EOVERFLOW]: "EOVERFLOW",
  [EBADFD]: "EBADFD",
  [EOPNOTSUPP]: "EOPNOTSUPP",
  [ETIMEDOUT]: "ETIMEDOUT",
  [EALREADY]: "EALREADY",
  [EINPROGRESS]: "EINPROGRESS",
  [ENOTSUPP]: "ENOTSUPP",
  [LIBBPF_ERRNO__LIBELF]: "LIBBPF_ERRNO__LIBELF",
  [LIBBPF_ERRNO__FORMAT]: "LIBBPF_ERRNO__FORMAT",
  [LIBBPF_ERRNO__KVERSION]: "LIBBPF_ERRNO__KVERSION",
  [LIBBPF_ERRNO__ENDIAN]: "LIBBPF_ERRNO__ENDIAN",
  [LIBBPF_ERRNO__INTERNAL]: "LIBBPF_ERRNO__INTERNAL",
  [LIBBPF_ERRNO__RELOC]: "LIBBPF_ERRNO__RELOC",
  [LIBBPF_ERRNO__LOAD]: "LIBBPF_ERRNO__LOAD",
  [LIBBPF_ERRNO__VERIFY]: "LIBBPF_ERRNO__VERIFY",
  [LIBBPF_ERRNO__PROG2BIG]: "LIBBPF_ERRNO__PROG2BIG",
  [LIBBPF_ERRNO__KVER]: "LIBBPF_ERRNO__KVER",
  [LIBBPF_ERRNO__PROGTYPE]: "LIBBPF_ERRNO__PROGTYPE",
  [LIBBPF_ERRNO__WRNGPID]: "LIBBPF_ERRNO__WRNGPID",
  [LIBBPF_ERRNO__INVSEQ]: "LIBBPF_ERRNO__INVSEQ",
  [LIBBPF_ERRNO__NLPARSE]: "LIBBPF_ERRNO__NLPARSE",
};

export function errnoName(errno: number): string {
  return NAMES[errno] ?? `E${errno}`;
}

export function errnoByName(name: string): number | undefined {
  for (const [k, v] of Object.entries(NAMES)) if (v === name) return Number(k);
  return undefined;
}

/** Structured context a layer may attach: what was being processed when the error arose. */
export interface BpfErrorContext {
  member?: string;
  insn?: number;
  section?: string;
  map?: string;
  prog?: string;
  offset?: number;
  typeId?: number;
  [key: string]: string | number | undefined;
}

/**
 * The one error class of structops. `errno` is the positive Linux errno the kernel (or
 * libbpf) would report; the message names the offending thing.
 */
export class BpfError extends Error {
  readonly errno: number;
  readonly context: BpfErrorContext;

  constructor(errno: number, message: string, context: BpfErrorContext = {}) {
    super(message);
    this.name = "BpfError";
    this.errno = errno;
    this.context = context;
  }

  get code(): string {
    return errnoName(this.errno);
  }

  /** A copy of this error with a prefix added, as each layer adds context ("struct_ops map x: ..."). */
  wrap(prefix: string, context: BpfErrorContext = {}): BpfError {
    const e = new BpfError(this.errno, `${prefix}: ${this.message}`, { ...this.context, ...context });
    e.stack = this.stack;
    return e;
  }
}

export function isBpfError(e: unknown): e is BpfError {
  return e instanceof BpfError;
}

/** Run `fn`, turning a BpfError into libbpf's `-errno` convention; anything else is a bug and rethrown. */
export function toNegErrno(fn: () => number): number {
  try {
    return fn();
  } catch (e) {
    if (e instanceof BpfError) return -e.errno;
    throw e;
  }
}
