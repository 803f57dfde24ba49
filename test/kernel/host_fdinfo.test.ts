import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  BPF_F_NO_COMMON_LRU,
  BPF_F_NO_PREALLOC,
  BPF_F_RDONLY,
  BPF_F_RDONLY_PROG,
  BPF_F_WRONLY,
  bpf_cmd,
  bpf_map_type,
} from "../../src/uapi/bpf.js";
import { boot } from "./util.js";

// The helper lives next to this test in the source tree (test/kernel/fixtures).
const here = dirname(fileURLToPath(import.meta.url));
const script = [
  join(here, "fixtures/host_map_fdinfo.py"),
  join(here, "../../../test/kernel/fixtures/host_map_fdinfo.py"),
].find(existsSync);

function hostFdinfo(args: number[]): { text?: string; why?: string } {
  const r = spawnSync("python3", [script!, ...args.map(String)], { encoding: "utf8" });
  if (r.error) return { why: `python3: ${r.error.message}` };
  if (r.status !== 0) return { why: r.stderr.trim() || `exit ${r.status}` };
  return { text: r.stdout };
}

/** The lines that describe the map (not the fd's position, mount, inode or the host's id). */
function mapLines(text: string): string[] {
  return text
    .trimEnd()
    .split("\n")
    .filter((l) => !/^(pos|mnt_id|ino|map_id):/.test(l));
}

const probe = script ? hostFdinfo([2, 4, 4, 1, 0]) : { why: "helper script missing" };
const skip = probe.text ? false : `cannot create maps in the host kernel (${probe.why})`;

function possibleCpus(): number {
  const s = readFileSync("/sys/devices/system/cpu/possible", "utf8").trim();
  return s.split(",").reduce((n, r) => {
    const [a, b] = r.split("-").map(Number);
    return n + (b === undefined ? 1 : b - a + 1);
  }, 0);
}

test("map fdinfo equals the host kernel's, line for line (memlock included)", { skip }, () => {
  const { k, p } = boot();
  k.nrCpus = possibleCpus();
  const T = bpf_map_type;
  const cases: [number, number, number, number, number][] = [
    [T.BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0],
    [T.BPF_MAP_TYPE_ARRAY, 4, 8, 100, 0],
    [T.BPF_MAP_TYPE_ARRAY, 4, 13, 7, BPF_F_RDONLY_PROG],
    [T.BPF_MAP_TYPE_ARRAY, 4, 8, 1, BPF_F_RDONLY],
    [T.BPF_MAP_TYPE_HASH, 4, 8, 1, BPF_F_WRONLY],
    [T.BPF_MAP_TYPE_HASH, 4, 8, 100, 0],
    [T.BPF_MAP_TYPE_HASH, 4, 8, 100, BPF_F_NO_PREALLOC],
    [T.BPF_MAP_TYPE_HASH, 16, 24, 33, 0],
    [T.BPF_MAP_TYPE_PERCPU_ARRAY, 4, 12, 3, 0],
    [T.BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 100, 0],
    [T.BPF_MAP_TYPE_PERCPU_HASH, 4, 12, 3, 0],
    [T.BPF_MAP_TYPE_PERCPU_HASH, 8, 20, 50, BPF_F_NO_PREALLOC],
    [T.BPF_MAP_TYPE_LRU_HASH, 4, 12, 3, 0],
    [T.BPF_MAP_TYPE_LRU_HASH, 4, 8, 5, BPF_F_NO_COMMON_LRU],
    [T.BPF_MAP_TYPE_LRU_PERCPU_HASH, 4, 12, 3, 0],
    [T.BPF_MAP_TYPE_LRU_PERCPU_HASH, 4, 12, 7, BPF_F_NO_COMMON_LRU],
    [T.BPF_MAP_TYPE_QUEUE, 0, 8, 10, 0],
    [T.BPF_MAP_TYPE_STACK, 0, 4, 3, BPF_F_RDONLY_PROG],
  ];
  for (const [map_type, key_size, value_size, max_entries, map_flags] of cases) {
    const host = hostFdinfo([map_type, key_size, value_size, max_entries, map_flags]);
    assert.ok(host.text, host.why);
    const fd = k.bpf(p, bpf_cmd.BPF_MAP_CREATE, { map_type, key_size, value_size, max_entries, map_flags });
    assert.deepEqual(
      mapLines(k.fdinfo(p, fd)),
      mapLines(host.text!),
      `type ${map_type} ${key_size}/${value_size}x${max_entries}`,
    );
  }
});
