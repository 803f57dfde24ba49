// SPDX-License-Identifier: GPL-2.0
/* What kprobe, tracepoint, perf_event and raw_tp programs may read of their context and which
 * helpers their tables offer (kernel/trace/bpf_trace.c): bpf_get_stack, whose return value the
 * verifier bounds by the buffer's size; bpf_copy_from_user only where the program may sleep.
 * Every section starts with `?`: load them one at a time.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

#define BUF 64
/* Operands of the naked programs' asm. */
#define __imm(name) [name] "i"(name)
#define __imm_addr(name) [name] "i"(&name)
#define __clobber_all "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "memory"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, char[BUF]);
} bufs SEC(".maps");

/* The length bpf_get_stack returns is at most the buffer's size: it may index the rest of it. */
SEC("?raw_tp")
__attribute__((naked)) int get_stack_bounded(void)
{
	asm volatile(
	"r6 = r1;"
	"r1 = 0;"
	"*(u32 *)(r10 - 4) = r1;"
	"r2 = r10;"
	"r2 += -4;"
	"r1 = %[bufs] ll;"
	"call %[bpf_map_lookup_elem];"
	"if r0 == 0 goto 1f;"
	"r7 = r0;"
	"r1 = r6;"
	"r2 = r7;"
	"r3 = 32;"
	"r4 = 0;"
	"call %[bpf_get_stack];"
	"r8 = r0;"
	"r8 <<= 32;"
	"r8 s>>= 32;"
	"r1 = 0;"
	"if r1 s> r8 goto 1f;"
	"r7 += r8;"
	"r0 = *(u8 *)(r7 + 31);"
	"1: r0 = 0;"
	"exit;"
	:
	: __imm_addr(bufs), __imm(bpf_map_lookup_elem), __imm(bpf_get_stack)
	: __clobber_all);
}

SEC("?tracepoint")
int tp_get_stack(void *ctx)
{
	char buf[32];

	return bpf_get_stack(ctx, buf, sizeof(buf), 0) > 0;
}

SEC("?kprobe")
int kprobe_get_stack(void *ctx)
{
	char buf[32];

	return bpf_get_stack(ctx, buf, sizeof(buf), 0) > 0;
}

/* A kprobe reads its pt_regs, never writes them. */
SEC("?kprobe")
__attribute__((naked)) int kprobe_read_regs(void) { asm volatile("r0 = *(u64 *)(r1 + 112); r0 = 0; exit" ::: "memory"); }

SEC("?kprobe")
__attribute__((naked)) int kprobe_write_regs(void) { asm volatile("r2 = 0; *(u64 *)(r1 + 112) = r2; r0 = 0; exit" ::: "memory"); }

SEC("?kprobe")
__attribute__((naked)) int kprobe_past_regs(void) { asm volatile("r0 = *(u64 *)(r1 + 168); r0 = 0; exit" ::: "memory"); }

/* A tracepoint's record starts after its 8-byte common header. */
SEC("?tracepoint")
__attribute__((naked)) int tp_read_field(void) { asm volatile("r0 = *(u32 *)(r1 + 8); r0 = 0; exit" ::: "memory"); }

SEC("?tracepoint")
__attribute__((naked)) int tp_read_header(void) { asm volatile("r0 = *(u64 *)(r1 + 0); r0 = 0; exit" ::: "memory"); }

/* perf_event: sample_period may be read narrower, the registers only as longs. */
SEC("?perf_event")
__attribute__((naked)) int pe_narrow_period(void) { asm volatile("r0 = *(u32 *)(r1 + 168); r0 = 0; exit" ::: "memory"); }

SEC("?perf_event")
__attribute__((naked)) int pe_narrow_regs(void) { asm volatile("r0 = *(u32 *)(r1 + 0); r0 = 0; exit" ::: "memory"); }

/* bpf_copy_from_user may fault pages in: sleepable programs only. */
SEC("?uprobe.s")
int copy_from_user_sleepable(void *ctx)
{
	char buf[8];

	return bpf_copy_from_user(buf, sizeof(buf), (void *)0x1000) == 0;
}

SEC("?tracepoint")
int copy_from_user_not_sleepable(void *ctx)
{
	char buf[8];

	return bpf_copy_from_user(buf, sizeof(buf), (void *)0x1000) == 0;
}
