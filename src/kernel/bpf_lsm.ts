/**
 * BPF LSM programs (kernel/bpf/bpf_lsm.c): a BPF_PROG_TYPE_LSM program attaches to a
 * `bpf_lsm_<hook>` function of vmlinux BTF, the no-op each LSM hook calls. What the verifier asks
 * of it: a GPL-compatible license, a hook (not a disabled one), sleeping only on sleepable hooks,
 * and a return value in the hook's range (0 or 1 for the boolean hooks, 0 or a negative errno
 * for the others, anything for void hooks). Its context is the hook's arguments, trusted except
 * for hooks that see objects being set up or torn down. The hooks modelled are 6.18's prototypes.
 */
import type { BtfBuilder } from "../btf/builder.js";
import { bpf_prog_type } from "../uapi/bpf.js";
import { BTF_FUNC_GLOBAL, BTF_KIND_INT, BTF_KIND_STRUCT, BTF_KIND_TYPEDEF, BTF_KIND_UNION } from "../uapi/btf.js";
import { BpfError, EINVAL } from "../uapi/errno.js";
import { tracingProgFuncProto } from "../verifier/helper_protos.js";
import type { BpfProg } from "./bpf.js";
import type { KernelBaseTypes } from "./init.js";
import type { Kernel } from "./kernel.js";
import { builderFind } from "./struct_ops_desc.js";

export const BPF_LSM_PREFIX = "bpf_lsm_";
/** MAX_ERRNO: the most negative errno a hook returns. */
const MAX_ERRNO = 4095n;

type ArgType =
  | "int"
  | "bool"
  | "u64"
  | "unsigned int"
  | "unsigned long"
  | "size_t"
  | "const char *"
  | "char **"
  | "void *"
  | `struct ${string} *`
  | `const struct ${string} *`
  | "union bpf_attr *";

interface Hook {
  readonly name: string;
  readonly ret: "int" | "void";
  readonly args: readonly [string, ArgType][];
}

/** The hooks modelled, with 6.18's prototypes (include/linux/lsm_hook_defs.h). */
const HOOKS: readonly Hook[] = [
  {
    name: "bpf",
    ret: "int",
    args: [
      ["cmd", "int"],
      ["attr", "union bpf_attr *"],
      ["size", "unsigned int"],
      ["kernel", "bool"],
    ],
  },
  { name: "bprm_committed_creds", ret: "void", args: [["bprm", "const struct linux_binprm *"]] },
  { name: "file_open", ret: "int", args: [["file", "struct file *"]] },
  { name: "file_alloc_security", ret: "int", args: [["file", "struct file *"]] },
  { name: "file_free_security", ret: "void", args: [["file", "struct file *"]] },
  {
    name: "file_mprotect",
    ret: "int",
    args: [
      ["vma", "struct vm_area_struct *"],
      ["reqprot", "unsigned long"],
      ["prot", "unsigned long"],
    ],
  },
  {
    name: "task_alloc",
    ret: "int",
    args: [
      ["task", "struct task_struct *"],
      ["clone_flags", "u64"],
    ],
  },
  { name: "task_free", ret: "void", args: [["task", "struct task_struct *"]] },
  { name: "inode_getattr", ret: "int", args: [["path", "const struct path *"]] },
  {
    name: "inode_getxattr",
    ret: "int",
    args: [
      ["dentry", "struct dentry *"],
      ["name", "const char *"],
    ],
  },
  { name: "inode_xattr_skipcap", ret: "int", args: [["name", "const char *"]] },
  { name: "audit_rule_known", ret: "int", args: [["krule", "struct audit_krule *"]] },
  {
    name: "getprocattr",
    ret: "int",
    args: [
      ["p", "struct task_struct *"],
      ["name", "const char *"],
      ["value", "char **"],
    ],
  },
  {
    name: "setprocattr",
    ret: "int",
    args: [
      ["name", "const char *"],
      ["value", "void *"],
      ["size", "size_t"],
    ],
  },
  { name: "ismaclabel", ret: "int", args: [["name", "const char *"]] },
];

/** sleepable_lsm_hooks (those modelled). */
const SLEEPABLE = new Set([
  "bpf",
  "bprm_committed_creds",
  "file_open",
  "file_mprotect",
  "task_alloc",
  "inode_getattr",
  "inode_getxattr",
]);
/** bool_lsm_hooks: return 0 or 1. */
const BOOL_HOOKS = new Set(["audit_rule_known", "inode_xattr_skipcap"]);
/** bpf_lsm_disabled_hooks (those modelled): hooks whose return values BPF cannot make sense of. */
const DISABLED = new Set(["getprocattr", "setprocattr", "ismaclabel"]);
/** untrusted_lsm_hooks: their arguments are being allocated or freed. */
const UNTRUSTED = new Set(["file_alloc_security", "file_free_security", "task_free"]);

const hookOf = (fname: string): Hook | undefined =>
  fname.startsWith(BPF_LSM_PREFIX) ? HOOKS.find((h) => h.name === fname.slice(BPF_LSM_PREFIX.length)) : undefined;

/** The hooks' `bpf_lsm_<hook>` FUNCs (after the argument structs are declared). */
export function declareLsmTypes(b: BtfBuilder, base: KernelBaseTypes): void {
  const ptrs = new Map<string, number>();
  const find = (name: string, kind: number): number => {
    const id = builderFind(b, name, kind);
    if (id <= 0) throw new Error(`bpf_lsm: no ${name} in vmlinux BTF`);
    return id;
  };
  const type = (t: ArgType): number => {
    const known = ptrs.get(t);
    if (known !== undefined) return known;
    let id: number;
    if (t === "int") id = base.int;
    else if (t === "bool") id = base.bool;
    else if (t === "u64") id = find("u64", BTF_KIND_TYPEDEF);
    else if (t === "unsigned int") id = base.u32;
    else if (t === "unsigned long") id = base.ulong;
    else if (t === "size_t") id = find("size_t", BTF_KIND_TYPEDEF);
    else if (t === "const char *") id = b.addPtr(b.addConst(find("char", BTF_KIND_INT)));
    else if (t === "char **") id = b.addPtr(b.addPtr(find("char", BTF_KIND_INT)));
    else if (t === "void *") id = b.addPtr(0);
    else if (t === "union bpf_attr *") id = b.addPtr(find("bpf_attr", BTF_KIND_UNION));
    else {
      const isConst = t.startsWith("const ");
      const s = find(
        t
          .replace(/^const /, "")
          .replace(/^struct /, "")
          .replace(/ \*$/, ""),
        BTF_KIND_STRUCT,
      );
      id = b.addPtr(isConst ? b.addConst(s) : s);
    }
    ptrs.set(t, id);
    return id;
  };
  for (const h of HOOKS) {
    const proto = b.addFuncProto(
      h.ret === "int" ? base.int : 0,
      h.args.map(([name, t]) => ({ name, type: type(t) })),
    );
    b.addFunc(`${BPF_LSM_PREFIX}${h.name}`, proto, BTF_FUNC_GLOBAL);
  }
}

/** bpf_lsm_is_sleepable_hook(). */
export function bpf_lsm_is_sleepable_hook(fname: string): boolean {
  const h = hookOf(fname);
  return !!h && SLEEPABLE.has(h.name);
}

/** bpf_lsm_is_trusted(): prog_args_trusted for an LSM program. */
export function bpf_lsm_is_trusted(fname: string): boolean {
  const h = hookOf(fname);
  return !h || !UNTRUSTED.has(h.name);
}

/** bpf_lsm_get_retval_range(): none for a void hook. */
export function bpf_lsm_get_retval_range(fname: string): [bigint, bigint] | undefined {
  const h = hookOf(fname);
  if (!h || h.ret === "void") return undefined;
  return BOOL_HOOKS.has(h.name) ? [0n, 1n] : [-MAX_ERRNO, 0n];
}

/** bpf_lsm_verify_prog(): GPL, not a disabled hook, a hook at all. */
export function bpf_lsm_verify_prog(log: string[], prog: BpfProg, fname: string): void {
  const fail = (msg: string): never => {
    log.push(msg);
    throw new BpfError(EINVAL, msg.trimEnd());
  };
  const btfId = prog.aux.attach_btf_id;
  if (!prog.gpl_compatible) fail("LSM programs must have a GPL compatible license\n");
  const h = hookOf(fname);
  if (h && DISABLED.has(h.name)) fail(`attach_btf_id ${btfId} points to disabled hook ${fname}\n`);
  if (!h) fail(`attach_btf_id ${btfId} points to wrong type name ${fname}\n`);
}

/** kallsyms for the hooks, and the program type: bpf_lsm_func_proto falls back to tracing's. */
export function registerLsm(k: Kernel): void {
  for (const h of HOOKS) {
    const name = `${BPF_LSM_PREFIX}${h.name}`;
    if (!k.ksyms.has(name)) k.ksyms.set(name, 0xffff_8300_0000 + k.ksyms.size * 16);
  }
  k.registerProgType(bpf_prog_type.BPF_PROG_TYPE_LSM, {
    verifier_ops: {
      name: "lsm",
      getFuncProto: tracingProgFuncProto,
      isValidAccess: () => undefined,
    },
  });
}
