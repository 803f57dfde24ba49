import { BpfError, ENOSPC } from "../uapi/errno.js";

export const INT_MAX = 0x7fffffff;

/**
 * ID allocator (lib/idr.c) as the BPF core uses it: idr_alloc_cyclic(idr, obj, 1, INT_MAX) hands
 * out the lowest free id at or after the last one given, wrapping to 1 past INT_MAX, and never an
 * id that is still live.
 */
export class Idr<T> {
  private readonly objs = new Map<number, T>();
  private next: number;

  constructor(
    private readonly start = 1,
    private readonly end = INT_MAX,
  ) {
    this.next = start;
  }

  allocCyclic(obj: T): number {
    const span = this.end - this.start + 1;
    if (this.objs.size >= span) throw new BpfError(ENOSPC, "idr: no free id");
    let id = this.next;
    for (;;) {
      if (id > this.end) id = this.start;
      if (!this.objs.has(id)) break;
      id++;
    }
    this.objs.set(id, obj);
    this.next = id + 1;
    return id;
  }

  /** Where the next cyclic search starts (idr->idr_next); lets tests reach the wrap-around. */
  setNext(id: number): void {
    this.next = id;
  }

  find(id: number): T | undefined {
    return this.objs.get(id);
  }

  remove(id: number): void {
    this.objs.delete(id);
  }

  /** idr_get_next(): the live entry with the smallest id >= `id`. */
  getNext(id: number): { id: number; obj: T } | undefined {
    let best = -1;
    for (const k of this.objs.keys()) if (k >= id && (best < 0 || k < best)) best = k;
    return best < 0 ? undefined : { id: best, obj: this.objs.get(best)! };
  }

  get size(): number {
    return this.objs.size;
  }

  values(): IterableIterator<T> {
    return this.objs.values();
  }
}
