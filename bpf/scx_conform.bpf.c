// SPDX-License-Identifier: GPL-2.0
/*
 * What schedulers written against a real kernel's vmlinux.h and sched_ext headers rely on, each
 * used the way those headers use it:
 *   long_name_ops   an ops name longer than the 15 characters of a BPF object name (sched_ext_ops.name
 *                   holds 127); its ops.init walks the online CPUs with the bit iterator
 *                   (bpf_iter_bits over scx_bpf_get_online_cpumask(), as for_each_online_cpu does),
 *                   its ops.enqueue probes task_struct.migration_disabled with CO-RE
 *   max_name_ops    a name of exactly 127 characters
 *   bits            syscall program: bpf_iter_bits over three words of .data, and its error returns
 *   cpumask_ops     syscall program: the two-mask and whole-mask bpf_cpumask kfuncs
 *   strncmp_run     syscall program: bpf_strncmp() against string literals in .rodata (ops.enqueue
 *                   also counts tasks whose comm starts with "hog", as select_cpu_dfl matches its own)
 *   strncmp_rw_str  (optional) bpf_strncmp() against a writable string: refused
 * The enumerators `true`, `false` and BPF_MAX_LOOPS come from vmlinux.h, as in a real one.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char _license[] SEC("license") = "GPL";

#define SCX_OP(name, args...) SEC("struct_ops/" #name) BPF_PROG(name, ##args)
#define SCX_OP_SLEEPABLE(name, args...) SEC("struct_ops.s/" #name) BPF_PROG(name, ##args)

int bpf_iter_bits_new(struct bpf_iter_bits *it, const u64 *unsafe_ptr__ign, u32 nr_words) __ksym;
int *bpf_iter_bits_next(struct bpf_iter_bits *it) __ksym;
void bpf_iter_bits_destroy(struct bpf_iter_bits *it) __ksym;
const struct cpumask *scx_bpf_get_online_cpumask(void) __ksym;
void scx_bpf_put_cpumask(const struct cpumask *cpumask) __ksym;
u32 scx_bpf_nr_cpu_ids(void) __ksym;
void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;

struct bpf_cpumask *bpf_cpumask_create(void) __ksym;
void bpf_cpumask_release(struct bpf_cpumask *cpumask) __ksym;
void bpf_cpumask_set_cpu(u32 cpu, struct bpf_cpumask *cpumask) __ksym;
bool bpf_cpumask_test_and_set_cpu(u32 cpu, struct bpf_cpumask *cpumask) __ksym;
bool bpf_cpumask_test_and_clear_cpu(u32 cpu, struct bpf_cpumask *cpumask) __ksym;
void bpf_cpumask_setall(struct bpf_cpumask *cpumask) __ksym;
void bpf_cpumask_clear(struct bpf_cpumask *cpumask) __ksym;
bool bpf_cpumask_and(struct bpf_cpumask *dst, const struct cpumask *src1, const struct cpumask *src2) __ksym;
void bpf_cpumask_or(struct bpf_cpumask *dst, const struct cpumask *src1, const struct cpumask *src2) __ksym;
void bpf_cpumask_xor(struct bpf_cpumask *dst, const struct cpumask *src1, const struct cpumask *src2) __ksym;
bool bpf_cpumask_equal(const struct cpumask *src1, const struct cpumask *src2) __ksym;
bool bpf_cpumask_intersects(const struct cpumask *src1, const struct cpumask *src2) __ksym;
bool bpf_cpumask_subset(const struct cpumask *src1, const struct cpumask *src2) __ksym;
bool bpf_cpumask_full(const struct cpumask *cpumask) __ksym;
void bpf_cpumask_copy(struct bpf_cpumask *dst, const struct cpumask *src) __ksym;
u32 bpf_cpumask_first_zero(const struct cpumask *cpumask) __ksym;
u32 bpf_cpumask_first_and(const struct cpumask *src1, const struct cpumask *src2) __ksym;
u32 bpf_cpumask_weight(const struct cpumask *cpumask) __ksym;
u32 bpf_cpumask_any_distribute(const struct cpumask *cpumask) __ksym;
u32 bpf_cpumask_any_and_distribute(const struct cpumask *src1, const struct cpumask *src2) __ksym;

/* each set bit of nr_words words at ptr, the iterator destroyed however the loop is left */
#define for_each_bit(bit, ptr, nr_words)                                                         \
	for (struct bpf_iter_bits ___bits __attribute__((aligned(8), cleanup(bpf_iter_bits_destroy))), \
	     *___p __attribute__((unused)) =                                                        \
		     (bpf_iter_bits_new(&___bits, (ptr), (nr_words)), (void *)0);                   \
	     ((bit) = bpf_iter_bits_next(&___bits));)

/* set by ops.init and ops.enqueue */
u32 online_seen, online_expected;
u64 online_mask;
u64 enqueued, migration_disabled_seen, hogs_enqueued;
bool has_migration_disabled = false;
u64 max_loops = BPF_MAX_LOOPS;

s32 SCX_OP_SLEEPABLE(conform_init)
{
	const struct cpumask *online = scx_bpf_get_online_cpumask();
	int *cpu;

	for_each_bit(cpu, (const u64 *)online, sizeof(struct cpumask) / 8)
	{
		online_seen++;
		if (*cpu < 64)
			online_mask |= 1ULL << *cpu;
	}
	scx_bpf_put_cpumask(online);
	online_expected = scx_bpf_nr_cpu_ids();
	return 0;
}

void SCX_OP(conform_enqueue, struct task_struct *p, u64 enq_flags)
{
	enqueued++;
	if (!bpf_strncmp(p->comm, 3, "hog"))
		hogs_enqueued++;
	if (bpf_core_field_exists(p->migration_disabled)) {
		has_migration_disabled = true;
		if (BPF_CORE_READ(p, migration_disabled))
			migration_disabled_seen++;
	}
	scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

SEC(".struct_ops.link")
struct sched_ext_ops long_name_ops = {
	.init = (void *)conform_init,
	.enqueue = (void *)conform_enqueue,
	.name = "structops_conformance_with_a_long_ops_name",
};

SEC(".struct_ops.link")
struct sched_ext_ops max_name_ops = {
	.name = "n12345678901234567890123456789012345678901234567890123456789012345678901234567890"
		"1234567890123456789012345678901234567890123456",
};

/* bits: the positions set in words[], in order, and what new() returned for bad arguments */
u64 words[3] = { 0x8000000000000001ULL, 0, 0x30 };
int positions[8];
int nr_positions;
int ret_zero_words, ret_too_many, ret_null, ret_one;
int one_word_bits;

SEC("syscall")
int bits(void *ctx)
{
	struct bpf_iter_bits it;
	int *bit;

	for_each_bit(bit, words, 3)
	{
		if (nr_positions < 8)
			positions[nr_positions & 7] = *bit;
		nr_positions++;
	}
	for_each_bit(bit, &words[2], 1) one_word_bits += *bit;

	ret_zero_words = bpf_iter_bits_new(&it, words, 0);
	bpf_iter_bits_destroy(&it);
	ret_too_many = bpf_iter_bits_new(&it, words, 512);
	bpf_iter_bits_destroy(&it);
	ret_null = bpf_iter_bits_new(&it, 0, 1);
	bpf_iter_bits_destroy(&it);
	ret_one = bpf_iter_bits_new(&it, words, 1);
	bpf_iter_bits_destroy(&it);
	return 0;
}

/* cpumask_ops: a = {0, 2}, b = {0, 1, 2, 3} on a machine of nr CPUs (4 in the test) */
u32 r_subset_ab, r_subset_ba, r_intersects, r_equal, r_equal_copy, r_full_b, r_full_a, r_and, r_and_empty;
u32 r_first_zero_a, r_first_and, r_xor_weight, r_or_weight, r_tas_old, r_tas_new, r_tac, r_cleared_weight;
u32 r_distribute[4];

SEC("syscall")
int cpumask_ops(void *ctx)
{
	struct bpf_cpumask *a, *b, *c;
	int i;

	a = bpf_cpumask_create();
	if (!a)
		return 1;
	b = bpf_cpumask_create();
	if (!b) {
		bpf_cpumask_release(a);
		return 2;
	}
	c = bpf_cpumask_create();
	if (!c) {
		bpf_cpumask_release(a);
		bpf_cpumask_release(b);
		return 3;
	}
	bpf_cpumask_set_cpu(0, a);
	bpf_cpumask_set_cpu(2, a);
	bpf_cpumask_setall(b);

	r_subset_ab = bpf_cpumask_subset((const struct cpumask *)a, (const struct cpumask *)b);
	r_subset_ba = bpf_cpumask_subset((const struct cpumask *)b, (const struct cpumask *)a);
	r_intersects = bpf_cpumask_intersects((const struct cpumask *)a, (const struct cpumask *)b);
	r_equal = bpf_cpumask_equal((const struct cpumask *)a, (const struct cpumask *)b);
	r_full_b = bpf_cpumask_full((const struct cpumask *)b);
	r_full_a = bpf_cpumask_full((const struct cpumask *)a);
	r_first_zero_a = bpf_cpumask_first_zero((const struct cpumask *)a);
	r_first_and = bpf_cpumask_first_and((const struct cpumask *)b, (const struct cpumask *)a);

	r_and = bpf_cpumask_and(c, (const struct cpumask *)a, (const struct cpumask *)b);
	bpf_cpumask_xor(c, (const struct cpumask *)a, (const struct cpumask *)b);
	r_xor_weight = bpf_cpumask_weight((const struct cpumask *)c);
	r_and_empty = bpf_cpumask_and(c, (const struct cpumask *)a, (const struct cpumask *)c);
	bpf_cpumask_or(c, (const struct cpumask *)a, (const struct cpumask *)c);
	r_or_weight = bpf_cpumask_weight((const struct cpumask *)c);
	bpf_cpumask_copy(c, (const struct cpumask *)a);
	r_equal_copy = bpf_cpumask_equal((const struct cpumask *)a, (const struct cpumask *)c);

	r_tas_old = bpf_cpumask_test_and_set_cpu(1, a);
	r_tas_new = bpf_cpumask_test_and_set_cpu(1, a);
	r_tac = bpf_cpumask_test_and_clear_cpu(1, a);
	for (i = 0; i < 4; i++)
		r_distribute[i] = bpf_cpumask_any_distribute((const struct cpumask *)a);
	bpf_cpumask_clear(a);
	r_cleared_weight = bpf_cpumask_weight((const struct cpumask *)a);

	bpf_cpumask_release(a);
	bpf_cpumask_release(b);
	bpf_cpumask_release(c);
	return 0;
}

/* strncmp_run: buf against literals: equal, lower, higher, and only the first s1_sz bytes compared */
char buf[8] = "hog";
char wstr[8] = "hog";
int r_eq = 7, r_lt, r_gt, r_prefix = 7, r_nul;

SEC("syscall")
int strncmp_run(void *ctx)
{
	r_eq = bpf_strncmp(buf, 3, "hog");
	r_lt = bpf_strncmp(buf, 3, "hoh");
	r_gt = bpf_strncmp(buf, 3, "hoa");
	r_prefix = bpf_strncmp(buf, 2, "hoXYZ");
	/* buf's NUL ends the comparison: "hog" < "hogs" */
	r_nul = bpf_strncmp(buf, 8, "hogs");
	return 0;
}

/* the constant string must live in a frozen read-only map: 6.18 says "R3 does not point to a readonly map'" */
SEC("?syscall")
int strncmp_rw_str(void *ctx)
{
	r_eq = bpf_strncmp(buf, 3, wstr);
	return 0;
}
