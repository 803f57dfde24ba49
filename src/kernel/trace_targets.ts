/**
 * Kernel functions fentry/fexit/fmod_ret programs attach to (bpf_check_attach_target's vmlinux
 * half in kernel/bpf/verifier.c): the test functions of net/bpf/test_run.c (bpf_fentry_test1..10,
 * bpf_fentry_test_sinfo, bpf_modify_return_test*), a few VFS functions and a system call, as
 * FUNCs of the simulated vmlinux BTF with 6.18's prototypes and the struct layouts their
 * arguments point to (members up to the ones programs reach). Each has a kallsyms address. What
 * an attachment may do with one: sleep where the function is on the error-injection list (system
 * calls) or in the fmod_ret set with KF_SLEEPABLE, change its return value where it is on the
 * error-injection list, in the fmod_ret set or an LSM `security_` function.
 */
import type { BtfBuilder } from "../btf/builder.js";
import { BTF_FUNC_GLOBAL, BTF_KIND_INT, BTF_KIND_STRUCT, BTF_KIND_TYPEDEF } from "../uapi/btf.js";
import type { KernelBaseTypes } from "./init.js";
import type { Kernel } from "./kernel.js";
import { builderFind } from "./struct_ops_desc.js";

/** ALLOW_ERROR_INJECTION functions among the targets (every system call is one). */
const ERROR_INJECTION = new Set(["__x64_sys_nanosleep"]);

/** bpf_test_modify_return_ids (register_btf_fmodret_id_set): name -> KF_SLEEPABLE. */
const FMODRET_SET = new Map([
  ["bpf_modify_return_test", false],
  ["bpf_modify_return_test2", false],
  ["bpf_modify_return_test_tp", false],
  ["bpf_fentry_test1", true],
]);

/** Where a sleepable fentry/fexit/fmod_ret program may attach (the TRACING case of the check). */
export function trace_target_sleepable(name: string): boolean {
  return ERROR_INJECTION.has(name) || FMODRET_SET.get(name) === true;
}

/** Where fmod_ret may attach: the fmod_ret set, or check_attach_modify_return's rule. */
export function trace_target_modifiable(name: string): boolean {
  return FMODRET_SET.has(name) || ERROR_INJECTION.has(name) || name.startsWith("security_");
}

/** btf_allowlist_d_path (those modelled): where bpf_d_path cannot deadlock on the path. */
const D_PATH_ALLOWED = new Set(["dentry_open"]);

export function trace_target_d_path_allowed(name: string): boolean {
  return D_PATH_ALLOWED.has(name);
}

/** The functions' names, for kallsyms. */
const TARGETS = new Set<string>();

/** The argument structs (6.18's sizes and member offsets) and the target functions' FUNCs. */
export function declareTraceTargetTypes(b: BtfBuilder, base: KernelBaseTypes): void {
  const ptr = (t: number) => b.addPtr(t);
  const cptr = (t: number) => b.addPtr(b.addConst(t));
  const m = (name: string, type: number, byteOff: number) => ({ name, type, bitOffset: byteOff * 8 });
  const short = builderFind(b, "short", BTF_KIND_INT);
  const ushort = base.u16;
  const u32 = builderFind(b, "u32", BTF_KIND_TYPEDEF);
  const u64 = builderFind(b, "u64", BTF_KIND_TYPEDEF);
  const long = builderFind(b, "long int", BTF_KIND_INT);
  const skBuff = builderFind(b, "sk_buff", BTF_KIND_STRUCT);

  const dentryFwd = b.addFwd("dentry");
  const vfsmount = b.addStruct("vfsmount", 32, [m("mnt_root", ptr(dentryFwd), 0)]);
  const path = b.addStruct("path", 16, [m("mnt", ptr(vfsmount), 0), m("dentry", ptr(dentryFwd), 8)]);
  const inode = b.addStruct("inode", 616, [m("i_mode", ushort, 0)]);
  b.addStruct("dentry", 192, [
    m("d_flags", base.u32, 0),
    m("d_parent", ptr(dentryFwd), 24),
    m("d_inode", ptr(inode), 48),
  ]);
  const cred = b.addStruct("cred", 184, [m("uid", base.u32, 8), m("gid", base.u32, 12)]);
  const file = b.addStruct("file", 184, [
    m("f_mode", base.u32, 4),
    m("private_data", ptr(0), 24),
    m("f_inode", ptr(inode), 32),
    m("f_flags", base.u32, 40),
    m("f_cred", cptr(cred), 48),
    m("f_path", path, 64),
  ]);
  const vma = b.addStruct("vm_area_struct", 192, [m("vm_start", base.ulong, 0), m("vm_end", base.ulong, 8)]);
  b.addStruct("linux_binprm", 408, [m("vma", ptr(vma), 0), m("file", ptr(file), 96)]);
  b.addStruct("audit_krule", 376, [m("pflags", u32, 0), m("flags", u32, 4)]);
  b.addUnion("bpf_attr", 168, [m("map_type", base.u32, 0), m("prog_type", base.u32, 0)]);
  const page = b.addStruct("page", 64, [m("flags", base.ulong, 0)]);
  const bioVec = b.addStruct("bio_vec", 16, [
    m("bv_page", ptr(page), 0),
    m("bv_len", base.u32, 8),
    m("bv_offset", base.u32, 12),
  ]);
  const skbFrag = b.addTypedef("skb_frag_t", bioVec);
  const sinfo = b.addStruct("skb_shared_info", 320, [
    m("flags", base.u8, 0),
    m("meta_len", base.u8, 1),
    m("nr_frags", base.u8, 2),
    m("tx_flags", base.u8, 3),
    m("gso_size", ushort, 4),
    m("gso_segs", ushort, 6),
    m("frag_list", skBuff > 0 ? ptr(skBuff) : ptr(0), 8),
    m("gso_type", base.u32, 24),
    m("frags", b.addArray(skbFrag, base.int, 17), 48),
  ]);
  const testTFwd = b.addFwd("bpf_fentry_test_t");
  const testT = b.addStruct("bpf_fentry_test_t", 8, [m("a", ptr(testTFwd), 0)]);
  const ptRegs = builderFind(b, "pt_regs", BTF_KIND_STRUCT);

  const fn = (name: string, ret: number, params: [string, number][]) => {
    b.addFunc(
      name,
      b.addFuncProto(
        ret,
        params.map(([n, type]) => ({ name: n, type })),
      ),
      BTF_FUNC_GLOBAL,
    );
    TARGETS.add(name);
  };
  const { int, char } = base;
  const pVoid = ptr(0);
  fn("bpf_fentry_test1", int, [["a", int]]);
  fn("bpf_fentry_test2", int, [
    ["a", int],
    ["b", u64],
  ]);
  fn("bpf_fentry_test3", int, [
    ["a", char],
    ["b", int],
    ["c", u64],
  ]);
  fn("bpf_fentry_test4", int, [
    ["a", pVoid],
    ["b", char],
    ["c", int],
    ["d", u64],
  ]);
  fn("bpf_fentry_test5", int, [
    ["a", u64],
    ["b", pVoid],
    ["c", short],
    ["d", int],
    ["e", u64],
  ]);
  fn("bpf_fentry_test6", int, [
    ["a", u64],
    ["b", pVoid],
    ["c", short],
    ["d", int],
    ["e", pVoid],
    ["f", u64],
  ]);
  fn("bpf_fentry_test7", int, [["arg", ptr(testT)]]);
  fn("bpf_fentry_test8", int, [["arg", ptr(testT)]]);
  fn("bpf_fentry_test9", u32, [["a", ptr(u32)]]);
  fn("bpf_fentry_test10", int, [["a", cptr(0)]]);
  fn("bpf_fentry_test_sinfo", 0, [["sinfo", ptr(sinfo)]]);
  fn("bpf_modify_return_test", int, [
    ["a", int],
    ["b", ptr(int)],
  ]);
  fn("bpf_modify_return_test2", int, [
    ["a", int],
    ["b", ptr(int)],
    ["c", short],
    ["d", int],
    ["e", pVoid],
    ["f", char],
    ["g", int],
  ]);
  fn("bpf_modify_return_test_tp", int, [["nonce", int]]);
  fn("d_path", ptr(char), [
    ["path", cptr(path)],
    ["buf", ptr(char)],
    ["buflen", int],
  ]);
  fn("dentry_open", ptr(file), [
    ["path", cptr(path)],
    ["flags", int],
    ["cred", cptr(cred)],
  ]);
  fn("vfs_open", int, [
    ["path", cptr(path)],
    ["file", ptr(file)],
  ]);
  fn("__x64_sys_nanosleep", long, [["regs", cptr(ptRegs)]]);
}

/** kallsyms: each target function has an address. */
export function registerTraceTargets(k: Kernel): void {
  for (const name of TARGETS) if (!k.ksyms.has(name)) k.ksyms.set(name, 0xffff_8200_0000 + k.ksyms.size * 16);
}
