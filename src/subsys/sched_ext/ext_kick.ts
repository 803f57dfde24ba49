/**
 * CPU kicks (kernel/sched/ext.c: scx_kick_cpu, can_skip_idle_kick, kick_one_cpu,
 * kick_one_cpu_if_idle, kick_cpus_irq_workfn). scx_bpf_kick_cpu() only marks the target in the
 * calling CPU's masks; the irq work queued on that CPU kicks them once the op has returned:
 * SCX_KICK_IDLE only a CPU that is idle (or balancing), SCX_KICK_PREEMPT zeroes the slice of
 * the target's SCX task, SCX_KICK_WAIT makes the kicking CPU spin until that task has been
 * switched out (the target's pnt_seq, bumped in put_prev_task_scx, has moved). A spinning CPU
 * is stalled on the simulated machine: its task makes no progress and it neither ticks nor
 * reschedules until the wait ends.
 */
import type { SchedClass, SchedCore } from "../../kernel/sched/sched.js";
import { SCX_KICK_IDLE, SCX_KICK_PREEMPT, SCX_KICK_WAIT } from "./consts.js";
import type { ScxSched } from "./ext.js";

/** The kick part of struct scx_rq. */
interface KickRq {
  cpusToKick: Set<number>;
  cpusToKickIfIdle: Set<number>;
  cpusToPreempt: Set<number>;
  cpusToWait: Set<number>;
  irqQueued: boolean;
  /** Bumped every time an SCX task is put (put_prev_task_scx). */
  pntSeq: number;
  /** Set while ext's balance runs on this CPU (SCX_RQ_IN_BALANCE). */
  inBalance: boolean;
  /** This CPU spins: the targets' pnt_seq as they were when kicked. */
  waits: Map<number, number> | null;
}

/** What the kicks need from the ext class. */
export interface KickHost {
  readonly core: SchedCore;
  readonly ext: SchedClass;
  /** rq->curr->scx.slice = 0. */
  zeroSlice(cpu: number): void;
}

export class ScxKicks {
  private readonly pcpu: KickRq[] = [];

  constructor(private readonly host: KickHost) {
    for (let c = 0; c < host.core.nr_cpu_ids; c++)
      this.pcpu.push({
        cpusToKick: new Set(),
        cpusToKickIfIdle: new Set(),
        cpusToPreempt: new Set(),
        cpusToWait: new Set(),
        irqQueued: false,
        pntSeq: 0,
        inBalance: false,
        waits: null,
      });
  }

  rq(cpu: number): KickRq {
    return this.pcpu[cpu]!;
  }

  /** scx_kick_cpu(): from `thisCpu` (the CPU the calling program runs on). */
  kick(sch: ScxSched, thisCpu: number, cpu: number, flags: bigint): void {
    const core = this.host.core;
    if (cpu < 0 || cpu >= core.nr_cpu_ids) {
      sch.error(`invalid CPU ${cpu}`);
      return;
    }
    const me = this.pcpu[thisCpu]!;
    if (flags & SCX_KICK_IDLE) {
      if (flags & (SCX_KICK_PREEMPT | SCX_KICK_WAIT)) sch.error("PREEMPT/WAIT cannot be used with SCX_KICK_IDLE");
      if (this.canSkipIdleKick(cpu)) return;
      me.cpusToKickIfIdle.add(cpu);
    } else {
      me.cpusToKick.add(cpu);
      if (flags & SCX_KICK_PREEMPT) me.cpusToPreempt.add(cpu);
      if (flags & SCX_KICK_WAIT) me.cpusToWait.add(cpu);
    }
    if (!me.irqQueued) {
      me.irqQueued = true;
      core.irq_work_queue(thisCpu, () => this.irqWorkfn(thisCpu));
    }
  }

  /** can_skip_idle_kick(): the CPU will go through a full scheduling cycle before idling. */
  private canSkipIdleKick(cpu: number): boolean {
    const rq = this.host.core.cpu_rq(cpu);
    return rq.curr !== rq.idle && !this.pcpu[cpu]!.inBalance;
  }

  /** kick_one_cpu(): true when `thisCpu` must wait for it. */
  private kickOne(cpu: number, thisCpu: number, pseqs: Map<number, number>): boolean {
    const core = this.host.core;
    const me = this.pcpu[thisCpu]!;
    const rq = core.cpu_rq(cpu);
    let wait = false;
    if (rq.online || cpu === thisCpu) {
      const onScx = rq.curr.sched_class === this.host.ext;
      if (me.cpusToPreempt.delete(cpu) && onScx) this.host.zeroSlice(cpu);
      if (me.cpusToWait.has(cpu)) {
        // only an SCX task is waited for: until it is switched out
        if (onScx) {
          pseqs.set(cpu, this.pcpu[cpu]!.pntSeq);
          wait = true;
        } else me.cpusToWait.delete(cpu);
      }
      core.resched_curr(rq);
    } else {
      me.cpusToPreempt.delete(cpu);
      me.cpusToWait.delete(cpu);
    }
    return wait;
  }

  /** kick_one_cpu_if_idle(). */
  private kickOneIfIdle(cpu: number, thisCpu: number): void {
    const rq = this.host.core.cpu_rq(cpu);
    if (!this.canSkipIdleKick(cpu) && (rq.online || cpu === thisCpu)) this.host.core.resched_curr(rq);
  }

  /** kick_cpus_irq_workfn(), on thisCpu. */
  private irqWorkfn(thisCpu: number): void {
    const me = this.pcpu[thisCpu]!;
    me.irqQueued = false;
    const pseqs = new Map<number, number>();
    let shouldWait = false;
    for (const cpu of [...me.cpusToKick].sort((a, b) => a - b)) {
      shouldWait = this.kickOne(cpu, thisCpu, pseqs) || shouldWait;
      me.cpusToKick.delete(cpu);
      me.cpusToKickIfIdle.delete(cpu);
    }
    for (const cpu of [...me.cpusToKickIfIdle].sort((a, b) => a - b)) {
      this.kickOneIfIdle(cpu, thisCpu);
      me.cpusToKickIfIdle.delete(cpu);
    }
    if (!shouldWait) return;
    const waits = new Map<number, number>();
    for (const cpu of me.cpusToWait) if (cpu !== thisCpu && pseqs.has(cpu)) waits.set(cpu, pseqs.get(cpu)!);
    me.cpusToWait.clear();
    if (!waits.size) return;
    me.waits = waits;
    this.host.core.set_cpu_stalled(thisCpu, true);
  }

  /** put_prev_task_scx's smp_store_release of pnt_seq: CPUs spinning on this one may go on. */
  bumpPntSeq(cpu: number): void {
    this.pcpu[cpu]!.pntSeq++;
    for (let c = 0; c < this.pcpu.length; c++) {
      const w = this.pcpu[c]!.waits;
      if (!w) continue;
      for (const [t, seq] of w) if (this.pcpu[t]!.pntSeq !== seq) w.delete(t);
      if (!w.size) this.release(c);
    }
  }

  private release(cpu: number): void {
    this.pcpu[cpu]!.waits = null;
    this.host.core.set_cpu_stalled(cpu, false);
  }

  /** The scheduler is going away: nothing is kicked any more, no CPU keeps spinning. */
  reset(): void {
    for (let c = 0; c < this.pcpu.length; c++) {
      const k = this.pcpu[c]!;
      k.cpusToKick.clear();
      k.cpusToKickIfIdle.clear();
      k.cpusToPreempt.clear();
      k.cpusToWait.clear();
      if (k.waits) this.release(c);
    }
  }
}
