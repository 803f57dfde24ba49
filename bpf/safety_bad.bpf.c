// SPDX-License-Identifier: GPL-2.0
/* Programs the verifier must refuse, one rule each, with their accepted counterparts (every
 * section starts with `?`: load them one at a time): the return values each hook takes
 * (check_return_code), which lock an unlock releases, atomics' alignment, and what a program may
 * do with a map its flags make read-only or write-only. Each says what the 6.18 verifier answers.
 * Built with clang-19 (naked functions).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* uapi's map flags, for a vmlinux.h whose BTF has no enum naming them (the simulated kernel's). */
#ifndef BPF_F_RDONLY_PROG
#define BPF_F_RDONLY_PROG (1U << 7)
#define BPF_F_WRONLY_PROG (1U << 8)
#endif

char _license[] SEC("license") = "GPL";

/* Return exactly `v`: the compiler may not narrow or widen it. */
#define RETURN(v) asm volatile("r0 = " #v "; exit" ::: "memory")

/* recvmsg, getpeername, getsockname only report an address: they must return 1. */
SEC("?cgroup/recvmsg4")
__attribute__((naked)) int recvmsg4_ret0(void) { RETURN(0); }	/* [1, 1] */
SEC("?cgroup/recvmsg4")
__attribute__((naked)) int recvmsg4_ret1(void) { RETURN(1); }
SEC("?cgroup/getsockname_unix")
__attribute__((naked)) int getsockname_unix_ret0(void) { RETURN(0); }	/* [1, 1] */
SEC("?cgroup/getpeername6")
__attribute__((naked)) int getpeername6_ret1(void) { RETURN(1); }
/* bind may also ask to skip the port check (2, 3). */
SEC("?cgroup/bind4")
__attribute__((naked)) int bind4_ret4(void) { RETURN(4); }	/* [0, 3] */
SEC("?cgroup/bind6")
__attribute__((naked)) int bind6_ret3(void) { RETURN(3); }
/* Other socket address hooks: allow or deny. */
SEC("?cgroup/connect4")
__attribute__((naked)) int connect4_ret2(void) { RETURN(2); }	/* [0, 1] */
SEC("?cgroup/sendmsg_unix")
__attribute__((naked)) int sendmsg_unix_ret2(void) { RETURN(2); }	/* [0, 1] */
/* Socket hooks and the skb hooks: allow or deny; egress may also flag congestion (2, 3). */
SEC("?cgroup/sock")
__attribute__((naked)) int sock_ret2(void) { RETURN(2); }	/* [0, 1] */
SEC("?cgroup/sock")
__attribute__((naked)) int sock_ret_ctx(void)	/* R0 is the context: not a known value */
{
	asm volatile("r0 = r1; exit" ::: "memory");
}
SEC("?cgroup_skb/ingress")
__attribute__((naked)) int skb_ingress_ret2(void) { RETURN(2); }	/* [0, 1] */
SEC("?cgroup_skb/egress")
__attribute__((naked)) int skb_egress_ret3(void) { RETURN(3); }
SEC("?cgroup_skb/egress")
__attribute__((naked)) int skb_egress_ret4(void) { RETURN(4); }	/* [0, 3] */
SEC("?sk_lookup")
__attribute__((naked)) int sk_lookup_ret2(void) { RETURN(2); }	/* SK_DROP or SK_PASS */

struct locked {
	int cnt;
	struct bpf_spin_lock lock;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, int);
	__type(value, struct locked);
} locks SEC(".maps");

/* Two lookups of the same element are two values: unlocking the other one is refused. */
SEC("?tc")
int unlock_other_value(struct __sk_buff *skb)
{
	int k = 0;
	struct locked *a = bpf_map_lookup_elem(&locks, &k);
	struct locked *b = bpf_map_lookup_elem(&locks, &k);

	if (!a || !b)
		return 0;
	bpf_spin_lock(&a->lock);
	bpf_spin_unlock(&b->lock);	/* bpf_spin_unlock of different lock */
	return 0;
}

SEC("?tc")
int unlock_same_value(struct __sk_buff *skb)
{
	int k = 1;
	struct locked *a = bpf_map_lookup_elem(&locks, &k);

	if (!a)
		return 0;
	bpf_spin_lock(&a->lock);
	a->cnt++;
	bpf_spin_unlock(&a->lock);
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, __u64);
	__uint(map_flags, BPF_F_WRONLY_PROG);
} wronly SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, __u64);
	__uint(map_flags, BPF_F_RDONLY_PROG);
} rdonly SEC(".maps");

const volatile __u32 ro_value = 7;

/* Atomics must be aligned to their size, in a map value as anywhere. */
SEC("?tc")
int atomic_misaligned(struct __sk_buff *skb)
{
	int k = 0;
	__u64 *v = bpf_map_lookup_elem(&wronly, &k);

	if (!v)
		return 0;
	/* misaligned value access off 0+0+3 size 4 */
	asm volatile("r1 = 1; lock *(u32 *)(%[p] + 3) += w1" :: [p] "r"(v) : "r1", "memory");
	return 0;
}

/* A write-only map's values are written, never read. */
SEC("?tc")
int wronly_write(struct __sk_buff *skb)
{
	int k = 0;
	__u64 *v = bpf_map_lookup_elem(&wronly, &k);

	if (v)
		*v = 1;
	return 0;
}

SEC("?tc")
int wronly_read(struct __sk_buff *skb)
{
	int k = 0;
	__u64 *v = bpf_map_lookup_elem(&wronly, &k);

	return v ? (int)*v : 0;	/* read from map forbidden */
}

/* A read-only map's values are read, never written: by a store or by a helper. */
SEC("?tc")
int rdonly_read(struct __sk_buff *skb)
{
	int k = 0;
	__u64 *v = bpf_map_lookup_elem(&rdonly, &k);

	return v ? (int)*v : 0;
}

SEC("?tc")
int rdonly_write(struct __sk_buff *skb)
{
	int k = 0;
	__u64 *v = bpf_map_lookup_elem(&rdonly, &k);

	if (v)
		*v = 1;	/* write into map forbidden */
	return 0;
}

SEC("?tc")
int rdonly_helper_write(struct __sk_buff *skb)
{
	int k = 0;
	__u64 *v = bpf_map_lookup_elem(&rdonly, &k);

	if (v)
		bpf_probe_read_kernel(v, sizeof(*v), 0);	/* write into map forbidden */
	return 0;
}

/* .rodata is frozen and read-only to programs. */
SEC("?tc")
int rodata_write(struct __sk_buff *skb)
{
	*(volatile __u32 *)&ro_value = 1;	/* write into map forbidden */
	return 0;
}
