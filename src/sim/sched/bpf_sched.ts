/**
 * BPF schedulers on the simulated machine: the object is opened and loaded with the loader, its
 * sched_ext_ops map (in `.struct_ops.link`) attached through a BPF link as SCX_OPS_ATTACH does,
 * which enables the ext class; detaching the link (or the scheduler's own exit) gives the tasks
 * back to the fair class. A live replacement tries BPF_LINK_UPDATE first and, as sched_ext
 * refuses it (EOPNOTSUPP), detaches and attaches, as a scx tool restarted under a new scheduler
 * does. What the scx tools print when a scheduler ends (UEI_REPORT) is kept per scheduler.
 */
import type { BpfHandle } from "../../loader/bpf.js";
import type { BpfMap } from "../../loader/maps.js";
import { BpfObject } from "../../loader/object.js";
import type { BpfStructOpsLink } from "../../loader/struct_ops_attach.js";
import { scxState } from "../../subsys/sched_ext/index.js";
import { BpfError, ENOENT, EOPNOTSUPP } from "../../uapi/errno.js";
import type { Tier, VmProgram } from "../../vm/program.js";
import { parseObjSpec, structOpsMapOf } from "../bpf_cc.js";
import type { Machine } from "./machine.js";

/** scx_exit_kind values userspace sees (enum scx_exit_kind). */
const EXIT_KIND: Record<number, string> = {
  0: "SCX_EXIT_NONE",
  1: "SCX_EXIT_DONE",
  64: "SCX_EXIT_UNREG",
  65: "SCX_EXIT_UNREG_BPF",
  66: "SCX_EXIT_UNREG_KERN",
  67: "SCX_EXIT_SYSRQ",
  1024: "SCX_EXIT_ERROR",
  1025: "SCX_EXIT_ERROR_BPF",
  1026: "SCX_EXIT_ERROR_STALL",
};

export interface SchedExit {
  spec: string;
  /** Machine time of the exit, ns. */
  at: number;
  kind: number;
  kindName: string;
  exit_code: string;
  reason: string;
  msg: string;
  /** UEI_REPORT's line: `EXIT: reason (msg)`. */
  line: string;
}

export class BpfSchedHost {
  readonly h: BpfHandle;
  private link: BpfStructOpsLink | null = null;
  private current: string | null = null;
  /** Schedulers that ended, in order. */
  readonly exits: SchedExit[] = [];
  /** Live switches as they happened. */
  readonly switches: { at: number; from: string; to: string; how: string }[] = [];
  private seen = 0;

  constructor(readonly machine: Machine) {
    const k = machine.kernel;
    if (!scxState(k)) throw new BpfError(ENOENT, "the machine's kernel was booted without sched_ext");
    if (!machine.sched.ext) throw new BpfError(EOPNOTSUPP, "sched_ext: the kernel has no ext scheduling class");
    this.h = { kernel: k, process: k.newProcess() };
  }

  /** Open and load OBJ; its sched_ext_ops map (MAP, or the only struct_ops map). */
  load(spec: string): BpfMap {
    const { path, map } = parseObjSpec(spec);
    const obj = BpfObject.open(path);
    obj.load(this.h);
    return structOpsMapOf(obj, path, map);
  }

  /** Every loaded program in this VM tier. */
  setTier(tier: Tier): void {
    const vm = this.machine.kernel.vm;
    if (!vm) return;
    for (const prog of this.machine.kernel.prog_idr.values())
      if (prog.vmProg) vm.setTier(prog.vmProg as VmProgram, tier);
  }

  /** Attach a loaded map: the scheduler is enabled (or refused, with its exit recorded). */
  attach(spec: string, m: BpfMap): void {
    this.link = m.attachStructOps();
    this.current = spec;
    this.collect();
  }

  /** The link goes: the scheduler unregisters, tasks go back to fair. */
  detach(): void {
    if (!this.link) return;
    this.link.detach();
    this.link = null;
    this.collect();
    this.current = null;
  }

  /**
   * Replace whatever runs now by `to` (a loaded map, or null for the fair class) at this moment.
   */
  switchTo(toSpec: string, to: BpfMap | null): void {
    const from = this.current ?? "fair";
    let how = "attach";
    if (this.link && to) {
      try {
        this.link.updateMap(to);
        this.current = toSpec;
        how = "BPF_LINK_UPDATE";
      } catch (e) {
        if (!(e instanceof BpfError) || e.errno !== EOPNOTSUPP) throw e;
        how = "BPF_LINK_UPDATE refused (EOPNOTSUPP): detach, then attach";
        this.detach();
        this.attach(toSpec, to);
      }
    } else if (this.link) {
      how = "detach";
      this.detach();
    } else if (to) this.attach(toSpec, to);
    this.switches.push({ at: this.machine.q.now, from, to: to ? toSpec : "fair", how });
    this.collect();
  }

  /** Record schedulers that have ended since the last look. */
  collect(): void {
    const st = scxState(this.machine.kernel);
    if (!st) return;
    for (; this.seen < st.history.length; this.seen++) {
      const sch = st.history[this.seen]!;
      if (!sch.disabled) break;
      const ei = sch.exitInfo;
      this.exits.push({
        spec: this.current ?? "",
        at: this.machine.q.now,
        kind: ei.kind,
        kindName: EXIT_KIND[ei.kind] ?? String(ei.kind),
        exit_code: String(ei.exit_code),
        reason: ei.reason,
        msg: ei.msg,
        line: `EXIT: ${ei.reason}${ei.msg ? ` (${ei.msg})` : ""}`,
      });
    }
  }

  /** The spec running now, or fair. */
  get running(): string {
    const st = scxState(this.machine.kernel);
    return st?.root && !st.root.disabled ? (this.current ?? "?") : "fair";
  }
}
