/**
 * The CPU topology the scheduler builds its domains from (kernel/sched/topology.c): SMT siblings
 * (threads of one core) and last-level-cache domains (sd_llc), both contiguous ranges of CPU ids.
 */

export interface TopologySpec {
  /** Threads per core (1: no SMT). Must divide the CPU count. */
  smt?: number;
  /** CPUs per last-level cache (default: all of them). A multiple of smt that divides the CPU count. */
  llc?: number;
}

export class SchedTopology {
  readonly smt: number;
  readonly llcSize: number;
  private readonly smtOf: (readonly number[])[] = [];
  private readonly llcOf: (readonly number[])[] = [];
  /** sd_llc_id: the first CPU of each CPU's LLC. */
  readonly llc_id: Int32Array;

  constructor(
    readonly nrCpus: number,
    spec: TopologySpec = {},
  ) {
    const smt = spec.smt ?? 1;
    const llc = spec.llc ?? nrCpus;
    if (!Number.isInteger(smt) || smt < 1 || nrCpus % smt !== 0) {
      throw new RangeError(`smt ${smt}: threads per core must divide the CPU count ${nrCpus}`);
    }
    if (!Number.isInteger(llc) || llc < smt || llc % smt !== 0 || nrCpus % llc !== 0) {
      throw new RangeError(`llc ${llc}: CPUs per LLC must be a multiple of smt ${smt} dividing ${nrCpus}`);
    }
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

  cpus_share_cache(a: number, b: number): boolean {
    return this.llc_id[a] === this.llc_id[b];
  }
}
