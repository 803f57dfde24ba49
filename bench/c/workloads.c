/* Three workloads for bench/vm.ts, compiled from this one source twice: by clang for BPF
 * (bench/c/workloads.bpf.o, committed; bench/c/build.sh rebuilds it) and by gcc -O2 as the
 * native baseline at bench time (with -DNATIVE_MAIN: a main that times them).
 *
 *   fnv1a(buf, len)        FNV-1a, 32-bit, over len bytes
 *   jhash2(words, nwords)  Bob Jenkins' lookup3 hashword over nwords u32 words (the kernel's jhash2)
 *   cubic(tbl, n)          n rounds of CUBIC's window arithmetic: a table-seeded cube root with one
 *                          Newton step, then the cubic target and the per-ACK count, summed
 *
 * Every entry takes (pointer, count) so the BPF form runs with r1 = a VM address, r2 = count. */
#ifdef __bpf__
typedef unsigned char uint8_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#else
#include <stdint.h>
#endif

#ifdef __bpf__
#define ENTRY(name) __attribute__((section("bench/" #name), used))
#else
#define ENTRY(name)
#endif
#define INLINE static inline __attribute__((always_inline))

typedef uint8_t u8;
typedef uint32_t u32;
typedef uint64_t u64;

ENTRY(fnv1a) u64 fnv1a(const u8 *buf, u64 len)
{
	u32 h = 2166136261u;
	for (u64 i = 0; i < len; i++) {
		h ^= buf[i];
		h *= 16777619u;
	}
	return h;
}

INLINE u32 rol32(u32 w, u32 s)
{
	return (w << s) | (w >> (32 - s));
}

/* lookup3's mix() and final(): reversible mixing of three 32-bit lanes. */
#define MIX(a, b, c)                           \
	do {                                   \
		a -= c; a ^= rol32(c, 4);  c += b; \
		b -= a; b ^= rol32(a, 6);  a += c; \
		c -= b; c ^= rol32(b, 8);  b += a; \
		a -= c; a ^= rol32(c, 16); c += b; \
		b -= a; b ^= rol32(a, 19); a += c; \
		c -= b; c ^= rol32(b, 4);  b += a; \
	} while (0)
#define FINAL(a, b, c)                    \
	do {                              \
		c ^= b; c -= rol32(b, 14); \
		a ^= c; a -= rol32(c, 11); \
		b ^= a; b -= rol32(a, 25); \
		c ^= b; c -= rol32(b, 16); \
		a ^= c; a -= rol32(c, 4);  \
		b ^= a; b -= rol32(a, 14); \
		c ^= b; c -= rol32(b, 24); \
	} while (0)

ENTRY(jhash2) u64 jhash2(const u32 *k, u64 n)
{
	u32 a, b, c;
	a = b = c = 0xdeadbeef + ((u32)n << 2);
	while (n > 3) {
		a += k[0];
		b += k[1];
		c += k[2];
		MIX(a, b, c);
		n -= 3;
		k += 3;
	}
	switch (n) {
	case 3:
		c += k[2];
		/* fall through */
	case 2:
		b += k[1];
		/* fall through */
	case 1:
		a += k[0];
		FINAL(a, b, c);
	}
	return c;
}

/* Index of the highest set bit, 1-based (0 for 0), by halving. */
INLINE u32 fls64(u64 x)
{
	u32 r = 0;
	if (!x)
		return 0;
	if (x >> 32) { x >>= 32; r += 32; }
	if (x >> 16) { x >>= 16; r += 16; }
	if (x >> 8) { x >>= 8; r += 8; }
	if (x >> 4) { x >>= 4; r += 4; }
	if (x >> 2) { x >>= 2; r += 2; }
	if (x >> 1) { r += 1; }
	return r + 1;
}

/* Cube root of a, tbl[i] ~ 64 * cbrt(i) for i < 64: seed from the top 6 bits, one Newton step. */
INLINE u32 cube_root(const u8 *tbl, u64 a)
{
	u32 b = fls64(a), shift, x;
	if (b < 7)
		return ((u32)tbl[(u32)a] + 35) >> 6;
	b = ((b * 84) >> 8) - 1;
	shift = (u32)(a >> (b * 3));
	x = ((u32)(((u32)tbl[shift & 63] + 10) << b)) >> 6;
	x = 2 * x + (u32)(a / ((u64)x * (u64)(x - 1)));
	return (x * 341) >> 10;
}

ENTRY(cubic) u64 cubic(const u8 *tbl, u64 n)
{
	u64 sum = 0;
	u32 cwnd = 10, last_max = 100, cnt;
	for (u64 i = 1; i <= n; i++) {
		/* K = cbrt(cube_factor * (last_max - cwnd)); t = elapsed time in 2^-10 s */
		u64 k = cube_root(tbl, (u64)410 * 1099511 * (last_max > cwnd ? last_max - cwnd : 1) >> 10);
		u64 t = (i * 37) & 4095, offs = t < k ? k - t : t - k;
		u64 delta = (410 * offs * offs * offs) >> 40;
		u32 target = t < k ? last_max - (u32)delta : last_max + (u32)delta;
		if (target > cwnd)
			cnt = cwnd / (target - cwnd);
		else
			cnt = 100 * cwnd;
		if (cnt == 0)
			cnt = 1;
		cwnd += (cwnd >= 2 * cnt) ? 2 : 1;
		if (cwnd > 2 * last_max) {
			last_max = cwnd;
			cwnd = (cwnd * 717) >> 10;
		}
		sum += cnt + cwnd + k;
	}
	return sum;
}

#ifdef NATIVE_MAIN
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* tbl[i]: the largest y <= 255 with y^3 <= i * 64^3 (bench/vm.ts builds the same). */
static void cube_table(u8 *tbl)
{
	for (u32 i = 0; i < 64; i++) {
		u32 y = 0;
		while (y < 255 && (u64)(y + 1) * (y + 1) * (y + 1) <= (u64)i * 262144)
			y++;
		tbl[i] = (u8)y;
	}
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Usage: workloads <fnv1a|jhash2|cubic> <n> <reps>; prints "<ns per rep> <result>".
 * fnv1a and jhash2 hash n bytes of buf[i] = i * 7 + 1 (mod 256); cubic runs n rounds. */
int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	const char *which = argv[1];
	u64 n = strtoull(argv[2], NULL, 0);
	int reps = atoi(argv[3]);
	u8 *buf = malloc(n + 64);
	for (u64 i = 0; i < n; i++)
		buf[i] = (u8)(i * 7 + 1);
	u8 tbl[64];
	cube_table(tbl);
	volatile u64 nv = n;
	volatile u64 sink = 0;
	u64 r = 0;
	double t0 = now_ns();
	for (int k = 0; k < reps; k++) {
		/* A volatile read per repetition keeps the compiler from hoisting the work out of the loop. */
		u64 m = nv;
		if (!strcmp(which, "fnv1a"))
			r = fnv1a(buf, m);
		else if (!strcmp(which, "jhash2"))
			r = jhash2((const u32 *)buf, m / 4);
		else
			r = cubic(tbl, m);
		sink += r;
	}
	double t1 = now_ns();
	printf("%.1f %llu\n", (t1 - t0) / reps, (unsigned long long)r);
	return 0;
}
#endif
