/**
 * Sockets as far as the BPF core needs them: a `struct sock *` address in VM memory (what programs
 * receive), a socket fd (what userspace passes as an sk_storage key), and the socket's local
 * storage (sk->sk_bpf_storage). Subsystems with real sockets (TCP) register theirs.
 */
import { BpfError, EBADF } from "../uapi/errno.js";
import type { BpfMap, MemRegion } from "./bpf.js";
import { bpfSelemFree } from "./bpf_local_storage.js";
import { File, type FileOps, O_CLOEXEC, O_RDWR } from "./file.js";
import type { Kernel } from "./kernel.js";
import type { Process } from "./process.js";

/** ENOTSOCK: an fd that is not a socket. */
export const ENOTSOCK = 88;

export class Sock {
  /** sk->sk_bpf_storage: one value region per sk_storage map. */
  readonly sk_bpf_storage = new Map<BpfMap, MemRegion>();
  sk_refcnt = 1;
  dead = false;

  constructor(
    readonly kernel: Kernel,
    /** Address of the struct sock in VM memory. */
    readonly addr: number,
    /** The region the kernel allocated for it, if it owns the memory. */
    readonly region: MemRegion | null,
  ) {}
}

/** A socket the kernel allocates (a bare `struct sock` of `size` bytes). */
export function sk_alloc(k: Kernel, size = 256): Sock {
  const region = k.mem.alloc(size, { perm: "r", kind: "kobj", name: "sock" });
  return sock_register(k, region.addr, region);
}

/** Make a subsystem's socket (already in VM memory at `addr`) known to the BPF core. */
export function sock_register(k: Kernel, addr: number, region: MemRegion | null = null): Sock {
  const sk = new Sock(k, addr, region);
  k.sockByAddr.set(addr, sk);
  return sk;
}

/** __sk_destruct: local storage goes with the socket (bpf_sk_storage_free). */
export function sk_destruct(sk: Sock): void {
  if (sk.dead) return;
  sk.dead = true;
  const k = sk.kernel;
  for (const [map, region] of sk.sk_bpf_storage) {
    (map as BpfMap & { owners?: Set<Sock> }).owners?.delete(sk);
    bpfSelemFree(map, region, true);
  }
  sk.sk_bpf_storage.clear();
  k.sockByAddr.delete(sk.addr);
  if (sk.region) {
    const r = sk.region;
    k.rcu.callRcu(() => k.mem.free(r));
  }
}

export function sock_put(sk: Sock): void {
  if (--sk.sk_refcnt === 0) sk_destruct(sk);
}

export const socket_file_ops: FileOps<Sock> = {
  kind: "sock",
  release: (f) => sock_put(f.private_data),
};

/** sock_map_fd(): an fd for the socket (takes over one socket reference). */
export function sock_map_fd(proc: Process, sk: Sock): number {
  return proc.files.install(new File(socket_file_ops, sk, O_RDWR | O_CLOEXEC));
}

/** sockfd_lookup(): EBADF for a closed fd, ENOTSOCK for an fd that is not a socket. */
export function sockfd_lookup(proc: Process, fd: number): Sock {
  const f = proc.files.get(fd);
  if (f.f_op !== socket_file_ops) throw new BpfError(ENOTSOCK, `fd ${fd} is not a socket`, { fd });
  return f.private_data as Sock;
}

export { EBADF };
