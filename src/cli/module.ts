/**
 * `structops module load|unload NAME` and `module show|list`: modprobe, rmmod and lsmod for the
 * session's simulated kernel. A bpftool user loads bpf_testmod with modprobe before running the
 * struct_ops selftests; here `module load bpf_testmod` does it, recorded in the session and replayed
 * like `struct_ops register`, so later verbs see the module's BTF and types.
 */
import type { Command } from "commander";
import { module_list, module_refcount } from "../kernel/module.js";
import { BpfError, EAGAIN } from "../uapi/errno.js";
import { CliError } from "./errors.js";
import { io, jsonOut, openSession, optsOf, type SessionOpts, sessionOptions } from "./session.js";

export function register(program: Command): void {
  const cmd = program.command("module").description("load and unload the simulated kernel's modules (bpf_testmod)");
  sessionOptions(cmd.command("load"))
    .argument("<NAME>", "module name (bpf_testmod)")
    .description("load a module, as modprobe (recorded in the session)")
    .action(async (name: string, _o: SessionOpts, c: Command) => {
      const o = optsOf<SessionOpts>(c);
      const s = await openSession(o.state, true);
      s.record({ op: "module_load", name });
      s.save();
      jsonOut(o, null);
    });
  sessionOptions(cmd.command("unload"))
    .argument("<NAME>", "module name")
    .description("unload a module, as rmmod: refused while a struct_ops map or link holds it")
    .action(async (name: string, _o: SessionOpts, c: Command) => {
      const o = optsOf<SessionOpts>(c);
      const s = await openSession(o.state, true);
      try {
        s.record({ op: "module_unload", name });
      } catch (e) {
        // rmmod's words for delete_module's EWOULDBLOCK.
        if (e instanceof BpfError && e.errno === EAGAIN) throw new CliError(`Module ${name} is in use`);
        throw e;
      }
      s.save();
      jsonOut(o, null);
    });
  sessionOptions(cmd.command("show"))
    .alias("list")
    .description("the loaded modules, as lsmod: name, references held, BTF id")
    .action(async (_o: SessionOpts, c: Command) => {
      const o = optsOf<SessionOpts>(c);
      const s = await openSession(o.state);
      const rows = s.state.ops.length
        ? module_list(s.kernel.kernel).map((m) => ({
            name: m.name,
            used_by: module_refcount(m),
            btf_id: m.btfObj?.id ?? 0,
          }))
        : [];
      if (jsonOut(o, rows)) return;
      io.out(`${"Module".padEnd(24)}Used by  BTF id\n`);
      for (const r of rows) io.out(`${r.name.padEnd(24)}${String(r.used_by).padEnd(9)}${r.btf_id}\n`);
    });
}
