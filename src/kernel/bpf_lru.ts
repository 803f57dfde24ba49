/**
 * kernel/bpf/bpf_lru_list.c: the LRU behind BPF_MAP_TYPE_LRU_HASH and LRU_PERCPU_HASH. Nodes
 * move between an active, an inactive and a free list; a lookup sets a node's reference bit, and
 * rotation and shrinking read it, so which element is evicted follows the kernel's lists step by
 * step. The common LRU (default) hands free nodes to a per-CPU local list `target_free` at a time
 * and keeps new nodes pending there; BPF_F_NO_COMMON_LRU gives each CPU its own whole LRU.
 */

/** enum bpf_lru_list_type. */
const ACTIVE = 0;
const INACTIVE = 1;
const FREE = 2;
const LOCAL_FREE = 3;
const LOCAL_PENDING = 4;

const LOCAL_FREE_TARGET = 128;
const LOCAL_NR_SCANS = LOCAL_FREE_TARGET;
const PERCPU_FREE_TARGET = 4;
const PERCPU_NR_SCANS = 4;

/** struct list_head: a circular doubly linked list through a sentinel. */
class ListHead {
  next: ListHead = this;
  prev: ListHead = this;
}

function listAdd(n: ListHead, head: ListHead): void {
  n.next = head.next;
  n.prev = head;
  head.next.prev = n;
  head.next = n;
}

function listDel(n: ListHead): void {
  n.prev.next = n.next;
  n.next.prev = n.prev;
  n.next = n;
  n.prev = n;
}

function listMove(n: ListHead, head: ListHead): void {
  listDel(n);
  listAdd(n, head);
}

const listEmpty = (h: ListHead): boolean => h.next === h;

/** struct bpf_lru_node, carrying the element it belongs to (the htab_elem around it). */
export class BpfLruNode<E = unknown> extends ListHead {
  type = FREE;
  ref = 0;
  cpu = 0;
  constructor(readonly elem: E) {
    super();
  }
}

class BpfLruList {
  readonly lists = [new ListHead(), new ListHead(), new ListHead()];
  readonly counts = [0, 0];
  nextInactiveRotation: ListHead;
  constructor() {
    this.nextInactiveRotation = this.lists[INACTIVE];
  }
}

class BpfLruLocalList {
  readonly free = new ListHead();
  readonly pending = new ListHead();
  constructor(public nextSteal: number) {}
}

const asNode = (h: ListHead): BpfLruNode => h as BpfLruNode;

/** struct bpf_lru. `delFromHtab` is htab_lru_map_delete_node: unhash the node's element. */
export class BpfLru<E> {
  readonly nrScans: number;
  targetFree = 1;
  private readonly common = new BpfLruList();
  private readonly local: BpfLruLocalList[] = [];
  private readonly percpuLists: BpfLruList[] = [];

  constructor(
    readonly percpu: boolean,
    private readonly nrCpus: number,
    private readonly delFromHtab: (node: BpfLruNode<E>) => boolean,
  ) {
    this.nrScans = percpu ? PERCPU_NR_SCANS : LOCAL_NR_SCANS;
    for (let cpu = 0; cpu < nrCpus; cpu++) {
      if (percpu) this.percpuLists.push(new BpfLruList());
      else this.local.push(new BpfLruLocalList(cpu));
    }
  }

  /** bpf_lru_populate(): every preallocated node starts free (added at the head, so last first). */
  populate(nodes: BpfLruNode<E>[]): void {
    if (!this.percpu) {
      for (const n of nodes) {
        n.type = FREE;
        n.ref = 0;
        listAdd(n, this.common.lists[FREE]);
      }
      this.targetFree = Math.min(Math.max(Math.floor(nodes.length / this.nrCpus / 2), 1), LOCAL_FREE_TARGET);
      return;
    }
    // Each CPU's list gets nr_elems / num_possible_cpus() nodes, in order.
    const per = Math.floor(nodes.length / this.nrCpus);
    let i = 0;
    for (let cpu = 0; cpu < this.nrCpus && i < nodes.length; cpu++) {
      do {
        const n = nodes[i++];
        n.cpu = cpu;
        n.type = FREE;
        n.ref = 0;
        listAdd(n, this.percpuLists[cpu].lists[FREE]);
      } while (i < nodes.length && i % per);
    }
  }

  /** bpf_lru_node_set_ref(): a lookup marks the node recently used. */
  static setRef(node: BpfLruNode): void {
    node.ref = 1;
  }

  /** bpf_lru_pop_free(): a free node for a new element on `cpu`, evicting if need be; null when none. */
  popFree(cpu: number): BpfLruNode<E> | null {
    return (this.percpu ? this.percpuPopFree(cpu) : this.commonPopFree(cpu)) as BpfLruNode<E> | null;
  }

  /** bpf_lru_push_free(): the node's element left the table. */
  pushFree(node: BpfLruNode<E>): void {
    if (node.type === FREE || node.type === LOCAL_FREE) return;
    if (this.percpu) {
      this.nodeMove(this.percpuLists[node.cpu], node, FREE);
      return;
    }
    if (node.type === LOCAL_PENDING) {
      node.type = LOCAL_FREE;
      node.ref = 0;
      listMove(node, this.local[node.cpu].free);
      return;
    }
    this.nodeMove(this.common, node, FREE);
  }

  // ---- the list operations ----

  private countInc(l: BpfLruList, type: number): void {
    if (type < 2) l.counts[type]++;
  }

  private countDec(l: BpfLruList, type: number): void {
    if (type < 2) l.counts[type]--;
  }

  /** __bpf_lru_node_move_in: from a local list into `l`. */
  private nodeMoveIn(l: BpfLruList, node: BpfLruNode, type: number): void {
    this.countInc(l, type);
    node.type = type;
    node.ref = 0;
    listMove(node, l.lists[type]);
  }

  /** __bpf_lru_node_move: between the lists of `l`, to the head of `type`. */
  private nodeMove(l: BpfLruList, node: BpfLruNode, type: number): void {
    if (node.type !== type) {
      this.countDec(l, node.type);
      this.countInc(l, type);
      node.type = type;
    }
    node.ref = 0;
    // The rotation cursor must not point at a node leaving its place.
    if (node === l.nextInactiveRotation) l.nextInactiveRotation = l.nextInactiveRotation.prev;
    listMove(node, l.lists[type]);
  }

  /** __bpf_lru_node_move_to_free. */
  private nodeMoveToFree(l: BpfLruList, node: BpfLruNode, freeList: ListHead, type: number): void {
    this.countDec(l, node.type);
    node.type = type;
    if (node === l.nextInactiveRotation) l.nextInactiveRotation = l.nextInactiveRotation.prev;
    listMove(node, freeList);
  }

  /** __bpf_lru_list_rotate_active: from the tail, referenced nodes stay active, others go inactive. */
  private rotateActive(l: BpfLruList): void {
    const active = l.lists[ACTIVE];
    const first = active.next;
    let i = 0;
    for (let cur = active.prev, prev = cur.prev; cur !== active; cur = prev, prev = cur.prev) {
      const node = asNode(cur);
      this.nodeMove(l, node, node.ref ? ACTIVE : INACTIVE);
      if (++i === this.nrScans || cur === first) break;
    }
  }

  /** __bpf_lru_list_rotate_inactive: from the cursor backwards, referenced nodes go active. */
  private rotateInactive(l: BpfLruList): void {
    const inactive = l.lists[INACTIVE];
    if (listEmpty(inactive)) return;
    let last = l.nextInactiveRotation.next;
    if (last === inactive) last = last.next;
    let cur = l.nextInactiveRotation;
    let next: ListHead = inactive;
    let i = 0;
    while (i < this.nrScans) {
      if (cur === inactive) {
        cur = cur.prev;
        continue;
      }
      const node = asNode(cur);
      next = cur.prev;
      if (node.ref) this.nodeMove(l, node, ACTIVE);
      if (cur === last) break;
      cur = next;
      i++;
    }
    l.nextInactiveRotation = next;
  }

  /** __bpf_lru_list_rotate. */
  private rotate(l: BpfLruList): void {
    if (l.counts[INACTIVE] < l.counts[ACTIVE]) this.rotateActive(l);
    this.rotateInactive(l);
  }

  /** __bpf_lru_list_shrink_inactive: unreferenced inactive nodes from the tail, evicted. */
  private shrinkInactive(l: BpfLruList, tgt: number, freeList: ListHead, type: number): number {
    const inactive = l.lists[INACTIVE];
    let n = 0;
    let i = 0;
    for (let cur = inactive.prev, prev = cur.prev; cur !== inactive; cur = prev, prev = cur.prev) {
      const node = asNode(cur) as BpfLruNode<E>;
      if (node.ref) this.nodeMove(l, node, ACTIVE);
      else if (this.delFromHtab(node)) {
        this.nodeMoveToFree(l, node, freeList, type);
        if (++n === tgt) break;
      }
      if (++i === this.nrScans) break;
    }
    return n;
  }

  /** __bpf_lru_list_shrink: else force-evict the oldest node, reference bit or not. */
  private shrink(l: BpfLruList, tgt: number, freeList: ListHead, type: number): number {
    const n = this.shrinkInactive(l, tgt, freeList, type);
    if (n) return n;
    const force = listEmpty(l.lists[INACTIVE]) ? l.lists[ACTIVE] : l.lists[INACTIVE];
    for (let cur = force.prev; cur !== force; cur = cur.prev) {
      const node = asNode(cur) as BpfLruNode<E>;
      if (this.delFromHtab(node)) {
        this.nodeMoveToFree(l, node, freeList, type);
        return 1;
      }
    }
    return 0;
  }

  /** __local_list_flush: pending nodes join the global list, active when referenced. */
  private localFlush(l: BpfLruList, loc: BpfLruLocalList): void {
    for (let cur = loc.pending.prev, prev = cur.prev; cur !== loc.pending; cur = prev, prev = cur.prev) {
      const node = asNode(cur);
      this.nodeMoveIn(l, node, node.ref ? ACTIVE : INACTIVE);
    }
  }

  /** bpf_lru_list_pop_free_to_local. */
  private popFreeToLocal(loc: BpfLruLocalList): void {
    const l = this.common;
    this.localFlush(l, loc);
    this.rotate(l);
    let nfree = 0;
    const free = l.lists[FREE];
    for (let cur = free.next, next = cur.next; cur !== free; cur = next, next = cur.next) {
      this.nodeMoveToFree(l, asNode(cur), loc.free, LOCAL_FREE);
      if (++nfree === this.targetFree) break;
    }
    if (nfree < this.targetFree) this.shrink(l, this.targetFree - nfree, loc.free, LOCAL_FREE);
  }

  private localPopFree(loc: BpfLruLocalList): BpfLruNode | null {
    if (listEmpty(loc.free)) return null;
    const n = asNode(loc.free.next);
    listDel(n);
    return n;
  }

  /** __local_list_pop_pending: the oldest unreferenced pending node, else the oldest. */
  private localPopPending(loc: BpfLruLocalList): BpfLruNode | null {
    for (const force of [false, true]) {
      for (let cur = loc.pending.prev; cur !== loc.pending; cur = cur.prev) {
        const node = asNode(cur) as BpfLruNode<E>;
        if ((!node.ref || force) && this.delFromHtab(node)) {
          listDel(node);
          return node;
        }
      }
    }
    return null;
  }

  private addPending(loc: BpfLruLocalList, cpu: number, node: BpfLruNode): void {
    node.cpu = cpu;
    node.type = LOCAL_PENDING;
    node.ref = 0;
    listAdd(node, loc.pending);
  }

  /** bpf_common_lru_pop_free: the local free list, refilled from the global one, else steal round-robin. */
  private commonPopFree(cpu: number): BpfLruNode | null {
    const loc = this.local[cpu];
    let node = this.localPopFree(loc);
    if (!node) {
      this.popFreeToLocal(loc);
      node = this.localPopFree(loc);
    }
    if (node) {
      this.addPending(loc, cpu, node);
      return node;
    }
    const first = loc.nextSteal;
    let steal = first;
    do {
      const sl = this.local[steal];
      node = this.localPopFree(sl) ?? this.localPopPending(sl);
      steal = (steal + 1) % this.nrCpus;
    } while (!node && steal !== first);
    loc.nextSteal = steal;
    if (node) this.addPending(loc, cpu, node);
    return node;
  }

  /** bpf_percpu_lru_pop_free: this CPU's list, rotated, shrunk by PERCPU_FREE_TARGET when it has no free node. */
  private percpuPopFree(cpu: number): BpfLruNode | null {
    const l = this.percpuLists[cpu];
    this.rotate(l);
    const free = l.lists[FREE];
    if (listEmpty(free)) this.shrink(l, PERCPU_FREE_TARGET, free, FREE);
    if (listEmpty(free)) return null;
    const node = asNode(free.next);
    node.ref = 0;
    this.nodeMove(l, node, INACTIVE);
    return node;
  }
}
