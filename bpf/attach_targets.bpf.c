// SPDX-License-Identifier: GPL-2.0
/* fentry/fexit/fmod_ret and LSM programs on functions of the kernel's BTF, one rule of
 * bpf_check_attach_target / btf_ctx_access / bpf_lsm.c each, with the programs beside them that
 * load. Every section starts with `?`: load them one at a time. The context is the target's
 * arguments as u64 slots (fexit, fmod_ret and LSM programs also read the return value after them).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

/* Return exactly `v`: the compiler may not narrow or widen it. */
#define RETURN(v) asm volatile("r0 = " #v "; exit" ::: "memory")

SEC("?fentry/bpf_fentry_test1")
int fentry_arg(unsigned long long *ctx)
{
	return (int)ctx[0] == 1 ? 0 : 0;
}

/* bpf_fentry_test2(int a, u64 b): two arguments, and fexit's return value in the third slot. */
SEC("?fexit/bpf_fentry_test2")
int fexit_ret(unsigned long long *ctx)
{
	return ctx[2] == 5 ? 0 : 0;
}

SEC("?fentry/bpf_fentry_test2")
__attribute__((naked)) int fentry_no_third_arg(void)
{
	asm volatile("r0 = *(u64 *)(r1 + 16); r0 = 0; exit" ::: "memory");
}

/* bpf_fentry_test7(struct bpf_fentry_test_t *arg): a kernel struct pointer to walk. */
SEC("?fentry/bpf_fentry_test7")
__attribute__((naked)) int fentry_struct_arg(void)
{
	asm volatile("r1 = *(u64 *)(r1 + 0); r0 = *(u64 *)(r1 + 0); r0 = 0; exit" ::: "memory");
}

/* bpf_fentry_test9(u32 *a): a pointer to an integer is a scalar, not memory. */
SEC("?fentry/bpf_fentry_test9")
__attribute__((naked)) int fentry_int_ptr_deref(void)
{
	asm volatile("r1 = *(u64 *)(r1 + 0); r0 = *(u32 *)(r1 + 0); r0 = 0; exit" ::: "memory");
}

/* fentry/fexit return 0. */
SEC("?fentry/bpf_fentry_test1")
__attribute__((naked)) int fentry_ret1(void) { RETURN(1); }

/* Sleepable only where the function allows it: bpf_fentry_test1 is in the fmod_ret set as
 * KF_SLEEPABLE, bpf_fentry_test2 is not.
 */
SEC("?fentry.s/bpf_fentry_test1")
int sleepable_ok(unsigned long long *ctx) { return 0; }

SEC("?fentry.s/bpf_fentry_test2")
int sleepable_bad(unsigned long long *ctx) { return 0; }

/* fmod_ret: only where the return value may be changed, and it reads the int return value. */
SEC("?fmod_ret/bpf_modify_return_test")
int fmod_ret_ok(unsigned long long *ctx)
{
	return (int)ctx[2] + 1;
}

SEC("?fmod_ret/bpf_fentry_test2")
int fmod_ret_bad(unsigned long long *ctx) { return 0; }

/* LSM hooks: 0 or -errno for int hooks, 0 or 1 for boolean ones, anything for void ones. */
SEC("?lsm/file_mprotect")
__attribute__((naked)) int lsm_errno_ok(void) { RETURN(-4095); }

SEC("?lsm/file_mprotect")
__attribute__((naked)) int lsm_errno_bad(void) { RETURN(-4096); }

SEC("?lsm/file_mprotect")
__attribute__((naked)) int lsm_positive_bad(void) { RETURN(1); }

SEC("?lsm/audit_rule_known")
__attribute__((naked)) int lsm_bool_ok(void) { RETURN(1); }

SEC("?lsm/audit_rule_known")
__attribute__((naked)) int lsm_bool_bad(void) { RETURN(2); }

SEC("?lsm/file_free_security")
__attribute__((naked)) int lsm_void_any(void) { RETURN(2); }

/* Hooks BPF may not attach to, and sleeping on a hook that cannot. */
SEC("?lsm/getprocattr")
int lsm_disabled(unsigned long long *ctx) { return 0; }

SEC("?lsm.s/file_alloc_security")
int lsm_not_sleepable(unsigned long long *ctx) { return 0; }

SEC("?lsm.s/file_open")
int lsm_sleepable_ok(unsigned long long *ctx) { return 0; }

/* file_open's file is trusted: its members read through it. */
SEC("?lsm/file_open")
int lsm_file_flags(unsigned long long *ctx)
{
	struct file *f = (struct file *)ctx[0];

	return f->f_flags == 1 ? -1 : 0;
}

/* bpf_d_path only where the path cannot be locked already (btf_allowlist_d_path, sleepable LSM
 * hooks): dentry_open is on the list, vfs_open is not.
 */
SEC("?fentry/dentry_open")
int d_path_allowed(unsigned long long *ctx)
{
	char buf[64];

	bpf_d_path((struct path *)ctx[0], buf, sizeof(buf));
	return 0;
}

SEC("?fentry/vfs_open")
int d_path_not_allowed(unsigned long long *ctx)
{
	char buf[64];

	bpf_d_path((struct path *)ctx[0], buf, sizeof(buf));
	return 0;
}
