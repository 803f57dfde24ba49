/**
 * insn: random and mutated instruction streams (ALU and JMP of every width including the v4
 * ones, sign-extending loads and moves, byte swaps, atomics, back edges, bpf-to-bpf calls, map
 * helpers on a real map) loaded as a socket filter through PROG_LOAD with the verifier. An
 * accepted program runs through PROG_TEST_RUN in the interpreter and in the JIT on the same
 * packet and map contents: retval, packet and map must agree, and neither may fault.
 */
import { decodeInsns, encodeInsns, type Insn } from "../src/isa/insn.js";
import type { Kernel } from "../src/kernel/kernel.js";
import type { Process } from "../src/kernel/process.js";
import { fdget } from "../src/kernel/syscall.js";
import type { Prng } from "../src/sim/prng.js";
import { bpf_cmd, bpf_map_type } from "../src/uapi/bpf.js";
import { VmFault } from "../src/vm/fault.js";
import type { VmProgram } from "../src/vm/program.js";
import { bootKernel } from "./kernel.js";
import { mutate } from "./mutate.js";
import { chance, FuzzInvariant, type FuzzTarget, int, isRefusal, pick } from "./target.js";

const PKT = 64;
const VALUE = 16;
const ENTRIES = 4;
/** Helpers whose results depend only on their inputs: runs that call others are not compared. */
const PURE_HELPERS = new Set([1, 2, 3]);

const ALU_OPS = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0];
const JMP_OPS = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0];
const SIZES = [0x00, 0x08, 0x10, 0x18];
const ATOMIC_OPS = [0x00, 0x40, 0x50, 0xa0, 0x01, 0x41, 0x51, 0xa1, 0xe1, 0xf1];
const IMMS = [0, 1, -1, 2, 7, 8, 16, 31, 32, 63, 64, 0x7fffffff, -0x80000000, 0xff, 0xffff, 12, 4];

const I = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });

function reg(rng: Prng): number {
  return chance(rng, 0.7) ? int(rng, 6) : pick(rng, [0, 6, 7, 8, 9, 10]);
}

function imm(rng: Prng): number {
  return chance(rng, 0.6) ? int(rng, 48) - 8 : pick(rng, IMMS);
}

/** One instruction (or a short idiom) of the body. */
function piece(rng: Prng, mapFd: number): Insn[] {
  switch (int(rng, 14)) {
    case 0:
    case 1:
    case 2: {
      const cls = pick(rng, [0x04, 0x07]);
      const op = pick(rng, ALU_OPS);
      const x = chance(rng, 0.4);
      // v4: signed div/mod (off 1), sign-extending mov (off 8/16/32)
      const off = (op === 0x30 || op === 0x90) && chance(rng, 0.3) ? 1 : 0;
      if (op === 0xb0 && chance(rng, 0.2))
        return [I(cls | 0xb0 | 0x08, reg(rng), reg(rng), pick(rng, cls === 0x07 ? [8, 16, 32] : [8, 16]))];
      if (op === 0x80) return [I(cls | op, reg(rng))];
      return [x ? I(cls | op | 0x08, reg(rng), reg(rng), off) : I(cls | op, reg(rng), 0, off, imm(rng))];
    }
    case 3:
      // byte swaps: to_le/to_be, and v4's unconditional bswap (ALU64 END)
      return [I(pick(rng, [0xd4, 0xdc, 0xd7]), reg(rng), 0, 0, pick(rng, [16, 32, 64]))];
    case 4: {
      // a load from the stack, the packet (r1 at entry, kept in r6) or a map value (r7 when set)
      const sz = pick(rng, SIZES);
      const sx = chance(rng, 0.2) && sz !== 0x18 ? 0x80 : 0x60;
      return [I(0x01 | sx | sz, reg(rng), pick(rng, [10, 6, 7, 1]), int(rng, 40) - 24)];
    }
    case 5:
    case 6: {
      const sz = pick(rng, SIZES);
      if (chance(rng, 0.5)) return [I(0x62 | sz, pick(rng, [10, 7, 6]), 0, -8 * (1 + int(rng, 4)), imm(rng))];
      return [I(0x63 | sz, pick(rng, [10, 7, 6]), reg(rng), -8 * (1 + int(rng, 4)) + int(rng, 2) * 4, 0)];
    }
    case 7: {
      const sz = pick(rng, [0x18, 0x00]);
      return [I(0xc3 | sz, pick(rng, [10, 7]), reg(rng), -8 * (1 + int(rng, 2)), pick(rng, ATOMIC_OPS))];
    }
    case 8:
    case 9: {
      const cls = pick(rng, [0x05, 0x06]);
      const x = chance(rng, 0.4);
      const off = chance(rng, 0.15) ? -(1 + int(rng, 6)) : int(rng, 6);
      return [
        x
          ? I(cls | pick(rng, JMP_OPS) | 0x08, reg(rng), reg(rng), off)
          : I(cls | pick(rng, JMP_OPS), reg(rng), 0, off, imm(rng)),
      ];
    }
    case 10:
      // ja, and v4's gotol (JMP32 JA with a 32-bit imm)
      // (a jump over code leaves it unreachable unless a branch lands there: mostly off 0)
      return [
        chance(rng, 0.5)
          ? I(0x05, 0, 0, chance(rng, 0.8) ? 0 : int(rng, 3))
          : I(0x06, 0, 0, 0, chance(rng, 0.8) ? 0 : int(rng, 3)),
      ];
    case 11: {
      // lookup, then keep a checked value pointer in r7
      const key = int(rng, ENTRIES + 1);
      return [
        I(0x62, 10, 0, -4, key),
        I(0x18, 1, 1, 0, mapFd),
        I(0x00),
        I(0xbf, 2, 10),
        I(0x07, 2, 0, 0, -4),
        I(0x85, 0, 0, 0, 1),
        I(0x15, 0, 0, 1, 0),
        I(0xbf, 7, 0),
      ];
    }
    case 12: {
      const key = int(rng, ENTRIES + 1);
      const h = pick(rng, [2, 3]);
      return [
        I(0x62, 10, 0, -4, key),
        I(0x7a, 10, 0, -16, imm(rng)),
        I(0x7a, 10, 0, -24, imm(rng)),
        I(0x18, 1, 1, 0, mapFd),
        I(0x00),
        I(0xbf, 2, 10),
        I(0x07, 2, 0, 0, -4),
        I(0xbf, 3, 10),
        I(0x07, 3, 0, 0, -24),
        I(0xb7, 4, 0, 0, int(rng, 3)),
        I(0x85, 0, 0, 0, h),
      ];
    }
    default:
      // a bpf-to-bpf call into the subprogram after the main exit (patched in close())
      return [I(0x85, 0, 1, 0, -1)];
  }
}

/** A whole program: r6 = packet, body, r0 = 0, exit; then a small subprogram. */
function program(rng: Prng, mapFd: number): Insn[] {
  const body: Insn[] = [I(0xbf, 6, 1), I(0xb7, 7, 0, 0, 0)];
  // A privileged program may read stack it never wrote: what it finds there differs between runs
  // (and tiers) on Linux too, so the stack the pieces use starts zeroed.
  for (let off = -8; off >= -40; off -= 8) body.push(I(0x7a, 10, 0, off, 0));
  for (const r of [0, 2, 3, 4, 5, 8, 9]) if (chance(rng, 0.8)) body.push(I(0xb7, r, 0, 0, imm(rng)));
  for (let n = 1 + int(rng, 24); n > 0; n--) body.push(...piece(rng, mapFd));
  body.push(I(0xb7, 0, 0, 0, int(rng, 3)), I(0x95));
  const mainLen = body.length;
  // the subprogram only where something calls it (an unreachable one is refused)
  const called = body.some((i) => i.code === 0x85 && i.src === 1);
  const insns = called ? [...body, I(0xbf, 0, 1), I(0x07, 0, 0, 0, imm(rng)), I(0x95)] : body;
  insns.forEach((i, t) => {
    const cls = i.code & 7;
    if (i.code === 0x85 && i.src === 1) i.imm = mainLen - (t + 1);
    else if ((cls === 5 || cls === 6) && (i.code & 0xf0) !== 0x80 && (i.code & 0xf0) !== 0x90 && t < mainLen) {
      // keep jumps inside main: forward ones clamp to the exit, back ones to the start
      const ja32 = i.code === 0x06;
      const off = ja32 ? i.imm : i.off;
      let to = t + off + 1;
      if (to >= mainLen) to = mainLen - 2;
      if (to < 0) to = 0;
      if (ja32) i.imm = to - t - 1;
      else i.off = to - t - 1;
    }
  });
  return insns;
}

let kernel: Kernel | undefined;
let proc: Process | undefined;
let mapFd = -1;

function setup(): { k: Kernel; p: Process } {
  if (!kernel || !proc) {
    kernel = bootKernel();
    proc = kernel.newProcess({ comm: "fuzz" });
    mapFd = kernel.bpf(proc, bpf_cmd.BPF_MAP_CREATE, {
      map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY,
      key_size: 4,
      value_size: VALUE,
      max_entries: ENTRIES,
    });
  }
  return { k: kernel, p: proc };
}

function key(i: number): Uint8Array {
  return new Uint8Array([i, 0, 0, 0]);
}

function resetMap(k: Kernel, p: Process, seed: number): void {
  for (let i = 0; i < ENTRIES; i++) {
    const v = new Uint8Array(VALUE).map((_, j) => (seed + i * 31 + j * 7) & 0xff);
    k.bpf(p, bpf_cmd.BPF_MAP_UPDATE_ELEM, { map_fd: mapFd, key: key(i), value: v });
  }
}

function snapshotMap(k: Kernel, p: Process): string {
  const out: string[] = [];
  for (let i = 0; i < ENTRIES; i++) {
    const v = new Uint8Array(VALUE);
    k.bpf(p, bpf_cmd.BPF_MAP_LOOKUP_ELEM, { map_fd: mapFd, key: key(i), value: v });
    out.push(Buffer.from(v).toString("hex"));
  }
  return out.join(",");
}

function runTier(k: Kernel, p: Process, fd: number, tier: "interp" | "jit", pkt: Uint8Array): string {
  const prog = fdget(p, fd, "prog");
  k.vm?.setTier(prog.vmProg as VmProgram, tier);
  resetMap(k, p, pkt[0] ?? 0);
  const out = new Uint8Array(PKT);
  const attr = { prog_fd: fd, data_in: pkt, data_size_in: PKT, data_out: out, data_size_out: PKT, retval: 0 };
  let r: string;
  try {
    k.bpf(p, bpf_cmd.BPF_PROG_TEST_RUN, attr);
    r = `retval=${attr.retval} pkt=${Buffer.from(out).toString("hex")}`;
  } catch (e) {
    if (e instanceof VmFault) throw new FuzzInvariant(`verified program faulted in the ${tier}: ${e.message}`);
    if (!isRefusal(e)) throw e;
    r = `${e.code}: ${e.message}`;
  }
  return `${r} map=${snapshotMap(k, p)}`;
}

export const insnTarget: FuzzTarget = {
  // The verifier may walk up to BPF_COMPLEXITY_LIMIT_INSNS (1M) instructions before "BPF program
  // is too large": bench/verifier.ts keeps that walk well inside the 2 s a hang is.
  hangMs: 2000,
  name: "insn",
  describe: "byte 0: flags (bit 0 unprivileged); then 8-byte instructions of a socket filter",
  unit: 8,
  setup(): void {
    setup();
  },
  generate(rng: Prng): Uint8Array {
    setup();
    const insns = program(rng, mapFd);
    let bytes = encodeInsns(insns);
    if (chance(rng, 0.25)) {
      bytes = mutate(rng, bytes, 1 + int(rng, 3));
      bytes = bytes.subarray(0, bytes.length - (bytes.length % 8));
    }
    const out = new Uint8Array(bytes.length + 1);
    out[0] = chance(rng, 0.15) ? 1 : 0;
    out.set(bytes, 1);
    return out;
  },
  run(input: Uint8Array): string {
    const { k, p } = setup();
    // let the last input's RCU frees run (the simulated kernel has no timer to end grace periods)
    k.quiesce();
    const body = input.subarray(1, 1 + Math.floor((input.length - 1) / 8) * 8);
    const insns = decodeInsns(body);
    if (!insns.length) return "empty";
    const unpriv = ((input[0] ?? 0) & 1) === 1;
    const user = unpriv ? k.newProcess({ privileged: false, comm: "fuzz-unpriv" }) : p;
    if (unpriv) k.sysctl.unprivilegedBpfDisabled = 0;
    let fd: number;
    try {
      // the map fd of this worker's map, as the process that loads sees it
      fd = k.bpf(user, bpf_cmd.BPF_PROG_LOAD, {
        prog_type: 1,
        insns,
        insn_cnt: insns.length,
        license: "GPL",
        log_level: 0,
      });
    } catch (e) {
      if (unpriv) k.exit(user);
      if (!isRefusal(e)) throw e;
      return `refused/${e.code}: ${e.message.replace(/-?\d+/g, "N").slice(0, 48)}`;
    }
    try {
      const pkt = new Uint8Array(PKT).map((_, i) => (input[(i * 13) % input.length] ?? 0) ^ i);
      const interp = runTier(k, user, fd, "interp", pkt);
      const jit = runTier(k, user, fd, "jit", pkt);
      const pure = insns.every((i) => i.code !== 0x85 || i.src !== 0 || PURE_HELPERS.has(i.imm));
      if (pure && interp !== jit)
        throw new FuzzInvariant(`interpreter and JIT disagree\ninterp: ${interp}\njit:    ${jit}`);
      return pure ? "accepted/compared" : "accepted";
    } finally {
      k.close(user, fd);
      if (unpriv) k.exit(user);
    }
  },
};
