import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { Rcu, type RcuToken } from "../../src/kernel/rcu.js";

test("a callback never runs before a reader that started earlier has left", () => {
  const rcu = new Rcu();
  const ran: string[] = [];
  const r1 = rcu.rcuReadLock();
  rcu.callRcu(() => ran.push("cb"));
  assert.equal(rcu.advance(), 0);
  assert.equal(rcu.quiesce(), 0);
  assert.deepEqual(ran, []);
  rcu.rcuReadUnlock(r1);
  rcu.advance();
  assert.deepEqual(ran, ["cb"]);
});

test("readers that start after call_rcu do not delay the callback", () => {
  const rcu = new Rcu();
  const ran: number[] = [];
  rcu.callRcu(() => ran.push(1));
  const late = rcu.rcuReadLock();
  rcu.advance();
  assert.deepEqual(ran, [1]);
  rcu.rcuReadUnlock(late);
});

test("callbacks run in queue order; a blocked one holds back later ones", () => {
  const rcu = new Rcu();
  const ran: number[] = [];
  const r = rcu.rcuReadLock();
  rcu.callRcu(() => ran.push(1));
  rcu.rcuReadUnlock(r);
  rcu.callRcu(() => ran.push(2));
  rcu.advance();
  assert.deepEqual(ran, [1, 2]);
  const r2 = rcu.rcuReadLock();
  rcu.callRcu(() => ran.push(3));
  const r3 = rcu.rcuReadLock();
  rcu.callRcu(() => ran.push(4));
  rcu.rcuReadUnlock(r3);
  rcu.advance();
  assert.deepEqual(ran, [1, 2], "callback 4 waits behind 3, which waits for r2");
  rcu.rcuReadUnlock(r2);
  rcu.advance();
  assert.deepEqual(ran, [1, 2, 3, 4]);
});

test("a callback queued by a callback waits for the next grace period", () => {
  const rcu = new Rcu();
  const ran: string[] = [];
  rcu.callRcu(() => {
    ran.push("outer");
    rcu.callRcu(() => ran.push("inner"));
  });
  rcu.advance();
  assert.deepEqual(ran, ["outer"]);
  rcu.advance();
  assert.deepEqual(ran, ["outer", "inner"]);
});

test("flavours are independent: a trace reader does not hold back call_rcu and vice versa", () => {
  const rcu = new Rcu();
  const ran: string[] = [];
  const tr = rcu.rcuReadLockTrace();
  rcu.callRcu(() => ran.push("rcu"));
  rcu.callRcuTasksTrace(() => ran.push("trace"));
  rcu.advance();
  assert.deepEqual(ran, ["rcu"]);
  rcu.rcuReadUnlockTrace(tr);
  const t = rcu.rcuTasksEnter();
  rcu.callRcuTasks(() => ran.push("tasks"));
  rcu.advance();
  assert.deepEqual(ran, ["rcu", "trace"]);
  rcu.rcuReadUnlock(t);
  rcu.quiesce();
  assert.deepEqual(ran, ["rcu", "trace", "tasks"]);
});

test("synchronize_rcu runs what is queued and refuses to wait on a reader that can never leave", () => {
  const rcu = new Rcu();
  const ran: number[] = [];
  rcu.callRcu(() => ran.push(1));
  rcu.synchronizeRcu();
  assert.deepEqual(ran, [1]);
  const r = rcu.rcuReadLock();
  assert.throws(() => rcu.synchronizeRcu(), /would deadlock/);
  rcu.rcuReadUnlock(r);
  rcu.synchronizeRcuMult("rcu", "tasks");
  assert.ok(rcu.completed("tasks") >= 1);
});

test("unlocking twice is a bug that is reported", () => {
  const rcu = new Rcu();
  const r = rcu.rcuReadLock();
  rcu.rcuReadUnlock(r);
  assert.throws(() => rcu.rcuReadUnlock(r), /not inside/);
});

test("property: over any interleaving, no callback runs while a reader that predates it is inside; all run in the end", () => {
  type Step = { op: "lock" } | { op: "unlock"; i: number } | { op: "call" } | { op: "advance" };
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.constant<Step>({ op: "lock" }),
    fc.record({ op: fc.constant("unlock" as const), i: fc.nat(8) }),
    fc.constant<Step>({ op: "call" }),
    fc.constant<Step>({ op: "advance" }),
  );
  fc.assert(
    fc.property(
      fc.array(step, { maxLength: 60 }),
      fc.constantFrom("rcu" as const, "tasks_trace" as const),
      (steps, fl) => {
        const rcu = new Rcu();
        const live: RcuToken[] = [];
        const ran = new Set<number>();
        let n = 0;
        for (const s of steps) {
          if (s.op === "lock") live.push(rcu.rcuReadLock(fl));
          else if (s.op === "unlock" && live.length) rcu.rcuReadUnlock(live.splice(s.i % live.length, 1)[0]);
          else if (s.op === "call") {
            const id = n++;
            const waitFor = new Set(live);
            const cb = () => {
              for (const t of waitFor)
                assert.ok(!live.includes(t), `callback ${id} ran while reader ${t.id} was inside`);
              ran.add(id);
            };
            if (fl === "rcu") rcu.callRcu(cb);
            else rcu.callRcuTasksTrace(cb);
          } else rcu.advance();
        }
        while (live.length) rcu.rcuReadUnlock(live.pop()!);
        rcu.quiesce();
        assert.equal(ran.size, n);
      },
    ),
    { numRuns: 300, seed: 11 },
  );
});

test("fast read-side sections (the trampolines'): nested ones are one reader that a callback queued inside waits for", () => {
  const rcu = new Rcu();
  const ran: string[] = [];
  rcu.rcuReadLockFast();
  assert.equal(rcu.readLockHeld(), true);
  assert.equal(rcu.readLockHeld("tasks_trace"), false);
  rcu.rcuReadLockFast();
  rcu.callRcu(() => ran.push("inner"));
  assert.throws(() => rcu.synchronizeRcu(), /would deadlock/);
  rcu.rcuReadUnlockFast();
  assert.equal(rcu.advance(), 0, "the outer section is still inside");
  rcu.rcuReadUnlockFast();
  assert.equal(rcu.readLockHeld(), false);
  rcu.advance();
  assert.deepEqual(ran, ["inner"]);
  // A callback queued before a fast section does not wait for it; one queued in a later
  // section waits for that section only.
  rcu.callRcu(() => ran.push("before"));
  rcu.rcuReadLockFast();
  rcu.advance();
  assert.deepEqual(ran, ["inner", "before"]);
  rcu.callRcu(() => ran.push("during"));
  rcu.rcuReadUnlockFast();
  rcu.rcuReadLockFast();
  rcu.advance();
  assert.deepEqual(ran, ["inner", "before", "during"]);
  rcu.rcuReadUnlockFast();
});
