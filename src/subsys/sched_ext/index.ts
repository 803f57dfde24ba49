/**
 * sched_ext as a boot-time subsystem: its BTF (task_struct.scx, the ops struct, enums, kfunc
 * FUNCs), the `sched_ext_ops` struct_ops type, the kfuncs, and the ext sched_class in the scheduler
 * core's slot. One ScxState per kernel holds the enabled scheduler.
 */
import type { Kernel, Subsystem } from "../../kernel/kernel.js";
import { set_ext_sched_class } from "../../kernel/sched/sched.js";
import { registerBpfStructOps } from "../../kernel/struct_ops.js";
import { declareScxTypes } from "./btf.js";
import { type ScxClassHost, ScxState } from "./ext.js";
import { ExtSchedClass } from "./ext_class.js";
import { registerScxKfuncs, type ScxMachine } from "./ext_kfuncs.js";
import { schedExtStructOps } from "./ext_struct_ops.js";

const states = new WeakMap<Kernel, ScxState>();

/** The sched_ext state of a kernel booted with the subsystem (undefined otherwise). */
export function scxState(k: Kernel): ScxState | undefined {
  return states.get(k);
}

/** Plug a machine's ext class in: it moves tasks on enable/disable and serves the kfuncs. */
export function scxAttachMachine(k: Kernel, host: ScxClassHost & ScxMachine): ScxState {
  const st = states.get(k);
  if (!st) throw new Error("the kernel was booted without the sched_ext subsystem");
  st.host = host;
  st.machine = host;
  return st;
}

export const schedExtSubsystem: Subsystem = {
  name: "sched_ext",
  declareTypes(b, base): void {
    declareScxTypes(b, base);
  },
  register(k: Kernel): void {
    const st = new ScxState(k);
    states.set(k, st);
    registerScxKfuncs(k, st, () => st.machine);
    // Each scheduler core built on this kernel gets the ext class (one machine per kernel).
    set_ext_sched_class(k, (core) => {
      const cls = new ExtSchedClass(st, core);
      scxAttachMachine(k, cls);
      return cls;
    });
    registerBpfStructOps(
      k,
      schedExtStructOps({
        enable: (kdata, link) => st.enable(kdata, link),
        disable: (kdata) => st.unreg(kdata),
      }),
    );
  },
};

export { SCHED_EXT_OPS } from "./btf.js";
export * from "./consts.js";
export { type ScxClassHost, ScxSched, ScxState } from "./ext.js";
export type { ScxMachine } from "./ext_kfuncs.js";
