/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Appended to the simulated kernel's vmlinux.h: uapi names a real vmlinux.h carries (as
 * enums of the running kernel) but the simulated kernel's BTF does not declare.
 */
#ifndef __STRUCTOPS_SIM_COMPAT_H
#define __STRUCTOPS_SIM_COMPAT_H

typedef __u32 __wsum; /* used by libbpf's helper declarations */

enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_SK_STORAGE = 24,
};

enum {
	BPF_LOCAL_STORAGE_GET_F_CREATE = 1,
	BPF_SK_STORAGE_GET_F_CREATE = 1, /* the older name, kept by uapi */
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

enum {
	BPF_F_NO_PREALLOC = 1,
};

#endif /* __STRUCTOPS_SIM_COMPAT_H */
