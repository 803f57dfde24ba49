// SPDX-License-Identifier: GPL-2.0
/* Which program types may call which kfuncs (6.18): a kfunc set registered for one program type
 * serves every type of the same hook (bpf_prog_type_to_kfunc_hook): the generic set (task and
 * cgroup references, the key lookups) registered for tracing, tc, XDP, struct_ops, syscall and
 * cgroup_skb programs also serves tracepoint and perf_event programs (the tracing hook) and every
 * cgroup program and sock_ops (the cgroup hook); kprobe, raw_tp and sk_skb programs have none of
 * it. Every section starts with `?`: load the programs one at a time.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

extern struct bpf_key *bpf_lookup_system_key(__u64 id) __ksym;
extern struct bpf_key *bpf_lookup_user_key(__s32 serial, __u64 flags) __ksym;
extern void bpf_key_put(struct bpf_key *bkey) __ksym;
extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

/* A system keyring held and put back. */
#define KEY_PROG(sec, name)                                              \
	SEC(sec) int name(void *ctx)                                     \
	{                                                                \
		struct bpf_key *k = bpf_lookup_system_key(0);            \
		if (k)                                                   \
			bpf_key_put(k);                                  \
		return 1;                                                \
	}

/* A task reference taken and dropped. */
#define TASK_PROG(sec, name)                                             \
	SEC(sec) int name(void *ctx)                                     \
	{                                                                \
		struct task_struct *t = bpf_task_from_pid(1);            \
		if (t)                                                   \
			bpf_task_release(t);                             \
		return 1;                                                \
	}

KEY_PROG("?tc", key_tc)
KEY_PROG("?xdp", key_xdp)
KEY_PROG("?syscall", key_syscall)
KEY_PROG("?cgroup_skb/ingress", key_cgroup_skb)
KEY_PROG("?cgroup/sock_create", key_cgroup_sock)
KEY_PROG("?cgroup/connect4", key_cgroup_connect4)
KEY_PROG("?sockops", key_sockops)
KEY_PROG("?tracepoint", key_tracepoint)
KEY_PROG("?perf_event", key_perf_event)
KEY_PROG("?tp_btf/sys_enter", key_tp_btf)
KEY_PROG("?socket", key_socket)		/* not allowed */
KEY_PROG("?raw_tp", key_raw_tp)		/* not allowed */
KEY_PROG("?kprobe", key_kprobe)		/* not allowed */
KEY_PROG("?sk_skb", key_sk_skb)		/* not allowed */

TASK_PROG("?tracepoint", task_tracepoint)
TASK_PROG("?perf_event", task_perf_event)
TASK_PROG("?cgroup_skb/ingress", task_cgroup_skb)
TASK_PROG("?cgroup/sysctl", task_cgroup_sysctl)
TASK_PROG("?sockops", task_sockops)
TASK_PROG("?kprobe", task_kprobe)	/* not allowed */
TASK_PROG("?raw_tp", task_raw_tp)	/* not allowed */
TASK_PROG("?lwt_in", task_lwt_in)	/* not allowed */

/* The key is a reference: leaking it is refused. */
SEC("?tc")
int key_leak(void *ctx)
{
	struct bpf_key *k = bpf_lookup_system_key(0);

	return k ? 1 : 0;
}

/* bpf_key_put takes a trusted, non-NULL key. */
SEC("?syscall")
int key_put_maybe_null(void *ctx)
{
	bpf_key_put(bpf_lookup_system_key(0));
	return 0;
}

/* bpf_lookup_user_key may sleep: only sleepable programs call it. */
SEC("?tp_btf/sys_enter")
int user_key_not_sleepable(void *ctx)
{
	struct bpf_key *k = bpf_lookup_user_key(1, 0);

	if (k)
		bpf_key_put(k);
	return 0;
}

SEC("?syscall")
int user_key_syscall(void *ctx)
{
	struct bpf_key *k = bpf_lookup_user_key(1, 0);

	if (k)
		bpf_key_put(k);
	return 0;
}
