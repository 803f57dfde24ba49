// SPDX-License-Identifier: GPL-2.0
/* Global (BTF_FUNC_GLOBAL) subprograms: each is verified once, on its own, from its BTF
 * prototype, and every call checks the caller's arguments against that prototype. Every section
 * is optional (load them one at a time); the comment above each says what the 6.18 verifier
 * answers. The gs_ok* programs must load.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

/* Argument tags (BTF decl tags "arg:..."), as newer bpf_helpers.h spells them. */
#define __arg_ctx __attribute__((btf_decl_tag("arg:ctx")))
#define __arg_nonnull __attribute__((btf_decl_tag("arg:nonnull")))
#define __arg_nullable __attribute__((btf_decl_tag("arg:nullable")))

struct pair {
	long a;
	long b;
};

struct lval {
	struct bpf_spin_lock lock;
	long n;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lval);
} lmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pair);
} hmap SEC(".maps");

int arr[1];
int unknown_idx;
const volatile int never = 0;

/* scalar arguments: each an unknown scalar inside */
__noinline int gs_add(int a, long b)
{
	return a + b;
}

/* a pointer to sized memory: maybe NULL inside, 16 bytes readable and writable */
__noinline int gs_sum(struct pair *p)
{
	if (!p)
		return 0;
	p->b = p->a + 1;
	return p->b;
}

/* the context, whatever the program type */
__noinline int gs_ctx(void *ctx __arg_ctx)
{
	return ctx != 0;
}

/* a global function calling another: verified once it is known to be called */
__noinline int gs_calls_sum(struct pair *p __arg_nonnull)
{
	return gs_sum(p) + p->a;
}

/* accepted: scalars, stack memory, NULL for a nullable pointer, the context, nested globals */
SEC("?raw_tp")
int gs_ok(void *ctx)
{
	struct pair p = { 1, 2 };

	return gs_add(1, 2) + gs_sum(&p) + gs_sum(0) + gs_ctx(ctx) + gs_calls_sum(&p);
}

/* out of bounds for any caller: refused once it is verified */
__noinline int gs_oob(void)
{
	return arr[unknown_idx];
}

/* accepted: the only call is dead code, so gs_oob is never verified */
SEC("?raw_tp")
int gs_ok_dead_call(void *ctx)
{
	if (never)
		return gs_oob();
	return 0;
}

/* refused in gs_oob, after the main program: "Validating gs_oob() func#1...",
 * then "math between map_value pointer and register with unbounded min value is not allowed"
 */
SEC("?raw_tp")
int gs_bad_body(void *ctx)
{
	return gs_oob();
}

__noinline int gs_deref(int *p)
{
	return *p * 2;
}

/* refused inside gs_deref: "R1 invalid mem access 'mem_or_null'" (the pointer may be NULL) */
SEC("?raw_tp")
int gs_nullable_deref(void *ctx)
{
	int x = 42;

	return gs_deref(&x);
}

__noinline int gs_deref_nonnull(int *p __arg_nonnull)
{
	return *p * 2;
}

/* accepted: __arg_nonnull needs no NULL check inside */
SEC("?raw_tp")
int gs_ok_nonnull(void *ctx)
{
	int x = 42;

	return gs_deref_nonnull(&x);
}

/* refused at the call: "arg#0 is expected to be non-NULL", "Caller passes invalid args into
 * func#1 ('gs_deref_nonnull')"
 */
SEC("?raw_tp")
int gs_nonnull_maybe_null(void *ctx)
{
	__u32 key = 0;

	return gs_deref_nonnull((int *)bpf_map_lookup_elem(&hmap, &key));
}

/* accepted: a maybe-NULL map value for a nullable pointer */
SEC("?raw_tp")
int gs_ok_maybe_null(void *ctx)
{
	__u32 key = 0;

	return gs_sum(bpf_map_lookup_elem(&hmap, &key));
}

/* refused at the call: a pointer where the prototype has a scalar ("R2 is not a scalar") */
SEC("?raw_tp")
int gs_ptr_as_scalar(void *ctx)
{
	long x = 0;

	return gs_add(1, (long)&x);
}

/* refused at the call: 8 bytes of stack for a 16-byte struct */
SEC("?raw_tp")
int gs_mem_too_small(void *ctx)
{
	long x = 0;

	return gs_sum((struct pair *)&x);
}

/* refused at the call: the stack is not the context ("arg#0 expects pointer to ctx") */
SEC("?raw_tp")
int gs_ctx_not_ctx(void *ctx)
{
	long x = 0;

	return gs_ctx(&x);
}

/* refused at the call: "global function calls are not allowed while holding a lock,"
 * "use static function instead"
 */
SEC("?tc")
int gs_under_lock(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct lval *v = bpf_map_lookup_elem(&lmap, &key);
	int r;

	if (!v)
		return 0;
	bpf_spin_lock(&v->lock);
	r = gs_add(1, 2);
	bpf_spin_unlock(&v->lock);
	return r;
}

__noinline void gs_void(int *p)
{
	if (p)
		*p = 1;
}

/* refused at the call: "Global function gs_void() doesn't return scalar. Only those are
 * supported.", "Caller passes invalid args into func#1 ('gs_void')"
 */
SEC("?raw_tp")
int gs_void_ret(void *ctx)
{
	int x = 0;

	gs_void(&x);
	return x;
}

/* accepted: R0 after a global call is an unknown scalar, not what the body returns, and the
 * caller's stack written through the pointer is unknown too
 */
SEC("?raw_tp")
int gs_ok_unknown_ret(void *ctx)
{
	struct pair p = { 0, 0 };
	int r = gs_sum(&p);

	if (r > 7 || r < 0)
		return 0;
	return arr[r & 0];
}

#define __arg_trusted __attribute__((btf_decl_tag("arg:trusted")))
#define __arg_untrusted __attribute__((btf_decl_tag("arg:untrusted")))

/* a kernel task, trusted: no NULL check needed inside */
__noinline int gs_task_pid(struct task_struct *t __arg_trusted)
{
	return t->pid;
}

/* the same, maybe NULL */
__noinline int gs_task_pid_or_0(struct task_struct *t __arg_trusted __arg_nullable)
{
	if (!t)
		return 0;
	return t->pid;
}

/* accepted: the current task for trusted arguments, NULL where it is nullable */
SEC("?raw_tp")
int gs_ok_trusted(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return gs_task_pid(t) + gs_task_pid_or_0(t) + gs_task_pid_or_0(0);
}

/* refused at the call: NULL is no trusted task ("R1 type=scalar expected=ptr_, trusted_ptr_,
 * rcu_ptr_", then "Caller passes invalid args into func#1 ('gs_task_pid')")
 */
SEC("?raw_tp")
int gs_trusted_null(void *ctx)
{
	return gs_task_pid(0);
}

/* refused in the function: a global function returns a scalar ("At subprogram exit the register
 * R0 is not a scalar value (ctx)") -- its BTF says long, the code returns the context
 */
__noinline long gs_returns_ctx(void *ctx __arg_ctx)
{
	long r;

	asm volatile("%[r] = %[c]" : [r] "=r"(r) : [c] "r"(ctx));
	return r;
}

SEC("?raw_tp")
int gs_ret_ptr(void *ctx)
{
	return gs_returns_ctx(ctx) != 0;
}

/* refused at the call: an RCU pointer walked out of the task is not trusted ("R1 must be
 * referenced or trusted")
 */
SEC("?raw_tp")
int gs_trusted_rcu(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return gs_task_pid(t->real_parent);
}

/* refused at the call: a pointer into the task is no task ("R1 is of type task_struct but
 * task_struct is expected")
 */
SEC("?raw_tp")
int gs_trusted_off(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return gs_task_pid((void *)&t->pid);
}

__noinline int gs_untrusted_pid(struct task_struct *t __arg_untrusted)
{
	return t->pid;
}

/* accepted: anything goes for an untrusted argument (read through probe loads) */
SEC("?raw_tp")
int gs_ok_untrusted(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return gs_untrusted_pid(t) + gs_untrusted_pid(0) + gs_untrusted_pid(t->real_parent);
}

/* the program type's context struct: the context, without a tag */
__noinline int gs_skb_len(struct __sk_buff *skb)
{
	return skb->len;
}

/* refused at the call: the context moved ("dereference of modified ctx ptr R1 off=192
 * disallowed")
 */
SEC("?tc")
int gs_skb_moved(struct __sk_buff *skb)
{
	return gs_skb_len(skb + 1);
}
