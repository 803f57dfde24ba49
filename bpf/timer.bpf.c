// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_timer: a periodic timer counting ticks in an array element (re-armed from its own
 * callback, which records the time of each tick), a timer in a hash element that never fires
 * because the element is deleted first, and the helpers' error returns. `syscall` programs arm
 * and query; the callbacks run later, when the clock reaches their expiry.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_BOOTTIME 7
#define EBUSY 16
#define EINVAL 22
#define EDEADLK 35
#define NTICKS 8

struct periodic {
	struct bpf_timer timer;
	__u64 period_ns;
	__u64 ticks;
	__u64 limit;
	__u64 at[NTICKS];
	__s64 cancel_self; /* what bpf_timer_cancel of its own timer returned in the callback */
	__u32 cpu;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct periodic);
} periodic SEC(".maps");

struct session {
	__u64 armed_at;
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct session);
} sessions SEC(".maps");

/*
 * The one .bss variable: user space sets the first four fields before a run and reads the
 * helpers' returns (0 or -errno) after it; every field is 8 bytes, in this order.
 */
struct timer_state {
	__u64 period_ns;
	__u64 tick_limit;
	__u64 session_key;
	__u64 abs_expiry;
	__s64 init_ret;
	__s64 init_again_ret;
	__s64 start_unset_ret;
	__s64 set_cb_ret;
	__s64 start_ret;
	__s64 cancel_ret;
	__s64 bad_flags_ret;
	__s64 bad_clock_ret;
	__u64 session_fired;
	__u64 session_fired_key;
} st;

static int tick(void *map, __u32 *key, struct periodic *p)
{
	__u64 n = p->ticks;

	if (n < NTICKS)
		p->at[n] = bpf_ktime_get_ns();
	p->ticks = n + 1;
	p->cpu = bpf_get_smp_processor_id();
	if (p->ticks < p->limit)
		bpf_timer_start(&p->timer, p->period_ns, 0);
	else
		p->cancel_self = bpf_timer_cancel(&p->timer);
	return 0;
}

/* Arm periodic[0]: every period_ns, tick_limit ticks. */
SEC("syscall")
int start_periodic(void *ctx)
{
	__u32 key = 0;
	struct periodic *p = bpf_map_lookup_elem(&periodic, &key);

	if (!p)
		return 1;
	p->period_ns = st.period_ns;
	p->limit = st.tick_limit;
	p->ticks = 0;
	st.bad_clock_ret = bpf_timer_init(&p->timer, &periodic, 3 /* CLOCK_PROCESS_CPUTIME_ID */);
	st.init_ret = bpf_timer_init(&p->timer, &periodic, CLOCK_MONOTONIC);
	st.init_again_ret = bpf_timer_init(&p->timer, &periodic, CLOCK_BOOTTIME);
	st.start_unset_ret = bpf_timer_start(&p->timer, st.period_ns, 0);
	st.set_cb_ret = bpf_timer_set_callback(&p->timer, tick);
	st.bad_flags_ret = bpf_timer_start(&p->timer, st.period_ns, 4);
	st.start_ret = bpf_timer_start(&p->timer, st.period_ns, 0);
	return 0;
}

/* Cancel periodic[0] from a program: 1 if it was armed. */
SEC("syscall")
int cancel_periodic(void *ctx)
{
	__u32 key = 0;
	struct periodic *p = bpf_map_lookup_elem(&periodic, &key);

	if (!p)
		return 1;
	st.cancel_ret = bpf_timer_cancel(&p->timer);
	return 0;
}

/* Start periodic[0] again without setting a callback: -EINVAL once a cancel dropped it. */
SEC("syscall")
int restart_periodic(void *ctx)
{
	__u32 key = 0;
	struct periodic *p = bpf_map_lookup_elem(&periodic, &key);

	if (!p)
		return 1;
	st.start_ret = bpf_timer_start(&p->timer, st.period_ns, 0);
	return 0;
}

/* periodic[1]: one shot at the absolute time abs_expiry, pinned to this CPU. */
SEC("syscall")
int start_abs_pinned(void *ctx)
{
	__u32 key = 1;
	struct periodic *p = bpf_map_lookup_elem(&periodic, &key);

	if (!p)
		return 1;
	p->limit = 1;
	p->ticks = 0;
	st.init_ret = bpf_timer_init(&p->timer, &periodic, CLOCK_MONOTONIC);
	st.set_cb_ret = bpf_timer_set_callback(&p->timer, tick);
	st.start_ret = bpf_timer_start(&p->timer, st.abs_expiry, BPF_F_TIMER_ABS | BPF_F_TIMER_CPU_PIN);
	return 0;
}

static int session_expired(void *map, __u32 *key, struct session *s)
{
	st.session_fired++;
	st.session_fired_key = *key;
	return 0;
}

/* sessions[session_key]: a timer 1 ms from now. */
SEC("syscall")
int arm_session(void *ctx)
{
	struct session init = {}, *s;
	__u32 key = st.session_key;

	init.armed_at = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&sessions, &key, &init, BPF_NOEXIST))
		return 1;
	s = bpf_map_lookup_elem(&sessions, &key);
	if (!s)
		return 2;
	st.init_ret = bpf_timer_init(&s->timer, &sessions, CLOCK_MONOTONIC);
	st.set_cb_ret = bpf_timer_set_callback(&s->timer, session_expired);
	st.start_ret = bpf_timer_start(&s->timer, 1000000, 0);
	return 0;
}

/* Delete sessions[session_key] from a program: its timer goes with it. */
SEC("syscall")
int drop_session(void *ctx)
{
	__u32 key = st.session_key;

	return bpf_map_delete_elem(&sessions, &key);
}
