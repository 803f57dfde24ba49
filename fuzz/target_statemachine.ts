/**
 * statemachine: random bpf() sequences across three processes with random capabilities (maps,
 * programs, BTF, pins, ids, dup/close, freeze, exit, dropping capabilities, grace periods). After
 * every call: no exception but BpfError, every object reachable by id holds a reference, and a
 * process without CAP_BPF/CAP_SYS_ADMIN gets EPERM for what needs them. At the end every process
 * exits and the pins go: after a grace period nothing is left and no memlock stays charged.
 */
import { BtfBuilder } from "../src/btf/builder.js";
import { CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON, CAP_SYS_ADMIN, type Capability } from "../src/kernel/capability.js";
import type { Kernel } from "../src/kernel/kernel.js";
import type { Process } from "../src/kernel/process.js";
import type { Prng } from "../src/sim/prng.js";
import { bpf_cmd, bpf_map_type } from "../src/uapi/bpf.js";
import { EPERM } from "../src/uapi/errno.js";
import { assertNothingLeft, bootKernel } from "./kernel.js";
import { FuzzInvariant, type FuzzTarget, int, isRefusal, quietly } from "./target.js";

const C = bpf_cmd;
const CAPS: Capability[] = [CAP_BPF, CAP_SYS_ADMIN, CAP_PERFMON, CAP_NET_ADMIN];
const PATHS = ["/sys/fs/bpf/a", "/sys/fs/bpf/b", "/sys/fs/bpf/c"];
const REC = 8;
const OPS = 20;

const BTF = (() => {
  const b = new BtfBuilder();
  b.addInt("int", 4, 1);
  return b.build();
})();

let kernel: Kernel | undefined;
let kernelBtfs = 0;

function boot(): Kernel {
  if (!kernel) {
    kernel = bootKernel();
    kernelBtfs = kernel.btf_idr.size;
  }
  return kernel;
}

function capsOf(mask: number): Capability[] {
  return CAPS.filter((_, i) => mask & (1 << i));
}

/** bpf_capable() or CAP_SYS_ADMIN: what creating maps, programs and BTF needs once unprivileged BPF is off. */
function bpfCapable(p: Process): boolean {
  return p.capable(CAP_BPF) || p.capable(CAP_SYS_ADMIN);
}

export const statemachineTarget: FuzzTarget = {
  name: "statemachine",
  describe: `byte 0: unprivileged_bpf_disabled; bytes 1-3: capability masks; then ${REC}-byte bpf() call records`,
  unit: REC,
  setup(): void {
    boot();
  },
  generate(rng: Prng): Uint8Array {
    const n = 1 + int(rng, 40);
    const out = new Uint8Array(4 + n * REC);
    out[0] = int(rng, 3) === 0 ? 0 : 2;
    for (let i = 1; i < 4; i++) out[i] = int(rng, 3) === 0 ? int(rng, 16) : 15;
    for (let i = 0; i < n; i++) {
      const o = 4 + i * REC;
      out[o] = int(rng, OPS);
      for (let j = 1; j < REC; j++) out[o + j] = int(rng, 256);
    }
    return out;
  },
  run(input: Uint8Array): string {
    const k = boot();
    k.sysctl.unprivilegedBpfDisabled = 2;
    if ((input[0] ?? 0) === 0) k.sysctl.unprivilegedBpfDisabled = 0;
    const unprivOff = k.sysctl.unprivilegedBpfDisabled !== 0;
    const spawn = (i: number) => k.newProcess({ caps: capsOf(input[1 + i] ?? 15), comm: `fuzz${i}` });
    const procs = [spawn(0), spawn(1), spawn(2)];
    let calls = 0;
    let cleanupError: unknown;
    let refused = 0;
    const fdOf = (p: Process, b: number): number => {
      const fds = p.files.list();
      return b < 200 && fds.length ? (fds[b % fds.length] as number) : b - 200;
    };
    try {
      for (let o = 4; o + REC <= input.length; o += REC) {
        const op = (input[o] ?? 0) % OPS;
        const pi = (input[o + 1] ?? 0) % 3;
        const p = procs[pi] as Process;
        const a = input[o + 2] ?? 0;
        const b = input[o + 3] ?? 0;
        const key = new Uint8Array([b & 7, 0, 0, 0]);
        const value = new Uint8Array(8).fill(a);
        // map and program creation need CAP_BPF once unprivileged BPF is off; BTF_LOAD always does;
        // ids are CAP_SYS_ADMIN's
        const needsCap = op === 0 || op === 4;
        const needsAdmin = op === 10 || op === 11 || op === 12;
        const allowedByCaps =
          (!needsCap || bpfCapable(p) || !unprivOff) &&
          (op !== 13 || bpfCapable(p)) &&
          (!needsAdmin || p.capable(CAP_SYS_ADMIN));
        calls++;
        try {
          switch (op) {
            case 0:
              k.bpf(p, C.BPF_MAP_CREATE, {
                map_type: a & 1 ? bpf_map_type.BPF_MAP_TYPE_HASH : bpf_map_type.BPF_MAP_TYPE_ARRAY,
                key_size: 4,
                value_size: 8,
                max_entries: 1 + (b & 7),
                map_flags: a & 1 && a & 2 ? 1 /* NO_PREALLOC, for hash maps */ : 0,
              });
              break;
            case 1:
              k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fdOf(p, a), key, value, flags: b % 3 });
              break;
            case 2:
              k.bpf(p, C.BPF_MAP_LOOKUP_ELEM, { map_fd: fdOf(p, a), key, value });
              break;
            case 3:
              k.bpf(p, C.BPF_MAP_DELETE_ELEM, { map_fd: fdOf(p, a), key });
              break;
            case 4: {
              const insns = [
                { code: 0x18, dst: 1, src: 1, off: 0, imm: fdOf(p, a) },
                { code: 0, dst: 0, src: 0, off: 0, imm: 0 },
                { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
                { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
              ];
              const prog = b & 1 ? insns : insns.slice(2);
              k.bpf(p, C.BPF_PROG_LOAD, { prog_type: 1, insns: prog, insn_cnt: prog.length, license: "GPL" });
              break;
            }
            case 5:
              k.close(p, fdOf(p, a));
              break;
            case 6:
              k.dup(p, fdOf(p, a));
              break;
            case 7:
              k.bpf(p, C.BPF_OBJ_PIN, { bpf_fd: fdOf(p, a), pathname: PATHS[b % 3] });
              break;
            case 8:
              k.bpf(p, C.BPF_OBJ_GET, { pathname: PATHS[b % 3], file_flags: 0 });
              break;
            case 9:
              k.unlink(PATHS[b % 3] as string);
              break;
            case 10:
              k.bpf(p, C.BPF_MAP_GET_FD_BY_ID, { map_id: a });
              break;
            case 11:
              k.bpf(p, C.BPF_PROG_GET_FD_BY_ID, { prog_id: a });
              break;
            case 12:
              k.bpf(p, pick3(b, C.BPF_MAP_GET_NEXT_ID, C.BPF_PROG_GET_NEXT_ID, C.BPF_BTF_GET_NEXT_ID), { start_id: a });
              break;
            case 13:
              k.bpf(p, C.BPF_BTF_LOAD, { btf: BTF, btf_size: BTF.length });
              break;
            case 14:
              k.bpf(p, C.BPF_MAP_FREEZE, { map_fd: fdOf(p, a) });
              break;
            case 15:
              k.exit(p);
              procs[pi] = spawn(pi);
              break;
            case 16:
              p.setCap(CAPS[a % CAPS.length] as Capability, false);
              break;
            case 17:
              k.quiesce();
              break;
            case 18:
              k.bpf(p, C.BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: fdOf(p, a) });
              break;
            default:
              k.bpf(p, C.BPF_MAP_GET_NEXT_KEY, {
                map_fd: fdOf(p, a),
                key: b & 1 ? key : null,
                next_key: new Uint8Array(4),
              });
          }
          if (!allowedByCaps)
            throw new FuzzInvariant(`op ${op} succeeded for a process without the capability it needs`);
        } catch (e) {
          if (e instanceof FuzzInvariant || !isRefusal(e)) throw e;
          refused++;
          if (!allowedByCaps && e.errno !== EPERM)
            throw new FuzzInvariant(`op ${op} without its capability gave ${e.code}, not EPERM: ${e.message}`);
        }
        for (const m of k.map_idr.values())
          if (m.refcnt <= 0) throw new FuzzInvariant(`map id ${m.id} reachable with refcnt ${m.refcnt}`);
        for (const pr of k.prog_idr.values())
          if (pr.refcnt <= 0) throw new FuzzInvariant(`prog id ${pr.id} reachable with refcnt ${pr.refcnt}`);
      }
    } finally {
      for (const p of procs) k.exit(p);
      for (const path of PATHS) cleanupError ??= quietly(() => k.unlink(path));
    }
    if (cleanupError) throw cleanupError;
    assertNothingLeft(k, kernelBtfs);
    for (const p of procs)
      if (p.user.locked_vm !== 0) throw new FuzzInvariant(`uid ${p.uid}: ${p.user.locked_vm} page(s) still charged`);
    return `calls=${Math.min(calls, 9) === 9 ? "9+" : calls} refused=${refused > 0}`;
  },
};

function pick3(b: number, x: number, y: number, z: number): number {
  return b % 3 === 0 ? x : b % 3 === 1 ? y : z;
}
