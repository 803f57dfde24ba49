/* Runs a command and prints "<wall ms> <cpu ms>" on stdout: its wall time and the user + system
 * CPU time wait4() reports for it (microseconds, where /proc/self/stat's cutime counts 10 ms
 * ticks). The command's stdout goes to /dev/null, its stderr is left as it is.
 * Usage: rusage CMD [ARGS...]. Built at bench time with gcc -O2 (bench/loader.ts). */
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	double t0 = now_ms();
	pid_t pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 1);
		execvp(argv[1], argv + 1);
		_exit(127);
	}
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0)
		return 2;
	double wall = now_ms() - t0;
	double cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
	printf("%.3f %.3f\n", wall, cpu);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}
