/**
 * How the CLI fails. One exit-code scheme for every verb:
 *
 *   0    done
 *   1    done, and the answer is "no": `prog verify` rejected a program, `conformance` had a
 *        failing vector
 *   255  could not do what was asked: bad usage, an option out of range, a file that cannot be
 *        read, an error from the (simulated) kernel or the loader. bpftool's verbs return -1 from
 *        main in these cases, which is 255 as an exit status; ours do the same for every verb.
 *
 * An error is one line on stderr, `Error: ...` (with -j/-p bpftool prints `{"error": "..."}` on
 * stdout instead, and so do we); never a stack trace ($STRUCTOPS_DEBUG=1 adds it for bugs).
 */
import { BpfError, errnoName } from "../uapi/errno.js";

export const EXIT_OK = 0;
export const EXIT_NO = 1;
export const EXIT_ERROR = 255;

/** A user error whose message is printed as it is (already names the option, file or object). */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

/** strerror() for the errnos a file operation reports. */
const STRERROR: Record<string, string> = {
  ENOENT: "No such file or directory",
  EACCES: "Permission denied",
  EPERM: "Operation not permitted",
  EISDIR: "Is a directory",
  ENOTDIR: "Not a directory",
  EEXIST: "File exists",
  ENOSPC: "No space left on device",
  EROFS: "Read-only file system",
  EMFILE: "Too many open files",
  ENAMETOOLONG: "File name too long",
  ELOOP: "Too many levels of symbolic links",
  EIO: "Input/output error",
  EINVAL: "Invalid argument",
  EFBIG: "File too large",
  EBUSY: "Device or resource busy",
  E2BIG: "Argument list too long",
  ENOMEM: "Cannot allocate memory",
  EFAULT: "Bad address",
  EOPNOTSUPP: "Operation not supported",
  ESRCH: "No such process",
  EBADF: "Bad file descriptor",
  ERANGE: "Numerical result out of range",
  ENOTSUPP: "Unknown error 524",
  EPROTO: "Protocol error",
  ENOEXEC: "Exec format error",
};

export function strerror(code: string): string {
  return STRERROR[code] ?? code;
}

/** strerror() of a positive errno. */
export function strerrorOf(errno: number): string {
  return strerror(errnoName(errno));
}

/** A Node file-system error as one line naming what, the file and the errno: `can't read object x.o: No such file or directory (ENOENT)`. */
export function fileError(what: string, path: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (typeof code !== "string") return e as Error;
  return new CliError(`${what} ${path}: ${strerror(code)} (${code})`);
}

/** The line printed for an error, or undefined for a bug (not a user error). */
export function errorLine(e: unknown): string | undefined {
  if (e instanceof CliError) return e.message;
  if (e instanceof BpfError) return `${e.message} (${e.code})`;
  const code = (e as NodeJS.ErrnoException)?.code;
  const path = (e as NodeJS.ErrnoException)?.path;
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) {
    return path ? `${path}: ${strerror(code)} (${code})` : `${(e as Error).message}`;
  }
  return undefined;
}
