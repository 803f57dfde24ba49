// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU kernel variables through typed ksyms: bpf_this_cpu_ptr and bpf_per_cpu_ptr on
 * `runqueues` (a struct: a BTF pointer comes back) and `cpu_number` (an int: read-only memory).
 * `syscall` programs must load and return what they check; `?syscall` ones must be refused
 * (the comment above each is what 6.18 answers).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

extern const struct rq runqueues __ksym;
extern const int cpu_number __ksym;

struct cpu_args {
	int cpu;
};

/* This CPU's runqueue and cpu_number agree with the CPU the program runs on. */
SEC("syscall")
int this_cpu(void *ctx)
{
	struct rq *rq = bpf_this_cpu_ptr(&runqueues);
	const int *n = bpf_this_cpu_ptr(&cpu_number);

	if (rq->cpu != *n || *n != bpf_get_smp_processor_id())
		return -1;
	return *n;
}

/* Another CPU's copies: NULL past the last possible CPU. */
SEC("syscall")
int per_cpu(struct cpu_args *args)
{
	struct rq *rq = bpf_per_cpu_ptr(&runqueues, args->cpu);
	const int *n = bpf_per_cpu_ptr(&cpu_number, args->cpu);

	if (!rq || !n)
		return -1;
	if (rq->cpu != *n)
		return -2;
	return *n;
}

/* ---- refused ---- */

/* R0 invalid mem access 'rdonly_mem_or_null' */
SEC("?syscall")
int per_cpu_unchecked(struct cpu_args *args)
{
	const int *n = bpf_per_cpu_ptr(&cpu_number, args->cpu);

	return *n;
}

/* the ksym itself is per-CPU: a direct load is refused */
SEC("?syscall")
int percpu_direct(void *ctx)
{
	return runqueues.cpu;
}

/* the result is read-only */
SEC("?syscall")
int this_cpu_write(void *ctx)
{
	int *n = (int *)bpf_this_cpu_ptr(&cpu_number);

	*n = 1;
	return 0;
}

/* a pointer that is not per-CPU */
SEC("?syscall")
int not_percpu(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return bpf_this_cpu_ptr(t) != 0;
}
