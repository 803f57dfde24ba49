// SPDX-License-Identifier: GPL-2.0
/*
 * Dynptrs over a program's memory: bpf_dynptr_from_mem on a global buffer, bpf_dynptr_read /
 * write / data, and the common kfuncs (slice, adjust, clone, size, is_null, is_rdonly). Each
 * `syscall` program returns 0 when every check held, else the line of the first that failed.
 * The `?socket` and `?tc` programs take an skb dynptr of their packet (bpf_dynptr_from_skb):
 * they only need to load.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

#define E2BIG 7
#define EINVAL 22
#define ERANGE 34

extern void *bpf_dynptr_slice(const struct bpf_dynptr *p, __u32 offset, void *buffer__opt,
			      __u32 buffer__szk) __ksym;
extern void *bpf_dynptr_slice_rdwr(const struct bpf_dynptr *p, __u32 offset, void *buffer__opt,
				   __u32 buffer__szk) __ksym;
extern int bpf_dynptr_adjust(const struct bpf_dynptr *p, __u32 start, __u32 end) __ksym;
extern bool bpf_dynptr_is_null(const struct bpf_dynptr *p) __ksym;
extern bool bpf_dynptr_is_rdonly(const struct bpf_dynptr *p) __ksym;
extern __u32 bpf_dynptr_size(const struct bpf_dynptr *p) __ksym;
extern int bpf_dynptr_clone(const struct bpf_dynptr *p, struct bpf_dynptr *clone__uninit) __ksym;
extern int bpf_dynptr_from_skb(struct __sk_buff *s, __u64 flags, struct bpf_dynptr *ptr__uninit) __ksym;

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			return __LINE__;                                                           \
	} while (0)

char buf[64];
__u32 seen_len;

/* Write through the dynptr, read back through read and data, and the error returns. */
SEC("syscall")
int local_rw(void *ctx)
{
	struct bpf_dynptr d;
	__u32 v = 0xabcd1234, out = 0;
	__u32 *p;

	CHECK(bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d) == 0);
	CHECK(bpf_dynptr_size(&d) == sizeof(buf));
	CHECK(!bpf_dynptr_is_null(&d) && !bpf_dynptr_is_rdonly(&d));
	CHECK(bpf_dynptr_write(&d, 8, &v, sizeof(v), 0) == 0);
	CHECK(bpf_dynptr_read(&out, sizeof(out), &d, 8, 0) == 0 && out == v);
	p = bpf_dynptr_data(&d, 8, sizeof(*p));
	CHECK(p && *p == v);
	*p = 7;
	CHECK(*(__u32 *)&buf[8] == 7);
	CHECK(bpf_dynptr_read(&out, sizeof(out), &d, 62, 0) == -E2BIG);
	CHECK(bpf_dynptr_read(&out, sizeof(out), &d, 0, 1) == -EINVAL);
	CHECK(bpf_dynptr_write(&d, 0, &v, sizeof(v), 1) == -EINVAL);
	CHECK(!bpf_dynptr_data(&d, 61, 4));
	/* A failed init leaves a NULL dynptr, which every helper refuses. */
	CHECK(bpf_dynptr_from_mem(buf, sizeof(buf), 1, &d) == -EINVAL);
	CHECK(bpf_dynptr_is_null(&d));
	CHECK(bpf_dynptr_size(&d) == (__u32)-EINVAL);
	CHECK(bpf_dynptr_read(&out, sizeof(out), &d, 0, 0) == -EINVAL);
	CHECK(!bpf_dynptr_data(&d, 0, 4));
	return 0;
}

/* Slices, a narrowed view (adjust) and a copy of it (clone) over the same bytes. */
SEC("syscall")
int slice_adjust_clone(void *ctx)
{
	struct bpf_dynptr d, c;
	__u64 tmp;
	__u32 *p;
	int i;

	for (i = 0; i < 16; i++)
		buf[i] = i;
	CHECK(bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d) == 0);
	p = bpf_dynptr_slice(&d, 4, NULL, 4);
	CHECK(p && *p == 0x07060504);
	CHECK(bpf_dynptr_slice(&d, 4, &tmp, sizeof(tmp)) == &buf[4]);
	CHECK(!bpf_dynptr_slice(&d, 60, NULL, 8));
	CHECK(bpf_dynptr_adjust(&d, 4, 12) == 0);
	CHECK(bpf_dynptr_size(&d) == 8);
	p = bpf_dynptr_slice(&d, 0, NULL, 4);
	CHECK(p && *p == 0x07060504);
	CHECK(bpf_dynptr_clone(&d, &c) == 0);
	CHECK(bpf_dynptr_adjust(&c, 4, 8) == 0 && bpf_dynptr_size(&c) == 4 && bpf_dynptr_size(&d) == 8);
	p = bpf_dynptr_slice(&c, 0, NULL, 4);
	CHECK(p && *p == 0x0b0a0908);
	CHECK(bpf_dynptr_adjust(&c, 3, 2) == -EINVAL);
	CHECK(bpf_dynptr_adjust(&c, 0, 5) == -ERANGE);
	/* Initializing again over an unreferenced dynptr replaces it. */
	CHECK(bpf_dynptr_from_mem(buf, 4, 0, &c) == 0 && bpf_dynptr_size(&c) == 4);
	return 0;
}

/* A socket filter's skb dynptr is read-only; its slices are read-only memory. */
SEC("?socket")
int skb_socket(struct __sk_buff *skb)
{
	struct bpf_dynptr d;
	__u8 tmp[4];
	__u8 *p;

	if (bpf_dynptr_from_skb(skb, 0, &d))
		return 0;
	p = bpf_dynptr_slice(&d, 0, tmp, sizeof(tmp));
	if (!p)
		return 0;
	seen_len = bpf_dynptr_size(&d) + p[0];
	return bpf_dynptr_is_rdonly(&d);
}

/* tc may write packet data: bpf_dynptr_slice_rdwr is allowed. */
SEC("?tc")
int skb_tc(struct __sk_buff *skb)
{
	struct bpf_dynptr d;
	__u8 tmp[2];
	__u8 *p;

	if (bpf_dynptr_from_skb(skb, 0, &d))
		return 0;
	p = bpf_dynptr_slice_rdwr(&d, 12, tmp, sizeof(tmp));
	if (!p)
		return 0;
	p[0] = 0x08;
	return 0;
}
