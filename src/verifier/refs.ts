/**
 * Reference tracking (kernel/bpf/verifier.c: acquire_reference, release_reference,
 * find_reference_state, check_reference_leak, check_resource_leak, refsafe). A pointer returned
 * by an acquiring kfunc carries `refObjId`; the verifier state lists every reference still held.
 * Releasing one invalidates every copy of the pointer, in registers and spilled stack slots of
 * all frames; a path that reaches the main program's exit still holding one is refused.
 */
import { bpf_prog_type } from "../uapi/bpf.js";
import { EINVAL } from "../uapi/errno.js";
import { markRegNotInit, markRegUnknown, type RegState } from "./reg_state.js";
import type { RefState, RefType, VerifierState } from "./state.js";
import type { Verifier } from "./verifier.js";

/** bpf_for_each_reg_in_vstate: every register and spilled register of every frame. */
export function forEachReg(st: VerifierState, fn: (r: RegState) => void): void {
  for (const f of st.frames) {
    for (const r of f.regs) fn(r);
    for (const s of f.stack) if (s?.spilledPtr) fn(s.spilledPtr);
  }
}

/** acquire_reference: a new reference acquired at `insnIdx`; returns its id. */
export function acquireReference(v: Verifier, insnIdx = v.insnIdx, type: RefType = "ptr", ptr?: number): number {
  const id = v.newId();
  v.cur.refs.push({ id, insnIdx, type, ptr });
  return id;
}

/** find_reference_state. */
export function findReference(st: VerifierState, id: number): RefState | undefined {
  return st.refs.find((r) => r.id === id);
}

/** release_reference_nomark: forget the reference; false when it is not held. */
export function releaseReferenceNomark(st: VerifierState, id: number): boolean {
  const i = st.refs.findIndex((r) => r.id === id && r.type === "ptr");
  if (i < 0) return false;
  st.refs.splice(i, 1);
  return true;
}

/** mark_reg_invalid: a released pointer is gone (an unknown scalar where pointers may leak). */
export function markRegInvalid(v: Verifier, r: RegState): void {
  const w = r.written;
  if (!v.allowPtrLeaks) markRegNotInit(r);
  else markRegUnknown(r);
  r.written = w;
}

/** release_reference: drop the reference and invalidate every copy; false when not held. */
export function releaseReference(v: Verifier, refObjId: number): boolean {
  if (!releaseReferenceNomark(v.cur, refObjId)) return false;
  forEachReg(v.cur, (r) => {
    if (r.refObjId === refObjId) markRegInvalid(v, r);
  });
  return true;
}

/**
 * check_reference_leak: at the main program's exit every acquired pointer must be released
 * (a struct_ops program may hand the one in R0 back to the kernel). Logs each leaked one.
 */
export function checkReferenceLeak(v: Verifier, exceptionExit = false): boolean {
  if (!exceptionExit && v.cur.frames.length > 1) return false;
  const r0 = v.regs[0];
  let lingering = false;
  for (const ref of v.cur.refs) {
    if (ref.type !== "ptr") continue;
    if (
      v.env.progType === bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS &&
      !exceptionExit &&
      r0.refObjId !== 0 &&
      r0.refObjId === ref.id
    )
      continue;
    v.note(`Unreleased reference id=${ref.id} alloc_insn=${ref.insnIdx}`);
    lingering = true;
  }
  return lingering;
}

/**
 * check_resource_leak: what must not be held where `prefix` ("BPF_EXIT instruction in main prog",
 * "tail_call") leaves the program. `checkLock`: locks and RCU sections count too.
 */
export function checkResourceLeak(v: Verifier, exceptionExit: boolean, checkLock: boolean, prefix: string): void {
  if (checkLock && v.cur.activeLock !== -1) v.reject(EINVAL, `${prefix} cannot be used inside bpf_spin_lock-ed region`);
  if (checkReferenceLeak(v, exceptionExit)) v.reject(EINVAL, `${prefix} would lead to reference leak`);
  if (checkLock && v.cur.activeRcuLock > 0)
    v.reject(EINVAL, `${prefix} cannot be used inside bpf_rcu_read_lock-ed region`);
}

/** check_ids: ids of the old state map one-to-one onto the current state's. */
export function checkIds(oldId: number, curId: number, idmap: Map<number, number>): boolean {
  if (!oldId && !curId) return true;
  if (!oldId || !curId) return false;
  const m = idmap.get(oldId);
  if (m === undefined) {
    idmap.set(oldId, curId);
    return true;
  }
  return m === curId;
}

/** refsafe: the same references held (up to renaming), the same locks and RCU depth. */
export function refsafe(
  old: { refs: readonly RefState[]; activeRcuLock: number },
  cur: { refs: readonly RefState[]; activeRcuLock: number },
  idmap: Map<number, number>,
): boolean {
  if (old.refs.length !== cur.refs.length) return false;
  if (old.activeRcuLock !== cur.activeRcuLock) return false;
  for (let i = 0; i < old.refs.length; i++) {
    const o = old.refs[i];
    const c = cur.refs[i];
    if (o.type !== c.type || !checkIds(o.id, c.id, idmap)) return false;
    if (o.type !== "ptr" && o.type !== "irq" && o.ptr !== c.ptr) return false;
  }
  return true;
}
