// SPDX-License-Identifier: GPL-2.0
/*
 * A module-style header over vmlinux.h: the kernel's generic types that such headers use without
 * declaring them (loff_t, struct callback_head, struct __kernel_sockaddr_storage) must come from
 * the kernel's BTF, as must true/false and the TCP states. The program reports their sizes.
 */
#include "vmlinux.h"

#define SEC(name) __attribute__((section(name), used))

struct mod_read_ctx {
	char *buf;
	loff_t off;
	size_t len;
};

struct mod_node {
	struct callback_head rcu;
	char addr[sizeof(struct __kernel_sockaddr_storage)];
};

__u64 sizes[3];
__u8 listener;

SEC("syscall")
int linux_types(void *ctx)
{
	sizes[0] = sizeof(struct mod_read_ctx);
	sizes[1] = sizeof(struct mod_node);
	sizes[2] = sizeof(loff_t);
	listener = (1 << TCP_CLOSE) & (TCPF_LISTEN | TCPF_NEW_SYN_RECV) ? true : false;
	return 0;
}

char _license[] SEC("license") = "GPL";
