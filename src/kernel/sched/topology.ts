/**
 * The CPU topology the scheduler builds its domains from (kernel/sched/topology.c): SMT siblings
 * (threads of one core), last-level-cache domains (sd_llc) and NUMA nodes (cpu_to_node), all
 * contiguous ranges of CPU ids.
 */

export interface TopologySpec {
  /** Threads per core (1: no SMT). Must divide the CPU count. */
  smt?: number;
  /** CPUs per last-level cache (default: a node). A multiple of smt that divides the CPU count. */
  llc?: number;
  /** CPUs per NUMA node (default: all of them, one node). A multiple of llc that divides the CPU count. */
  node?: number;
}

export class SchedTopology {
  readonly smt: number;
  readonly llcSize: number;
  private readonly smtOf: (readonly number[])[] = [];
  private readonly llcOf: (readonly number[])[] = [];
  /** sd_llc_id: the first CPU of each CPU's LLC. */
  readonly llc_id: Int32Array;
  readonly nodeSize: number;
  readonly nr_node_ids: number;

  constructor(
    readonly nrCpus: number,
    spec: TopologySpec = {},
  ) {
    const smt = spec.smt ?? 1;
    // an LLC does not span nodes: by default one per node
    const llc = spec.llc ?? spec.node ?? nrCpus;
    if (!Number.isInteger(smt) || smt < 1 || nrCpus % smt !== 0) {
      throw new RangeError(`smt ${smt}: threads per core must divide the CPU count ${nrCpus}`);
    }
    if (!Number.isInteger(llc) || llc < smt || llc % smt !== 0 || nrCpus % llc !== 0) {
      throw new RangeError(`llc ${llc}: CPUs per LLC must be a multiple of smt ${smt} dividing ${nrCpus}`);
    }
    const node = spec.node ?? nrCpus;
    if (!Number.isInteger(node) || node < llc || node % llc !== 0 || nrCpus % node !== 0) {
      throw new RangeError(`node ${node}: CPUs per NUMA node must be a multiple of llc ${llc} dividing ${nrCpus}`);
    }
    this.nodeSize = node;
    this.nr_node_ids = nrCpus / node;
    this.smt = smt;
    this.llcSize = llc;
    this.llc_id = new Int32Array(nrCpus);
    const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
    for (let c = 0; c < nrCpus; c++) {
      this.smtOf.push(range(c - (c % smt), smt));
      this.llcOf.push(range(c - (c % llc), llc));
      this.llc_id[c] = c - (c % llc);
    }
  }

  smt_cpus(cpu: number): readonly number[] {
    return this.smtOf[cpu]!;
  }

  llc_cpus(cpu: number): readonly number[] {
    return this.llcOf[cpu]!;
  }

  /** cpu_to_node(). */
  cpu_to_node(cpu: number): number {
    return Math.floor(cpu / this.nodeSize);
  }

  cpus_share_cache(a: number, b: number): boolean {
    return this.llc_id[a] === this.llc_id[b];
  }
}
