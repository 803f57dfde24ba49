/** Capabilities the BPF core checks (include/uapi/linux/capability.h numbers). */
export const CAP_NET_ADMIN = 12;
export const CAP_SYS_ADMIN = 21;
/** KF_DESTRUCTIVE kfuncs. */
export const CAP_SYS_BOOT = 22;
export const CAP_PERFMON = 38;
export const CAP_BPF = 39;

export type Capability =
  | typeof CAP_NET_ADMIN
  | typeof CAP_SYS_ADMIN
  | typeof CAP_SYS_BOOT
  | typeof CAP_PERFMON
  | typeof CAP_BPF;

export const CAP_NAMES: Record<Capability, string> = {
  [CAP_NET_ADMIN]: "CAP_NET_ADMIN",
  [CAP_SYS_ADMIN]: "CAP_SYS_ADMIN",
  [CAP_SYS_BOOT]: "CAP_SYS_BOOT",
  [CAP_PERFMON]: "CAP_PERFMON",
  [CAP_BPF]: "CAP_BPF",
};

export const ALL_CAPS: readonly Capability[] = [CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_BOOT, CAP_PERFMON, CAP_BPF];

/** The credentials of a task: which capabilities it holds. */
export class Cred {
  readonly caps: Set<Capability>;

  constructor(caps: Iterable<Capability> = []) {
    this.caps = new Set(caps);
  }

  /** capable(): CAP_SYS_ADMIN implies CAP_BPF/CAP_PERFMON for bpf_capable()/perfmon_capable(), as the kernel does. */
  capable(cap: Capability): boolean {
    return this.caps.has(cap);
  }

  /** bpf_capable(): CAP_BPF or CAP_SYS_ADMIN. */
  bpfCapable(): boolean {
    return this.caps.has(CAP_BPF) || this.caps.has(CAP_SYS_ADMIN);
  }

  /** bpf_token_capable(CAP_NET_ADMIN): CAP_SYS_ADMIN stands in for any capability the BPF core asks for. */
  netAdminCapable(): boolean {
    return this.caps.has(CAP_NET_ADMIN) || this.caps.has(CAP_SYS_ADMIN);
  }

  /** perfmon_capable(): CAP_PERFMON or CAP_SYS_ADMIN. */
  perfmonCapable(): boolean {
    return this.caps.has(CAP_PERFMON) || this.caps.has(CAP_SYS_ADMIN);
  }
}
