// SPDX-License-Identifier: GPL-2.0
/*
 * fidhelper: runs one fidelity scenario's operations on the host kernel.
 *
 * Line protocol: one command per line on stdin, one answer line on stdout:
 *   ok <values...>      the command succeeded (the syscall's return value first, where it has one)
 *   err <errno>         the syscall failed with this errno
 *   fail <text>         the helper itself could not run the command (bad syntax, libbpf open...)
 * Byte strings travel as lowercase hex ("-" for none). The caller resolves names, BTF ids and
 * value layouts; this helper only issues the syscalls with raw `union bpf_attr` buffers laid out
 * as in the v6.18 uapi (the system's linux/bpf.h may be older, so fields are placed by offset).
 *
 * Cleanup: every struct_ops map the helper created is deleted (BPF_MAP_DELETE_ELEM) and every
 * libbpf link destroyed at "quit", at EOF and on SIGTERM/SIGINT/SIGHUP, because a map-registered
 * struct_ops stays registered in the kernel after its fds are closed.
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <bpf/libbpf_version.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ATTR_SIZE 256
#define MAX_TRACKED 256
#define MAX_OBJS 32
#define BPF_MAP_TYPE_STRUCT_OPS_NR 26
#define FID_BPF_F_LINK (1U << 13)
#define FID_BPF_STRUCT_OPS 44 /* enum bpf_attach_type */

/* bpf() commands (uapi enum bpf_cmd). */
enum {
	CMD_MAP_CREATE = 0,
	CMD_MAP_LOOKUP_ELEM = 1,
	CMD_MAP_UPDATE_ELEM = 2,
	CMD_MAP_DELETE_ELEM = 3,
	CMD_MAP_GET_NEXT_KEY = 4,
	CMD_PROG_LOAD = 5,
	CMD_PROG_TEST_RUN = 10,
	CMD_MAP_GET_FD_BY_ID = 14,
	CMD_OBJ_GET_INFO_BY_FD = 15,
	CMD_BTF_LOAD = 18,
	CMD_MAP_FREEZE = 22,
	CMD_LINK_CREATE = 28,
	CMD_LINK_UPDATE = 29,
	CMD_LINK_DETACH = 34,
};

static __u32 tracked_maps[MAX_TRACKED]; /* map ids */
static int n_tracked;

struct obj_slot {
	char path[512];
	char rename[32];
	struct bpf_object *obj;
	struct bpf_link *link;
	int link_fd;
};
static struct obj_slot objs[MAX_OBJS];
static int n_objs;

static void put32(uint8_t *a, int off, uint32_t v) { memcpy(a + off, &v, 4); }
static void put64(uint8_t *a, int off, uint64_t v) { memcpy(a + off, &v, 8); }
static uint32_t get32(const uint8_t *a, int off) { uint32_t v; memcpy(&v, a + off, 4); return v; }

static long sys_bpf(int cmd, uint8_t *attr)
{
	return syscall(__NR_bpf, cmd, attr, ATTR_SIZE);
}

/* Answer for a syscall result: "ok <ret>" or "err <errno>". */
static void answer(long r)
{
	if (r < 0)
		printf("err %d\n", errno);
	else
		printf("ok %ld\n", r);
}

/* Parse hex into a fresh buffer; "-" gives NULL with *len 0. */
static uint8_t *unhex(const char *s, size_t *len)
{
	size_t n, i;
	uint8_t *b;

	*len = 0;
	if (!s || !strcmp(s, "-"))
		return NULL;
	n = strlen(s) / 2;
	b = calloc(n ? n : 1, 1);
	for (i = 0; i < n; i++) {
		unsigned int x;

		sscanf(s + 2 * i, "%2x", &x);
		b[i] = (uint8_t)x;
	}
	*len = n;
	return b;
}

static void print_hex(const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		printf("%02x", b[i]);
	if (!n)
		printf("-");
}

static long num(const char *s) { return s ? strtol(s, NULL, 0) : 0; }

/* Remember a struct_ops map by id: the scenario may close every fd of a registered map. */
static void track_map(int fd)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);

	if (n_tracked < MAX_TRACKED && !bpf_obj_get_info_by_fd(fd, &info, &len))
		tracked_maps[n_tracked++] = info.id;
}

static void cleanup(void)
{
	uint8_t attr[ATTR_SIZE];
	uint32_t zero = 0;
	int i;

	/* A non-link struct_ops map in INUSE stays registered until deleted: delete every one. */
	for (i = 0; i < n_tracked; i++) {
		int fd = bpf_map_get_fd_by_id(tracked_maps[i]);

		if (fd < 0)
			continue;
		memset(attr, 0, sizeof(attr));
		put32(attr, 0, fd);
		put64(attr, 8, (uintptr_t)&zero);
		sys_bpf(CMD_MAP_DELETE_ELEM, attr);
		close(fd);
	}
	n_tracked = 0;
	for (i = 0; i < n_objs; i++) {
		if (objs[i].link_fd > 0)
			close(objs[i].link_fd);
		if (objs[i].link)
			bpf_link__destroy(objs[i].link);
		bpf_object__close(objs[i].obj);
	}
	n_objs = 0;
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int silent_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && getenv("FIDHELPER_VERBOSE"))
		return vfprintf(stderr, fmt, ap);
	return 0;
}

/* Set the `name` member of every struct_ops map's initial value (the object's own BTF layout). */
static int rename_struct_ops(struct bpf_object *obj, const char *newname)
{
	struct btf *btf = bpf_object__btf(obj);
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		const struct btf_type *t;
		const struct btf_member *m;
		size_t sz;
		void *data;
		int id, i;

		if (bpf_map__type(map) != BPF_MAP_TYPE_STRUCT_OPS_NR)
			continue;
		data = (void *)bpf_map__initial_value(map, &sz);
		id = btf__find_by_name_kind(btf, "tcp_congestion_ops", BTF_KIND_STRUCT);
		if (!data || id < 0)
			continue;
		t = btf__type_by_id(btf, id);
		m = btf_members(t);
		for (i = 0; i < btf_vlen(t); i++, m++) {
			if (strcmp(btf__name_by_offset(btf, m->name_off), "name"))
				continue;
			memset((char *)data + m->offset / 8, 0, 16);
			strncpy((char *)data + m->offset / 8, newname, 15);
		}
	}
	return 0;
}

/*
 * Open and load an object once per (path, rename). With rename set, its struct_ops maps get that
 * name, become BPF_F_LINK maps (closing the helper unregisters them) and are attached; without,
 * the struct_ops maps are created (as libbpf >= 1.4 needs, to load their programs) but stay in
 * INIT: never updated, never registered.
 */
static struct obj_slot *get_obj(const char *path, const char *rename, int *err)
{
	struct bpf_map *map;
	struct obj_slot *s;
	int i;

	for (i = 0; i < n_objs; i++)
		if (!strcmp(objs[i].path, path) && !strcmp(objs[i].rename, rename ? rename : ""))
			return &objs[i];
	if (n_objs == MAX_OBJS) {
		*err = ENOSPC;
		return NULL;
	}
	s = &objs[n_objs];
	memset(s, 0, sizeof(*s));
	snprintf(s->path, sizeof(s->path), "%s", path);
	snprintf(s->rename, sizeof(s->rename), "%s", rename ? rename : "");
	s->obj = bpf_object__open_file(path, NULL);
	if (!s->obj) {
		*err = errno;
		return NULL;
	}
	bpf_object__for_each_map(map, s->obj) {
		if (bpf_map__type(map) != BPF_MAP_TYPE_STRUCT_OPS_NR)
			continue;
		if (rename)
			bpf_map__set_map_flags(map, bpf_map__map_flags(map) | FID_BPF_F_LINK);
	}
	if (rename)
		rename_struct_ops(s->obj, rename);
	if (bpf_object__load(s->obj)) {
		*err = errno;
		bpf_object__close(s->obj);
		return NULL;
	}
	if (rename) {
		bpf_object__for_each_map(map, s->obj) {
			if (bpf_map__type(map) != BPF_MAP_TYPE_STRUCT_OPS_NR)
				continue;
			uint8_t attr[ATTR_SIZE] = { 0 };

			/* The system's libbpf may predate struct_ops links: it only does the update
			 * (INIT -> READY for a BPF_F_LINK map); the link is created here. */
			s->link = bpf_map__attach_struct_ops(map);
			if (!s->link) {
				*err = errno;
				bpf_object__close(s->obj);
				return NULL;
			}
			put32(attr, 0, bpf_map__fd(map));
			put32(attr, 8, FID_BPF_STRUCT_OPS);
			s->link_fd = sys_bpf(CMD_LINK_CREATE, attr);
			if (s->link_fd < 0) {
				*err = errno;
				bpf_link__destroy(s->link);
				bpf_object__close(s->obj);
				return NULL;
			}
		}
	}
	n_objs++;
	return s;
}

struct sink {
	int fd;
	long got;
};

static void *sink_thread(void *arg)
{
	struct sink *s = arg;
	char buf[65536];
	long r;

	while ((r = read(s->fd, buf, sizeof(buf))) > 0)
		s->got += r;
	return NULL;
}

/*
 * An XDP program for lo that drops one in `every` packets longer than 1000 bytes (data
 * segments, never the handshake or pure ACKs), counting them in an array map.
 */
static int load_dropper(int every)
{
	uint8_t attr[ATTR_SIZE] = { 0 };
	int map_fd, i;
	struct bpf_insn p[] = {
		{ BPF_LDX | BPF_W | BPF_MEM, 2, 1, 0, 0 },	/* r2 = ctx->data */
		{ BPF_LDX | BPF_W | BPF_MEM, 3, 1, 4, 0 },	/* r3 = ctx->data_end */
		{ BPF_ALU64 | BPF_MOV | BPF_X, 4, 2, 0, 0 },	/* r4 = r2 */
		{ BPF_ALU64 | BPF_ADD | BPF_K, 4, 0, 0, 1000 },	/* r4 += 1000 */
		{ BPF_JMP | BPF_JGT | BPF_X, 4, 3, 14, 0 },	/* short packet: pass */
		{ BPF_ST | BPF_W | BPF_MEM, 10, 0, -4, 0 },	/* key = 0 */
		{ BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0 },
		{ BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4 },
		{ BPF_LD | BPF_DW | BPF_IMM, 1, 1, 0, 0 },	/* r1 = map (fd patched below) */
		{ 0, 0, 0, 0, 0 },
		{ BPF_JMP | BPF_CALL, 0, 0, 0, 1 },		/* bpf_map_lookup_elem */
		{ BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 7, 0 },
		{ BPF_LDX | BPF_DW | BPF_MEM, 1, 0, 0, 0 },
		{ BPF_ALU64 | BPF_ADD | BPF_K, 1, 0, 0, 1 },
		{ BPF_STX | BPF_DW | BPF_MEM, 0, 1, 0, 0 },
		{ BPF_ALU64 | BPF_MOD | BPF_K, 1, 0, 0, every },
		{ BPF_JMP | BPF_JNE | BPF_K, 1, 0, 2, 0 },
		{ BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1 },	/* XDP_DROP */
		{ BPF_JMP | BPF_EXIT, 0, 0, 0, 0 },
		{ BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 2 },	/* XDP_PASS */
		{ BPF_JMP | BPF_EXIT, 0, 0, 0, 0 },
	};

	put32(attr, 0, 2 /* BPF_MAP_TYPE_ARRAY */);
	put32(attr, 4, 4);
	put32(attr, 8, 8);
	put32(attr, 12, 1);
	map_fd = sys_bpf(CMD_MAP_CREATE, attr);
	if (map_fd < 0)
		return -1;
	p[8].imm = map_fd;
	memset(attr, 0, sizeof(attr));
	put32(attr, 0, 6 /* BPF_PROG_TYPE_XDP */);
	put32(attr, 4, sizeof(p) / sizeof(p[0]));
	put64(attr, 8, (uintptr_t)p);
	put64(attr, 16, (uintptr_t) "GPL");
	i = sys_bpf(CMD_PROG_LOAD, attr);
	close(map_fd);
	return i;
}

/* In a fresh network namespace: lo up with a 1500-byte MTU and, with `every`, the dropper. */
static int lossy_loopback(int every)
{
	struct ifreq ifr = { 0 };
	int s, prog;

	if (unshare(CLONE_NEWNET))
		return -1;
	s = socket(AF_INET, SOCK_DGRAM, 0);
	strcpy(ifr.ifr_name, "lo");
	ifr.ifr_mtu = 1500;
	if (ioctl(s, SIOCSIFMTU, &ifr))
		return -1;
	if (ioctl(s, SIOCGIFFLAGS, &ifr))
		return -1;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr))
		return -1;
	close(s);
	if (every <= 0)
		return 0;
	prog = load_dropper(every);
	if (prog < 0)
		return -1;
	return bpf_xdp_attach(if_nametoindex("lo"), prog, XDP_FLAGS_SKB_MODE, NULL) ? -1 : 0;
}

/* A loopback TCP transfer of `bytes` with congestion control `cc` on the sender. */
static void tcp_xfer(const char *cc, long bytes)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(addr);
	int lfd, cfd, afd, one = 1;
	struct tcp_info ti;
	socklen_t tlen = sizeof(ti);
	char used[32] = { 0 };
	socklen_t ulen = sizeof(used);
	static char buf[65536];
	struct sink sink = { 0 };
	pthread_t th;
	long sent = 0;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen)) {
		printf("err %d\n", errno);
		close(lfd);
		return;
	}
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	if (setsockopt(cfd, IPPROTO_TCP, TCP_CONGESTION, cc, strlen(cc))) {
		printf("err %d\n", errno);
		close(cfd);
		close(lfd);
		return;
	}
	if (connect(cfd, (struct sockaddr *)&addr, sizeof(addr))) {
		printf("err %d\n", errno);
		close(cfd);
		close(lfd);
		return;
	}
	afd = accept(lfd, NULL, NULL);
	sink.fd = afd;
	pthread_create(&th, NULL, sink_thread, &sink);
	memset(buf, 0xa5, sizeof(buf));
	while (sent < bytes) {
		long n = bytes - sent < (long)sizeof(buf) ? bytes - sent : (long)sizeof(buf);
		long w = write(cfd, buf, n);

		if (w <= 0)
			break;
		sent += w;
	}
	getsockopt(cfd, IPPROTO_TCP, TCP_CONGESTION, used, &ulen);
	getsockopt(cfd, IPPROTO_TCP, TCP_INFO, &ti, &tlen);
	shutdown(cfd, SHUT_WR);
	pthread_join(th, NULL);
	close(cfd);
	close(afd);
	close(lfd);
	printf("ok %ld received=%ld cc=%s snd_cwnd=%u\n", sent, sink.got, used, ti.tcpi_snd_cwnd);
}

static void cmd_test_run(char **a)
{
	uint8_t attr[ATTR_SIZE] = { 0 };
	size_t ctx_len, st_len;
	uint8_t *ctx = unhex(a[2], &ctx_len);
	uint8_t *st = unhex(a[3], &st_len);
	/* test_run fd ctx(hex) state(hex|-) ctx_size(N|-) flags cpu */
	long ctx_size = a[4] && strcmp(a[4], "-") ? num(a[4]) : (long)ctx_len;
	long r;

	/* args[0] of a bpf_dummy_ops program is a user pointer to the state. */
	if (st && ctx_len >= 8)
		put64(ctx, 0, (uintptr_t)st);
	put32(attr, 0, num(a[1]));
	put32(attr, 40, ctx_size);
	put64(attr, 48, (uintptr_t)ctx);
	put32(attr, 64, num(a[5])); /* test.flags */
	put32(attr, 68, num(a[6])); /* test.cpu */
	r = sys_bpf(CMD_PROG_TEST_RUN, attr);
	if (r < 0) {
		printf("err %d\n", errno);
	} else {
		printf("ok %ld retval=%u state=", r, get32(attr, 4));
		print_hex(st, st_len);
		printf("\n");
	}
	free(ctx);
	free(st);
}

static void cmd_info(const char *kind, int fd)
{
	uint8_t attr[ATTR_SIZE] = { 0 };
	uint8_t info[256] = { 0 };
	long r;

	put32(attr, 0, fd);
	put32(attr, 4, !strcmp(kind, "map") ? 88 : !strcmp(kind, "link") ? 64 : 0);
	put64(attr, 8, (uintptr_t)info);
	if (!strcmp(kind, "prog")) {
		struct bpf_prog_info pi = { 0 };

		put32(attr, 4, sizeof(pi));
		put64(attr, 8, (uintptr_t)&pi);
		r = sys_bpf(CMD_OBJ_GET_INFO_BY_FD, attr);
		if (r < 0) {
			printf("err %d\n", errno);
			return;
		}
		printf("ok 0 type=%u id=%u name=%s\n", pi.type, pi.id, pi.name[0] ? pi.name : "-");
		return;
	}
	r = sys_bpf(CMD_OBJ_GET_INFO_BY_FD, attr);
	if (r < 0) {
		printf("err %d\n", errno);
		return;
	}
	if (!strcmp(kind, "map")) {
		char name[17] = { 0 };

		memcpy(name, info + 24, 16);
		printf("ok 0 type=%u id=%u key_size=%u value_size=%u max_entries=%u map_flags=%u name=%s "
		       "btf_vmlinux_value_type_id=%u btf_id=%u btf_vmlinux_id=%u\n",
		       get32(info, 0), get32(info, 4), get32(info, 8), get32(info, 12), get32(info, 16),
		       get32(info, 20), name[0] ? name : "-", get32(info, 44), get32(info, 64), get32(info, 76));
	} else {
		/* bpf_link_info: type, id, prog_id, then the union (struct_ops.map_id at 16). */
		printf("ok 0 type=%u id=%u prog_id=%u map_id=%u\n", get32(info, 0), get32(info, 4), get32(info, 8),
		       get32(info, 16));
	}
}

static void dispatch(char **a, int n)
{
	uint8_t attr[ATTR_SIZE] = { 0 };
	const char *c = a[0];
	size_t l1, l2;
	uint8_t *b1, *b2;
	long r;

	if (!strcmp(c, "btf_load")) {
		static char log[1 << 16];

		b1 = unhex(a[1], &l1);
		put64(attr, 0, (uintptr_t)b1);
		put32(attr, 16, l1);
		if (getenv("FIDHELPER_VERBOSE")) {
			log[0] = 0;
			put64(attr, 8, (uintptr_t)log);
			put32(attr, 20, sizeof(log));
			put32(attr, 24, 1);
		}
		r = sys_bpf(CMD_BTF_LOAD, attr);
		if (r < 0 && log[0])
			fprintf(stderr, "btf_load: %s\n", log);
		answer(r);
		free(b1);
	} else if (!strcmp(c, "btf_fd_by_id")) {
		r = bpf_btf_get_fd_by_id(num(a[1]));
		answer(r < 0 ? -1 : r);
	} else if (!strcmp(c, "map_create")) {
		/* type key_size value_size max_entries flags btf_fd vtype_id name [map_extra [vtype_btf_obj_fd]] */
		put32(attr, 0, num(a[1]));
		put32(attr, 4, num(a[2]));
		put32(attr, 8, num(a[3]));
		put32(attr, 12, num(a[4]));
		put32(attr, 16, num(a[5]));
		if (strcmp(a[8], "-"))
			strncpy((char *)attr + 28, a[8], 15);
		put32(attr, 48, num(a[6]));
		put32(attr, 60, num(a[7]));
		if (n > 9)
			put64(attr, 64, num(a[9]));
		if (n > 10)
			put32(attr, 72, num(a[10]));
		r = sys_bpf(CMD_MAP_CREATE, attr);
		if (r >= 0 && num(a[1]) == BPF_MAP_TYPE_STRUCT_OPS_NR)
			track_map(r);
		answer(r);
	} else if (!strcmp(c, "update") || !strcmp(c, "lookup") || !strcmp(c, "delete") ||
		   !strcmp(c, "next_key")) {
		/* update fd key value flags | lookup fd key value_size flags | delete fd key | next_key fd key size */
		uint8_t out[4096] = { 0 };
		long sz = 0;

		b1 = unhex(a[1 + 1], &l1);
		b2 = NULL;
		put32(attr, 0, num(a[1]));
		put64(attr, 8, (uintptr_t)b1);
		if (!strcmp(c, "update")) {
			b2 = unhex(a[3], &l2);
			put64(attr, 16, (uintptr_t)b2);
			put64(attr, 24, num(a[4]));
			answer(sys_bpf(CMD_MAP_UPDATE_ELEM, attr));
		} else if (!strcmp(c, "delete")) {
			answer(sys_bpf(CMD_MAP_DELETE_ELEM, attr));
		} else {
			sz = num(a[3]);
			put64(attr, 16, (uintptr_t)out);
			if (!strcmp(c, "lookup"))
				put64(attr, 24, n > 4 ? num(a[4]) : 0);
			r = sys_bpf(!strcmp(c, "lookup") ? CMD_MAP_LOOKUP_ELEM : CMD_MAP_GET_NEXT_KEY, attr);
			if (r < 0) {
				printf("err %d\n", errno);
			} else {
				printf("ok %ld ", r);
				print_hex(out, sz > (long)sizeof(out) ? sizeof(out) : sz);
				printf("\n");
			}
		}
		free(b1);
		free(b2);
	} else if (!strcmp(c, "freeze")) {
		put32(attr, 0, num(a[1]));
		answer(sys_bpf(CMD_MAP_FREEZE, attr));
	} else if (!strcmp(c, "link_create")) {
		/* map_fd attach_type flags */
		put32(attr, 0, num(a[1]));
		put32(attr, 8, num(a[2]));
		put32(attr, 12, num(a[3]));
		answer(sys_bpf(CMD_LINK_CREATE, attr));
	} else if (!strcmp(c, "link_update")) {
		/* link_fd new_map_fd flags old_map_fd */
		put32(attr, 0, num(a[1]));
		put32(attr, 4, num(a[2]));
		put32(attr, 8, num(a[3]));
		put32(attr, 12, num(a[4]));
		answer(sys_bpf(CMD_LINK_UPDATE, attr));
	} else if (!strcmp(c, "link_detach")) {
		put32(attr, 0, num(a[1]));
		answer(sys_bpf(CMD_LINK_DETACH, attr));
	} else if (!strcmp(c, "close")) {
		answer(close(num(a[1])));
	} else if (!strcmp(c, "map_fd_by_id")) {
		/* id open_flags */
		put32(attr, 0, num(a[1]));
		put32(attr, 8, num(a[2]));
		answer(sys_bpf(CMD_MAP_GET_FD_BY_ID, attr));
	} else if (!strcmp(c, "prog_load")) {
		/* type expected_attach_type attach_btf_id prog_flags license(hex) insns name */
		size_t llen;
		uint8_t *lic = unhex(a[5], &llen);
		char *license = calloc(llen + 1, 1);

		if (lic)
			memcpy(license, lic, llen);
		free(lic);
		b1 = unhex(a[6], &l1);
		put32(attr, 0, num(a[1]));
		put32(attr, 4, l1 / 8);
		put64(attr, 8, (uintptr_t)b1);
		put64(attr, 16, (uintptr_t)license);
		put32(attr, 44, num(a[4]));
		if (n > 7 && strcmp(a[7], "-"))
			strncpy((char *)attr + 48, a[7], 15);
		put32(attr, 68, num(a[2]));
		put32(attr, 108, num(a[3]));
		answer(sys_bpf(CMD_PROG_LOAD, attr));
		free(b1);
		free(license);
	} else if (!strcmp(c, "obj_prog") || !strcmp(c, "obj_map")) {
		/* obj_prog path name */
		int err = 0, fd;
		struct obj_slot *s = get_obj(a[1], NULL, &err);

		if (!s) {
			/* The system libbpf may not know the object's sections: not a kernel answer. */
			printf("fail libbpf %d.%d could not load %s: errno %d\n", LIBBPF_MAJOR_VERSION,
			       LIBBPF_MINOR_VERSION, a[1], err);
			return;
		}
		if (!strcmp(c, "obj_prog")) {
			struct bpf_program *p = bpf_object__find_program_by_name(s->obj, a[2]);

			fd = p ? bpf_program__fd(p) : -1;
		} else {
			struct bpf_map *m = bpf_object__find_map_by_name(s->obj, a[2]);

			fd = m ? bpf_map__fd(m) : -1;
		}
		if (fd < 0)
			printf("fail no %s in %s\n", a[2], a[1]);
		else
			printf("ok %d\n", fd);
	} else if (!strcmp(c, "cc_register")) {
		/* cc_register path newname: load with every struct_ops map as a link, attached */
		int err = 0;
		struct obj_slot *s = get_obj(a[1], a[2], &err);

		if (!s)
			printf("err %d\n", err);
		else
			printf("ok %d\n", s->link_fd);
	} else if (!strcmp(c, "cc_map")) {
		/* cc_map path newname mapname: a map fd of a registered object (.bss) */
		int err = 0;
		struct obj_slot *s = get_obj(a[1], a[2], &err);
		struct bpf_map *m = s ? bpf_object__find_map_by_name(s->obj, a[3]) : NULL;

		if (!m)
			printf("fail no map %s\n", a[3]);
		else
			printf("ok %d\n", bpf_map__fd(m));
	} else if (!strcmp(c, "tcp_xfer")) {
		/* tcp_xfer cc bytes [drop_every]: with drop_every, in a child in its own netns */
		int every = n > 3 ? num(a[3]) : 0;
		pid_t pid;

		if (!every) {
			tcp_xfer(a[1], num(a[2]));
			return;
		}
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			if (lossy_loopback(every))
				printf("err %d\n", errno);
			else
				tcp_xfer(a[1], num(a[2]));
			fflush(stdout);
			_exit(0);
		}
		waitpid(pid, NULL, 0);
	} else if (!strcmp(c, "test_run")) {
		cmd_test_run(a);
	} else if (!strcmp(c, "info")) {
		cmd_info(a[1], num(a[2]));
	} else if (!strcmp(c, "poll")) {
		struct pollfd p = { .fd = num(a[1]), .events = POLLIN | POLLOUT };

		r = poll(&p, 1, 0);
		if (r < 0)
			printf("err %d\n", errno);
		else
			printf("ok %ld revents=%d\n", r, p.revents);
	} else if (!strcmp(c, "fdinfo")) {
		/* fdinfo fd: /proc/self/fdinfo/<fd>, hex-encoded */
		char path[64], text[4096];
		FILE *f;
		size_t len;

		snprintf(path, sizeof(path), "/proc/self/fdinfo/%ld", num(a[1]));
		f = fopen(path, "r");
		if (!f) {
			printf("err %d\n", errno);
			return;
		}
		len = fread(text, 1, sizeof(text), f);
		fclose(f);
		printf("ok 0 ");
		print_hex((uint8_t *)text, len);
		printf("\n");
	} else if (!strcmp(c, "drop_caps")) {
		/* Clear every capability set (uid stays 0): the unprivileged view of bpf(). */
		struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
		struct __user_cap_data_struct data[2] = { 0 };

		answer(syscall(SYS_capset, &hdr, data));
	} else if (!strcmp(c, "ping")) {
		printf("ok 0 pid=%d\n", getpid());
	} else {
		printf("fail unknown command %s\n", c);
	}
}

int main(void)
{
	char line[1 << 16];

	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(silent_print);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, on_signal);
	while (fgets(line, sizeof(line), stdin)) {
		char *a[16] = { 0 };
		char *save = NULL, *tok;
		int n = 0;

		line[strcspn(line, "\n")] = 0;
		for (tok = strtok_r(line, " ", &save); tok && n < 15; tok = strtok_r(NULL, " ", &save))
			a[n++] = tok;
		if (!n)
			continue;
		if (!strcmp(a[0], "quit"))
			break;
		errno = 0;
		dispatch(a, n);
	}
	cleanup();
	return 0;
}
