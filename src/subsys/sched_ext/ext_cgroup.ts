/**
 * sched_ext's cgroup support (kernel/sched/ext.c CONFIG_EXT_GROUP_SCHED: scx_cgroup_init,
 * scx_cgroup_exit, scx_tg_online/offline, scx_cgroup_can_attach, scx_cgroup_move_task,
 * scx_cgroup_cancel_attach, scx_group_set_weight, scx_group_set_bandwidth): the cgroup ops
 * called where ext.c calls them, with each task group's SCX_TG_ONLINE / SCX_TG_INITED state and
 * its cached weight and bandwidth (tg->scx), which `scx_cgroup_init_args` carries.
 */
import { CGROUP_WEIGHT_DFL, type Cgroup, cgroupRoot } from "../../kernel/cgroup.js";
import type { SchedCore, SchedTask } from "../../kernel/sched/sched.js";
import { memberOff } from "../../kernel/task.js";
import { SCX_KF_REST, SCX_KF_UNLOCKED } from "./consts.js";
import type { ScxSched, ScxState } from "./ext.js";

const SCX_TG_ONLINE = 1;
const SCX_TG_INITED = 2;
/** tg->scx: per task group (one per cgroup). */
interface TgScx {
  flags: number;
  weight: number;
  bw_period_us: bigint;
  bw_quota_us: bigint;
  bw_burst_us: bigint;
}

/** scx_tg_init: the cgroup's weight and cpu.max as they are now. */
function tgInit(cg: Cgroup, flags: number): TgScx {
  return {
    flags,
    weight: cg.weight,
    bw_period_us: cg.bw_period_us,
    bw_quota_us: cg.bw_quota_us,
    bw_burst_us: cg.bw_burst_us,
  };
}

export class ScxCgroups {
  private readonly tg = new Map<Cgroup, TgScx>();
  /** scx_cgroup_enabled. */
  private enabled = false;
  /** p->scx.cgrp_moving_from. */
  private readonly movingFrom = new Map<SchedTask, Cgroup>();

  constructor(
    private readonly st: ScxState,
    private readonly core: SchedCore,
  ) {
    // The root group is online from boot (cgroup_init_subsys onlines its css).
    const root = cgroupRoot(st.kernel);
    if (root) this.tg.set(root.cgrp, { ...tgInit(root.cgrp, SCX_TG_ONLINE), weight: CGROUP_WEIGHT_DFL });
  }

  private tgOf(cg: Cgroup): TgScx {
    let t = this.tg.get(cg);
    // Every live cgroup's group went online when it was made, loaded scheduler or not.
    if (!t) this.tg.set(cg, (t = tgInit(cg, cg.online ? SCX_TG_ONLINE : 0)));
    return t;
  }

  private get sch(): ScxSched | null {
    const s = this.st.root;
    return s && !s.disabled ? s : null;
  }

  /** struct scx_cgroup_init_args in kernel memory for one call. */
  private withInitArgs(tg: TgScx, fn: (addr: number) => bigint): bigint {
    const k = this.st.kernel;
    const btf = k.btfVmlinux;
    if (!btf) return fn(0);
    const size = (btf.typeById(btf.findByNameKind("scx_cgroup_init_args", 4)) as { size: number }).size;
    const r = k.mem.alloc(size, { perm: "r", kind: "kobj", name: "scx_cgroup_init_args" });
    const b = k.mem.bytes(r.addr, size);
    const dv = new DataView(b.buffer, b.byteOffset, size);
    const off = (m: string) => memberOff(btf, "scx_cgroup_init_args", m);
    dv.setUint32(off("weight"), tg.weight, true);
    dv.setBigUint64(off("bw_period_us"), tg.bw_period_us, true);
    dv.setBigUint64(off("bw_quota_us"), tg.bw_quota_us, true);
    dv.setBigUint64(off("bw_burst_us"), tg.bw_burst_us, true);
    try {
      return fn(r.addr);
    } finally {
      k.mem.free(r);
    }
  }

  /** scx_cgroup_init (scx_enable): ops.cgroup_init for every online group, parents first. */
  init(sch: ScxSched): boolean {
    const root = cgroupRoot(this.st.kernel);
    for (const cg of root?.descendantsPre() ?? []) {
      const tg = this.tgOf(cg);
      if ((tg.flags & (SCX_TG_ONLINE | SCX_TG_INITED)) !== SCX_TG_ONLINE) continue;
      if (!sch.has("cgroup_init")) {
        tg.flags |= SCX_TG_INITED;
        continue;
      }
      const ret = Number(
        BigInt.asIntN(
          32,
          this.withInitArgs(tg, (a) => sch.call("cgroup_init", SCX_KF_UNLOCKED, cg.addr, a)),
        ),
      );
      if (ret) {
        sch.error(`ops.cgroup_init() failed (${ret})`);
        return false;
      }
      tg.flags |= SCX_TG_INITED;
    }
    this.enabled = true;
    return true;
  }

  /** scx_cgroup_exit (the disable work): ops.cgroup_exit for every initialised group, children first. */
  exit(sch: ScxSched): void {
    this.enabled = false;
    const root = cgroupRoot(this.st.kernel);
    for (const cg of (root?.descendantsPre() ?? []).reverse()) {
      const tg = this.tgOf(cg);
      if (!(tg.flags & SCX_TG_INITED)) continue;
      tg.flags &= ~SCX_TG_INITED;
      if (sch.has("cgroup_exit")) sch.call("cgroup_exit", SCX_KF_UNLOCKED, cg.addr);
    }
  }

  /** scx_tg_online: a cgroup made while a scheduler is loaded gets ops.cgroup_init. */
  online(cg: Cgroup): number {
    const tg = tgInit(cg, 0);
    this.tg.set(cg, tg);
    const sch = this.sch;
    let ret = 0;
    if (this.enabled && sch) {
      if (sch.has("cgroup_init")) {
        ret = Number(
          BigInt.asIntN(
            32,
            this.withInitArgs(tg, (a) => sch.call("cgroup_init", SCX_KF_UNLOCKED, cg.addr, a)),
          ),
        );
        if (ret) ret = sanitize(sch, "cgroup_init", ret);
      }
      if (ret === 0) tg.flags |= SCX_TG_ONLINE | SCX_TG_INITED;
    } else {
      tg.flags |= SCX_TG_ONLINE;
    }
    this.flush();
    return ret;
  }

  /** scx_tg_offline. */
  offline(cg: Cgroup): void {
    const tg = this.tgOf(cg);
    const sch = this.sch;
    if (this.enabled && sch?.has("cgroup_exit") && tg.flags & SCX_TG_INITED)
      sch.call("cgroup_exit", SCX_KF_UNLOCKED, cg.addr);
    this.tg.delete(cg);
    this.flush();
  }

  /**
   * scx_cgroup_can_attach: ops.cgroup_prep_move for each task changing group; a refusal cancels
   * those prepared (ops.cgroup_cancel_move) and fails the migration with its errno.
   */
  canAttach(tasks: readonly SchedTask[], from: readonly Cgroup[], to: Cgroup): number {
    const sch = this.sch;
    if (!this.enabled || !sch) return 0;
    let ret = 0;
    for (let i = 0; i < tasks.length; i++) {
      const p = tasks[i];
      if (from[i] === to) continue;
      if (sch.has("cgroup_prep_move")) {
        ret = Number(
          BigInt.asIntN(32, sch.call("cgroup_prep_move", SCX_KF_UNLOCKED, p.task.addr, from[i].addr, to.addr)),
        );
        if (ret) break;
      }
      this.movingFrom.set(p, from[i]);
    }
    if (ret) {
      this.cancelAttach(tasks, from, to);
      ret = sanitize(sch, "cgroup_prep_move", ret);
    }
    this.flush();
    return ret;
  }

  /** scx_cgroup_cancel_attach. */
  cancelAttach(tasks: readonly SchedTask[], _from: readonly Cgroup[], to: Cgroup): void {
    const sch = this.sch;
    if (!this.enabled || !sch) return;
    for (const p of tasks) {
      const f = this.movingFrom.get(p);
      if (f && sch.has("cgroup_cancel_move"))
        sch.call("cgroup_cancel_move", SCX_KF_UNLOCKED, p.task.addr, f.addr, to.addr);
      this.movingFrom.delete(p);
    }
  }

  /** scx_cgroup_move_task, from sched_move_task with p in its new group: ops.cgroup_move. */
  moveTask(p: SchedTask): void {
    const sch = this.sch;
    if (!this.enabled || !sch) return;
    const f = this.movingFrom.get(p);
    const to = cgroupRoot(this.st.kernel)?.taskCgroup(p.task);
    if (f && to && sch.has("cgroup_move")) sch.call("cgroup_move", SCX_KF_REST, p.task.addr, f.addr, to.addr);
    this.movingFrom.delete(p);
  }

  /** scx_group_set_weight: ops.cgroup_set_weight when the weight changes. */
  setWeight(cg: Cgroup, weight: number): void {
    const tg = this.tgOf(cg);
    const sch = this.sch;
    if (this.enabled && sch?.has("cgroup_set_weight") && tg.weight !== weight)
      sch.call("cgroup_set_weight", SCX_KF_UNLOCKED, cg.addr, weight);
    tg.weight = weight;
    this.flush();
  }

  /**
   * scx_group_set_bandwidth (from tg_set_bandwidth once cpu.max was taken):
   * ops.cgroup_set_bandwidth(cgrp, period_us, quota_us, burst_us) when any of them changed.
   */
  setBandwidth(cg: Cgroup, period_us: bigint, quota_us: bigint, burst_us: bigint): void {
    const tg = this.tgOf(cg);
    const sch = this.sch;
    if (
      this.enabled &&
      sch?.has("cgroup_set_bandwidth") &&
      (tg.bw_period_us !== period_us || tg.bw_quota_us !== quota_us || tg.bw_burst_us !== burst_us)
    )
      sch.call("cgroup_set_bandwidth", SCX_KF_UNLOCKED, cg.addr, period_us, quota_us, burst_us);
    tg.bw_period_us = period_us;
    tg.bw_quota_us = quota_us;
    tg.bw_burst_us = burst_us;
    this.flush();
  }

  /** The cgroup whose group p is in (tg_cgrp(task_group(p))). */
  taskCgroup(p: SchedTask): Cgroup | null {
    return cgroupRoot(this.st.kernel)?.taskCgroup(p.task) ?? null;
  }

  private flush(): void {
    if (this.st.pendingDisable) this.st.flushDisable();
    void this.core;
  }
}

/** ops_sanitize_err(). */
function sanitize(sch: ScxSched, op: string, err: number): number {
  if (err < 0 && err >= -4095) return err;
  sch.error(`ops.${op}() returned an invalid errno ${err}`);
  return -22;
}
