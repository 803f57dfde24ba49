/**
 * `struct sched_ext_ops` as a struct_ops type (kernel/sched/ext.c: bpf_sched_ext_ops and the
 * bpf_scx_* callbacks): which members may be sleepable, how the data members are checked and
 * copied (init_member), the stores programs may make through BTF (p->scx.slice, dsq_vtime,
 * disallow), the helpers they get, and reg/unreg/update handing the ops to scx_enable/scx_disable.
 */
import type { Btf } from "../../btf/btf.js";
import type { BtfComposite, BtfMember } from "../../btf/types.js";
import type { BpfStructOps, BpfStructOpsKdata, StructOpsProgView } from "../../kernel/struct_ops.js";
import { bpf_obj_name_cpy } from "../../kernel/syscall_common.js";
import { bpf_func_id } from "../../uapi/bpf.js";
import { BTF_KIND_STRUCT } from "../../uapi/btf.js";
import { BpfError, E2BIG, EACCES, EINVAL, EOPNOTSUPP } from "../../uapi/errno.js";
import { SCHED_EXT_OPS, SCX_OPS_STUBS } from "./btf.js";
import {
  HZ,
  SCX_EXIT_DUMP_DFL_LEN,
  SCX_OPS_ALL_FLAGS,
  SCX_OPS_NAME_LEN,
  SCX_WATCHDOG_MAX_TIMEOUT_MS,
} from "./consts.js";

/** The members whose programs may be sleepable (bpf_scx_check_member). */
export const SCX_SLEEPABLE_OPS: ReadonlySet<string> = new Set([
  "init_task",
  "cgroup_init",
  "cgroup_exit",
  "cgroup_prep_move",
  "cpu_online",
  "cpu_offline",
  "init",
  "exit",
]);

/** msecs_to_jiffies at CONFIG_HZ. */
const msecsToJiffies = (ms: number): number => Math.ceil((ms * HZ) / 1000);

/** What the scheduler core does with a registered ops struct. */
export interface ScxRegHooks {
  enable(kdata: BpfStructOpsKdata, link: object | null): void;
  disable(kdata: BpfStructOpsKdata): void;
}

/** Byte range of `scx.<field>` inside task_struct. */
function scxFieldRange(btf: Btf, field: string): [number, number] | undefined {
  const task = btf.typeById(btf.findByNameKind("task_struct", BTF_KIND_STRUCT));
  if (task.kind !== BTF_KIND_STRUCT) return undefined;
  const scx = task.members.find((m) => m.name === "scx");
  if (!scx) return undefined;
  const ent = btf.typeById(scx.type);
  if (ent.kind !== BTF_KIND_STRUCT) return undefined;
  const m = ent.members.find((x) => x.name === field);
  if (!m) return undefined;
  const off = scx.bitOffset / 8 + m.bitOffset / 8;
  const size = field === "disallow" ? 1 : 8;
  return [off, off + size];
}

/** bpf_scx_btf_struct_access(): stores only to p->scx.slice, dsq_vtime and disallow. */
export function bpfScxBtfStructAccess(log: string[], btf: Btf, typeId: number, off: number, size: number): number {
  const task = btf.findByNameKind("task_struct", BTF_KIND_STRUCT);
  if (typeId === task) {
    for (const f of ["slice", "dsq_vtime", "disallow"]) {
      const r = scxFieldRange(btf, f);
      if (r && off >= r[0] && off + size <= r[1]) return 0;
    }
  }
  log.push("only read is supported");
  throw new BpfError(EACCES, "only read is supported");
}

export function schedExtStructOps(hooks: ScxRegHooks): BpfStructOps<BpfStructOpsKdata> {
  return {
    name: SCHED_EXT_OPS,
    cfiStubs: SCX_OPS_STUBS,
    verifierOps: {
      btfStructAccess: bpfScxBtfStructAccess,
      /** bpf_scx_get_func_proto(): task storage on top of the base set. */
      getFuncProto(funcId: number): boolean | undefined {
        if (funcId === bpf_func_id.BPF_FUNC_task_storage_get || funcId === bpf_func_id.BPF_FUNC_task_storage_delete) {
          return true;
        }
        return undefined;
      },
    },
    init(btf: Btf): number {
      return btf.findByNameKind("task_struct", BTF_KIND_STRUCT) > 0 ? 0 : -EINVAL;
    },
    /** bpf_scx_check_member(): only the ops run without the rq lock may be sleepable. */
    checkMember(_t: BtfComposite, member: BtfMember, prog: StructOpsProgView): number {
      if (!SCX_SLEEPABLE_OPS.has(member.name) && prog.sleepable) return -EINVAL;
      return 0;
    },
    /** bpf_scx_init_member(): the data members, checked and copied. */
    initMember(_t: BtfComposite, member: BtfMember, kdata: BpfStructOpsKdata, udata: Uint8Array): number {
      const moff = member.bitOffset / 8;
      const u = new DataView(udata.buffer, udata.byteOffset, udata.byteLength);
      const fail = (errno: number, msg: string) => new BpfError(errno, msg, { member: member.name });
      switch (member.name) {
        case "dispatch_max_batch": {
          const v = u.getUint32(moff, true);
          if (v > 0x7fffffff) throw fail(E2BIG, `sched_ext_ops.dispatch_max_batch ${v} is larger than INT_MAX`);
          kdata.view.setUint32(moff, v, true);
          return 1;
        }
        case "flags": {
          const v = u.getBigUint64(moff, true);
          if (v & ~SCX_OPS_ALL_FLAGS)
            throw fail(EINVAL, `sched_ext_ops.flags 0x${v.toString(16)} outside SCX_OPS_ALL_FLAGS`);
          kdata.view.setBigUint64(moff, v, true);
          return 1;
        }
        case "name": {
          let name: string;
          try {
            name = bpf_obj_name_cpy(udata.subarray(moff, moff + SCX_OPS_NAME_LEN), SCX_OPS_NAME_LEN);
          } catch (e) {
            throw fail(EINVAL, `invalid sched_ext_ops.name: ${(e as Error).message}`);
          }
          if (!name) throw fail(EINVAL, "sched_ext_ops.name is empty");
          kdata.bytes.set(new TextEncoder().encode(name), moff);
          return 1;
        }
        case "timeout_ms": {
          const v = u.getUint32(moff, true);
          if (msecsToJiffies(v) > msecsToJiffies(SCX_WATCHDOG_MAX_TIMEOUT_MS)) {
            throw fail(E2BIG, `sched_ext_ops.timeout_ms ${v} is above the ${SCX_WATCHDOG_MAX_TIMEOUT_MS} ms maximum`);
          }
          kdata.view.setUint32(moff, v, true);
          return 1;
        }
        case "exit_dump_len": {
          const v = u.getUint32(moff, true);
          kdata.view.setUint32(moff, v || SCX_EXIT_DUMP_DFL_LEN, true);
          return 1;
        }
        case "hotplug_seq":
          kdata.view.setBigUint64(moff, u.getBigUint64(moff, true), true);
          return 1;
        default:
          return 0;
      }
    },
    reg(kdata: BpfStructOpsKdata, link: object | null): void {
      hooks.enable(kdata, link);
    },
    unreg(kdata: BpfStructOpsKdata): void {
      hooks.disable(kdata);
    },
    /** bpf_scx_update(): a loaded scheduler is never swapped in place. */
    update(): void {
      throw new BpfError(EOPNOTSUPP, "sched_ext schedulers cannot be updated in place");
    },
    validate(): void {},
  };
}
