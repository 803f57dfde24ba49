/* libbpf's btf__parse() of a BTF file, the baseline of bench/btf.ts's parse row.
 * Usage: btf_parse <file> <runs>; prints the median ms of one btf__parse + btf__free and the
 * number of types. Built at bench time with gcc -O2 against libbpf-dev. */
#include <bpf/btf.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	int runs = atoi(argv[2]);
	double *ms = calloc(runs, sizeof(double));
	unsigned int n = 0;
	for (int i = 0; i < runs; i++) {
		double t0 = now_ms();
		struct btf *btf = btf__parse(argv[1], NULL);
		if (!btf)
			return 1;
		n = btf__type_cnt(btf);
		btf__free(btf);
		ms[i] = now_ms() - t0;
	}
	qsort(ms, runs, sizeof(double), cmp);
	printf("%.3f %u\n", ms[runs / 2], n);
	return 0;
}
