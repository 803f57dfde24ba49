/**
 * Load-time translation of a struct_ops map (libbpf bpf_map__init_kern_struct_ops): find
 * `struct <name>` and `struct bpf_struct_ops_<name>` in kernel BTF (name without its
 * `___flavor`), then copy the shadow member by member, matched by name, into a zeroed
 * buffer of the kernel's value type. Function pointers bind their program to the kernel
 * type and member index (its attach_btf_id and expected_attach_type); the fd is written
 * after program load. Also libbpf's bpf_object_adjust_struct_ops_autoload.
 */
import type { Btf } from "../btf/btf.js";
import { bpf_prog_type } from "../uapi/bpf.js";
import { BTF_KIND_FUNC_PROTO, BTF_KIND_PTR, BTF_KIND_STRUCT } from "../uapi/btf.js";
import { BpfError, EINVAL, ENOENT, ENOTSUP, ESRCH } from "../uapi/errno.js";
import { essentialName, isComposite, resolveSize, skipModsAndTypedefs } from "./btf_helpers.js";
import type { BpfMap } from "./maps.js";
import { type ModuleBtf, ModuleBtfs } from "./module_btf.js";
import type { BpfProgram } from "./program.js";

const STRUCT_OPS_VALUE_PREFIX = "bpf_struct_ops_";

type Print = (level: "warn" | "info" | "debug", msg: string) => void;

/** find_struct_ops_kern_types: the type in vmlinux or, failing that, in a module's BTF. */
function findKernTypes(kern: Btf | ModuleBtfs, tname: string) {
  let kbtf: Btf;
  let typeId: number;
  let mod: ModuleBtf | null = null;
  if (kern instanceof ModuleBtfs) {
    try {
      ({ id: typeId, btf: kbtf, mod } = kern.find(tname, BTF_KIND_STRUCT));
    } catch (e) {
      if (!(e instanceof BpfError) || e.errno !== ESRCH) throw e;
      typeId = -ESRCH;
      kbtf = kern.vmlinux;
    }
  } else {
    kbtf = kern;
    typeId = kbtf.findByNameKind(tname, BTF_KIND_STRUCT);
  }
  // find_ksym_btf_id's -ESRCH; the value type's lookup is btf__find_by_name_kind's -ENOENT.
  if (typeId < 0) throw new BpfError(ESRCH, `struct_ops init_kern: struct ${tname} is not found in kernel BTF`);
  const vtypeId = kbtf.findByNameKind(STRUCT_OPS_VALUE_PREFIX + tname, BTF_KIND_STRUCT);
  if (vtypeId < 0) {
    throw new BpfError(
      ENOENT,
      `struct_ops init_kern: struct ${STRUCT_OPS_VALUE_PREFIX}${tname} is not found in kernel BTF`,
    );
  }
  const type = kbtf.typeById(typeId);
  const vtype = kbtf.typeById(vtypeId);
  if (!isComposite(type) || !isComposite(vtype)) throw new BpfError(EINVAL, `struct_ops init_kern: bad ${tname}`);
  const dataMember = vtype.members.find((m) => m.type === typeId);
  if (!dataMember) {
    throw new BpfError(
      EINVAL,
      `struct_ops init_kern: struct ${tname} data is not found in struct ${STRUCT_OPS_VALUE_PREFIX}${tname}`,
    );
  }
  return { kbtf, mod, typeId, type, vtypeId, vtype, dataOff: dataMember.bitOffset / 8 };
}

/**
 * bpf_map__init_kern_struct_ops. `programs`: the object's programs; a shadow slot may only
 * hold one of them (is_valid_st_ops_program). Every error is also printed at warn level.
 */
export function initKernStructOps(
  map: BpfMap,
  btf: Btf,
  kbtf: Btf | ModuleBtfs,
  print: Print,
  programs?: readonly BpfProgram[],
): void {
  try {
    initKern(map, btf, kbtf, print, programs);
  } catch (e) {
    if (e instanceof BpfError) print("warn", e.message);
    throw e;
  }
}

function initKern(
  map: BpfMap,
  btf: Btf,
  kernBtfs: Btf | ModuleBtfs,
  print: Print,
  programs?: readonly BpfProgram[],
): void {
  const st = map.structOps;
  if (!st) return;
  const tname = essentialName(st.tname);
  const kern = findKernTypes(kernBtfs, tname);
  const kbtf = kern.kbtf;
  map.modBtfFd = kern.mod ? kern.mod.fd : -1;
  print(
    "debug",
    `struct_ops init_kern ${map.name}: type_id:${st.typeId} kern_type_id:${kern.typeId} kern_vtype_id:${kern.vtypeId}`,
  );
  map.def.valueSize = kern.vtype.size;
  map.btfVmlinuxValueTypeId = kern.vtypeId;
  const kdata = new Uint8Array(kern.vtype.size);
  st.kernVdata = kdata;
  st.type.members.forEach((member, i) => {
    const mname = member.name;
    const moff = member.bitOffset / 8;
    const kidx = kern.type.members.findIndex((m) => m.name === mname);
    const km = kern.type.members[kidx];
    const prog = st.progs[i];
    if (!km) {
      // A member the kernel lacks is fine only while it holds nothing.
      const size = resolveSize(btf, member.type);
      const nonZero = prog !== null || st.data.subarray(moff, moff + size).some((b) => b !== 0);
      if (nonZero) {
        const msg = `struct_ops init_kern ${map.name}: Cannot find member ${mname} in kernel BTF`;
        throw new BpfError(ENOTSUP, msg, { map: map.name, member: mname });
      }
      const orig = st.origProgs[i];
      if (orig) orig.autoload = false;
      print("info", `struct_ops ${map.name}: member ${mname} not found in kernel, skipping it as it's set to zero`);
      return;
    }
    if (member.bitfieldSize || km.bitfieldSize) {
      throw new BpfError(ENOTSUP, `struct_ops init_kern ${map.name}: bitfield ${mname} is not supported`, {
        map: map.name,
        member: mname,
      });
    }
    const kmoff = km.bitOffset / 8;
    const mt = skipModsAndTypedefs(btf, member.type).t;
    const kmt = skipModsAndTypedefs(kbtf, km.type).t;
    if (mt.kind !== kmt.kind) {
      throw new BpfError(
        ENOTSUP,
        `struct_ops init_kern ${map.name}: Unmatched member type ${mname} ${mt.kind} != ${kmt.kind}(kernel)`,
        { map: map.name, member: mname },
      );
    }
    if (mt.kind === BTF_KIND_PTR) {
      const orig = st.origProgs[i];
      // A shadow edit that displaced the compile-time program stops it from loading.
      if (orig && orig !== prog) orig.autoload = false;
      if (!prog) return;
      if ((programs && !programs.includes(prog)) || prog.type !== bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS) {
        throw new BpfError(ENOTSUP, `struct_ops init_kern ${map.name}: member ${mname} is not a struct_ops program`, {
          map: map.name,
          member: mname,
        });
      }
      const kproto = skipModsAndTypedefs(kbtf, kmt.kind === BTF_KIND_PTR ? kmt.type : 0).t;
      if (kproto.kind !== BTF_KIND_FUNC_PROTO) {
        throw new BpfError(ENOTSUP, `struct_ops init_kern ${map.name}: kernel member ${mname} is not a func ptr`, {
          map: map.name,
          member: mname,
        });
      }
      if (kern.mod) prog.attachBtfObjFd = kern.mod.fd;
      if (!prog.attachBtfId) {
        prog.attachBtfId = kern.typeId;
        prog.expectedAttachType = kidx;
      }
      if (prog.attachBtfId !== kern.typeId) {
        throw new BpfError(
          EINVAL,
          `struct_ops init_kern ${map.name} func ptr ${mname}: invalid reuse of prog ${prog.name} in sec ${prog.secName} with type ${prog.type}: attach_btf_id ${prog.attachBtfId} != kern_type_id ${kern.typeId}`,
          { map: map.name, prog: prog.name },
        );
      }
      if (prog.expectedAttachType !== kidx) {
        throw new BpfError(
          EINVAL,
          `struct_ops init_kern ${map.name} func ptr ${mname}: invalid reuse of prog ${prog.name} in sec ${prog.secName} with type ${prog.type}: expected_attach_type ${prog.expectedAttachType} != kern_member_idx ${kidx}`,
          { map: map.name, prog: prog.name },
        );
      }
      st.kernFuncOff[i] = kern.dataOff + kmoff;
      print(
        "debug",
        `struct_ops init_kern ${map.name}: func ptr ${mname} is set to prog ${prog.name} from data(+${moff}) to kern_data(+${kmoff})`,
      );
      return;
    }
    const msize = resolveSize(btf, member.type);
    const kmsize = resolveSize(kbtf, km.type);
    if (msize !== kmsize) {
      throw new BpfError(
        ENOTSUP,
        `struct_ops init_kern ${map.name}: Error in size of member ${mname}: ${msize} != ${kmsize}(kernel)`,
        { map: map.name, member: mname },
      );
    }
    kdata.set(st.data.subarray(moff, moff + msize), kern.dataOff + kmoff);
  });
}

/** bpf_object_adjust_struct_ops_autoload: a referenced program loads iff some referencing map is created. */
export function adjustStructOpsAutoload(programs: readonly BpfProgram[], maps: readonly BpfMap[]): void {
  for (const prog of programs) {
    if (prog.type !== bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS) continue;
    let referenced = false;
    let wanted = false;
    for (const map of maps) {
      if (!map.structOps?.progs.includes(prog)) continue;
      referenced = true;
      if (map.autocreate) wanted = true;
    }
    if (referenced) prog.autoload = wanted;
  }
}
