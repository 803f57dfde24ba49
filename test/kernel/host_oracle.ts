/**
 * The host kernel as an oracle: small Python helpers (test/kernel/fixtures) run bpf(2) for real,
 * and ourOps() runs the same sequence through the simulated kernel with the same result encoding.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { decodeInsns } from "../../src/isa/insn.js";
import type { MapCreateAttr } from "../../src/kernel/bpf_attr.js";
import { CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON, CAP_SYS_ADMIN } from "../../src/kernel/capability.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { BpfError } from "../../src/uapi/errno.js";
import { boot } from "./util.js";

const here = dirname(fileURLToPath(import.meta.url));
const script = [join(here, "fixtures/host_bpf.py"), join(here, "../../../test/kernel/fixtures/host_bpf.py")].find(
  existsSync,
);

/** union bpf_attr for BPF_MAP_CREATE, laid out as include/uapi/linux/bpf.h does (x86-64). */
export function mapCreateBytes(a: MapCreateAttr & { tail?: [number, number] }): Uint8Array {
  const b = new Uint8Array(128);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, a.map_type ?? 0, true);
  dv.setUint32(4, a.key_size ?? 0, true);
  dv.setUint32(8, a.value_size ?? 0, true);
  dv.setUint32(12, a.max_entries ?? 0, true);
  dv.setUint32(16, a.map_flags ?? 0, true);
  const name = typeof a.map_name === "string" ? new TextEncoder().encode(a.map_name) : new Uint8Array(0);
  b.set(name.subarray(0, 16), 28);
  dv.setUint32(52, a.btf_key_type_id ?? 0, true);
  dv.setUint32(56, a.btf_value_type_id ?? 0, true);
  dv.setUint32(60, a.btf_vmlinux_value_type_id ?? 0, true);
  dv.setBigUint64(64, BigInt(a.map_extra ?? 0), true);
  if (a.tail) b[a.tail[0]] = a.tail[1];
  return b;
}

export function host(cmd: number, attr: Uint8Array): number | string {
  const r = spawnSync("python3", [script!, String(cmd), Buffer.from(attr).toString("hex")], { encoding: "utf8" });
  if (r.status !== 0) return `helper failed: ${r.stderr.trim()}`;
  const n = Number(r.stdout.trim());
  return Math.min(n, 0);
}

const opsScript = [
  join(here, "fixtures/host_map_ops.py"),
  join(here, "../../../test/kernel/fixtures/host_map_ops.py"),
].find(existsSync);

export type MapOp =
  | ["create", number, number, number, number, number]
  | ["update", string | null, string, number]
  | ["lookup", string | null]
  | ["delete", string | null]
  | ["next", string | null]
  | ["freeze"]
  | ["prog", number, string, string, string, number]
  | ["btf", string]
  | ["testrun", string, number, number]
  | ["link", number, "map" | "prog" | "none", number, number, number]
  | ["caps", number[]]
  | ["nextid", number]
  | ["create_btf", number, number, number, number, number, number, number]
  | ["vsize", number]
  | ["lookup_and_delete", string | null];

export function hostOps(ops: MapOp[]): unknown[] {
  const r = spawnSync("python3", [opsScript!, JSON.stringify(ops)], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`helper failed: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout);
}

/** The same sequence through our bpf(): same result encoding as the helper. */
export function ourOps(ops: MapOp[], nrCpus?: number): unknown[] {
  const { k, p } = boot({ verifier: true, nrCpus });
  let fd = -1;
  let ks = 0;
  let vs = 0;
  let btfFd = 0;
  let progFd = -1;
  const hex = (h: string | null, n: number) => {
    // A key_size 0 map (queue, stack) takes a NULL key.
    if (n === 0) return null;
    const b = new Uint8Array(n);
    if (h) b.set(Buffer.from(h, "hex").subarray(0, n));
    return b;
  };
  const run = (fn: () => unknown): unknown => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof BpfError) return -e.errno;
      throw e;
    }
  };
  return ops.map((op) => {
    const C = bpf_cmd;
    switch (op[0]) {
      case "create":
        [, , ks, vs] = op;
        return run(() => {
          fd = k.bpf(p, C.BPF_MAP_CREATE, {
            map_type: op[1],
            key_size: op[2],
            value_size: op[3],
            max_entries: op[4],
            map_flags: op[5],
          });
          return 0;
        });
      case "update":
        return run(() =>
          k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: hex(op[1], ks), value: hex(op[2], vs), flags: op[3] }),
        );
      case "vsize":
        vs = op[1];
        return 0;
      case "lookup":
      case "lookup_and_delete":
        return run(() => {
          const v = new Uint8Array(vs);
          const cmd = op[0] === "lookup" ? C.BPF_MAP_LOOKUP_ELEM : C.BPF_MAP_LOOKUP_AND_DELETE_ELEM;
          k.bpf(p, cmd, { map_fd: fd, key: hex(op[1], ks), value: v });
          return [0, Buffer.from(v).toString("hex")];
        });
      case "delete":
        return run(() => k.bpf(p, C.BPF_MAP_DELETE_ELEM, { map_fd: fd, key: hex(op[1], ks) }));
      case "next":
        return run(() => {
          const n = new Uint8Array(ks);
          k.bpf(p, C.BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key: op[1] === null ? null : hex(op[1], ks), next_key: n });
          return [0, Buffer.from(n).toString("hex")];
        });
      case "caps":
        for (const c of [CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF] as const) p.setCap(c, op[1].includes(c));
        return 0;
      case "nextid":
        return run(() => k.bpf(p, op[1], { start_id: 0 }));
      case "link": {
        const first = op[2] === "map" ? fd : op[2] === "prog" ? progFd : 99;
        const [, cmd, , w2, w3, w4] = op;
        const attr =
          cmd === C.BPF_LINK_CREATE
            ? { prog_fd: first, target_fd: w2, attach_type: w3, flags: w4 }
            : cmd === C.BPF_LINK_UPDATE
              ? { link_fd: first, new_prog_fd: w2, flags: w3, old_prog_fd: w4 }
              : { link_fd: first, extra: { w2, w3, w4 } };
        return run(() => {
          k.bpf(p, cmd, attr);
          return 0;
        });
      }
      case "testrun":
        return run(() => {
          const ctx = Buffer.from(op[1], "hex");
          const attr: { prog_fd: number; retval?: number; [k: string]: unknown } = {
            prog_fd: progFd,
            ctx_in: ctx.length ? ctx : undefined,
            ctx_size_in: ctx.length,
            repeat: op[2],
            data_in: op[3] ? new Uint8Array(op[3]) : undefined,
            data_size_in: op[3],
          };
          k.bpf(p, C.BPF_PROG_TEST_RUN, attr);
          return [attr.retval, ctx.toString("hex")];
        });
      case "btf":
        return run(() => {
          const btf = Buffer.from(op[1], "hex");
          btfFd = -1; // as the helper keeps bpf()'s -1: a later btf_fd is then EBADF, not stdin
          btfFd = k.bpf(p, C.BPF_BTF_LOAD, { btf, btf_size: btf.length });
          return 0;
        });
      case "create_btf":
        [, , ks, vs] = op;
        return run(() => {
          fd = k.bpf(p, C.BPF_MAP_CREATE, {
            map_type: op[1],
            key_size: op[2],
            value_size: op[3],
            max_entries: op[4],
            map_flags: op[5],
            btf_fd: btfFd,
            btf_key_type_id: op[6],
            btf_value_type_id: op[7],
          });
          return 0;
        });
      case "prog":
        return run(() => {
          const insns = decodeInsns(Buffer.from(op[2], "hex"));
          for (const i of insns) if (i.code === 0x18 && i.src === 1 && i.imm === 0x7fffffff) i.imm = fd;
          progFd = k.bpf(p, C.BPF_PROG_LOAD, {
            prog_type: op[1],
            insns,
            insn_cnt: insns.length,
            license: op[3],
            prog_name: op[4],
            prog_flags: op[5],
          });
          return 0;
        });
      default:
        return run(() => k.bpf(p, C.BPF_MAP_FREEZE, { map_fd: fd }));
    }
  });
}

const probe = script
  ? host(0, mapCreateBytes({ map_type: 2, key_size: 4, value_size: 4, max_entries: 1 }))
  : "no helper";
export const skip: string | false = probe === 0 ? false : `cannot call bpf(2) on the host (${probe})`;
