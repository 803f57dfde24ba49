/**
 * net/bpf/bpf_dummy_struct_ops.c: `struct bpf_dummy_ops`, a struct_ops type that exists to test
 * struct_ops programs. Its maps can be created but never updated (init_member and reg refuse);
 * its programs run only through BPF_PROG_TEST_RUN (bpf_struct_ops_test_run).
 */
import type { Btf } from "../../btf/btf.js";
import type { BtfComposite, BtfFuncProto, BtfMember } from "../../btf/types.js";
import type { BpfProg } from "../../kernel/bpf.js";
import type { ProgTestRunAttr } from "../../kernel/bpf_attr.js";
import type { Kernel, Subsystem } from "../../kernel/kernel.js";
import type { Process } from "../../kernel/process.js";
import {
  type BpfStructOps,
  type BpfStructOpsDesc,
  BpfStructOpsTrampoline,
  registerBpfStructOps,
  type StructOpsProgView,
  structOpsProgAux,
} from "../../kernel/struct_ops.js";
import { skipModifiers } from "../../kernel/struct_ops_btf.js";
import { TrampolineImage, trampolineSize } from "../../kernel/struct_ops_trampoline.js";
import { structOpsTrampolineVm } from "../../kernel/struct_ops_vm.js";
import { bpf_prog_type } from "../../uapi/bpf.js";
import { BTF_KIND_PTR, BTF_KIND_STRUCT } from "../../uapi/btf.js";
import { BpfError, EACCES, EFAULT, EINVAL, EOPNOTSUPP } from "../../uapi/errno.js";
import { BPF_DUMMY_OPS, BPF_DUMMY_OPS_STATE, BPF_DUMMY_OPS_STUBS, declareDummyTypes } from "./btf.js";

/** sizeof(struct bpf_dummy_ops_state). */
export const BPF_DUMMY_OPS_STATE_SIZE = 4;

/**
 * User memory for test_run's `args[0]`: the kernel copies a `struct bpf_dummy_ops_state` from a
 * user pointer and back. A process registers a buffer and passes the returned pseudo address.
 */
const userMem = new WeakMap<Process, Map<bigint, Uint8Array>>();
let nextUserAddr = 0x7ffd_0000_1000n;

export function bpfDummyUserPtr(proc: Process, buf: Uint8Array): bigint {
  let m = userMem.get(proc);
  if (!m) userMem.set(proc, (m = new Map()));
  const addr = nextUserAddr;
  nextUserAddr += 0x100n;
  m.set(addr, buf);
  return addr;
}

function userBuf(proc: Process, addr: bigint, size: number): Uint8Array {
  const b = userMem.get(proc)?.get(addr);
  if (!b || b.length < size) throw new BpfError(EFAULT, `bad user pointer 0x${addr.toString(16)}`);
  return b;
}

const bpfDummyOps: BpfStructOps = {
  name: BPF_DUMMY_OPS,
  cfiStubs: BPF_DUMMY_OPS_STUBS,
  verifierOps: {
    /** bpf_dummy_ops_btf_struct_access(): writes only inside a bpf_dummy_ops_state. */
    btfStructAccess(log: string[], btf: Btf, typeId: number, off: number, size: number): number {
      const stateId = btf.findByNameKind(BPF_DUMMY_OPS_STATE, BTF_KIND_STRUCT);
      if (stateId < 0) throw new BpfError(EINVAL, "no struct bpf_dummy_ops_state");
      if (typeId !== stateId) {
        log.push("only access to bpf_dummy_ops_state is supported");
        throw new BpfError(EACCES, "only access to bpf_dummy_ops_state is supported");
      }
      if (off + size > BPF_DUMMY_OPS_STATE_SIZE) {
        log.push(`write access at off ${off} with size ${size}`);
        throw new BpfError(EACCES, `write access at off ${off} with size ${size}`);
      }
      // NOT_INIT: the written value is a scalar.
      return 0;
    },
  },
  init(): number {
    return 0;
  },
  /** bpf_dummy_ops_check_member(): only test_sleepable may be sleepable. */
  checkMember(_t: BtfComposite, member: BtfMember, prog: StructOpsProgView): number {
    if (member.name !== "test_sleepable" && prog.sleepable) return -EINVAL;
    return 0;
  },
  initMember(): number {
    throw new BpfError(EOPNOTSUPP, "bpf_dummy_ops maps cannot be updated");
  },
  reg(): void {
    throw new BpfError(EOPNOTSUPP, "bpf_dummy_ops cannot be registered");
  },
  unreg(): void {},
};

export function bpfDummyOpsStructOps(): BpfStructOps {
  return bpfDummyOps;
}

/** Per kernel: the registered descriptor (the kernel keeps it in a static, one kernel per boot). */
const dummyDescs = new WeakMap<Kernel, BpfStructOpsDesc>();

/**
 * bpf_struct_ops_test_run(): run a bpf_dummy_ops program through a one-off trampoline. `ctx_in`
 * holds `u64 args[nargs]`; args[0] is a user pointer to a bpf_dummy_ops_state (0 = NULL).
 */
export function bpfStructOpsTestRun(k: Kernel, prog: BpfProg, attr: ProgTestRunAttr, proc: Process): void {
  const dummyDesc = dummyDescs.get(k);
  const btf = dummyDesc?.btf;
  const typeId = btf ? btf.findByNameKind(BPF_DUMMY_OPS, BTF_KIND_STRUCT) : -1;
  if (!btf || typeId < 0 || !dummyDesc) throw new BpfError(EINVAL, "bpf_dummy_ops is not registered");
  if (prog.aux.attach_btf_id !== typeId) {
    throw new BpfError(EOPNOTSUPP, "BPF_PROG_TEST_RUN runs only bpf_dummy_ops struct_ops programs");
  }
  const aux = structOpsProgAux(prog);
  if (!aux) throw new BpfError(EINVAL, "program was not attached to a bpf_dummy_ops member at load");
  const proto = btf.typeById(aux.funcProtoId) as BtfFuncProto;
  const nargs = proto.params.length;
  const sizeIn = attr.ctx_size_in ?? 0;
  if (sizeIn !== 8 * nargs) throw new BpfError(EINVAL, `ctx_size_in must be ${8 * nargs} (u64 args[${nargs}])`);
  const ctxIn = attr.ctx_in;
  if (!ctxIn || ctxIn.length < sizeIn) throw new BpfError(EFAULT, "ctx_in is shorter than ctx_size_in");
  const dv = new DataView(ctxIn.buffer, ctxIn.byteOffset, sizeIn);
  const args: bigint[] = [];
  for (let i = 0; i < nargs; i++) args.push(dv.getBigUint64(i * 8, true));
  const uState = args[0] ? userBuf(proc, args[0], BPF_DUMMY_OPS_STATE_SIZE) : null;

  // check_test_run_args(): NULL only where the stub marks the argument __nullable.
  for (let i = 0; i < nargs; i++) {
    if (args[i] !== 0n) continue;
    if (skipModifiers(btf, proto.params[i].type).kind !== BTF_KIND_PTR) continue;
    const off = i * 8;
    if (aux.ctxArgInfo.some((a) => a.offset === off && a.mayBeNull)) continue;
    throw new BpfError(EINVAL, `arg${i} of ${aux.funcName} may not be NULL`);
  }

  const model = dummyDesc.funcModels[aux.memberIdx];
  if (!model) throw new BpfError(EINVAL, `member ${aux.funcName} has no func model`);
  const vm = structOpsTrampolineVm(k);
  const image = new TrampolineImage();
  const size = trampolineSize(model);
  const tramp = new BpfStructOpsTrampoline(
    vm,
    prog,
    model,
    `bpf__${BPF_DUMMY_OPS}_${aux.funcName}`,
    image.reserve(size),
    size,
  );
  const state = uState
    ? k.mem.alloc(BPF_DUMMY_OPS_STATE_SIZE, { perm: "rw", kind: "kobj", name: BPF_DUMMY_OPS_STATE })
    : null;
  try {
    if (state && uState)
      k.mem.bytes(state.addr, BPF_DUMMY_OPS_STATE_SIZE).set(uState.subarray(0, BPF_DUMMY_OPS_STATE_SIZE));
    const callArgs = [state ? BigInt(state.addr) : 0n, ...args.slice(1)];
    const ret = tramp.callRaw(callArgs);
    if (state && uState) uState.set(k.mem.bytes(state.addr, BPF_DUMMY_OPS_STATE_SIZE));
    attr.retval = ret >>> 0;
  } finally {
    tramp.free();
    image.free();
    if (state) k.mem.free(state);
  }
}

/** The bpf_dummy_ops subsystem: its types at BTF build time, its struct_ops type and test_run at boot. */
export const bpfDummyStructOpsSubsystem: Subsystem = {
  name: "bpf_dummy_struct_ops",
  declareTypes(b): void {
    declareDummyTypes(b);
  },
  register(k: Kernel): void {
    dummyDescs.set(k, registerBpfStructOps(k, bpfDummyOps));
    k.registerProgType(bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS, {
      test_run: (prog, attr, proc) => bpfStructOpsTestRun(k, prog, attr, proc),
    });
  },
};
