// SPDX-License-Identifier: GPL-2.0
/*
 * References inside bpf_loop callbacks: a callback may take and give back references, and may
 * take a task out of a map's kptr with bpf_kptr_xchg (built with clang-19 for the `__kptr` tag);
 * a reference a callback takes and keeps comes back to the caller with the callback's state and
 * is a leak at the main program's exit (6.18 names the callback's instruction as alloc_insn).
 * `syscall` programs must load; `?syscall` ones must be refused.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

#define __kptr __attribute__((btf_type_tag("kptr")))

struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
void bpf_task_release(struct task_struct *p) __ksym;

struct cb_args {
	int pid;
};

struct tslot {
	struct task_struct __kptr *task;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct tslot);
} slot SEC(".maps");

/* Each iteration takes a reference and gives it back. */
static int count_cb(u32 i, void *ctx)
{
	struct cb_args *a = ctx;
	struct task_struct *t = bpf_task_from_pid(a->pid);

	if (!t)
		return 1;
	a->pid = t->pid;
	bpf_task_release(t);
	return 0;
}

SEC("syscall")
int loop_release(struct cb_args *args)
{
	struct cb_args a = { .pid = args->pid };

	return bpf_loop(3, count_cb, &a, 0);
}

static __always_inline struct tslot *tslot(void)
{
	int zero = 0;

	return bpf_map_lookup_elem(&slot, &zero);
}

/* The callback empties the map's kptr and releases what it took. */
static int drain_cb(u32 i, void *ctx)
{
	struct tslot *s = tslot();
	struct task_struct *t;

	if (!s)
		return 1;
	t = bpf_kptr_xchg(&s->task, NULL);
	if (t)
		bpf_task_release(t);
	return 0;
}

SEC("syscall")
int loop_xchg(struct cb_args *args)
{
	struct tslot *s = tslot();
	struct task_struct *t;

	if (!s)
		return -1;
	t = bpf_task_from_pid(args->pid);
	if (t) {
		t = bpf_kptr_xchg(&s->task, t);
		if (t)
			bpf_task_release(t);
	}
	return bpf_loop(2, drain_cb, NULL, 0);
}

/* ---- refused ---- */

/* The callback keeps its reference: Unreleased reference id=2 alloc_insn=<the callback's call> /
 * BPF_EXIT instruction in main prog would lead to reference leak */
static int keep_cb(u32 i, void *ctx)
{
	struct task_struct *t = bpf_task_from_pid(((struct cb_args *)ctx)->pid);

	if (t)
		return 1;
	return 0;
}

SEC("?syscall")
int loop_leak(struct cb_args *args)
{
	struct cb_args a = { .pid = args->pid };

	bpf_loop(2, keep_cb, &a, 0);
	return 0;
}

/* What the callback exchanges out of the map it keeps: the same leak. */
static int take_cb(u32 i, void *ctx)
{
	struct tslot *s = tslot();

	if (!s)
		return 1;
	return bpf_kptr_xchg(&s->task, NULL) ? 1 : 0;
}

SEC("?syscall")
int loop_xchg_leak(void *ctx)
{
	bpf_loop(2, take_cb, NULL, 0);
	return 0;
}
