/**
 * The host kernel as a target: fidelity/native/fidhelper.c is built at run time (gcc, -lbpf)
 * into a temporary directory and run as one process per scenario; operations go to it as lines.
 * `hostAvailable()` says why the host cannot be used (not root, bpf() refused, type missing).
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Btf } from "../btf/btf.js";
import { errnoName } from "../uapi/errno.js";
import type { MapCreateArgs, Outcome, ProgLoadArgs, Target, TestRunOpts } from "./target.js";

export const VMLINUX_BTF = "/sys/kernel/btf/vmlinux";

/** The repository root (this file is src/fidelity/host.ts or dist/src/fidelity/host.js). */
export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, "package.json")) && dirname(d) !== d) d = dirname(d);
  return d;
}

let helperPath: string | null = null;

/** Build the helper once per process; throws with the compiler's message on failure. */
export function buildHelper(): string {
  if (helperPath) return helperPath;
  const src = join(repoRoot(), "fidelity/native/fidhelper.c");
  const out = join(mkdtempSync(join(tmpdir(), "structops-fidelity-")), "fidhelper");
  execFileSync("gcc", ["-O2", "-Wall", "-o", out, src, "-lbpf", "-lpthread"], { stdio: "pipe" });
  helperPath = out;
  return out;
}

let vmlinux: Btf | null = null;

export function hostBtf(): Btf {
  vmlinux ??= Btf.parse(new Uint8Array(readFileSync(VMLINUX_BTF)));
  return vmlinux;
}

/** null when the host can run scenarios, else the reason it cannot. */
export function hostAvailable(): string | null {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "not root (bpf() needs CAP_BPF)";
  if (!existsSync(VMLINUX_BTF)) return `${VMLINUX_BTF} missing`;
  let helper: string;
  try {
    helper = buildHelper();
  } catch (e) {
    return `cannot build the native helper with gcc -lbpf: ${String((e as { stderr?: Buffer }).stderr ?? e).slice(0, 200)}`;
  }
  // bpf() itself may be refused (seccomp, lockdown, a container): probe with an array map.
  const probe = spawnSync(helper, [], { input: "map_create 2 4 8 1 0 0 0 probe\nquit\n", encoding: "utf8" });
  const answer = parseAnswer((probe.stdout ?? "").split("\n")[0] ?? "");
  if (!answer.ok) return `bpf() refused: ${answer.unsupported ?? errnoName(answer.errno ?? 0)}`;
  return null;
}

const hex = (b: Uint8Array | null): string => (b?.length ? Buffer.from(b).toString("hex") : "-");

/** Parse an answer line: `ok <ret> [k=v|hex ...]`, `err <errno>`, `fail <text>`. */
export function parseAnswer(line: string): Outcome {
  const [word, ...rest] = line.split(" ");
  if (word === "err") return { ok: false, errno: Number(rest[0]) };
  if (word === "fail") return { ok: false, errno: -1, unsupported: `helper: ${rest.join(" ")}` };
  if (word !== "ok") return { ok: false, errno: -1, unsupported: `helper answered '${line}'` };
  const o: Outcome = { ok: true, ret: Number(rest[0]) };
  for (const t of rest.slice(1)) {
    const eq = t.indexOf("=");
    if (eq > 0) {
      o.fields ??= {};
      o.fields[t.slice(0, eq)] = t.slice(eq + 1);
    } else if (t !== "-") {
      o.bytes = new Uint8Array(Buffer.from(t, "hex"));
    } else {
      o.bytes = new Uint8Array(0);
    }
  }
  return o;
}

export class HostTarget implements Target {
  readonly name = "kernel" as const;
  readonly btf: Btf;
  private readonly child: ChildProcessWithoutNullStreams;
  private buf = "";
  private readonly waiting: ((line: string) => void)[] = [];
  private readonly lines: string[] = [];
  private exited = false;
  private readonly objDir: string;

  constructor() {
    this.btf = hostBtf();
    this.objDir = join(repoRoot(), "bpf/obj");
    this.child = spawn(buildHelper(), [], { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (d: string) => {
      this.buf += d;
      for (let nl = this.buf.indexOf("\n"); nl >= 0; nl = this.buf.indexOf("\n")) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const w = this.waiting.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
    this.child.stderr.resume();
    this.child.on("exit", () => {
      this.exited = true;
      for (const w of this.waiting.splice(0)) w("fail helper exited");
    });
  }

  private cmd(...words: (string | number)[]): Promise<Outcome> {
    if (this.exited) return Promise.resolve(parseAnswer("fail helper exited"));
    this.child.stdin.write(`${words.join(" ")}\n`);
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(parseAnswer(queued));
    return new Promise((res) => this.waiting.push((l) => res(parseAnswer(l))));
  }

  btfLoad(data: Uint8Array) {
    return this.cmd("btf_load", hex(data));
  }
  btfFdById(id: number) {
    return this.cmd("btf_fd_by_id", id);
  }
  mapCreate(a: MapCreateArgs) {
    return this.cmd(
      "map_create",
      a.map_type,
      a.key_size,
      a.value_size,
      a.max_entries,
      a.map_flags >>> 0,
      a.btf_fd,
      a.btf_vmlinux_value_type_id,
      a.map_name || "-",
      a.map_extra,
      a.value_type_btf_obj_fd,
    );
  }
  update(fd: number, key: Uint8Array, value: Uint8Array, flags: number) {
    return this.cmd("update", fd, hex(key), hex(value), flags);
  }
  lookup(fd: number, key: Uint8Array, size: number, flags: number) {
    return this.cmd("lookup", fd, hex(key), size, flags);
  }
  delete(fd: number, key: Uint8Array) {
    return this.cmd("delete", fd, hex(key));
  }
  nextKey(fd: number, key: Uint8Array | null, size: number) {
    return this.cmd("next_key", fd, hex(key), size);
  }
  freeze(fd: number) {
    return this.cmd("freeze", fd);
  }
  progLoad(a: ProgLoadArgs) {
    return this.cmd(
      "prog_load",
      a.prog_type,
      a.expected_attach_type,
      a.attach_btf_id,
      a.prog_flags,
      hex(new TextEncoder().encode(a.license)),
      hex(a.insns),
      a.name || "-",
    );
  }
  objProg(path: string, prog: string) {
    return this.cmd("obj_prog", resolve(this.objDir, path), prog);
  }
  objMap(path: string, map: string) {
    return this.cmd("obj_map", resolve(this.objDir, path), map);
  }
  linkCreate(mapFd: number, attachType: number, flags: number) {
    return this.cmd("link_create", mapFd, attachType, flags);
  }
  linkUpdate(linkFd: number, newMapFd: number, flags: number, oldMapFd: number) {
    return this.cmd("link_update", linkFd, newMapFd, flags, oldMapFd);
  }
  linkDetach(fd: number) {
    return this.cmd("link_detach", fd);
  }
  close(fd: number) {
    return this.cmd("close", fd);
  }
  info(kind: "map" | "link" | "prog", fd: number) {
    return this.cmd("info", kind, fd);
  }
  mapFdById(id: number, openFlags: number) {
    return this.cmd("map_fd_by_id", id, openFlags);
  }
  poll(fd: number) {
    return this.cmd("poll", fd);
  }
  async testRun(fd: number, ctx: Uint8Array, state: Uint8Array | null, opts: TestRunOpts = {}) {
    const o = await this.cmd(
      "test_run",
      fd,
      hex(ctx),
      state ? hex(state) : "-",
      opts.ctxSize ?? "-",
      opts.flags ?? 0,
      opts.cpu ?? 0,
    );
    const st = o.fields?.state;
    if (st && st !== "-") o.bytes = new Uint8Array(Buffer.from(st, "hex"));
    return o;
  }
  fdinfo(fd: number) {
    return this.cmd("fdinfo", fd);
  }
  dropCaps() {
    return this.cmd("drop_caps");
  }
  tcpXfer(cc: string, bytes: number, dropEvery: number) {
    return this.cmd("tcp_xfer", cc, bytes, dropEvery);
  }

  async shutdown(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((res) => this.child.on("exit", () => res()));
    this.child.stdin.end("quit\n");
    await done;
  }
}
