// SPDX-License-Identifier: GPL-2.0
/* bpf_timer programs the verifier must refuse, one rule each (every section is optional: load
 * them one at a time). Each says in a comment what the 6.18 verifier answers.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

#define CLOCK_MONOTONIC 1

struct tval {
	struct bpf_timer timer;
	__u64 n;
};

struct twotimers {
	__u64 n;
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct tval);
} tmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct tval);
} tmap2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct twotimers);
} tmap_off8 SEC(".maps");

struct plain {
	__u64 a;
	__u64 b;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct plain);
} plain SEC(".maps");

__u32 idx;

static __always_inline struct tval *tv(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&tmap, &key);
}

static int cb_ok(void *map, __u32 *key, struct tval *v)
{
	return 0;
}

static int cb_returns_one(void *map, __u32 *key, struct tval *v)
{
	return 1;
}

/* At async callback return the register R0 has smin=1 smax=1 should have been in [0, 0] */
SEC("?syscall")
int callback_returns_one(void *ctx)
{
	struct tval *v = tv();

	if (!v)
		return 0;
	bpf_timer_init(&v->timer, &tmap, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&v->timer, cb_returns_one);
	return 0;
}

/* timer pointer in R1 map_uid=0 doesn't match map pointer in R2 map_uid=0 */
SEC("?syscall")
int init_other_map(void *ctx)
{
	struct tval *v = tv();

	if (!v)
		return 0;
	bpf_timer_init(&v->timer, &tmap2, CLOCK_MONOTONIC);
	return 0;
}

/* map 'plain' has no valid bpf_timer */
SEC("?syscall")
int map_without_timer(void *ctx)
{
	__u32 key = 0;
	struct plain *p = bpf_map_lookup_elem(&plain, &key);

	if (!p)
		return 0;
	bpf_timer_init((struct bpf_timer *)p, &plain, CLOCK_MONOTONIC);
	return 0;
}

/* off 16 doesn't point to 'struct bpf_timer' that is at 0 */
SEC("?syscall")
int timer_wrong_offset(void *ctx)
{
	struct tval *v = tv();

	if (!v)
		return 0;
	bpf_timer_init((struct bpf_timer *)&v->n, &tmap, CLOCK_MONOTONIC);
	return 0;
}

/* R1 doesn't have constant offset. bpf_timer has to be at the constant offset */
SEC("?syscall")
int timer_variable_offset(void *ctx)
{
	struct tval *v = tv();
	__u32 i = idx & 8;

	if (!v)
		return 0;
	bpf_timer_start((struct bpf_timer *)((char *)v + i), 1000, 0);
	return 0;
}

/* R1 type=fp expected=map_value */
SEC("?syscall")
int timer_on_stack(void *ctx)
{
	struct bpf_timer t = {};

	bpf_timer_cancel(&t);
	return 0;
}

/* bpf_timer cannot be accessed directly by load/store */
SEC("?syscall")
int timer_load(void *ctx)
{
	struct tval *v = tv();

	if (!v)
		return 0;
	return *(volatile __u64 *)&v->timer;
}

/* accepted: the timer at offset 8 of the value */
SEC("?syscall")
int timer_off8_ok(void *ctx)
{
	__u32 key = 0;
	struct twotimers *t = bpf_map_lookup_elem(&tmap_off8, &key);

	if (!t)
		return 0;
	bpf_timer_init(&t->timer, &tmap_off8, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&t->timer, cb_ok);
	bpf_timer_start(&t->timer, 1000, 0);
	return 0;
}

/* tracing progs cannot use bpf_timer yet */
SEC("?kprobe/do_nanosleep")
int kprobe_with_timer_map(void *ctx)
{
	struct tval *v = tv();

	if (v)
		bpf_timer_start(&v->timer, 1000, 0);
	return 0;
}

/* a raw tracepoint is a tracing program too */
SEC("?raw_tp/sys_enter")
int raw_tp_with_timer_map(void *ctx)
{
	struct tval *v = tv();

	if (v)
		bpf_timer_start(&v->timer, 1000, 0);
	return 0;
}

/* timers in a tc program (what the host runs them in) */
SEC("?tc")
int tc_timer_ok(void *ctx)
{
	struct tval *v = tv();

	if (!v)
		return 0;
	bpf_timer_init(&v->timer, &tmap, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&v->timer, cb_ok);
	bpf_timer_start(&v->timer, 1000, 0);
	return 0;
}

static int cb_returns_ptr(void *map, __u32 *key, struct tval *v)
{
	return (long)v;
}

/* At async callback return the register R0 is not a known value (map_value) */
SEC("?syscall")
int callback_returns_ptr(void *ctx)
{
	struct tval *v = tv();

	if (!v)
		return 0;
	bpf_timer_set_callback(&v->timer, cb_returns_ptr);
	return 0;
}

static int cb_writes_key(void *map, __u32 *key, struct tval *v)
{
	*key = 1;
	return 0;
}

/* write to change key R2 not allowed */
SEC("?syscall")
int callback_writes_key(void *ctx)
{
	struct tval *v = tv();

	if (!v)
		return 0;
	bpf_timer_set_callback(&v->timer, cb_writes_key);
	return 0;
}

static int cb_self(void *map, __u32 *key, struct tval *v)
{
	v->n++;
	bpf_timer_set_callback(&v->timer, cb_self);
	bpf_timer_start(&v->timer, 1000, 0);
	return 0;
}

/* accepted: a callback that registers itself again (its verification converges) */
SEC("?syscall")
int callback_registers_itself(void *ctx)
{
	struct tval *v = tv();

	if (!v)
		return 0;
	bpf_timer_init(&v->timer, &tmap, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&v->timer, cb_self);
	return 0;
}

/* R1 type=map_value_or_null expected=map_value */
SEC("?syscall")
int timer_maybe_null(void *ctx)
{
	__u32 key = idx;
	struct tval *v = bpf_map_lookup_elem(&tmap, &key);

	bpf_timer_cancel((struct bpf_timer *)v);
	return 0;
}
