import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { BpfObject } from "../../src/loader/object.js";
import type { BpfProgram } from "../../src/loader/program.js";
import {
  BPF_F_LINK,
  BPF_F_MMAPABLE,
  BPF_F_NO_PREALLOC,
  BPF_F_RDONLY_PROG,
  BPF_F_SLEEPABLE,
  bpf_map_type,
  bpf_prog_type,
} from "../../src/uapi/bpf.js";
import { BTF_KIND_DATASEC } from "../../src/uapi/btf.js";
import { objPath, ROOT } from "../elf/helpers.js";

const fixture = (name: string) => join(ROOT, "test/fixtures/elf", `${name}.bpf.o`);
const ST = bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS;

function bindings(obj: BpfObject, mapName: string): Record<string, string> {
  const st = obj.findMap(mapName)?.structOps;
  assert.ok(st, `${mapName} is a struct_ops map`);
  const out: Record<string, string> = {};
  st.type.members.forEach((m, i) => {
    const p = st.progs[i];
    if (p) out[m.name] = p.name;
  });
  return out;
}

test("tcp_reno: one section per program, a .struct_ops map, licence", () => {
  const obj = BpfObject.open(objPath("tcp_reno"));
  assert.equal(obj.name, "tcp_reno");
  assert.equal(obj.license, "GPL");
  assert.deepEqual(
    obj.programs.map((p) => [p.name, p.secName, p.type, p.autoload, p.sleepable]),
    [
      ["so_reno_ssthresh", "struct_ops/so_reno_ssthresh", ST, true, false],
      ["so_reno_cong_avoid", "struct_ops/so_reno_cong_avoid", ST, true, false],
      ["so_reno_undo_cwnd", "struct_ops/so_reno_undo_cwnd", ST, true, false],
    ],
  );
  // Until load binds them to a kernel member, struct_ops programs have no attach target.
  for (const p of obj.programs) assert.deepEqual([p.expectedAttachType, p.attachBtfId], [0, 0]);
  const map = obj.findMap("so_reno");
  assert.ok(map);
  assert.deepEqual(
    [map.type, map.keySize, map.valueSize, map.maxEntries, map.flags, map.autocreate, map.autoattach],
    [bpf_map_type.BPF_MAP_TYPE_STRUCT_OPS, 4, 192, 1, 0, true, true],
  );
  assert.deepEqual(bindings(obj, "so_reno"), {
    ssthresh: "so_reno_ssthresh",
    cong_avoid: "so_reno_cong_avoid",
    undo_cwnd: "so_reno_undo_cwnd",
  });
  assert.equal(map.structOps?.tname, "tcp_congestion_ops");
  assert.equal(map.structOps?.value.get("name"), "so_reno");
});

test("tcp_cubic: programs split from one shared section by their symbols; .struct_ops.link sets BPF_F_LINK", () => {
  const obj = BpfObject.open(objPath("tcp_cubic"));
  const progs = obj.programs;
  assert.equal(progs.length, 7);
  assert.ok(progs.every((p) => p.secName === "struct_ops" && p.type === ST));
  // Contiguous, non-overlapping slices of the section.
  const sorted = [...progs].sort((a, b) => a.secInsnOff - b.secInsnOff);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1] as BpfProgram;
    assert.equal((sorted[i] as BpfProgram).secInsnOff, prev.secInsnOff + prev.secInsnCnt);
  }
  const map = obj.findMap("so_cubic");
  assert.equal(map?.flags, BPF_F_LINK);
  assert.deepEqual(bindings(obj, "so_cubic"), {
    ssthresh: "so_cubic_recalc_ssthresh",
    cong_avoid: "so_cubic_cong_avoid",
    set_state: "so_cubic_state",
    cwnd_event: "so_cubic_cwnd_event",
    pkts_acked: "so_cubic_acked",
    undo_cwnd: "so_cubic_undo_cwnd",
    init: "so_cubic_init",
  });
  // The kconfig extern gets its own internal map, named as libbpf truncates it.
  const kcfg = obj.internalMap(".kconfig");
  assert.ok(kcfg);
  assert.equal(kcfg.name, "tcp_cub.kconfig");
  assert.equal(kcfg.valueSize, 8);
  assert.equal(kcfg.flags, BPF_F_RDONLY_PROG | BPF_F_MMAPABLE);
  assert.deepEqual(
    obj.externs.map((e) => [e.name, e.type]),
    [
      ["CONFIG_HZ", "kcfg"],
      ["tcp_cong_avoid_ai", "ksym"],
      ["tcp_reno_undo_cwnd", "ksym"],
      ["tcp_slow_start", "ksym"],
    ],
  );
  const cong = obj.findProgram("so_cubic_cong_avoid");
  const kinds = cong?.relos.map((r) => `${r.type}:${r.symName}`);
  assert.deepEqual(kinds, [
    "extern_call:tcp_slow_start",
    "extern_ld64:CONFIG_HZ",
    // cubic_root's v[] lookup table, a static const array in .rodata
    "data:.rodata",
    "data:.rodata",
    "extern_ld64:CONFIG_HZ",
    "extern_call:tcp_cong_avoid_ai",
  ]);
});

test("tcp_dctcp: .rodata/.bss internal maps, DATASEC sizes and offsets fixed from the ELF", () => {
  const obj = BpfObject.open(objPath("tcp_dctcp"));
  const rodata = obj.internalMap(".rodata");
  const bss = obj.internalMap(".bss");
  assert.equal(rodata?.name, "tcp_dctc.rodata");
  assert.equal(rodata?.flags, BPF_F_RDONLY_PROG | BPF_F_MMAPABLE);
  assert.equal(bss?.name, "tcp_dctc.bss");
  assert.equal(bss?.flags, BPF_F_MMAPABLE);
  // so_dctcp_alpha_on_init = 1024 in .rodata.
  const rv = rodata?.initialValue();
  assert.ok(rv);
  assert.equal(new DataView(rv.buffer, rv.byteOffset).getUint32(0, true), 1024);
  const btf = obj.btf;
  assert.ok(btf);
  for (const [secName, size] of [
    [".rodata", 4],
    [".bss", 4],
    [".struct_ops", 192],
    ["license", 4],
  ] as const) {
    const ds = btf.typeById(btf.findByNameKind(secName, BTF_KIND_DATASEC));
    assert.equal(ds.kind === BTF_KIND_DATASEC && ds.size, size, secName);
  }
  const st = obj.findMap("so_dctcp")?.structOps;
  assert.equal(st?.value.get("flags"), 2); // TCP_CONG_NEEDS_ECN
  // Each program's in-section relocations are global-data references.
  assert.deepEqual(
    obj.findProgram("so_dctcp_init")?.relos.map((r) => [r.type, r.symName, r.symOff]),
    [["data", "so_dctcp_alpha_on_init", 0]],
  );
});

test("dummy_ops: struct_ops.s is sleepable; .bss is zeroed; func_info per program", () => {
  const obj = BpfObject.open(objPath("dummy_ops"));
  const sl = obj.findProgram("dummy_test_sleepable");
  assert.equal(sl?.progFlags, BPF_F_SLEEPABLE);
  assert.equal(sl?.sleepable, true);
  assert.equal(obj.findProgram("dummy_test_1")?.sleepable, false);
  const bss = obj.internalMap(".bss");
  assert.deepEqual(bss?.initialValue(), new Uint8Array(40));
  for (const p of obj.programs) {
    assert.equal(p.funcInfo.length, 1, p.name);
    assert.equal(p.funcInfo[0]?.insnOff, 0);
    assert.ok(p.lineInfo.length > 0);
  }
  assert.deepEqual(bindings(obj, "dummy_1"), {
    test_1: "dummy_test_1",
    test_2: "dummy_test_2",
    test_sleepable: "dummy_test_sleepable",
  });
});

test("features: .text subprograms, BTF-defined ARRAY and HASH, .data/.rodata/.bss, optional map and program", () => {
  const obj = BpfObject.open(objPath("features"));
  assert.deepEqual(obj.subprograms.map((p) => p.name).sort(), ["feat_count", "feat_halve"]);
  assert.ok(obj.subprograms.every((p) => p.isSubprog && p.secName === ".text"));
  assert.deepEqual(
    obj.programs.map((p) => [p.name, p.type, p.autoload]),
    [
      ["feat_ssthresh", ST, true],
      ["feat_cong_avoid", ST, true],
      ["feat_undo_cwnd", ST, true],
      ["feat_spare", ST, false], // SEC("?struct_ops/...")
      ["feat_syscall", bpf_prog_type.BPF_PROG_TYPE_SYSCALL, true],
    ],
  );
  assert.equal(obj.findProgram("feat_spare")?.secName, "struct_ops/feat_spare");
  const arr = obj.findMap("feat_array");
  assert.deepEqual(
    [arr?.type, arr?.keySize, arr?.valueSize, arr?.maxEntries, arr?.flags],
    [bpf_map_type.BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0],
  );
  assert.ok(arr && arr.btfKeyTypeId > 0 && arr.btfValueTypeId > 0);
  const hash = obj.findMap("feat_hash");
  assert.deepEqual(
    [hash?.type, hash?.keySize, hash?.valueSize, hash?.maxEntries, hash?.flags],
    [bpf_map_type.BPF_MAP_TYPE_HASH, 4, 4, 64, BPF_F_NO_PREALLOC],
  );
  assert.deepEqual([hash?.btfKeyTypeId, hash?.btfValueTypeId], [0, 0]); // key_size/value_size: no BTF types
  assert.deepEqual(
    obj.maps.map((m) => m.name),
    [
      "feat_array",
      "feat_hash",
      "features.data",
      "features.rodata",
      "features.bss",
      "feature.kconfig",
      "so_feat",
      "so_feat_opt",
    ],
  );
  const data = obj.internalMap(".data")?.initialValue();
  assert.equal(data && new DataView(data.buffer, data.byteOffset).getInt32(0, true), 7);
  // `?.struct_ops` maps start with autocreate off.
  assert.equal(obj.findMap("so_feat_opt")?.autocreate, false);
  assert.equal(obj.findMap("so_feat")?.autocreate, true);
  // Relocations: subprogram calls, map references, global data, extern.
  const ss = obj.findProgram("feat_ssthresh");
  assert.deepEqual(
    ss?.relos.map((r) => `${r.type}:${r.symName}`),
    ["call:.text", "ld64:feat_hash", "ld64:feat_hash", "call:.text", "data:feat_data"],
  );
  const count = obj.subprograms.find((p) => p.name === "feat_count");
  assert.deepEqual(
    count?.relos.map((r) => `${r.type}:${r.symName}`),
    ["ld64:feat_array", "extern_ld64:CONFIG_HZ", "data:feat_bss"],
  );
  const ld = ss?.relos.find((r) => r.type === "ld64");
  assert.equal(ld && obj.maps[ld.mapIdx ?? -1]?.name, "feat_hash");
});

test("opening from bytes takes the name from the options", () => {
  const obj = BpfObject.open(new Uint8Array(readFileSync(objPath("dummy_ops"))), { name: "dummy" });
  assert.equal(obj.name, "dummy");
  assert.equal(obj.internalMap(".bss")?.name, "dummy.bss");
});

test("shadow: function pointers hold programs, scalars and strings read/write by name", () => {
  const obj = BpfObject.open(objPath("tcp_reno"));
  const v = obj.findMap("so_reno")?.structOps?.value;
  assert.ok(v);
  assert.equal((v.get("ssthresh") as BpfProgram).name, "so_reno_ssthresh");
  assert.equal(v.get("init"), null);
  assert.equal(v.isFuncPtr("init"), true);
  assert.equal(v.isFuncPtr("flags"), false);
  const undo = obj.findProgram("so_reno_undo_cwnd") as BpfProgram;
  v.set("init", undo);
  assert.equal(v.get("init"), undo);
  v.set("ssthresh", null);
  assert.equal(v.get("ssthresh"), null);
  v.set("name", "renamed");
  assert.equal(v.get("name"), "renamed");
  v.set("flags", 5);
  assert.equal(v.get("flags"), 5);
  // The bytes behind the view are the map's initial value.
  const bytes = obj.findMap("so_reno")?.initialValue();
  assert.ok(bytes);
  assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint32(132, true), 5);
  assert.throws(() => v.set("name", "a-name-too-long-for-16"), /does not fit/);
  assert.throws(() => v.get("no_such_member"), /no member 'no_such_member'/);
  assert.throws(() => v.set("flags", undo), /not a function pointer/);
});

test("autoload and autocreate defaults: `?` programs, `?` maps, unused programs", () => {
  const obj = BpfObject.open(fixture("st_ops_shadow"));
  assert.equal(obj.license, ""); // no licence section: open accepts it, the kernel decides
  assert.deepEqual(
    obj.programs.map((p) => [p.name, p.autoload, p.sleepable]),
    [
      ["foo", false, false],
      ["bar", false, false],
      ["unused", true, false], // SEC default until load finds it unreferenced
      ["sleepy", true, true],
    ],
  );
  assert.deepEqual(
    obj.maps.map((m) => [m.name, m.autocreate, m.flags]),
    [
      ["plain_map", true, 0],
      ["opt_map", false, 0],
      ["link_map", true, BPF_F_LINK],
    ],
  );
  assert.deepEqual(bindings(obj, "plain_map"), { test_1: "bar", test_sleepable: "sleepy" });
  assert.deepEqual(bindings(obj, "opt_map"), { test_1: "foo" });
  const map = obj.findMap("plain_map");
  assert.throws(() => map?.setInitialValue(new Uint8Array(24)), /no initial value/);
});

test("DATASEC fixup: every global VAR's offset is its ELF symbol's value, sorted by offset", () => {
  for (const name of ["tcp_dctcp", "features", "dummy_ops", "tcp_cubic"]) {
    const obj = BpfObject.open(objPath(name));
    const btf = obj.btf;
    assert.ok(btf);
    let checked = 0;
    for (let id = 1; id <= btf.nrTypes; id++) {
      const t = btf.typeById(id);
      if (t.kind !== BTF_KIND_DATASEC || t.name === ".ksyms" || t.name === ".kconfig") continue;
      assert.equal(t.size, obj.elf.sectionByName(t.name)?.size, `${name} ${t.name} size`);
      const offs: number[] = t.vars.map((v) => v.offset);
      assert.deepEqual(
        offs,
        [...offs].sort((a, b) => a - b),
        `${name} ${t.name} sorted`,
      );
      for (const v of t.vars) {
        const vname: string = btf.nameOf(v.type);
        const sym: { value: number } | undefined = obj.elf.symbols.find(
          (s) => s.name === vname && s.type === 1 && s.bind !== 0,
        );
        if (!sym) continue; // static: no global symbol
        assert.equal(v.offset, sym.value, `${name} ${t.name}.${vname}`);
        checked++;
      }
    }
    assert.ok(checked > 0, name);
  }
});
