/**
 * The fidelity scenario format (fidelity/README.md): one file per scenario, one operation per
 * line, `#` comments, `key: value` headers before the first operation.
 *
 *   name: update-key-1
 *   ref: §3 step 2
 *   $m = map_create tcp_congestion_ops flags=LINK          => ok
 *   update $m key=1 { name=$uniq ssthresh=$p }             => E2BIG
 *   lookup $m                                              => same-as-kernel
 *
 * A line is `[$var =] op arg... [{ member=value ... }] [=> expect]`. Args are positional words or
 * `key=value`; values may be "quoted". The expectation is `ok`, `ok N` (the returned value),
 * an errno name, `same-as-kernel` (the default) or `any`.
 */

export type Expect =
  | { kind: "ok"; value?: number }
  | { kind: "errno"; name: string }
  | { kind: "same-as-kernel" }
  | { kind: "any" };

export interface Step {
  /** 1-based line in the scenario file. */
  line: number;
  /** `$name` this step's fd binds to, or null. */
  bind: string | null;
  op: string;
  /** Positional arguments, in order. */
  args: string[];
  /** key=value arguments. */
  opts: Record<string, string>;
  /** Member assignments of the `{ }` block, in order (null when the line has none). */
  members: [string, string][] | null;
  expect: Expect;
  /** The source text, for messages. */
  text: string;
}

export interface Scenario {
  name: string;
  /** Headers: `ref` (the kernel-semantics section), `kernel` (the version a deliberate difference follows), `differs` (why), `needs`. */
  headers: Record<string, string>;
  steps: Step[];
  file?: string;
}

export class ScenarioError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}:${line}: ${message}`);
  }
}

/** Operations and their positional arity (minimum, maximum). */
export const OPS: Readonly<Record<string, { min: number; max: number; binds?: boolean }>> = {
  btf_load: { min: 0, max: 0, binds: true },
  vmlinux_btf: { min: 0, max: 0, binds: true },
  map_create: { min: 1, max: 1, binds: true },
  update: { min: 1, max: 1 },
  lookup: { min: 1, max: 1 },
  delete: { min: 1, max: 1 },
  get_next_key: { min: 1, max: 1 },
  freeze: { min: 1, max: 1 },
  prog: { min: 2, max: 2, binds: true },
  prog_asm: { min: 2, max: 2, binds: true },
  obj_map: { min: 2, max: 2, binds: true },
  link_create: { min: 1, max: 1, binds: true },
  link_update: { min: 2, max: 2 },
  link_detach: { min: 1, max: 1 },
  close: { min: 1, max: 1 },
  map_info: { min: 1, max: 1 },
  link_info: { min: 1, max: 1 },
  map_fd_by_id: { min: 1, max: 1, binds: true },
  poll: { min: 1, max: 1 },
  test_run: { min: 1, max: 1 },
  tcp_xfer: { min: 1, max: 1 },
  map_read: { min: 1, max: 1 },
  drop_caps: { min: 0, max: 0 },
  fdinfo: { min: 1, max: 1 },
};

/** Split a line into tokens: words, "quoted strings" (kept with quotes), `{`, `}`, `=>`. */
export function tokenize(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    if (c === "{" || c === "}") {
      out.push(c);
      i++;
      continue;
    }
    let j = i;
    let tok = "";
    while (j < s.length && s[j] !== " " && s[j] !== "\t" && s[j] !== "{" && s[j] !== "}") {
      if (s[j] === '"') {
        const end = s.indexOf('"', j + 1);
        if (end < 0) throw new Error("unterminated string");
        tok += s.slice(j, end + 1);
        j = end + 1;
      } else {
        tok += s[j];
        j++;
      }
    }
    out.push(tok);
    i = j;
  }
  return out;
}

/** "text" -> text with \n and \\ escapes; anything else unchanged. */
export function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"'))
    return v.slice(1, -1).replace(/\\(.)/g, (_m, x: string) => (x === "n" ? "\n" : x));
  return v;
}

function splitKv(tok: string): [string, string] | null {
  const q = tok.indexOf('"');
  const eq = tok.indexOf("=");
  if (eq <= 0 || (q >= 0 && q < eq)) return null;
  return [tok.slice(0, eq), tok.slice(eq + 1)];
}

const ERRNO_NAME = /^E[A-Z0-9]+$/;

export function parseExpect(s: string): Expect {
  const t = s.trim();
  if (t === "" || t === "same-as-kernel") return { kind: "same-as-kernel" };
  if (t === "any") return { kind: "any" };
  if (t === "ok") return { kind: "ok" };
  const m = /^ok\s+(-?(?:0x[0-9a-f]+|\d+))$/i.exec(t);
  if (m) return { kind: "ok", value: Number(m[1]) };
  if (ERRNO_NAME.test(t)) return { kind: "errno", name: t };
  throw new Error(`bad expectation '${t}'`);
}

export function parseScenario(text: string, file = "<scenario>"): Scenario {
  const headers: Record<string, string> = {};
  const steps: Step[] = [];
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!;
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    if (!line) continue;
    const lineNo = n + 1;
    const fail = (msg: string): never => {
      throw new ScenarioError(file, lineNo, msg);
    };
    const h = /^([a-z][a-z-]*):\s*(.*)$/.exec(line);
    if (h && steps.length === 0) {
      headers[h[1]!] = h[2]!;
      continue;
    }
    const arrow = line.indexOf("=>");
    const body = arrow >= 0 ? line.slice(0, arrow) : line;
    let expect: Expect;
    try {
      expect = parseExpect(arrow >= 0 ? line.slice(arrow + 2) : "");
    } catch (e) {
      return fail((e as Error).message);
    }
    let toks: string[];
    try {
      toks = tokenize(body);
    } catch (e) {
      return fail((e as Error).message);
    }
    let bind: string | null = null;
    if (toks.length >= 2 && toks[1] === "=" && toks[0]!.startsWith("$")) {
      bind = toks[0]!;
      toks = toks.slice(2);
    } else if (toks[0]?.startsWith("$") && toks[0].endsWith("=")) {
      fail("write '$name = op ...' with spaces around '='");
    }
    const op = toks.shift();
    if (!op) return fail("missing operation");
    const spec = OPS[op];
    if (!spec) return fail(`unknown operation '${op}'`);
    if (bind && !spec.binds) fail(`'${op}' returns no fd to bind to ${bind}`);
    const args: string[] = [];
    const opts: Record<string, string> = {};
    let members: [string, string][] | null = null;
    for (let i = 0; i < toks.length; i++) {
      const t = toks[i]!;
      if (t === "{") {
        if (members) fail("only one { } block per line");
        members = [];
        for (i++; i < toks.length && toks[i] !== "}"; i++) {
          const kv = splitKv(toks[i]!);
          if (!kv) fail(`member assignment '${toks[i]}' is not member=value`);
          members!.push(kv!);
        }
        if (i >= toks.length) fail("unclosed {");
        continue;
      }
      if (t === "}") fail("} without {");
      const kv = splitKv(t);
      if (kv) opts[kv[0]] = kv[1];
      else args.push(t);
    }
    if (args.length < spec.min || args.length > spec.max)
      fail(`'${op}' takes ${spec.min === spec.max ? spec.min : `${spec.min}..${spec.max}`} positional args`);
    steps.push({ line: lineNo, bind, op, args, opts, members, expect, text: line });
  }
  if (!headers.name) throw new ScenarioError(file, 1, "missing 'name:' header");
  if (steps.length === 0) throw new ScenarioError(file, 1, "no operations");
  return { name: headers.name, headers, steps, file };
}
