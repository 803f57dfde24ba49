/**
 * How close our level-2 log is to the host kernel's for the committed objects' programs (a
 * measurement, not a test: struct offsets differ between the simulated kernel's BTF and the
 * host's, and the host's mark_precise backtracking lines have no counterpart here).
 *
 *   node --import tsx test/verifier/host_log_objects.ts
 *
 * needs root and bpftool: `bpftool -d prog loadall` loads each object into the host at log level
 * 1|2|4 (pinned under a scratch bpffs directory, removed afterwards); ours comes from the
 * simulated kernel's PROG_LOAD with the log level raised to 2. Programs pair up in load order.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { bpfVerifierHook } from "../../src/kernel/bpf_verifier.js";
import { Kernel } from "../../src/kernel/kernel.js";
import type { VerifierEnv } from "../../src/kernel/syscall_prog.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpfObjectLoad } from "../../src/loader/object_load.js";
import { bpfDummyStructOpsSubsystem } from "../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { bpfTcpCaSubsystem } from "../../src/subsys/tcp/bpf_tcp_ca.js";
import { TcpKernel, tcpSubsystem } from "../../src/subsys/tcp/tcp_init.js";
import { repoRoot } from "./helpers.js";
import { normaliseLog } from "./host_log.js";

const OBJ = join(repoRoot(), "bpf/obj");
const PIN = "/sys/fs/bpf/structops-vlog";

/** Our level-2 logs of an object's programs, in load order. */
function ourLogs(path: string): string[] {
  const tcp = new TcpKernel();
  const kernel = new Kernel({
    verifier: true,
    subsystems: [tcpSubsystem(tcp), bpfTcpCaSubsystem(() => tcp.cong), bpfDummyStructOpsSubsystem],
  });
  const hook = kernel.verifier;
  const logs: string[] = [];
  kernel.verifier = (env: VerifierEnv) => {
    const lines: string[] = [];
    const log = Object.assign(Object.create(Object.getPrototypeOf(env.log)), env.log, {
      level: 2,
      log: (l: string) => lines.push(l),
    });
    try {
      bpfVerifierHook({ ...env, log });
    } catch {
      // the rejection is in the log
    }
    logs.push(lines.join("\n"));
    return hook?.(env);
  };
  try {
    bpfObjectLoad(BpfObject.open(path), { kernel, process: kernel.newProcess() });
  } catch {
    // programs loaded before the failure still count
  }
  return logs;
}

/** The host's logs, by program, in load order (source-line and timing lines dropped). */
function hostLogs(path: string): [string, string][] {
  mkdirSync(PIN, { recursive: true });
  try {
    const r = spawnSync("bpftool", ["-d", "prog", "loadall", path, PIN], { encoding: "utf8" });
    const text = `${r.stdout}${r.stderr}`;
    return [...text.matchAll(/prog '([^']+)': -- BEGIN PROG LOAD LOG --\n([\s\S]*?)-- END PROG LOAD LOG --/g)].map(
      (m) => [m[1], m[2]],
    );
  } finally {
    rmSync(PIN, { recursive: true, force: true });
  }
}

/** Ids beyond the small programs' normalisation: BTF ids of kfuncs and structs. */
const norm = (log: string) =>
  normaliseLog(log)
    .filter((l) => l && !/^; |^verification time|^stack depth/.test(l))
    .map((l) =>
      l
        .replace(/btf_id \d+/g, "btf_id N")
        .replace(/#\d+ +;/g, "#N ;")
        .replace(/#\d+/g, "#N"),
    );

/** Host lines found in ours in order (longest common subsequence). */
function matched(a: string[], b: string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  for (const x of a) {
    const cur = [0];
    for (let j = 0; j < b.length; j++) cur.push(x === b[j] ? prev[j] + 1 : Math.max(prev[j + 1], cur[j]));
    prev = cur;
  }
  return prev[b.length];
}

if (process.argv[1]?.endsWith("host_log_objects.ts") || process.argv[1]?.endsWith("host_log_objects.js")) {
  let total = 0;
  let same = 0;
  for (const f of readdirSync(OBJ).filter((x) => x.endsWith(".bpf.o"))) {
    const ours = ourLogs(join(OBJ, f));
    hostLogs(join(OBJ, f)).forEach(([name, log], i) => {
      const h = norm(log);
      const m = matched(h, norm(ours[i] ?? ""));
      total += h.length;
      same += m;
      console.log(`${f.padEnd(22)} ${name.padEnd(24)} ${m}/${h.length}`);
    });
  }
  console.log(`host log lines matched in order: ${same}/${total}`);
}
