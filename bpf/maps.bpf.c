// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU, queue and task storage maps from programs, run with BPF_PROG_TEST_RUN:
 * count_cpu counts runs in this CPU's slot of a per-CPU array and returns the CPU;
 * enqueue pushes its u64 argument into a queue (overwriting the oldest when full), dequeue
 * pops one into a global; task_count counts runs of the current task in task storage.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cpu_runs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 4);
	__type(value, __u64);
} fifo SEC(".maps");

struct task_runs {
	__u64 runs;
	__u32 pid;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_runs);
} task_runs SEC(".maps");

/* The last value dequeue popped, and its return (0 or -ENOENT). */
__u64 popped;

SEC("raw_tp")
int count_cpu(void *ctx)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&cpu_runs, &key);

	if (n)
		*n += 1;
	return bpf_get_smp_processor_id();
}

SEC("raw_tp")
int BPF_PROG(enqueue, __u64 v)
{
	return bpf_map_push_elem(&fifo, &v, BPF_EXIST);
}

SEC("raw_tp")
int dequeue(void *ctx)
{
	__u64 v;
	long err = bpf_map_pop_elem(&fifo, &v);

	if (!err)
		popped = v;
	return err;
}

SEC("raw_tp")
int task_count(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct task_runs *r;

	r = bpf_task_storage_get(&task_runs, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!r)
		return -1;
	r->runs++;
	r->pid = bpf_get_current_pid_tgid();
	return 0;
}
