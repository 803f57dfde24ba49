// SPDX-License-Identifier: GPL-2.0
/*
 * A module's per-CPU variable through a typed ksym: libbpf finds bpf_testmod_ksym_percpu in the
 * module's BTF and names that BTF by fd in the ld_imm64; the kernel resolves it to the module's
 * per-CPU copy. The module initialises every CPU's copy to 123 and bpf_testmod_test_mod_kfunc(i)
 * stores i in this CPU's.
 *
 * ksym_store: before = this CPU's copy, then the kfunc stores `value`, then after = this CPU's
 *   copy and other = the copy of CPU `cpu` (-1 when bpf_per_cpu_ptr answers NULL).
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

extern const int bpf_testmod_ksym_percpu __ksym;
void bpf_testmod_test_mod_kfunc(int i) __ksym;

/* In: value, cpu. Out: before, after, other. */
int value, cpu, before, after, other;

SEC("syscall")
int ksym_store(void *ctx)
{
	const int *mine = bpf_this_cpu_ptr(&bpf_testmod_ksym_percpu);
	const int *theirs;

	before = *mine;
	bpf_testmod_test_mod_kfunc(value);
	after = *(const int *)bpf_this_cpu_ptr(&bpf_testmod_ksym_percpu);
	theirs = bpf_per_cpu_ptr(&bpf_testmod_ksym_percpu, cpu);
	other = theirs ? *theirs : -1;
	return 0;
}
