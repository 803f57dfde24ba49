// Each behaviour a bpftool user relies on, run through the real command in a process of its own:
// the output, the one-line error naming the option or file and the errno, and the exit status
// (0 done, 1 "no" from verify/conformance, 255 could not do it; src/cli/errors.ts).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { test } from "node:test";
import { main } from "../../src/cli/cli.js";
import { io } from "../../src/cli/session.js";
import { freshState, pool, type Run, so } from "./spawn.js";

const RENO = "bpf/obj/tcp_reno.bpf.o";
const DCTCP = "bpf/obj/tcp_dctcp.bpf.o";
const CUBIC_LINK = "bpf/obj/tcp_cubic_link.bpf.o";

/** A session prepared in this process (quicker than a process per step). */
async function prepared(...cmds: string[][]): Promise<string> {
  const state = freshState();
  const saved = { ...io };
  io.out = () => {};
  io.err = () => {};
  try {
    for (const c of cmds) assert.equal(await main(["node", "structops", "--state", state, ...c]), 0, c.join(" "));
  } finally {
    Object.assign(io, saved);
    process.exitCode = 0;
  }
  return state;
}

interface Case {
  what: string;
  state?: "empty" | "emptyFile" | "corrupt" | "reno" | "dctcp" | "unregistered" | "detached";
  args: string[];
  code: number;
  out?: RegExp | string;
  err?: RegExp | string;
  check?: (r: Run) => void;
}

const json = (r: Run) => JSON.parse(r.out);

const CASES: Case[] = [
  // bpftool's output
  {
    what: "struct_ops dump -j: valid JSON, bpftool's value wrapper, programs in the function pointer slots",
    state: "reno",
    args: ["struct_ops", "dump", "-j"],
    code: 0,
    check: (r) => {
      const [info, value] = json(r);
      assert.equal(info.bpf_map_info.name, "so_reno");
      const data = value.bpf_struct_ops_tcp_congestion_ops.data;
      assert.match(data.ssthresh, /^u32 \(struct sock \*\) so_reno_ssthresh\/prog_id:\d+$/);
      assert.equal(data.set_state, "void (struct sock *, u8) 0");
      assert.equal(data.owner, 0);
    },
  },
  {
    what: "struct_ops dump -p: pretty JSON in json_writer's layout",
    state: "reno",
    args: ["-p", "struct_ops", "dump"],
    code: 0,
    out: /^\[\{\n {8}"bpf_map_info": \{\n {12}"type": 26,\n[\s\S]*\n {4}\},\{\n {8}"bpf_struct_ops_tcp_congestion_ops": \{\n[\s\S]*"owner": 0,[\s\S]*\n\]\n$/,
  },
  {
    what: "struct_ops dump (plain): the pretty form with pointers as %p",
    state: "reno",
    args: ["struct_ops", "dump", "name", "so_reno"],
    code: 0,
    out: /"owner": \(nil\),/,
  },
  {
    what: "struct_ops show: %u: %-15s %-32s",
    state: "reno",
    args: ["struct_ops", "show"],
    code: 0,
    out: `1: ${"so_reno".padEnd(15)} ${"tcp_congestion_ops".padEnd(32)}\n`,
  },
  {
    what: "struct_ops show -j id: one object, no array",
    state: "reno",
    args: ["struct_ops", "show", "-j", "id", "1"],
    code: 0,
    out: '{"id":1,"name":"so_reno","kernel_struct_ops":"tcp_congestion_ops"}\n',
  },
  {
    what: "prog show: the full name from BTF func_info",
    state: "dctcp",
    args: ["prog", "show"],
    code: 0,
    check: (r) => {
      assert.match(r.out, /name so_dctcp_in_ack_event {2}tag/);
      assert.match(r.out, /name so_dctcp_cong_avoid {2}tag/);
    },
  },
  {
    what: "prog dump xlated name: helper and kfunc names, map[id:N][0]+off, func_info and line_info",
    state: "dctcp",
    args: ["prog", "dump", "xlated", "name", "so_dctcp_in_ack_event"],
    code: 0,
    check: (r) => {
      assert.match(r.out, /^void so_dctcp_in_ack_event\(unsigned long long \* ctx\):\n; void BPF_PROG/);
      assert.match(r.out, /\n {2}\d+: \(18\) r\d = map\[id:\d+\]\[0\]\+0\n/);
      assert.match(r.out, /\n {3}0: \(79\) r1 = \*\(u64 \*\)\(r1 \+0\)\n/);
    },
  },
  {
    what: "prog dump xlated id: kfunc calls by name",
    state: "dctcp",
    args: ["prog", "dump", "xlated", "name", "so_dctcp_cong_avoid"],
    code: 0,
    out: /\(85\) call tcp_slow_start#\d+\n/,
  },
  {
    what: "prog dump xlated -j: bpftool's proto/src/disasm objects",
    state: "dctcp",
    args: ["-j", "prog", "dump", "xlated", "id", "1"],
    code: 0,
    check: (r) => {
      const rows = json(r);
      assert.match(rows[0].proto, /^void so_dctcp_\w+\(unsigned long long \* ctx\)$/);
      assert.ok(rows.every((x: { disasm: string }) => /^\(\w\w\) /.test(x.disasm)));
    },
  },
  {
    what: "global options before the verb",
    state: "reno",
    args: ["-j", "prog", "show"],
    code: 0,
    check: (r) => assert.equal(json(r).length, 3),
  },
  // lifetimes
  {
    what: "after struct_ops unregister the programs and maps are gone",
    state: "unregistered",
    args: ["-j", "prog", "show"],
    code: 0,
    out: "[]\n",
  },
  {
    what: "after detaching a pinned link: programs and data maps gone, the link left with map 0",
    state: "detached",
    args: ["-j", "map", "show"],
    code: 0,
    out: "[]\n",
  },
  {
    what: "after detaching a pinned link: the link stays (pinned), map 0",
    state: "detached",
    args: ["link", "show"],
    code: 0,
    out: /^\d+: struct_ops {2}map 0 {2}\n$/,
  },
  {
    what: "show --obj of a .struct_ops.link object shows its map",
    args: ["struct_ops", "show", "--obj", CUBIC_LINK],
    code: 0,
    out: /^\d+: so_cubic +tcp_congestion_ops +\n$/,
  },
  {
    what: "dump --obj of a .struct_ops.link object dumps its map",
    args: ["-j", "struct_ops", "dump", "--obj", CUBIC_LINK],
    code: 0,
    check: (r) => assert.equal(json(r)[0].bpf_map_info.name, "so_cubic"),
  },
  {
    what: "an empty --state file is an empty session",
    state: "emptyFile",
    args: ["-j", "map", "show"],
    code: 0,
    out: "[]\n",
  },
  // errors: one line, the option or file and the errno, exit 255
  {
    what: "register of a missing object",
    args: ["struct_ops", "register", "/nonexistent.o"],
    code: 255,
    err: "Error: can't read object /nonexistent.o: No such file or directory (ENOENT)\n",
  },
  {
    what: "register of bpf_dummy_ops, which cannot be registered",
    args: ["struct_ops", "register", "bpf/obj/dummy_ops.bpf.o"],
    code: 255,
    err: /^Error: can't register struct_ops dummy_1: Operation not supported\n$/,
  },
  {
    what: "register of an algorithm name already registered: bpftool's message for the map, nothing recorded",
    state: "reno",
    args: ["struct_ops", "register", RENO],
    code: 255,
    err: "Error: can't register struct_ops so_reno: File exists\n",
  },
  {
    what: '-j errors go to stdout as bpftool\'s {"error": ...}',
    args: ["-j", "struct_ops", "show", "id", "9"],
    code: 255,
    out: '{"error":"can\'t get map by id (9): No such file or directory"}\n',
  },
  {
    what: "struct_ops show id without a value",
    args: ["struct_ops", "show", "id"],
    code: 255,
    err: /^Error: expected \[id/,
  },
  { what: "struct_ops show id 0", args: ["struct_ops", "show", "id", "0"], code: 255, err: "Error: invalid id 0\n" },
  {
    what: "struct_ops show name that matches nothing",
    args: ["struct_ops", "show", "name", "nosuch"],
    code: 255,
    err: "Error: no struct_ops found for nosuch\n",
  },
  {
    what: "map dump id without a value",
    args: ["map", "dump", "id"],
    code: 255,
    err: "Error: expected 'id', 'name' or 'pinned' and a map: bpftool map dump MAP\n",
  },
  {
    what: "map show id that is not a number",
    args: ["map", "show", "id", "abc"],
    code: 255,
    err: "Error: can't parse abc as ID\n",
  },
  {
    what: "prog show id that names nothing",
    args: ["prog", "show", "id", "99"],
    code: 255,
    err: "Error: get by id (99): No such file or directory\n",
  },
  {
    what: "link detach of a link that does not exist",
    args: ["link", "detach", "id", "7"],
    code: 255,
    err: "Error: failed to get link with ID 7: No such file or directory\n",
  },
  {
    what: "prog dump of a directory",
    args: ["prog", "dump", "bpf"],
    code: 255,
    err: "Error: can't read object bpf: Is a directory (EISDIR)\n",
  },
  {
    what: "prog dump OBJ xlated: the kernel's translation of each program, as bpftool prints xlated",
    args: ["prog", "dump", DCTCP, "xlated"],
    code: 0,
    check: (r) => {
      assert.match(r.out, /^void so_dctcp_init\(unsigned long long \* ctx\):\n; void BPF_PROG/);
      assert.match(r.out, /\n {2}\d+: \(18\) r\d = map\[id:\d+\]\[0\]\+0\n/);
      assert.match(r.out, /\(85\) call tcp_slow_start#\d+\n/);
      assert.doesNotMatch(r.out, /call 0x|map_value\(/);
    },
  },
  {
    what: "prog dump OBJ xlated takes no --syntax (the kernel's, as bpftool)",
    args: ["prog", "dump", RENO, "xlated", "--syntax", "llvm"],
    code: 255,
    err: "Error: --syntax llvm: the xlated dump is in the kernel's syntax, as bpftool prints it\n",
  },
  {
    what: "prog dump OBJ with a word that is not xlated",
    args: ["prog", "dump", RENO, "jited"],
    code: 255,
    err: /^Error: prog dump OBJ: expected 'xlated' or nothing after the object, got: jited\n$/,
  },
  {
    what: "prog dump --syntax out of its set",
    args: ["prog", "dump", RENO, "--syntax", "foo"],
    code: 255,
    err: "Error: --syntax foo: expected llvm or conformance\n",
  },
  {
    what: "prog verify of a text file",
    args: ["prog", "verify", "README.md"],
    code: 255,
    err: /^Error: README\.md: neither a BPF object \(ELF\) nor a \.data program vector/,
  },
  {
    what: "conformance of a missing directory",
    args: ["conformance", "/nonexistent"],
    code: 255,
    err: "Error: can't read conformance directory /nonexistent: No such file or directory (ENOENT)\n",
  },
  {
    what: "an unknown option",
    args: ["prog", "show", "--bogus"],
    code: 255,
    err: "Error: unrecognized option '--bogus'\n",
  },
  {
    what: "a state file that is not JSON names the file",
    state: "corrupt",
    args: ["prog", "show"],
    code: 255,
    err: /^Error: state file \/.*session\.json is not valid JSON \(.*\); run 'structops session reset'\n$/,
  },
  // sim: every value range-checked before anything runs
  ...(
    [
      [["--duration", "2s", "--sample", "0"], /^Error: --sample "0": expected a period from 1ms/],
      [["--flows", "100000"], 'Error: --flows "100000": expected an integer from 1 to 1000\n'],
      [["--rate", "0"], /^Error: --rate "0": expected a rate from 1kbit to 100gbit/],
      [["--loss", "2"], 'Error: --loss "2": expected a probability in [0, 1)\n'],
      [["--loss", "-0.1"], 'Error: --loss "-0.1": expected a probability in [0, 1)\n'],
      [["--seed", "abc"], 'Error: --seed "abc": expected an integer from 0 to 4294967295\n'],
      [["--hz", "0"], 'Error: --hz "0": expected one of 100, 250, 300, 1000\n'],
      [["--hz", "abc"], 'Error: --hz "abc": expected one of 100, 250, 300, 1000\n'],
      [["--duration", "0"], 'Error: --duration "0": expected a duration from 1ms to 3600s\n'],
      [["--duration", "2s", "--from", "100s"], 'Error: --from "100s": expected a time before --duration 2s\n'],
      [
        ["--duration", "2s", "--switch-at", "50s", "--to", "reno"],
        'Error: --switch-at "50s": expected a time before --duration 2s\n',
      ],
      [["--plot", "x.gif"], 'Error: --plot "x.gif": expected a file name ending in .svg or .png\n'],
      [
        ["--plot", "/nonexistent/dir/x.png"],
        "Error: --plot: can't write into /nonexistent/dir: No such file or directory (ENOENT)\n",
      ],
      [["--cc", ""], /^Error: --cc "": expected bpf-cubic, /],
      [
        ["--cc", "/bin/ls"],
        /^Error: --cc "\/bin\/ls": unknown congestion control \(a BPF object file's name ends in \.o\)/,
      ],
      [["--cc", "bpf-cubic:nosuchmap"], /no struct_ops map 'nosuchmap' \(maps: so_cubic\)/],
      [
        ["--cc", "/nonexistent.o"],
        "Error: --cc: can't read object /nonexistent.o: No such file or directory (ENOENT)\n",
      ],
    ] as [string[], RegExp | string][]
  ).map(([args, err]): Case => ({ what: `sim ${args.join(" ")}`, args: ["sim", ...args], code: 255, err })),
  // sim: what it reports
  {
    what: "sim --switch-at to the same object prints the switch",
    args: ["sim", "--duration", "1s", "--switch-at", "0.5s", "--to", "bpf-cubic"],
    code: 0,
    out: /\nswitch: flow 0 at 0\.50 s: so_cubic \(tcp_cubic\.bpf\.o\) -> so_cubic \(tcp_cubic\.bpf\.o\)\n/,
  },
  {
    what: "sim --json records the switch",
    args: ["sim", "--duration", "1s", "--switch-at", "0.5s", "--to", "reno", "--json"],
    code: 0,
    check: (r) => {
      const { switches } = json(r);
      assert.equal(switches.length, 1);
      assert.equal(switches[0].at_s, 0.5);
      assert.equal(switches[0].flows[0].to, "reno");
    },
  },
  {
    what: "sim: the flow's util and the total's are the same measure",
    args: ["sim", "--cc", "reno", "--duration", "2s", "--switch-at", "1s", "--to", "cubic"],
    code: 0,
    check: (r) => {
      const flow = /^0 .*?(\d+\.\d%)/m.exec(r.out)![1];
      const all = /^all .*?(\d+\.\d%)/m.exec(r.out)![1];
      assert.equal(all, flow, r.out);
      assert.match(r.out, /link 12\.00 Mbit\/s busy \d+\.\d%/);
    },
  },
];

test("every case through the real command: output, one-line error, exit status", async () => {
  const states = {
    empty: freshState(),
    emptyFile: freshState(),
    corrupt: freshState(),
    reno: await prepared(["struct_ops", "register", RENO]),
    dctcp: await prepared(["struct_ops", "register", DCTCP]),
    unregistered: await prepared(["struct_ops", "register", RENO], ["struct_ops", "unregister", "name", "so_reno"]),
    detached: await prepared(["struct_ops", "register", CUBIC_LINK, "/sys/fs/bpf/cc"], ["link", "detach", "id", "1"]),
  };
  writeFileSync(states.emptyFile, "");
  writeFileSync(states.corrupt, "{");
  const runs = await pool(CASES.map((c) => () => so(c.args, states[c.state ?? "empty"])));
  CASES.forEach((c, i) => {
    const r = runs[i]!;
    const ctx = `${c.what}: structops ${c.args.join(" ")}\n${JSON.stringify(r)}`;
    assert.equal(r.code, c.code, ctx);
    if (typeof c.out === "string") assert.equal(r.out, c.out, ctx);
    else if (c.out) assert.match(r.out, c.out, ctx);
    if (typeof c.err === "string") assert.equal(r.err, c.err, ctx);
    else if (c.err) assert.match(r.err, c.err, ctx);
    assert.doesNotMatch(r.err, /\n\s+at /, `no stack trace: ${ctx}`);
    c.check?.(r);
  });
});
