/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What our sched_ext schedulers share: the 6.18 kfunc declarations (the simulated kernel's
 * vmlinux.h has the types and SCX_* enums but, like any vmlinux.h, no function prototypes),
 * SEC() shorthands for the ops, printf-style scx_bpf_exit()/scx_bpf_error() over the *_bstr
 * kfuncs, and the exit record each scheduler copies out of ops.exit() for userspace.
 */
#ifndef __SCX_COMMON_H
#define __SCX_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char _license[] SEC("license") = "GPL";

#ifndef true
#define true 1
#define false 0
#endif

/* libbpf >= 1.2 has it: a weak extern the loader could not resolve is 0 */
#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!(sym))
#endif

/* ops: one program per member, sleepable where the kernel allows it */
#define SCX_OP(name, args...) SEC("struct_ops/" #name) BPF_PROG(name, ##args)
#define SCX_OP_SLEEPABLE(name, args...) SEC("struct_ops.s/" #name) BPF_PROG(name, ##args)

/* ext.c / ext_idle.c kfuncs */
s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags, bool *is_idle) __ksym;
/* weak, as a scheduler built for several kernels declares them: probed with bpf_ksym_exists() */
void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym __weak;
void scx_bpf_dsq_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime, u64 enq_flags) __ksym;
u32 scx_bpf_dispatch_nr_slots(void) __ksym;
bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym __weak;
void scx_bpf_dsq_move_set_slice(struct bpf_iter_scx_dsq *it__iter, u64 slice) __ksym;
bool scx_bpf_dsq_move(struct bpf_iter_scx_dsq *it__iter, struct task_struct *p, u64 dsq_id, u64 enq_flags) __ksym;
u32 scx_bpf_reenqueue_local(void) __ksym;
s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym;
void scx_bpf_destroy_dsq(u64 dsq_id) __ksym;
void scx_bpf_kick_cpu(s32 cpu, u64 flags) __ksym;
s32 scx_bpf_dsq_nr_queued(u64 dsq_id) __ksym;
int bpf_iter_scx_dsq_new(struct bpf_iter_scx_dsq *it, u64 dsq_id, u64 flags) __ksym;
struct task_struct *bpf_iter_scx_dsq_next(struct bpf_iter_scx_dsq *it) __ksym;
void bpf_iter_scx_dsq_destroy(struct bpf_iter_scx_dsq *it) __ksym;
void scx_bpf_exit_bstr(s64 exit_code, char *fmt, unsigned long long *data, u32 data__sz) __ksym;
void scx_bpf_error_bstr(char *fmt, unsigned long long *data, u32 data__sz) __ksym;
void scx_bpf_dump_bstr(char *fmt, unsigned long long *data, u32 data__sz) __ksym;
u32 scx_bpf_nr_cpu_ids(void) __ksym;
s32 scx_bpf_task_cpu(const struct task_struct *p) __ksym;
bool scx_bpf_task_running(const struct task_struct *p) __ksym;
u64 scx_bpf_now(void) __ksym;
bool scx_bpf_test_and_clear_cpu_idle(s32 cpu) __ksym;
s32 scx_bpf_pick_idle_cpu(const struct cpumask *cpus_allowed, u64 flags) __ksym;
const struct cpumask *scx_bpf_get_idle_cpumask(void) __ksym;
void scx_bpf_put_idle_cpumask(const struct cpumask *cpumask) __ksym;
bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *cpumask) __ksym;
struct cgroup *scx_bpf_task_cgroup(struct task_struct *p) __ksym;
void bpf_cgroup_release(struct cgroup *cgrp) __ksym;

/*
 * Names older kernels had: weak, so on 6.18 they resolve to 0 and the branches that call them
 * are dead code the verifier removes.
 */
void scx_bpf_dispatch___compat(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym __weak;
bool scx_bpf_consume___compat(u64 dsq_id) __ksym __weak;

/* insert into a DSQ with whichever kfunc this kernel has */
static __always_inline void scx_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert))
		scx_bpf_dsq_insert(p, dsq_id, slice, enq_flags);
	else
		scx_bpf_dispatch___compat(p, dsq_id, slice, enq_flags);
}

static __always_inline bool scx_move_to_local(u64 dsq_id)
{
	if (bpf_ksym_exists(scx_bpf_dsq_move_to_local))
		return scx_bpf_dsq_move_to_local(dsq_id);
	return scx_bpf_consume___compat(dsq_id);
}

/*
 * printf-style wrappers: the format lives in .rodata, the arguments are packed into a u64
 * array on the stack, and the kernel formats them (bstr = binary string).
 */
#define ___scx_args(args...)                                                     \
	unsigned long long ___a[___bpf_narg(args) + 1] = {};                     \
	___bpf_fill(___a, ##args)

#define scx_bpf_exit(code, fmt, args...)                                         \
	({                                                                       \
		static char ___f[] = fmt;                                        \
		___scx_args(args);                                               \
		scx_bpf_exit_bstr(code, ___f, ___a, sizeof(___a) - 8);           \
	})

#define scx_bpf_error(fmt, args...)                                              \
	({                                                                       \
		static char ___f[] = fmt;                                        \
		___scx_args(args);                                               \
		scx_bpf_error_bstr(___f, ___a, sizeof(___a) - 8);                \
	})

/* a line (or part of one) of the debug dump, from ops.dump(), dump_cpu() and dump_task() */
#define scx_bpf_dump(fmt, args...)                                               \
	({                                                                       \
		static char ___f[] = fmt;                                        \
		___scx_args(args);                                               \
		scx_bpf_dump_bstr(___f, ___a, sizeof(___a) - 8);                 \
	})

/* what ops.exit() saw, for userspace to read from .bss/.data after the scheduler is gone */
#define SCX_EXIT_REASON_LEN 128
#define SCX_EXIT_MSG_LEN_MAX 1024

struct scx_exit_record {
	int kind;
	s64 exit_code;
	char reason[SCX_EXIT_REASON_LEN];
	char msg[SCX_EXIT_MSG_LEN_MAX];
};

#define SCX_EXIT_RECORD(rec, ei)                                                          \
	({                                                                                \
		bpf_probe_read_kernel_str((rec).reason, sizeof((rec).reason), (ei)->reason); \
		bpf_probe_read_kernel_str((rec).msg, sizeof((rec).msg), (ei)->msg);          \
		(rec).exit_code = (ei)->exit_code;                                        \
		/* last, so a reader that sees kind set sees the rest */                  \
		__sync_val_compare_and_swap(&(rec).kind, 0, (ei)->kind);                  \
	})

#endif /* __SCX_COMMON_H */
