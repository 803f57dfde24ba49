// SPDX-License-Identifier: GPL-2.0
/*
 * fentry and fexit on a bpf_dummy_ops program (dummy_ops.bpf.c's dummy_test_1), attached with
 * bpf_program__set_attach_target: the entry program reads the struct_ops context's first argument
 * (the state pointer) and state->val with bpf_probe_read_kernel, the exit program sees the
 * target's return value; both record into an array map.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

/* [0]: state->val at entry (or -1 with a NULL state), [1]: return value, [2]/[3]: entry/exit runs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

static __always_inline void record(__u32 k, __u64 v, int add)
{
	__u64 *slot = bpf_map_lookup_elem(&seen, &k);

	if (!slot)
		return;
	if (add)
		*slot += v;
	else
		*slot = v;
}

SEC("fentry/dummy_test_1")
int BPF_PROG(trace_entry, __u64 *st_ops_ctx)
{
	struct bpf_dummy_ops_state *state = NULL;
	int val = -1;

	bpf_probe_read_kernel(&state, sizeof(state), &st_ops_ctx[0]);
	if (state)
		bpf_probe_read_kernel(&val, sizeof(val), &state->val);
	record(0, (__u64)(__s64)val, 0);
	record(2, 1, 1);
	return 0;
}

SEC("fexit/dummy_test_1")
int BPF_PROG(trace_exit, __u64 *st_ops_ctx, int ret)
{
	record(1, (__u32)ret, 0);
	record(3, 1, 1);
	return 0;
}
