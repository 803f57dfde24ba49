import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT } from "../../fuzz/repo.js";
import { elfTarget } from "../../fuzz/target_elf.js";

const fixture = (name: string) => new Uint8Array(readFileSync(join(ROOT, "test/fixtures/fuzz", name)));

/**
 * graph_bad.bpf.o with a map's max_entries mutated to hundreds of millions: the load is refused
 * with E2BIG, and freeing the half-made array map must not walk every element of a map whose
 * values hold no special fields (it once took half a minute, a hang to the fuzzer).
 */
test("elf-hang-seed201-5529: a huge plain array map is refused and freed at once", { timeout: 30_000 }, () => {
  const input = fixture("elf-hang-seed201-5529.bin");
  elfTarget.setup?.();
  assert.equal(elfTarget.run(input), "opened/E2BIG");
});

/**
 * loops.bpf.o mutated so an iterator's base is 16 MiB below the frame: refused with EACCES by the
 * bounds check of the iterator's slots, before any stack grows (it once took 3 s and 840 MB).
 */
test("elf-hang-seed201-29904: an iterator far below the stack is refused before the stack grows", {
  timeout: 30_000,
}, () => {
  const input = fixture("elf-hang-seed201-29904.bin");
  elfTarget.setup?.();
  assert.equal(elfTarget.run(input), "opened/EACCES");
});

/**
 * map_in_map.bpf.o mutated so a program's func_info is refused: the load unwinds, and the BTF an
 * outer map's template held must go with the outer map (its last reference was once dropped
 * without freeing it).
 */
test("elf-crash-seed4242-4077: a failed load of maps of maps leaves no BTF behind", { timeout: 30_000 }, () => {
  const input = fixture("elf-crash-seed4242-4077.bin");
  elfTarget.setup?.();
  assert.equal(elfTarget.run(input), "opened/EINVAL");
});

/**
 * wq.bpf.o with two array maps' max_entries mutated to 15M (361 MB of values each): a process
 * with the default RLIMIT_MEMLOCK is refused with EPERM before the values are allocated (the
 * fuzzer once saw the process pass 1 GB while the maps were made and then refused).
 */
test("elf-memory-seed4242-18552: an array map over RLIMIT_MEMLOCK is refused without allocating it", {
  timeout: 30_000,
}, () => {
  const input = fixture("elf-memory-seed4242-18552.bin");
  elfTarget.setup?.();
  assert.equal(elfTarget.run(input), "opened/EPERM");
});

/**
 * map_in_map_init.bpf.o with the ARRAY_OF_MAPS' max_entries mutated to 4,043,309,060: its slot
 * array is charged before it is made (E2BIG: past what a map may account), and slots are kept
 * only once filled (it once filled a 4-billion-element array: 27 s, then out of memory).
 */
test("elf-hang-seed20261208-804897: a huge map of maps is refused before its slots exist", { timeout: 30_000 }, () => {
  const input = fixture("elf-hang-seed20261208-804897.bin");
  elfTarget.setup?.();
  assert.equal(elfTarget.run(input), "opened/E2BIG");
});
