/**
 * Key lookups for signature checks (the key kfuncs of 6.18's generic_kfunc_set, formerly
 * kernel/trace/bpf_trace.c): `bpf_lookup_system_key(id)` wraps one of the system keyrings in a
 * `struct bpf_key` the program owns, `bpf_lookup_user_key(serial, flags)` (sleepable) one of the
 * caller's keys, `bpf_key_put` frees the wrapper. The simulated kernel keeps no user keys or
 * keyrings, so a user key lookup finds nothing (NULL), as it does on a kernel whose caller has
 * none; the system keyrings (builtin, secondary, platform: ids 0-2) always exist.
 */
import type { BtfBuilder } from "../btf/builder.js";
import { BTF_FUNC_GLOBAL, BTF_KIND_TYPEDEF } from "../uapi/btf.js";
import { KF_ACQUIRE, KF_RELEASE, KF_RET_NULL, KF_SLEEPABLE } from "../verifier/env.js";
import type { MemRegion } from "./bpf.js";
import type { KernelBaseTypes } from "./init.js";
import type { Kernel } from "./kernel.js";
import { GENERIC_KFUNC_PROG_TYPES } from "./kfuncs.js";
import { builderFind } from "./struct_ops_desc.js";

/** VERIFY_USE_PLATFORM_KEYRING: the last system keyring id system_keyring_id_check() accepts. */
const VERIFY_USE_PLATFORM_KEYRING = 2n;
/** sizeof(struct bpf_key): a key pointer and has_ref. */
const BPF_KEY_SIZE = 16;

/** struct bpf_key and the three kfuncs' prototypes, at the end of vmlinux BTF. */
export function declareKeyTypes(b: BtfBuilder, base: KernelBaseTypes): void {
  const key = b.addFwd("key");
  const bpfKey = b.addStructAuto("bpf_key", [
    { name: "key", type: b.addPtr(key) },
    { name: "has_ref", type: base.bool },
  ]);
  const pKey = b.addPtr(bpfKey);
  const s32 = builderFind(b, "s32", BTF_KIND_TYPEDEF);
  const u64 = builderFind(b, "u64", BTF_KIND_TYPEDEF);
  const fn = (name: string, ret: number, params: { name: string; type: number }[]) =>
    b.addFunc(name, b.addFuncProto(ret, params), BTF_FUNC_GLOBAL);
  fn("bpf_lookup_user_key", pKey, [
    { name: "serial", type: s32 },
    { name: "flags", type: u64 },
  ]);
  fn("bpf_lookup_system_key", pKey, [{ name: "id", type: u64 }]);
  fn("bpf_key_put", 0, [{ name: "bkey", type: pKey }]);
}

export function registerKeyKfuncs(k: Kernel): void {
  const live = new Map<number, MemRegion>();
  const G = GENERIC_KFUNC_PROG_TYPES;
  k.registerKfunc(
    "bpf_lookup_user_key",
    undefined,
    // No user keys: NULL whatever the serial and flags (flags outside KEY_LOOKUP_ALL are NULL too).
    () => 0,
    KF_ACQUIRE | KF_RET_NULL | KF_SLEEPABLE,
    G,
  );
  k.registerKfunc(
    "bpf_lookup_system_key",
    undefined,
    (c) => {
      const id = c.arg(1);
      if (id > VERIFY_USE_PLATFORM_KEYRING) return 0;
      const region = k.mem.alloc(BPF_KEY_SIZE, { perm: "r", kind: "kobj", name: "bpf_key" });
      // key holds the keyring id itself; has_ref stays false: nothing to put.
      const dv = new DataView(new ArrayBuffer(BPF_KEY_SIZE));
      dv.setBigUint64(0, id, true);
      k.mem.bytes(region.addr, BPF_KEY_SIZE).set(new Uint8Array(dv.buffer));
      live.set(region.addr, region);
      return region.addr;
    },
    KF_ACQUIRE | KF_RET_NULL,
    G,
  );
  k.registerKfunc(
    "bpf_key_put",
    undefined,
    (c) => {
      const region = live.get(c.argNum(1));
      if (!region) throw new Error(`bpf_key_put: no bpf_key at 0x${c.argNum(1).toString(16)}`);
      live.delete(region.addr);
      k.mem.free(region);
      return 0;
    },
    KF_RELEASE,
    G,
  );
}
