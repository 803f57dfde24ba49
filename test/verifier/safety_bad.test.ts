import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { EACCES, EINVAL } from "../../src/uapi/errno.js";
import { repoRoot } from "./helpers.js";
import { checkRefusals, compareWithHost, hostSkip, loadOne } from "./object_verdicts.js";

/**
 * bpf/safety_bad.bpf.c: programs 6.18 refuses and we once accepted. Return values outside what
 * each hook takes (check_return_code's ranges by program and attach type), an unlock of a lock
 * other than the one held (each lookup of a value with a lock is a value of its own, even when
 * the lookup cannot fail), an atomic not aligned to its size in a map value, a read of a
 * BPF_F_WRONLY_PROG map, writes to a BPF_F_RDONLY_PROG map and to .rodata by a store or a
 * helper; and the programs beside them that load.
 */

const OBJ = join(repoRoot(), "bpf/obj/safety_bad.bpf.o");
const skipObj = existsSync(OBJ) ? false : "bpf/obj/safety_bad.bpf.o not built (needs clang-19)";

const range = (v: number, lo: number, hi: number) =>
  `At program exit the register R0 has smin=${v} smax=${v} should have been in [${lo}, ${hi}]`;

const BAD: [string, number, string[], number][] = [
  ["recvmsg4_ret0", EINVAL, [range(0, 1, 1)], 1],
  ["bind4_ret4", EINVAL, [range(4, 0, 3)], 1],
  ["connect4_ret2", EINVAL, [range(2, 0, 1)], 1],
  ["sock_ret2", EINVAL, [range(2, 0, 1)], 1],
  ["sock_ret_ctx", EINVAL, ["At program exit the register R0 is not a known value (ctx)"], 1],
  ["skb_ingress_ret2", EINVAL, [range(2, 0, 1)], 1],
  ["skb_egress_ret4", EINVAL, [range(4, 0, 3)], 1],
  ["sk_lookup_ret2", EINVAL, [range(2, 0, 1)], 1],
  ["unlock_other_value", EINVAL, ["bpf_spin_unlock of different lock"], 21],
  ["atomic_misaligned", EACCES, ["misaligned value access off 0+0+3 size 4"], 9],
  ["wronly_read", EACCES, ["read from map forbidden, value_size=8 off=0 size=8"], 8],
  ["rdonly_write", EACCES, ["write into map forbidden, value_size=8 off=0 size=8"], 9],
  ["rdonly_helper_write", EACCES, ["write into map forbidden, value_size=8 off=0 size=8"], 11],
  ["rodata_write", EACCES, ["write into map forbidden, value_size=4 off=0 size=4"], 3],
];

/** The AF_UNIX hooks' sections are newer than the host's libbpf (1.1): compared here only. */
const BAD_UNIX: [string, number, string[], number][] = [
  ["getsockname_unix_ret0", EINVAL, [range(0, 1, 1)], 1],
  ["sendmsg_unix_ret2", EINVAL, [range(2, 0, 1)], 1],
];

const GOOD = [
  "recvmsg4_ret1",
  "getpeername6_ret1",
  "bind6_ret3",
  "skb_egress_ret3",
  "unlock_same_value",
  "wronly_write",
  "rdonly_read",
];

test("safety_bad.bpf.o: each program refused with 6.18's errno, message and instruction", { skip: skipObj }, () => {
  checkRefusals(OBJ, [...BAD, ...BAD_UNIX]);
  for (const name of GOOD) assert.equal(loadOne(OBJ, name).errno, 0, `${name} loads`);
});

test("safety_bad.bpf.o: the host kernel gives the same verdicts and messages", { skip: skipObj || hostSkip() }, () => {
  compareWithHost(OBJ, GOOD, BAD);
});
