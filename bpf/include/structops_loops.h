/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Loops for our BPF programs: the open-coded numeric iterator kfuncs with `bpf_for` and
 * `bpf_repeat` over them, and `cond_break` (the may_goto instruction, clang 19 and later).
 * Written for this project against the kernel's documented kfunc signatures.
 */
#ifndef __STRUCTOPS_LOOPS_H
#define __STRUCTOPS_LOOPS_H

#include <bpf/bpf_helpers.h>

extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;

/*
 * for (i = start; i < end; i++) over an iterator on the stack that is destroyed when the scope
 * ends (the cleanup attribute), whichever way the loop is left.
 */
#define bpf_for(i, start, end)                                                              \
	for (struct bpf_iter_num ___it __attribute__((aligned(8), cleanup(bpf_iter_num_destroy))), \
	     *___p __attribute__((unused)) =                                                     \
		     (bpf_iter_num_new(&___it, (start), (end)), (void)bpf_iter_num_destroy, (void *)0); \
	     ({                                                                                  \
		     int *___t = bpf_iter_num_next(&___it);                                      \
		     (___t && ((i) = *___t, 1));                                                 \
	     });)

/* Run the body `n` times. */
#define bpf_repeat(n)                                                                       \
	for (struct bpf_iter_num ___it __attribute__((aligned(8), cleanup(bpf_iter_num_destroy))), \
	     *___p __attribute__((unused)) =                                                     \
		     (bpf_iter_num_new(&___it, 0, (n)), (void)bpf_iter_num_destroy, (void *)0);  \
	     bpf_iter_num_next(&___it);)

#if __clang_major__ >= 19
/* Leave the loop once the kernel's per-program loop budget is spent. */
#define cond_break                                      \
	({                                              \
		__label__ l_break, l_continue;          \
		asm volatile goto("may_goto %l[l_break]" \
				  :::: l_break);        \
		goto l_continue;                        \
	l_break:                                        \
		break;                                  \
	l_continue:;                                    \
	})
#endif

#endif
