// SPDX-License-Identifier: GPL-2.0
/*
 * A kfunc of the bpf_testmod module, bpf_testmod_test_mod_kfunc(i), which stores i in the
 * module: the loader finds it in the module's BTF and names that BTF in fd_array (the call's
 * insn->off); the loaded program holds the module until it is freed. Called from a syscall
 * program and from bpf_testmod_ops.test_1 (run at registration).
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

void bpf_testmod_test_mod_kfunc(int i) __ksym;

SEC("syscall")
int tm_call_kfunc(void *ctx)
{
	bpf_testmod_test_mod_kfunc(1234);
	return 0;
}

SEC("struct_ops/test_1")
int BPF_PROG(tm_kfunc_test_1)
{
	bpf_testmod_test_mod_kfunc(77);
	return 0;
}

SEC(".struct_ops.link")
struct bpf_testmod_ops testmod_kfunc = {
	.test_1 = (void *)tm_kfunc_test_1,
};
