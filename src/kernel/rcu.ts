/**
 * Read-copy-update, deterministic (kernel/rcu/). Three flavours as the BPF core uses them:
 * "rcu" (non-sleepable programs, map free), "tasks_trace" (sleepable programs) and "tasks"
 * (trampolines: a task that entered a trampoline image must have left it).
 *
 * A callback queued by callRcu() remembers the readers inside a read-side section at that
 * moment; a grace period (advance()) runs, in queue order, every callback whose readers have all
 * left. Nothing runs behind the caller's back: grace periods happen only in advance(), quiesce(),
 * synchronize*() — the simulator and tests drive them.
 */

export type RcuFlavour = "rcu" | "tasks" | "tasks_trace";

export interface RcuToken {
  readonly flavour: RcuFlavour;
  readonly id: number;
}

interface Callback {
  fn: () => void;
  waitFor: Set<number>;
}

class RcuState {
  /**
   * Ids of the readers inside a read-side section, unordered. An array, not a Set: readers
   * come and go on every program run, and a Set that is emptied and refilled rehashes each time.
   */
  readonly readers: number[] = [];
  queue: Callback[] = [];
  completedGps = 0;
}

export class Rcu {
  private nextReader = 1;
  /** Sections entered by rcuReadLockFast() and not left, and their reader id once one was needed. */
  private fastNest = 0;
  private fastId = 0;
  private readonly st: Record<RcuFlavour, RcuState> = {
    rcu: new RcuState(),
    tasks: new RcuState(),
    tasks_trace: new RcuState(),
  };

  /** rcu_read_lock(): a token to pass to rcuReadUnlock(). */
  rcuReadLock(flavour: RcuFlavour = "rcu"): RcuToken {
    const t = { flavour, id: this.nextReader++ };
    this.st[flavour].readers.push(t.id);
    return t;
  }

  rcuReadUnlock(token: RcuToken): void {
    this.leave(token.flavour, token.id);
  }

  /**
   * rcu_read_lock() as a reader id rather than a token object: the same section, for the paths
   * that enter one on every program run (struct_ops trampolines). Leave with rcuReadUnlockId().
   */
  rcuReadLockId(flavour: RcuFlavour = "rcu"): number {
    const id = this.nextReader++;
    (flavour === "rcu" ? this.st.rcu : this.st[flavour]).readers.push(id);
    return id;
  }

  /**
   * rcu_read_lock() of the per-run hot path (struct_ops trampolines): a nesting count, as the
   * kernel's is a preempt count. The sections nested in one outermost section become one reader
   * id only if a callback is queued meanwhile (the callback must wait for them). Leave with
   * rcuReadUnlockFast().
   */
  rcuReadLockFast(): void {
    this.fastNest++;
  }

  rcuReadUnlockFast(): void {
    if (--this.fastNest === 0 && this.fastId !== 0) {
      const id = this.fastId;
      this.fastId = 0;
      this.leave("rcu", id);
    }
  }

  rcuReadUnlockId(id: number, flavour: RcuFlavour = "rcu"): void {
    // The innermost reader of the usual flavour, without the general search.
    const rs = flavour === "rcu" ? this.st.rcu.readers : null;
    if (rs !== null && rs.length > 0 && rs[rs.length - 1] === id) rs.pop();
    else this.leave(flavour, id);
  }

  private leave(flavour: RcuFlavour, id: number): void {
    const rs = this.st[flavour].readers;
    // The innermost reader is the usual one to leave.
    let i = rs.length - 1;
    while (i >= 0 && rs[i] !== id) i--;
    if (i >= 0) {
      rs[i] = rs[rs.length - 1]!;
      rs.pop();
    } else {
      throw new Error(`rcu_read_unlock: reader ${id} (${flavour}) is not inside a read-side section`);
    }
  }

  /** rcu_read_lock_trace(): the reader side of sleepable programs. */
  rcuReadLockTrace(): RcuToken {
    return this.rcuReadLock("tasks_trace");
  }

  rcuReadUnlockTrace(token: RcuToken): void {
    this.rcuReadUnlock(token);
  }

  /** A task running inside a trampoline image (what RCU-tasks waits for). */
  rcuTasksEnter(): RcuToken {
    return this.rcuReadLock("tasks");
  }

  /** True when `flavour` has a reader inside a read-side section (rcu_read_lock_held()). */
  readLockHeld(flavour: RcuFlavour = "rcu"): boolean {
    return this.st[flavour].readers.length > 0 || (flavour === "rcu" && this.fastNest > 0);
  }

  callRcu(fn: () => void): void {
    this.enqueue("rcu", fn);
  }

  callRcuTasks(fn: () => void): void {
    this.enqueue("tasks", fn);
  }

  callRcuTasksTrace(fn: () => void): void {
    this.enqueue("tasks_trace", fn);
  }

  private enqueue(flavour: RcuFlavour, fn: () => void): void {
    const s = this.st[flavour];
    if (flavour === "rcu" && this.fastNest > 0 && this.fastId === 0) {
      this.fastId = this.nextReader++;
      s.readers.push(this.fastId);
    }
    s.queue.push({ fn, waitFor: new Set(s.readers) });
  }

  /** Callbacks queued and not yet run, per flavour or in total. */
  pending(flavour?: RcuFlavour): number {
    if (flavour) return this.st[flavour].queue.length;
    return this.st.rcu.queue.length + this.st.tasks.queue.length + this.st.tasks_trace.queue.length;
  }

  completed(flavour: RcuFlavour = "rcu"): number {
    return this.st[flavour].completedGps;
  }

  /**
   * One grace period of each flavour: run, in order, the callbacks queued before this call whose
   * pre-existing readers have all left. A callback blocked by a reader keeps every later one
   * waiting too (callbacks of one flavour run in queue order). Returns how many ran.
   */
  advance(): number {
    let ran = 0;
    for (const f of ["rcu", "tasks", "tasks_trace"] as const) ran += this.gracePeriod(f);
    return ran;
  }

  private gracePeriod(flavour: RcuFlavour): number {
    const s = this.st[flavour];
    let n = 0;
    while (n < s.queue.length && ![...s.queue[n].waitFor].some((r) => s.readers.includes(r))) n++;
    const ready = s.queue.splice(0, n);
    s.completedGps++;
    // Callbacks may queue new callbacks; those land behind and wait for the next grace period.
    for (const cb of ready) cb.fn();
    return ready.length;
  }

  /** Run grace periods until nothing runnable is left (rcu_barrier() for every flavour). */
  quiesce(): number {
    let total = 0;
    for (;;) {
      const ran = this.advance();
      total += ran;
      if (ran === 0) return total;
    }
  }

  /**
   * synchronize_rcu(): wait for every reader that is inside a read-side section now. In a
   * deterministic single-threaded kernel a reader still inside can never leave while we wait,
   * so that is the deadlock it would be in the kernel: reported, not hung on.
   */
  synchronize(flavour: RcuFlavour = "rcu"): void {
    const s = this.st[flavour];
    if (this.readLockHeld(flavour)) {
      const n = s.readers.length + (flavour === "rcu" && this.fastId === 0 && this.fastNest > 0 ? 1 : 0);
      throw new Error(
        `synchronize_rcu(${flavour}) called while ${n} reader(s) are inside a read-side section: would deadlock`,
      );
    }
    // Everything queued before has no live reader left: one grace period runs it all.
    while (s.queue.length > 0) this.gracePeriod(flavour);
    s.completedGps++;
  }

  synchronizeRcu(): void {
    this.synchronize("rcu");
  }

  synchronizeRcuTasks(): void {
    this.synchronize("tasks");
  }

  synchronizeRcuTasksTrace(): void {
    this.synchronize("tasks_trace");
  }

  /** synchronize_rcu_mult(call_rcu, call_rcu_tasks, ...): wait for a grace period of each. */
  synchronizeRcuMult(...flavours: RcuFlavour[]): void {
    for (const f of flavours) this.synchronize(f);
  }
}
