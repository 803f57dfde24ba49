/**
 * libbpf's btf__parse() and btf__free() for a raw BTF file (/sys/kernel/btf/vmlinux): one read
 * into a buffer sized once from fstat, parsed where it lies, its type index in the same buffer
 * after the bytes. A freed object's buffer is kept for the next file that fits, as malloc hands
 * libbpf back the block it freed: a new 7 MB buffer costs a page fault per 4 KiB on first touch,
 * more than the read and the parse together, and V8 would give the old one back only at a later
 * garbage collection.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { Btf, type BtfParseOptions } from "../btf/btf.js";

/** The buffer of the last object freed, for the next parse. */
let spare: Buffer | undefined;
const owned = new WeakMap<Btf, Buffer>();

/** Where the index starts in a buffer for a file of `size` bytes, and the whole buffer's length. */
function layout(size: number): { at: number; total: number } {
  const at = (size + 3) & ~3;
  return { at, total: at + 4 * (Math.floor(size / 12) + 1) };
}

/**
 * The file's bytes, in the spare buffer if it fits, with room for the index after them; a file
 * whose size stat does not know is read whole.
 */
function readRaw(path: string): { buf: Buffer; len: number } {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    if (size === 0) {
      const whole = readFileSync(fd);
      return { buf: whole, len: whole.length };
    }
    let buf: Buffer;
    if (spare && spare.length >= layout(size).total) {
      buf = spare;
      spare = undefined;
    } else buf = Buffer.allocUnsafeSlow(layout(size).total);
    let len = 0;
    try {
      // sysfs hands out a page per read(): loop until the size stat gave, or an early end.
      while (len < size) {
        const got = readSync(fd, buf, len, size - len, null);
        if (got === 0) break;
        len += got;
      }
    } catch (e) {
      spare ??= buf;
      throw e;
    }
    return { buf, len };
  } finally {
    closeSync(fd);
  }
}

/** btf__parse() of a raw BTF file; btfFree() gives its memory to the next parse. */
export function btfParseRaw(path: string, opts: BtfParseOptions = {}): Btf {
  const { buf, len } = readRaw(path);
  let btf: Btf;
  try {
    const { at, total } = layout(len);
    // A buffer of readFileSync's (size unknown to stat) has no room: the index is then allocated.
    const index = total <= buf.length ? new Uint32Array(buf.buffer, buf.byteOffset + at, (total - at) / 4) : undefined;
    btf = Btf.parse(buf.subarray(0, len), { ...opts, index });
  } catch (e) {
    if (!spare || buf.length > spare.length) spare = buf;
    throw e;
  }
  owned.set(btf, buf);
  return btf;
}

/**
 * btf__free(): the object forgets its types (any later lookup is an out-of-range EINVAL) and,
 * if btfParseRaw read it, its buffer serves the next parse. Other objects are only released.
 */
export function btfFree(btf: Btf): void {
  btf.release();
  const buf = owned.get(btf);
  if (!buf) return;
  owned.delete(btf);
  if (!spare || buf.length > spare.length) spare = buf;
}
