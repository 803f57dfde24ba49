/* Native baselines for bench/vm.ts: the same algorithms as the BPF programs there.
 * Usage: vm_baseline <mul64|sieve|cbrt> <n> <reps>; prints "<ns per rep> <result>". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t mul64_loop(uint64_t n)
{
	uint64_t x = 1;
	for (uint64_t i = n; i != 0; i--)
		x = x * 0x9e3779b97f4a7c15ULL + i;
	return x;
}

static uint64_t sieve(uint8_t *mem, uint64_t n)
{
	uint64_t count = 0;
	memset(mem, 0, n);
	for (uint64_t i = 2; i < n; i++) {
		if (mem[i])
			continue;
		count++;
		for (uint64_t j = i * i; j < n; j += i)
			mem[j] = 1;
	}
	return count;
}

static uint64_t cbrt_sum(uint64_t n)
{
	uint64_t sum = 0;
	for (uint64_t i = 1; i <= n; i++) {
		uint64_t a = i * 1000003, b = 0, x, y;
		for (uint64_t t = a; t; t >>= 1)
			b++;
		x = 1ULL << ((b + 2) / 3);
		for (;;) {
			y = (2 * x + a / (x * x)) / 3;
			if (y >= x)
				break;
			x = y;
		}
		sum += x;
	}
	return sum;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	const char *which = argv[1];
	uint64_t n = strtoull(argv[2], NULL, 0);
	int reps = atoi(argv[3]);
	uint8_t *mem = malloc(n + 8);
	volatile uint64_t sink = 0, nv = n;
	uint64_t r = 0;
	double t0 = now_ns();
	for (int k = 0; k < reps; k++) {
		/* A volatile read per repetition keeps the compiler from hoisting the work out of the loop. */
		uint64_t m = nv;
		if (!strcmp(which, "mul64"))
			r = mul64_loop(m);
		else if (!strcmp(which, "sieve"))
			r = sieve(mem, m);
		else
			r = cbrt_sum(m);
		sink += r;
	}
	double t1 = now_ns();
	printf("%.1f %llu\n", (t1 - t0) / reps, (unsigned long long)r);
	free(mem);
	return 0;
}
