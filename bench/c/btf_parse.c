/* libbpf's btf__parse() of a BTF file, the baseline of bench/btf.ts's parse rows.
 * Usage: btf_parse <file> <runs>; prints "<median ms> <first ms> <types> <mem ms>": the CPU
 * time (CLOCK_PROCESS_CPUTIME_ID) of one btf__parse + btf__type_cnt + btf__free, the median over
 * the runs and the first run's alone (the one a tool that parses once pays: after it glibc
 * serves the next 5 MB buffer from memory the process already faulted in), and the median of
 * btf__new + btf__free on the file's bytes already in memory (parsing without the read).
 * Built at bench time with gcc -O2 against libbpf-dev. */
#include <bpf/btf.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static double cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
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
	if (runs < 1)
		return 2;
	double *ms = calloc(runs, sizeof(double));
	unsigned int n = 0;
	for (int i = 0; i < runs; i++) {
		double t0 = cpu_ms();
		struct btf *btf = btf__parse(argv[1], NULL);
		if (!btf)
			return 1;
		n = btf__type_cnt(btf);
		btf__free(btf);
		ms[i] = cpu_ms() - t0;
	}
	double first = ms[0];
	qsort(ms, runs, sizeof(double), cmp);
	double parse = ms[runs / 2];

	int fd = open(argv[1], O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st))
		return 1;
	char *buf = malloc(st.st_size);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + got, st.st_size - got);
		if (k <= 0)
			return 1;
		got += k;
	}
	close(fd);
	for (int i = 0; i < runs; i++) {
		double t0 = cpu_ms();
		struct btf *btf = btf__new(buf, got);
		if (!btf)
			return 1;
		btf__free(btf);
		ms[i] = cpu_ms() - t0;
	}
	qsort(ms, runs, sizeof(double), cmp);
	printf("%.3f %.3f %u %.3f\n", parse, first, n, ms[runs / 2]);
	return 0;
}
