/**
 * The helper functions the kernel provides to programs, by id (kernel/bpf/helpers.c,
 * kernel/trace/bpf_trace.c, net/core/bpf_sk_storage.c).
 */
import {
  BPF_LOCAL_STORAGE_GET_F_CREATE,
  BPF_NOEXIST,
  BPF_SK_STORAGE_GET_F_CREATE,
  bpf_func_id as F,
} from "../uapi/bpf.js";
import { BpfError, EFAULT, EINVAL, ENOENT } from "../uapi/errno.js";
import type { BpfMap } from "./bpf.js";
import { bpf_local_storage_lookup, bpf_local_storage_update, bpf_sk_storage_del } from "./bpf_sk_storage.js";
import { task_storage_delete, task_storage_lookup, task_storage_update } from "./bpf_task_storage.js";
import type { HelperArgs, Kernel } from "./kernel.js";

function mapArg(k: Kernel, c: HelperArgs, i: number): BpfMap {
  const map = k.mapByAddr.get(c.argNum(i));
  if (!map) throw new BpfError(EFAULT, `r${i} is not a map pointer`);
  return map;
}

function bytesArg(k: Kernel, c: HelperArgs, i: number, len: number): Uint8Array {
  return k.mem.bytes(c.argNum(i), len).slice();
}

function errRet(e: unknown): number {
  if (e instanceof BpfError) return -e.errno;
  throw e;
}

/** bpf_trace_printk's format: %d %i %u %x %ld %lu %lx %lld %llu %llx %p %s %c %%. */
export function bpfSnprintf(k: Kernel, fmt: string, args: bigint[]): string {
  let ai = 0;
  return fmt.replace(/%(l{0,2})([diuxpsc%])/g, (_m, l: string, conv: string) => {
    if (conv === "%") return "%";
    const v = args[ai++] ?? 0n;
    const bits = l.length === 0 && conv !== "p" && conv !== "s" ? 32 : 64;
    switch (conv) {
      case "d":
      case "i":
        return BigInt.asIntN(bits, v).toString();
      case "u":
        return BigInt.asUintN(bits, v).toString();
      case "x":
        return BigInt.asUintN(bits, v).toString(16);
      case "p":
        return `0x${BigInt.asUintN(64, v).toString(16)}`;
      case "c":
        return String.fromCharCode(Number(v & 0xffn));
      default: {
        try {
          return (k.mem as { readCString?: (a: number, m: number) => string }).readCString?.(Number(v), 256) ?? "";
        } catch {
          return "(fault)";
        }
      }
    }
  });
}

export function registerBaseHelpers(k: Kernel): void {
  k.registerHelper(F.BPF_FUNC_map_lookup_elem, (c) => {
    const map = mapArg(k, c, 1);
    return map.ops.map_lookup_elem(map, bytesArg(k, c, 2, map.key_size));
  });
  k.registerHelper(F.BPF_FUNC_map_update_elem, (c) => {
    const map = mapArg(k, c, 1);
    try {
      map.ops.map_update_elem(map, bytesArg(k, c, 2, map.key_size), bytesArg(k, c, 3, map.value_size), c.argNum(4));
      return 0;
    } catch (e) {
      return errRet(e);
    }
  });
  k.registerHelper(F.BPF_FUNC_map_delete_elem, (c) => {
    const map = mapArg(k, c, 1);
    try {
      map.ops.map_delete_elem(map, bytesArg(k, c, 2, map.key_size));
      return 0;
    } catch (e) {
      return errRet(e);
    }
  });
  // Queue and stack maps: the value is copied in (push) or out (pop, peek); errors are -errno.
  k.registerHelper(F.BPF_FUNC_map_push_elem, (c) => {
    const map = mapArg(k, c, 1);
    try {
      map.ops.map_push_elem!(map, bytesArg(k, c, 2, map.value_size), c.argNum(3));
      return 0;
    } catch (e) {
      return errRet(e);
    }
  });
  const popPeek = (c: HelperArgs, del: boolean): number => {
    const map = mapArg(k, c, 1);
    const out = new Uint8Array(map.value_size);
    let r = 0;
    try {
      (del ? map.ops.map_pop_elem! : map.ops.map_peek_elem!)(map, out);
    } catch (e) {
      r = errRet(e);
    }
    // An empty map zeroes the program's buffer too.
    k.mem.bytes(c.argNum(2), map.value_size).set(out);
    return r;
  };
  k.registerHelper(F.BPF_FUNC_map_pop_elem, (c) => popPeek(c, true));
  k.registerHelper(F.BPF_FUNC_map_peek_elem, (c) => popPeek(c, false));
  k.registerHelper(F.BPF_FUNC_ktime_get_ns, () => k.ktimeGetNs());
  k.registerHelper(F.BPF_FUNC_ktime_get_boot_ns, () => k.ktimeGetNs());
  k.registerHelper(F.BPF_FUNC_ktime_get_coarse_ns, () => k.ktimeGetNs());
  k.registerHelper(F.BPF_FUNC_jiffies64, () => k.jiffies);
  k.registerHelper(F.BPF_FUNC_get_prandom_u32, () => k.prandomU32());
  k.registerHelper(F.BPF_FUNC_get_smp_processor_id, () => k.cpu);
  k.registerHelper(F.BPF_FUNC_map_lookup_percpu_elem, (c) => {
    const map = mapArg(k, c, 1);
    const fn = map.ops.map_lookup_percpu_elem;
    if (!fn) return 0;
    return fn(map, bytesArg(k, c, 2, map.key_size), c.argNum(3) >>> 0);
  });
  k.registerHelper(F.BPF_FUNC_trace_printk, (c) => {
    const size = c.argNum(2);
    if (size <= 0) return -EINVAL;
    const raw = k.mem.bytes(c.argNum(1), size);
    const end = raw.indexOf(0);
    if (end < 0) return -EINVAL; // the format must be NUL-terminated within fmt_size
    const fmt = new TextDecoder().decode(raw.subarray(0, end));
    const line = bpfSnprintf(k, fmt, [c.arg(3), c.arg(4), c.arg(5)]);
    k.traceLog.push(line);
    return line.length + 1;
  });
  const probeRead = (c: HelperArgs): number => {
    const dst = c.argNum(1);
    const size = c.argNum(2);
    try {
      k.mem.bytes(dst, size).set(k.mem.bytes(c.argNum(3), size));
      return 0;
    } catch {
      // A faulting read zero-fills the destination, as copy_from_kernel_nofault's caller does.
      try {
        k.mem.bytes(dst, size).fill(0);
      } catch {
        // destination itself unmapped: the verifier would have refused this
      }
      return -EFAULT;
    }
  };
  k.registerHelper(F.BPF_FUNC_probe_read_kernel, probeRead);
  // bpf_probe_read_kernel_str: at most size-1 bytes and a NUL; the length with the NUL, or
  // -EFAULT with the destination zeroed.
  k.registerHelper(F.BPF_FUNC_probe_read_kernel_str, (c) => {
    const dst = c.argNum(1);
    const size = c.argNum(2);
    if (size === 0) return 0;
    const out = k.mem.bytes(dst, size);
    const src = c.argNum(3);
    try {
      let n = 0;
      for (; n < size - 1; n++) {
        const b = k.mem.bytes(src + n, 1)[0];
        out[n] = b;
        if (b === 0) return n + 1;
      }
      out[n] = 0;
      return n + 1;
    } catch {
      out.fill(0);
      return -EFAULT;
    }
  });
  k.registerHelper(F.BPF_FUNC_probe_read, probeRead);
  // bpf_strncmp: lib/string.c's strncmp over at most s1_sz bytes, -1, 0 or 1.
  k.registerHelper(F.BPF_FUNC_strncmp, (c) => {
    const n = c.argNum(2) >>> 0;
    const s1 = c.argNum(1);
    const s2 = c.argNum(3);
    for (let i = 0; i < n; i++) {
      const a = k.mem.bytes(s1 + i, 1)[0];
      const b = k.mem.bytes(s2 + i, 1)[0];
      if (a !== b) return a < b ? -1 : 1;
      if (!a) break;
    }
    return 0;
  });
  // kernel/bpf/bpf_task_storage.c: NULL task or unknown flags give NULL; a value is only created
  // for a task that is still referenced.
  k.registerHelper(F.BPF_FUNC_task_storage_get, (c) => {
    const map = mapArg(k, c, 1);
    const task = k.taskByAddr.get(c.argNum(2));
    const flags = c.arg(4);
    if (!task || flags & ~BigInt(BPF_LOCAL_STORAGE_GET_F_CREATE)) return 0;
    const addr = task_storage_lookup(task, map);
    if (addr) return addr;
    if (task.usage > 0 && flags) {
      const v = c.argNum(3);
      try {
        return task_storage_update(task, map, v ? bytesArg(k, c, 3, map.value_size) : null, BPF_NOEXIST);
      } catch {
        return 0;
      }
    }
    return 0;
  });
  k.registerHelper(F.BPF_FUNC_task_storage_delete, (c) => {
    const map = mapArg(k, c, 1);
    const task = k.taskByAddr.get(c.argNum(2));
    if (!task) return -EINVAL;
    try {
      task_storage_delete(task, map);
      return 0;
    } catch (e) {
      return errRet(e);
    }
  });
  k.registerHelper(F.BPF_FUNC_get_current_task, () => k.currentTask.addr);
  k.registerHelper(F.BPF_FUNC_get_current_task_btf, () => k.currentTask.addr);
  k.registerHelper(F.BPF_FUNC_get_current_pid_tgid, () => {
    const t = k.currentTask;
    return (BigInt(t.tgid) << 32n) | BigInt(t.pid);
  });
  k.registerHelper(F.BPF_FUNC_get_current_comm, (c) => {
    const size = c.argNum(2);
    const dst = k.mem.bytes(c.argNum(1), size);
    dst.fill(0);
    // strscpy_pad: at most size - 1 bytes and a NUL.
    dst.set(new TextEncoder().encode(k.currentTask.comm).subarray(0, Math.max(0, size - 1)));
    return 0;
  });
  k.registerHelper(F.BPF_FUNC_sk_storage_get, (c) => {
    const map = mapArg(k, c, 1);
    const sk = k.sockByAddr.get(c.argNum(2));
    const flags = c.argNum(4);
    if (!sk || flags > BPF_SK_STORAGE_GET_F_CREATE) return 0;
    const addr = bpf_local_storage_lookup(sk, map);
    if (addr) return addr;
    if (flags === BPF_SK_STORAGE_GET_F_CREATE && sk.sk_refcnt > 0) {
      const v = c.argNum(3);
      try {
        return bpf_local_storage_update(sk, map, v ? bytesArg(k, c, 3, map.value_size) : null, BPF_NOEXIST);
      } catch {
        return 0;
      }
    }
    return 0;
  });
  k.registerHelper(F.BPF_FUNC_sk_storage_delete, (c) => {
    const map = mapArg(k, c, 1);
    const sk = k.sockByAddr.get(c.argNum(2));
    if (!sk) return -EINVAL;
    try {
      bpf_sk_storage_del(sk, map);
      return 0;
    } catch (e) {
      return e instanceof BpfError ? -e.errno : -ENOENT;
    }
  });
}
