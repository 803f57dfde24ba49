/**
 * The generic kernel types of include/linux/types.h and include/uapi/linux/socket.h that every
 * vmlinux BTF carries and that headers built over a vmlinux.h name without declaring: `loff_t`
 * (the selftests' bpf_testmod.h), `struct callback_head` (`rcu_head`) and
 * `struct __kernel_sockaddr_storage` (bpf_testmod_kfunc.h). Declared last so the ids of the types
 * before them stay where they were.
 */
import type { BtfBuilder } from "../btf/builder.js";
import type { KernelBaseTypes } from "./init.js";

export function declareLinuxTypes(b: BtfBuilder, base: KernelBaseTypes): void {
  b.addTypedef("loff_t", b.addTypedef("__kernel_loff_t", base.s64));
  // Self-referencing as in vmlinux (no FWD): the pointer names the id the struct gets.
  const cbId = b.nextId + 3;
  const pCb = b.addPtr(cbId);
  const func = b.addPtr(b.addFuncProto(0, [{ name: "", type: pCb }]));
  if (
    b.addStructAuto("callback_head", [
      { name: "next", type: pCb },
      { name: "func", type: func },
    ]) !== cbId
  ) {
    throw new Error("callback_head: unexpected type id");
  }
  const saFamily = b.addTypedef("__kernel_sa_family_t", base.u16);
  const charT = base.char;
  const inner = b.addStructAuto("", [
    { name: "ss_family", type: saFamily },
    { name: "__data", type: b.addArray(charT, base.int, 126) },
  ]);
  const u = b.addUnionAuto("", [
    { name: "", type: inner },
    { name: "__align", type: b.addPtr(0) },
  ]);
  b.addStructAuto("__kernel_sockaddr_storage", [{ name: "", type: u }]);
}
