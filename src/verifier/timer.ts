/**
 * bpf_timer in the verifier (kernel/bpf/verifier.c): the ARG_PTR_TO_TIMER argument
 * (process_timer_func, check_map_field_pointer), the timer's map against bpf_timer_init's map
 * argument, and async callbacks: bpf_timer_set_callback's callback is verified later as a state
 * of its own (push_async_cb), one frame deep, with (map, key, value) in r1-r3
 * (set_timer_callback_state), and must return 0 ("At async callback return ...").
 */
import { BPF_TIMER, btfRecordHasField } from "../btf/record.js";
import { bpf_func_id } from "../uapi/bpf.js";
import { EACCES, EINVAL } from "../uapi/errno.js";
import {
  CONST_PTR_TO_MAP,
  markPtr,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_STACK,
  type RegState,
  regTypeStr,
  SCALAR_VALUE,
} from "./reg_state.js";
import { newFuncState, type VerifierState } from "./state.js";
import { tnumIsConst } from "./tnum.js";
import type { Verifier } from "./verifier.js";

/**
 * process_timer_func / check_map_field_pointer: the register points at the map value's
 * struct bpf_timer, at a constant offset. Returns the map (the helper's meta->map_ptr).
 */
export function processTimerFunc(v: Verifier, regno: number, reg: RegState): number {
  if (reg.type !== PTR_TO_MAP_VALUE) {
    v.reject(EACCES, `R${regno} type=${regTypeStr(reg.type)} expected=map_value`);
  }
  return checkMapFieldPointer(v, regno, reg, BPF_TIMER);
}

/** check_map_field_pointer: a constant offset, a map with BTF whose record has the field there. */
export function checkMapFieldPointer(v: Verifier, regno: number, reg: RegState, field: number): number {
  const what = field === BPF_TIMER ? "bpf_timer" : "bpf_wq";
  if (!tnumIsConst(reg.varOff)) {
    v.reject(EINVAL, `R${regno} doesn't have constant offset. ${what} has to be at the constant offset`);
  }
  const map = v.maps[reg.map];
  const name = map?.name ?? "";
  if (map?.hasBtf === false) v.reject(EINVAL, `map '${name}' has to have BTF in order to use ${what}`);
  if (!btfRecordHasField(map?.record, field)) v.reject(EINVAL, `map '${name}' has no valid ${what}`);
  const off = BigInt.asIntN(64, reg.varOff.value) + BigInt(reg.off);
  const fieldOff = (field === BPF_TIMER ? map.record?.timerOff : map.record?.wqOff) ?? -1;
  if (off !== BigInt(fieldOff)) {
    v.reject(EINVAL, `off ${off} doesn't point to 'struct ${what}' that is at ${fieldOff}`);
  }
  return reg.map;
}

/**
 * check_func_arg's ARG_CONST_MAP_PTR after a timer argument: both must be the same map, and the
 * same inner map of a map of maps (map_uid tells them apart).
 */
export function checkTimerMapMatch(
  v: Verifier,
  timerMap: number | undefined,
  timerUid: number,
  mapReg: RegState,
): void {
  if (timerMap !== undefined && (timerMap !== mapReg.map || timerUid !== mapReg.mapUid)) {
    v.reject(
      EINVAL,
      `timer pointer in R1 map_uid=${timerUid} doesn't match map pointer in R2 map_uid=${mapReg.mapUid}`,
    );
  }
}

/**
 * push_callback_call for bpf_timer_set_callback: the callback's state goes on the stack of states
 * to verify, one frame deep and holding nothing; the caller goes on as after any helper.
 */
export function pushAsyncCallback(v: Verifier, target: number, timerMap: number, sleepable = false): void {
  const subprog = v.cfg.subprogStarts.indexOf(target);
  if (subprog < 0) v.reject(EINVAL, `verifier bug. No program starts at insn ${target}`);
  // A callback registered again (by itself, say) is checkpointed at its entry, so the next
  // registration of the same state is pruned there.
  const again = v.asyncCallbacks.has(subprog);
  v.asyncCallbacks.add(subprog);
  const f = newFuncState(-1, 0, subprog);
  f.inAsyncCb = true;
  f.asyncSleepable = sleepable;
  // set_timer_callback_state: callback_fn(struct bpf_map *map, void *key, void *value).
  const r = f.regs;
  markPtr(r[1], CONST_PTR_TO_MAP);
  r[1].map = timerMap;
  markPtr(r[2], PTR_TO_MAP_KEY);
  r[2].map = timerMap;
  markPtr(r[3], PTR_TO_MAP_VALUE);
  r[3].map = timerMap;
  r[3].id = v.newId();
  markPtr(r[10], PTR_TO_STACK);
  r[10].frameno = 0;
  const st: VerifierState = {
    frames: [f],
    parent: null,
    activeLock: -1,
    activeLockId: 0,
    refs: [],
    activeRcuLock: 0,
    asyncEntry: again,
  };
  v.pushState(st, target);
}

/** check_return_code for an async callback: r0 a known scalar in [0, 0]. */
export function checkAsyncCallbackReturn(v: Verifier): void {
  const r0 = v.readReg(0);
  if (v.isPointerValue(r0)) v.reject(EACCES, "R0 leaks addr as return value");
  if (r0.type !== SCALAR_VALUE) {
    v.reject(EINVAL, `At async callback return the register R0 is not a known value (${regTypeStr(r0.type)})`);
  }
  v.precision.addSink(v.insnIdx, 0);
  if (r0.smin < 0n || r0.smax > 0n) {
    const parts: string[] = [];
    if (r0.smin > -(1n << 63n)) parts.push(` smin=${r0.smin}`);
    if (r0.smax < (1n << 63n) - 1n) parts.push(` smax=${r0.smax}`);
    const has = parts.length ? parts.join("") : " unknown scalar value";
    v.reject(EINVAL, `At async callback return the register R0 has${has} should have been in [0, 0]`);
  }
}

/** bpf_timer_set_callback: its call is where async callbacks are registered. */
export function isAsyncCallbackCalling(funcId: number): boolean {
  return funcId === bpf_func_id.BPF_FUNC_timer_set_callback;
}

/**
 * in_sleepable, per state: a sleepable program, except in a timer callback (softirq: it may not
 * sleep and is an RCU read-side section); a bpf_wq callback always may.
 */
export function inSleepable(v: Verifier): boolean {
  const f0 = v.cur.frames[0];
  return f0.inAsyncCb ? !!f0.asyncSleepable : !!v.env.sleepable;
}
