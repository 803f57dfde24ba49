// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_testmod_multi_st_ops: the module files each registered map under its map id, and
 * bpf_kfunc_multi_st_ops_test_1(args, id) calls the test_1 of the map with that id. Opened twice
 * with a different `magic`, each object's syscall program must reach its own map: `map_id` is set
 * from the map's info after load; `mismatches` counts calls that answered another magic.
 * `no_test_1` leaves the required test_1 out: registering it fails (EINVAL).
 * `on_sys_enter` makes the same call from the raw tracepoint at syscall entry, for the process
 * whose pid userspace put in `watch_pid`, and records the syscall number it saw in the registers.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

int bpf_kfunc_multi_st_ops_test_1(struct st_ops_args *args, u32 id) __ksym;

int magic;
u32 map_id;
int mismatches;
int last_ret;

SEC("struct_ops")
int BPF_PROG(multi_test_1, struct st_ops_args *args)
{
	return magic;
}

SEC(".struct_ops.link")
struct bpf_testmod_multi_st_ops st_ops_map = {
	.test_1 = (void *)multi_test_1,
};

SEC("?.struct_ops.link")
struct bpf_testmod_multi_st_ops no_test_1 = {};

SEC("syscall")
int call_by_id(void *ctx)
{
	struct st_ops_args args = {};

	last_ret = bpf_kfunc_multi_st_ops_test_1(&args, map_id);
	if (last_ret != magic)
		mismatches++;
	return 0;
}

int watch_pid;
int tp_runs;
int tp_mismatches;
long tp_last_nr;

SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long id)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct st_ops_args args = {};

	if (!watch_pid || task->pid != watch_pid)
		return 0;
	tp_runs++;
	tp_last_nr = regs->orig_ax == id ? id : -1;
	if (bpf_kfunc_multi_st_ops_test_1(&args, map_id) != magic)
		tp_mismatches++;
	return 0;
}
