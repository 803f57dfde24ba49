/**
 * The bpf_wq kfuncs in the verifier (kernel/bpf/verifier.c check_kfunc_args for
 * KF_ARG_PTR_TO_WORKQUEUE, KF_ARG_PTR_TO_MAP, KF_ARG_PTR_TO_CALLBACK and `__prog` arguments):
 * the work item in a map value, its map as `p__map`, and bpf_wq_set_callback_impl's callback
 * pushed as a sleepable async callback (set_timer_callback_state's registers, returns 0).
 */
import { BPF_WORKQUEUE } from "../btf/record.js";
import type { BtfFuncProto } from "../btf/types.js";
import { BTF_KIND_ENUM, BTF_KIND_ENUM64, BTF_KIND_INT } from "../uapi/btf.js";
import { EINVAL } from "../uapi/errno.js";
import { btfSkipModifiers } from "./btf_access.js";
import {
  CONST_PTR_TO_MAP,
  markRegNotInit,
  markRegUnknown,
  PTR_TO_FUNC,
  PTR_TO_MAP_VALUE,
  SCALAR_VALUE,
} from "./reg_state.js";
import { checkMapFieldPointer, pushAsyncCallback } from "./timer.js";
import type { Verifier } from "./verifier.js";

const WQ_KFUNCS = new Set(["bpf_wq_init", "bpf_wq_set_callback_impl", "bpf_wq_start"]);

export const isWqKfunc = (name: string): boolean => WQ_KFUNCS.has(name);

/** check_kfunc_args and check_kfunc_call for the bpf_wq kfuncs. */
export function checkWqKfuncCall(v: Verifier, name: string, proto: BtfFuncProto): boolean {
  const btf = v.env.btf as NonNullable<typeof v.env.btf>;
  let wqMap: number | undefined;
  let wqUid = 0;
  let callback = -1;
  proto.params.forEach((p, i) => {
    const regno = i + 1;
    // `__prog` (aux__prog): the kernel fills it in; whatever the program passes is ignored.
    if (p.name.endsWith("__prog")) return;
    const reg = v.readReg(regno);
    const [, t] = btfSkipModifiers(btf, p.type);
    if (t.kind === BTF_KIND_INT || t.kind === BTF_KIND_ENUM || t.kind === BTF_KIND_ENUM64) {
      if (reg.type !== SCALAR_VALUE) v.reject(EINVAL, `R${regno} is not a scalar`);
      return;
    }
    if (p.name === "wq") {
      if (reg.type !== PTR_TO_MAP_VALUE) v.reject(EINVAL, `arg#${i} doesn't point to a map value`);
      wqMap = checkMapFieldPointer(v, regno, reg, BPF_WORKQUEUE);
      wqUid = reg.mapUid;
    } else if (p.name.endsWith("__map")) {
      if (reg.type !== CONST_PTR_TO_MAP) v.reject(EINVAL, `pointer in R${regno} isn't map pointer`);
      if (wqMap !== undefined && (wqMap !== reg.map || wqUid !== reg.mapUid)) {
        v.reject(
          EINVAL,
          `workqueue pointer in R1 map_uid=${wqUid} doesn't match map pointer in R2 map_uid=${reg.mapUid}`,
        );
      }
    } else if (p.name === "callback_fn") {
      if (reg.type !== PTR_TO_FUNC) v.reject(EINVAL, `arg${i} expected pointer to func`);
      callback = reg.memSize;
    }
  });
  // A callback runs in a kworker: a state of its own that may sleep.
  if (name === "bpf_wq_set_callback_impl" && wqMap !== undefined) pushAsyncCallback(v, callback, wqMap, true);
  for (let r = 1; r <= 5; r++) markRegNotInit(v.regs[r]);
  const r0 = v.writeReg(0);
  markRegUnknown(r0);
  r0.written = true;
  return false;
}
