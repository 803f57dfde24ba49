/**
 * Built-in idle CPU tracking (kernel/sched/ext_idle.c): the idle CPUs, the idle whole cores
 * (every SMT sibling idle), scx_idle_test_and_clear_cpu, scx_pick_idle_cpu and the default
 * selection of scx_select_cpu_dfl. Masks are arrays of 32-bit words, as the kernel's cpumasks are
 * arrays of longs: the per-wake-up selection allocates nothing. The kfuncs see them as bigints
 * (cpumasks of at most 64 CPUs).
 */

/** A CPU mask: bit c of word c >> 5. */
export type Words = Int32Array;

export interface IdleTopology {
  readonly nr_cpu_ids: number;
  readonly nr_node_ids: number;
  smt_cpus(cpu: number): readonly number[];
  llc_cpus(cpu: number): readonly number[];
  cpu_to_node(cpu: number): number;
  cpu_rq(cpu: number): { readonly online: boolean };
}

/** The lowest set bit of a non-zero word. */
function lowBit(w: number): number {
  return 31 - Math.clz32(w & -w);
}

export class ScxIdle {
  readonly nw: number;
  /** Idle CPUs (idle_cpumask's cpu). */
  readonly cpus: Words;
  /** CPUs whose whole core is idle (idle_cpumask's smt). */
  readonly smt: Words;
  readonly hasSmt: boolean;
  private readonly smtOf: Words[] = [];
  private readonly llcOf: Words[] = [];
  private readonly nodeOf: Words[] = [];
  /** Scratch masks of the selection: the allowed online CPUs, those in prev's LLC, in prev's node. */
  private readonly m: Words;
  private readonly l: Words;
  private readonly n: Words;
  /**
   * Online CPUs, as the run queues say (rq->online): set before a CPU coming online tells the
   * scheduler and after one going offline has (setOnline), where rq->online changes around them.
   */
  private readonly online: Uint8Array;
  /** Scratch for a kfunc's mask argument. */
  private readonly arg: Words;

  constructor(private readonly topo: IdleTopology) {
    const nr = topo.nr_cpu_ids;
    this.nw = (nr + 31) >> 5;
    const words = (cs: readonly number[]) => {
      const w = new Int32Array(this.nw);
      for (const c of cs) w[c >> 5]! |= 1 << (c & 31);
      return w;
    };
    this.cpus = new Int32Array(this.nw);
    this.smt = new Int32Array(this.nw);
    this.m = new Int32Array(this.nw);
    this.l = new Int32Array(this.nw);
    this.n = new Int32Array(this.nw);
    this.arg = new Int32Array(this.nw);
    this.hasSmt = topo.smt_cpus(0).length > 1;
    this.online = new Uint8Array(nr);
    for (let c = 0; c < nr; c++) this.online[c] = topo.cpu_rq(c).online ? 1 : 0;
    for (let c = 0; c < nr; c++) {
      this.smtOf.push(words(topo.smt_cpus(c)));
      this.llcOf.push(words(topo.llc_cpus(c)));
    }
    for (let node = 0; node < topo.nr_node_ids; node++) {
      const cs: number[] = [];
      for (let c = 0; c < nr; c++) if (topo.cpu_to_node(c) === node) cs.push(c);
      this.nodeOf.push(words(cs));
    }
  }

  /** A CPU goes idle or busy; a core whose siblings are all idle joins the idle cores. */
  set(cpu: number, idle: boolean): void {
    const sib = this.smtOf[cpu]!;
    const cpus = this.cpus;
    const smt = this.smt;
    if (idle) {
      cpus[cpu >> 5]! |= 1 << (cpu & 31);
      for (let w = 0; w < this.nw; w++) if ((cpus[w]! & sib[w]!) !== sib[w]) return;
      for (let w = 0; w < this.nw; w++) smt[w]! |= sib[w]!;
    } else {
      cpus[cpu >> 5]! &= ~(1 << (cpu & 31));
      for (let w = 0; w < this.nw; w++) smt[w]! &= ~sib[w]!;
    }
  }

  setOnline(cpu: number, online: boolean): void {
    this.online[cpu] = online ? 1 : 0;
  }

  /** scx_idle_test_and_clear_cpu(). */
  testAndClear(cpu: number): boolean {
    if (this.hasSmt) {
      const sib = this.smtOf[cpu]!;
      for (let w = 0; w < this.nw; w++) this.smt[w]! &= ~sib[w]!;
    }
    const bit = 1 << (cpu & 31);
    const i = cpu >> 5;
    const was = (this.cpus[i]! & bit) !== 0;
    this.cpus[i]! &= ~bit;
    return was;
  }

  /** scx_pick_idle_cpu(): the lowest idle CPU of `allowed` (of a whole idle core with `core`), claimed; -EBUSY if none. */
  pick(allowed: Words, core: boolean): number {
    const pool = core ? this.smt : this.cpus;
    for (;;) {
      let cpu = -1;
      for (let w = 0; w < this.nw; w++) {
        const x = pool[w]! & allowed[w]!;
        if (x !== 0) {
          cpu = (w << 5) + lowBit(x);
          break;
        }
      }
      if (cpu < 0) return -16;
      if (this.testAndClear(cpu)) return cpu;
    }
  }

  /**
   * scx_select_cpu_dfl()'s search among p's CPUs (`cpus`, one byte per CPU), narrowed to
   * `allowed` when given: prev if idle (a whole idle core first on SMT), then prev's LLC, its
   * node, then any; with `coreOnly` (SCX_PICK_IDLE_CORE) nothing but a whole idle core.
   */
  selectDfl(cpus: Uint8Array, prev: number, allowed: Words | null, coreOnly: boolean): number {
    const nw = this.nw;
    const m = this.m;
    const l = this.l;
    const n = this.n;
    for (let w = 0; w < nw; w++) m[w] = 0;
    const nr = this.topo.nr_cpu_ids;
    const online = this.online;
    for (let c = 0; c < nr; c++) if (cpus[c] && online[c]) m[c >> 5]! |= 1 << (c & 31);
    const llc = this.llcOf[prev]!;
    const node = this.nodeOf[this.topo.cpu_to_node(prev)];
    for (let w = 0; w < nw; w++) {
      if (allowed !== null) m[w]! &= allowed[w]!;
      l[w] = llc[w]! & m[w]!;
      n[w] = node === undefined ? 0 : node[w]! & m[w]!;
    }
    const pw = prev >> 5;
    const pb = 1 << (prev & 31);
    const prevIn = (m[pw]! & pb) !== 0;
    if (this.hasSmt) {
      if (prevIn && (this.smt[pw]! & pb) !== 0 && this.testAndClear(prev)) return prev;
      let cpu = this.pick(l, true);
      if (cpu < 0) cpu = this.pick(n, true);
      if (cpu >= 0) return cpu;
      cpu = this.pick(m, true);
      if (cpu >= 0) return cpu;
      if (coreOnly) return -16;
    }
    if (prevIn && this.testAndClear(prev)) return prev;
    let cpu = this.pick(l, false);
    if (cpu < 0) cpu = this.pick(n, false);
    if (cpu >= 0) return cpu;
    return this.pick(m, false);
  }

  // ---- the kfuncs' bigint view ----

  /** A mask as a bigint (bit c is CPU c). */
  big(words: Words): bigint {
    let b = 0n;
    for (let w = this.nw - 1; w >= 0; w--) b = (b << 32n) | BigInt(words[w]! >>> 0);
    return b;
  }

  /** cpumask_of_node() as a bigint. */
  nodeBig(node: number): bigint {
    const w = this.nodeOf[node];
    return w ? this.big(w) : 0n;
  }

  /** A bigint mask as words (into a scratch array: valid until the next call). */
  words(b: bigint): Words {
    const a = this.arg;
    for (let w = 0; w < this.nw; w++) a[w] = Number(BigInt.asIntN(32, b >> BigInt(32 * w)));
    return a;
  }

  /** scx_pick_idle_cpu() of a bigint mask. */
  pickBig(allowed: bigint, core: boolean): number {
    return this.pick(this.words(allowed), core);
  }
}
