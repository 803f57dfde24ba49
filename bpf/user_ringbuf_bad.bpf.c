// SPDX-License-Identifier: GPL-2.0
/* bpf_user_ringbuf_drain's rules, one refused program each (every section is `?syscall`: load
 * them one at a time): the map must be a user ring buffer and a user ring buffer goes to no other
 * helper; the callback returns 0 or 1, gets a dynptr it may read but not release or reinitialise,
 * and a context that may be NULL. Each says what the 6.18 verifier answers.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* uapi's map types, for a vmlinux.h whose BTF has no enum naming them (the simulated kernel's). */
#ifndef BPF_MAP_TYPE_USER_RINGBUF
#define BPF_MAP_TYPE_RINGBUF 27
#define BPF_MAP_TYPE_USER_RINGBUF 31
#endif

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} user_rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} kernel_rb SEC(".maps");

static long ok_cb(struct bpf_dynptr *dynptr, void *ctx)
{
	return 0;
}

SEC("?syscall")
int drain_kernel_ringbuf(void *arg)
{
	bpf_user_ringbuf_drain(&kernel_rb, ok_cb, NULL, 0);
	return 0;
}

SEC("?syscall")
int output_to_user_ringbuf(void *arg)
{
	__u64 v = 0;

	bpf_ringbuf_output(&user_rb, &v, sizeof(v), 0);
	return 0;
}

static long ret2_cb(struct bpf_dynptr *dynptr, void *ctx)
{
	return 2;
}

SEC("?syscall")
int callback_returns_2(void *arg)
{
	bpf_user_ringbuf_drain(&user_rb, ret2_cb, NULL, 0);
	return 0;
}

static long submit_cb(struct bpf_dynptr *dynptr, void *ctx)
{
	bpf_ringbuf_submit_dynptr(dynptr, 0);
	return 0;
}

SEC("?syscall")
int callback_submits(void *arg)
{
	bpf_user_ringbuf_drain(&user_rb, submit_cb, NULL, 0);
	return 0;
}

static long reinit_cb(struct bpf_dynptr *dynptr, void *ctx)
{
	bpf_ringbuf_reserve_dynptr(&kernel_rb, 8, 0, dynptr);
	bpf_ringbuf_discard_dynptr(dynptr, 0);
	return 0;
}

SEC("?syscall")
int callback_reinits(void *arg)
{
	bpf_user_ringbuf_drain(&user_rb, reinit_cb, NULL, 0);
	return 0;
}

static long peek_cb(struct bpf_dynptr *dynptr, void *ctx)
{
	return *(volatile __u64 *)dynptr != 0;
}

SEC("?syscall")
int callback_reads_dynptr(void *arg)
{
	bpf_user_ringbuf_drain(&user_rb, peek_cb, NULL, 0);
	return 0;
}

static long ctx_cb(struct bpf_dynptr *dynptr, void *ctx)
{
	return *(volatile __u64 *)ctx != 0;
}

SEC("?syscall")
int null_ctx_read(void *arg)
{
	bpf_user_ringbuf_drain(&user_rb, ctx_cb, NULL, 0);
	return 0;
}
