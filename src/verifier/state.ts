/**
 * Verifier states (struct bpf_func_state, struct bpf_verifier_state): per call frame the
 * registers and stack, and the chain of checkpoints a path passed through with their count of
 * paths still being explored (branches), as the kernel keeps for pruning and loop detection.
 */
import { MAX_BPF_REG } from "../isa/opcodes.js";
import { copyReg, newReg, type RegState } from "./reg_state.js";
import { copySlot, type StackSlot } from "./stack.js";

export interface FuncState {
  regs: RegState[];
  stack: StackSlot[];
  /** Instruction of the call that created this frame (-1 for the main program). */
  callsite: number;
  frameno: number;
  subprog: number;
  /** A bpf_loop callback: its exit returns to the helper call. */
  isCallback: boolean;
  /** bpf_rbtree_add's less(): runs under the tree's lock, may not call graph kfuncs. */
  rbtreeCb?: boolean;
  /** A callback's arguments (r1-r5), to call it again for the next iteration. */
  cbArgs?: RegState[];
  /** An async callback (bpf_timer_set_callback): frame 0 of a state of its own, returns 0. */
  inAsyncCb?: boolean;
  /** A bpf_wq callback: async, but in process context (it may sleep). */
  asyncSleepable?: boolean;
}

/**
 * struct bpf_reference_state: an acquired pointer (REF_TYPE_PTR) the program must release, or a
 * held lock; `insnIdx` is where it was acquired (alloc_insn in the leak message).
 */
export interface RefState {
  readonly id: number;
  readonly insnIdx: number;
  readonly type: RefType;
  /** REF_TYPE_LOCK: the lock's identity (map index or object id). */
  readonly ptr?: number;
}

export type RefType = "ptr" | "lock" | "res_lock" | "irq";

export interface Checkpoint {
  readonly insn: number;
  readonly frames: FuncState[];
  readonly activeLock: number;
  readonly activeLockId: number;
  readonly refs: readonly RefState[];
  readonly activeRcuLock: number;
  /** may_goto_depth: fall-throughs of may_goto taken on the way here. */
  readonly mayGotoDepth?: number;
  /** callback_unroll_depth: callback iterations entered on the way here. */
  readonly callbackUnrollDepth?: number;
  /** Paths still being explored below this state; 0 means its subtree is proven safe. */
  branches: number;
  readonly parent: Checkpoint | null;
  /** The register (1 + its number) missFp fingerprints, 0 for none (a checkpoint never changes). */
  missReg: number;
  /** regFingerprint of that register of the running frame. */
  missFp: number;
  /** Lookups that did not match while a state was to be added (miss_cnt), and that did (hit_cnt). */
  missCnt: number;
  hitCnt: number;
  /** Taken out of the explored list for missing too often (in_free_list). */
  evicted: boolean;
}

export interface VerifierState {
  frames: FuncState[];
  parent: Checkpoint | null;
  /** Map whose bpf_spin_lock is held (active_lock), or -1. */
  activeLock: number;
  /** The register id of the value whose lock is held (active_lock_id). */
  activeLockId: number;
  /** Acquired references, in acquisition order (the verifier state's refs[], shared by all frames). */
  refs: RefState[];
  /** Depth of bpf_rcu_read_lock nesting (active_rcu_lock). */
  activeRcuLock: number;
  /** A callback's next iteration: may be pruned against its own in-progress entry states. */
  callbackReentry?: boolean;
  /** may_goto_depth: fall-throughs of may_goto taken on this path. */
  mayGotoDepth?: number;
  /** callback_unroll_depth: callback iterations entered on this path. */
  callbackUnrollDepth?: number;
  /** At a callback's entry: a forced checkpoint. */
  callbackEntry?: boolean;
  /** The entry of an async callback registered again: checkpointed, so re-registrations converge. */
  asyncEntry?: boolean;
}

export function newFuncState(callsite: number, frameno: number, subprog: number): FuncState {
  const regs: RegState[] = [];
  for (let i = 0; i < MAX_BPF_REG; i++) regs.push(newReg());
  return { regs, stack: [], callsite, frameno, subprog, isCallback: false };
}

export function copyFuncState(f: FuncState): FuncState {
  return {
    regs: f.regs.map(copyReg),
    stack: f.stack.map(copySlot),
    callsite: f.callsite,
    frameno: f.frameno,
    subprog: f.subprog,
    isCallback: f.isCallback,
    rbtreeCb: f.rbtreeCb,
    cbArgs: f.cbArgs,
    inAsyncCb: f.inAsyncCb,
    asyncSleepable: f.asyncSleepable,
  };
}

export function copyState(s: VerifierState): VerifierState {
  return {
    frames: s.frames.map(copyFuncState),
    parent: s.parent,
    activeLock: s.activeLock,
    activeLockId: s.activeLockId,
    refs: s.refs.slice(),
    activeRcuLock: s.activeRcuLock,
    mayGotoDepth: s.mayGotoDepth,
    callbackUnrollDepth: s.callbackUnrollDepth,
  };
}

/**
 * A number that differs between two registers whenever it can tell they are not identical
 * (regsIdentical): equal fingerprints prove nothing, different ones prove a difference.
 */
export function regFingerprint(r: RegState): number {
  return r.type * 0x10001 + r.off * 31 + Number(r.varOff.value) + Number(r.varOff.mask) * 3 + Number(r.umin) * 5;
}

export function curFrame(s: VerifierState): FuncState {
  return s.frames[s.frames.length - 1];
}
