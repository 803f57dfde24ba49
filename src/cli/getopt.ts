/**
 * bpftool's option parsing (tools/bpf/bpftool/main.c, 7.1): GNU getopt_long over the whole
 * command line, which permutes: an option is recognised anywhere before `--`, after the verb as
 * well as before it, and so is any word that starts with `-` (a byte `-1` in `map update ...
 * value -1` is an option to bpftool, refused as `unrecognized option '-1'`; `value -- -1` passes
 * it as a byte). Long options may be abbreviated to any unambiguous prefix. bpftool sets opterr =
 * 0 and reports every refusal itself, naming argv[optind - 1].
 *
 * What comes out is the command line commander parses: the operands in their order, the options
 * (long forms) after the leading operands, and a `--` before the first operand that starts with
 * `-`, so commander takes it as a word.
 */

interface LongOpt {
  name: string;
  arg: boolean;
  /** The form commander is given; null: accepted and ignored (nothing here changes with it). */
  as: string | null;
}

/** bpftool 7.1's options[] and the ones structops adds to its verbs. */
const LONG: LongOpt[] = [
  { name: "bpffs", arg: false, as: null },
  { name: "help", arg: false, as: "--help" },
  { name: "json", arg: false, as: "--json" },
  { name: "pretty", arg: false, as: "--pretty" },
  { name: "version", arg: false, as: "--version" },
  { name: "mapcompat", arg: false, as: null },
  { name: "nomount", arg: false, as: null },
  { name: "debug", arg: false, as: null },
  { name: "use-loader", arg: false, as: null },
  { name: "base-btf", arg: true, as: "--base-btf" },
  { name: "legacy", arg: false, as: null },
  { name: "state", arg: true, as: "--state" },
  { name: "obj", arg: true, as: "--obj" },
  { name: "log-level", arg: true, as: "--log-level" },
  { name: "syntax", arg: true, as: "--syntax" },
];

/** The optstring "VhpjfLmndB:l" as the long option each letter stands for. */
const SHORT: Record<string, string> = {
  V: "version",
  h: "help",
  p: "pretty",
  j: "json",
  f: "bpffs",
  L: "use-loader",
  m: "mapcompat",
  n: "nomount",
  d: "debug",
  B: "base-btf",
  l: "legacy",
};

const byName = new Map(LONG.map((o) => [o.name, o]));

export type Getopt =
  | { ok: true; args: string[]; json: boolean; pretty: boolean }
  | { ok: false; error: string; json: boolean; pretty: boolean };

/** getopt_long's match of `--word`: exact, else the one option it is a prefix of (ambiguous: none). */
function matchLong(word: string): LongOpt | undefined {
  const exact = byName.get(word);
  if (exact) return exact;
  const hits = LONG.filter((o) => o.name.startsWith(word));
  return hits.length === 1 ? hits[0] : undefined;
}

/** Parse `args` (the words after the program name) as bpftool does. */
export function bpftoolGetopt(args: string[]): Getopt {
  const operands: string[] = [];
  const options: string[] = [];
  let json = false;
  let pretty = false;
  const take = (o: LongOpt, value?: string) => {
    if (o.name === "json") json = true;
    if (o.name === "pretty") json = pretty = true;
    if (o.as) options.push(o.as, ...(value === undefined ? [] : [value]));
  };
  const refuse = (word: string): Getopt => ({ ok: false, error: `unrecognized option '${word}'`, json, pretty });
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      i++;
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      operands.push(a);
      continue;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const o = matchLong(a.slice(2, eq < 0 ? undefined : eq));
      if (!o || (!o.arg && eq >= 0)) return refuse(a);
      if (!o.arg) take(o);
      else if (eq >= 0) take(o, a.slice(eq + 1));
      else if (i + 1 < args.length) take(o, args[++i]);
      else return refuse(a);
      continue;
    }
    // A cluster of short options; getopt names argv[optind - 1], which is this word only once
    // its last letter is read (before that, the word before it).
    for (let k = 1; k < a.length; k++) {
      const o = byName.get(SHORT[a[k]!] ?? "");
      const last = k === a.length - 1;
      if (!o) return refuse(last ? a : (args[i - 1] ?? "structops"));
      if (!o.arg) {
        take(o);
        continue;
      }
      if (!last) take(o, a.slice(k + 1));
      else if (i + 1 < args.length) take(o, args[++i]);
      else return refuse(a);
      break;
    }
  }
  operands.push(...args.slice(i));
  const dash = operands.findIndex((w) => w.startsWith("-"));
  const head = dash < 0 ? operands : operands.slice(0, dash);
  const tail = dash < 0 ? [] : ["--", ...operands.slice(dash)];
  return { ok: true, args: [...head, ...options, ...tail], json, pretty };
}
