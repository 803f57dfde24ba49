import { ALL_CAPS, type Capability, Cred } from "./capability.js";
import { FdTable } from "./file.js";

/** The per-user accounting a map charges against (struct user_struct: locked_vm). */
export class UserStruct {
  /** Pages charged by BPF maps of this user (v5.8 bpf_map_charge_memlock). */
  locked_vm = 0;

  constructor(readonly uid: number) {}
}

export interface ProcessOptions {
  /** Capabilities held; default: all of CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_PERFMON (root). */
  caps?: Iterable<Capability>;
  /** false: no capability at all (an unprivileged user). */
  privileged?: boolean;
  uid?: number;
  comm?: string;
  /** RLIMIT_MEMLOCK in bytes; Infinity = RLIM_INFINITY. Default 8 MiB like a modern distro. */
  rlimitMemlock?: number;
}

/** A task calling bpf(): credentials, an fd table, the user it charges memory to. */
export class Process {
  readonly cred: Cred;
  readonly files = new FdTable();
  readonly comm: string;
  rlimitMemlock: number;
  /** The process's task_struct (set by the kernel that creates the process). */
  task: import("./task.js").Task | null = null;

  constructor(
    readonly pid: number,
    readonly user: UserStruct,
    opts: ProcessOptions = {},
  ) {
    const caps = opts.caps ?? (opts.privileged === false ? [] : ALL_CAPS);
    this.cred = new Cred(caps);
    this.comm = opts.comm ?? `proc${pid}`;
    this.rlimitMemlock = opts.rlimitMemlock ?? 8 * 1024 * 1024;
  }

  get uid(): number {
    return this.user.uid;
  }

  capable(cap: Capability): boolean {
    return this.cred.capable(cap);
  }

  setCap(cap: Capability, on: boolean): void {
    if (on) this.cred.caps.add(cap);
    else this.cred.caps.delete(cap);
  }
}
