import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { EACCES, EINVAL } from "../../src/uapi/errno.js";
import { repoRoot } from "./helpers.js";
import { checkRefusals, compareWithHost, hostSkip, loadOne } from "./object_verdicts.js";

/**
 * bpf/kfunc_hooks.bpf.c: a kfunc set serves its program type's whole hook
 * (bpf_prog_type_to_kfunc_hook): the generic set, key lookups included, reaches tracepoint and
 * perf_event programs through the tracing hook and every cgroup program and sock_ops through the
 * cgroup hook, never kprobe, raw_tp, socket, sk_skb or lwt programs. The key kfuncs' own rules:
 * a reference to put, a trusted argument, bpf_lookup_user_key only where the program may sleep.
 */

const OBJ = join(repoRoot(), "bpf/obj/kfunc_hooks.bpf.o");
const skipObj = existsSync(OBJ) ? false : "bpf/obj/kfunc_hooks.bpf.o not built";

const notAllowed = (kf: string) => `calling kernel function ${kf} is not allowed`;

const BAD: [string, number, string[], number][] = [
  ["key_socket", EACCES, [notAllowed("bpf_lookup_system_key")], 1],
  ["key_raw_tp", EACCES, [notAllowed("bpf_lookup_system_key")], 1],
  ["key_kprobe", EACCES, [notAllowed("bpf_lookup_system_key")], 1],
  ["key_sk_skb", EACCES, [notAllowed("bpf_lookup_system_key")], 1],
  ["task_kprobe", EACCES, [notAllowed("bpf_task_from_pid")], 1],
  ["task_raw_tp", EACCES, [notAllowed("bpf_task_from_pid")], 1],
  ["task_lwt_in", EACCES, [notAllowed("bpf_task_from_pid")], 1],
  ["key_leak", EINVAL, ["BPF_EXIT instruction in main prog would lead to reference leak"], 6],
  ["key_put_maybe_null", EACCES, ["Possibly NULL pointer passed to trusted arg0"], 3],
  ["user_key_not_sleepable", EACCES, ["program must be sleepable to call sleepable kfunc bpf_lookup_user_key"], 2],
];

const GOOD = [
  "key_tc",
  "key_xdp",
  "key_syscall",
  "key_cgroup_skb",
  "key_cgroup_sock",
  "key_cgroup_connect4",
  "key_sockops",
  "key_tracepoint",
  "key_perf_event",
  "key_tp_btf",
  "task_tracepoint",
  "task_perf_event",
  "task_cgroup_skb",
  "task_cgroup_sysctl",
  "task_sockops",
  "user_key_syscall",
];

test("kfunc_hooks.bpf.o: each kfunc reaches the program types of its hook, and no others", { skip: skipObj }, () => {
  checkRefusals(OBJ, BAD);
  for (const name of GOOD) assert.equal(loadOne(OBJ, name).errno, 0, `${name} loads`);
});

test("kfunc_hooks.bpf.o: the host kernel gives the same verdicts and messages", { skip: skipObj || hostSkip() }, () => {
  compareWithHost(OBJ, GOOD, BAD);
});
