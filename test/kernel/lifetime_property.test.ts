import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { bpf_cmd, bpf_map_type } from "../../src/uapi/bpf.js";
import { BpfError } from "../../src/uapi/errno.js";
import { boot, exit, ldMapFd, mov64 } from "./util.js";

const C = bpf_cmd;

type Op =
  | { op: "map" }
  | { op: "prog"; uses: number[] }
  | { op: "close"; fd: number }
  | { op: "dup"; fd: number }
  | { op: "byId"; id: number }
  | { op: "gp" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.constant<Op>({ op: "map" }),
  fc.record({ op: fc.constant("prog" as const), uses: fc.array(fc.integer({ min: 3, max: 12 }), { maxLength: 3 }) }),
  fc.record({ op: fc.constant("close" as const), fd: fc.integer({ min: 3, max: 12 }) }),
  fc.record({ op: fc.constant("dup" as const), fd: fc.integer({ min: 3, max: 12 }) }),
  fc.record({ op: fc.constant("byId" as const), id: fc.integer({ min: 1, max: 8 }) }),
  fc.constant<Op>({ op: "gp" }),
);

test("property: a map lives exactly while an fd or a program holds it; its id resolves exactly while it lives", () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
      const { k, p } = boot();
      const tryIt = (fn: () => void) => {
        try {
          fn();
        } catch (e) {
          if (!(e instanceof BpfError)) throw e;
        }
      };
      for (const o of ops) {
        if (o.op === "map") {
          tryIt(() => {
            k.bpf(p, C.BPF_MAP_CREATE, {
              map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY,
              key_size: 4,
              value_size: 8,
              max_entries: 1,
            });
          });
        } else if (o.op === "prog") {
          const insns = [...o.uses.flatMap((fd) => ldMapFd(1, fd)), mov64(0, 0), exit()];
          tryIt(() => {
            k.bpf(p, C.BPF_PROG_LOAD, { prog_type: 1, insns, insn_cnt: insns.length, license: "GPL" });
          });
        } else if (o.op === "close") tryIt(() => k.close(p, o.fd));
        else if (o.op === "dup") tryIt(() => void k.dup(p, o.fd));
        else if (o.op === "byId") tryIt(() => void k.bpf(p, C.BPF_MAP_GET_FD_BY_ID, { map_id: o.id }));
        else k.quiesce();
      }
      k.quiesce();
      // Who holds each map: fds of the process, and live (unfreed) programs' used maps.
      const holders = new Map<number, number>();
      const live = new Set<number>();
      for (const fd of p.files.list()) {
        const f = p.files.get(fd);
        if (f.kind === "map") live.add((f.private_data as { id: number }).id);
        if (f.kind === "prog") {
          for (const m of (f.private_data as { aux: { used_maps: { id: number }[] } }).aux.used_maps) live.add(m.id);
        }
      }
      for (const id of live) holders.set(id, 1);
      for (let id = 1; id <= 40; id++) {
        const m = k.map_idr.find(id);
        assert.equal(m !== undefined, holders.has(id), `map ${id}: in idr ${m !== undefined}, held ${holders.has(id)}`);
        if (m) assert.equal(m.freed, false);
      }
      p.files.closeAll();
      k.quiesce();
      assert.equal(k.map_idr.size, 0);
      assert.equal(k.prog_idr.size, 0);
      assert.equal(p.user.locked_vm, 0, "every charge is given back");
    }),
    { numRuns: 150, seed: 4242 },
  );
});
