import assert from "node:assert/strict";
import { test } from "node:test";
import { EPOLLHUP } from "../../src/kernel/struct_ops.js";
import { fdinfo, objGetInfo } from "../../src/kernel/syscall.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { EBADF, EEXIST, EINVAL, ENOLINK, EOPNOTSUPP, EPERM } from "../../src/uapi/errno.js";
import {
  boot,
  close,
  createMap,
  linkCreate,
  linkDetach,
  linkUpdate,
  type Rig,
  TESTMOD,
  testmodValue,
  update,
} from "../subsys/dummy/struct_ops_fixture.js";
import { errno, linkOf, mapOf } from "./struct_ops_util.js";

function readyMap(r: Rig, data: number): number {
  const fd = createMap(r, TESTMOD, { link: true });
  update(r, fd, testmodValue(r, data));
  return fd;
}

test("LINK_CREATE: needs a READY BPF_F_LINK struct_ops map (else EINVAL); bad fd EBADF", () => {
  const r = boot();
  const plain = createMap(r, TESTMOD);
  update(r, plain, testmodValue(r, 1));
  assert.equal(
    errno(() => linkCreate(r, plain)),
    EINVAL,
    "no BPF_F_LINK",
  );
  const init = createMap(r, TESTMOD, { link: true });
  assert.equal(
    errno(() => linkCreate(r, init)),
    EINVAL,
    "INIT",
  );
  const array = r.k.bpf(r.proc, bpf_cmd.BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 4, max_entries: 1 });
  assert.equal(
    errno(() => linkCreate(r, array)),
    EINVAL,
    "not struct_ops",
  );
  assert.equal(
    errno(() => linkCreate(r, 99)),
    EBADF,
  );
  assert.equal(r.spy.events.filter((e) => e.startsWith("reg:")).length, 1, "only the non-link map registered");
  // The failed attempts left no references behind.
  assert.equal(mapOf(r, init).refcnt, 1);
});

test("LINK_CREATE: reg(kdata, link); the link holds a map ref; info and fdinfo show the map id", () => {
  const r = boot();
  const fd = readyMap(r, 3);
  const map = mapOf(r, fd);
  const rc = map.refcnt;
  const lfd = linkCreate(r, fd);
  assert.deepEqual(r.spy.events.slice(-1), ["reg:3:link"]);
  assert.equal(map.refcnt, rc + 1);
  const info = objGetInfo(r.proc, lfd);
  assert.equal(info.type, 9);
  assert.equal(info.prog_id, 0);
  assert.deepEqual(info.struct_ops, { map_id: map.id });
  assert.match(fdinfo(r.proc, lfd), /link_type:\tstruct_ops\n/);
  assert.match(fdinfo(r.proc, lfd), new RegExp(`map_id:\\t${map.id}\\n`));
  assert.equal(linkOf(r, lfd).attach_type, 44);
  assert.equal(map.state, 3, "the map stays READY");
});

test("LINK_CREATE: reg failure (a second link on the same map -> EEXIST) leaves no link and no reference", () => {
  const r = boot();
  const fd = readyMap(r, 3);
  linkCreate(r, fd);
  const map = mapOf(r, fd);
  const rc = map.refcnt;
  const links = r.k.link_idr.size;
  assert.equal(
    errno(() => linkCreate(r, fd)),
    EEXIST,
  );
  assert.equal(map.refcnt, rc);
  assert.equal(r.k.link_idr.size, links);
  assert.equal(r.spy.unregs, 0, "a link whose reg failed is never unregistered");
});

test("LINK_DETACH: unreg, map ref dropped, EPOLLHUP; repeatable; update after detach -> ENOLINK", () => {
  const r = boot();
  const fd = readyMap(r, 3);
  const fd2 = readyMap(r, 3);
  const lfd = linkCreate(r, fd);
  const map = mapOf(r, fd);
  const rc = map.refcnt;
  const link = linkOf(r, lfd);
  const woken: number[] = [];
  link.waitHup.add((ev) => woken.push(ev));
  assert.equal(r.proc.files.get(lfd).f_op.poll?.(r.proc.files.get(lfd) as never), 0);
  assert.equal(linkDetach(r, lfd), 0);
  assert.deepEqual(r.spy.events.slice(-1), ["unreg:3:link"]);
  assert.equal(map.refcnt, rc - 1);
  assert.deepEqual(woken, [EPOLLHUP]);
  assert.equal(r.proc.files.get(lfd).f_op.poll?.(r.proc.files.get(lfd) as never), EPOLLHUP);
  assert.equal(linkDetach(r, lfd), 0, "detach twice is a no-op");
  assert.equal(r.spy.unregs, 1);
  assert.equal(
    errno(() => linkUpdate(r, lfd, fd2)),
    ENOLINK,
  );
  const info = objGetInfo(r.proc, lfd);
  assert.equal(info.struct_ops, undefined, "no map id once detached");
  assert.doesNotMatch(fdinfo(r.proc, lfd), /map_id/);
  // The map can be linked again (multi_links).
  const l2 = linkCreate(r, fd);
  assert.ok(l2 > 0);
  assert.equal(r.spy.regs, 2);
});

test("last link close unregisters and drops the map reference", () => {
  const r = boot();
  const fd = readyMap(r, 3);
  const lfd = linkCreate(r, fd);
  const map = mapOf(r, fd);
  const rc = map.refcnt;
  const dup = r.proc.files.dup(lfd);
  close(r, lfd);
  assert.equal(r.spy.unregs, 0, "another fd still holds the link");
  close(r, dup);
  assert.deepEqual(r.spy.events.slice(-1), ["unreg:3:link"]);
  assert.equal(map.refcnt, rc - 1);
});

test("LINK_UPDATE: atomic swap through update(new, old, link); refs move old -> new; both stay READY", () => {
  const r = boot();
  const a = readyMap(r, 3);
  const b = readyMap(r, 3);
  const lfd = linkCreate(r, a);
  const ma = mapOf(r, a);
  const mb = mapOf(r, b);
  const ra = ma.refcnt;
  const rb = mb.refcnt;
  assert.equal(linkUpdate(r, lfd, b), 0);
  assert.deepEqual(r.spy.events.slice(-1), ["update:3"]);
  assert.equal(r.spy.registered.get(3), mb.kdata);
  assert.equal(ma.refcnt, ra - 1);
  assert.equal(mb.refcnt, rb + 1);
  assert.equal(ma.state, 3);
  assert.equal(mb.state, 3);
  assert.deepEqual(objGetInfo(r.proc, lfd).struct_ops, { map_id: mb.id });
  // Closing the link now unregisters the new map.
  close(r, lfd);
  assert.deepEqual(r.spy.events.slice(-1), ["unreg:3:link"]);
});

test("LINK_UPDATE with BPF_F_REPLACE: old_map_fd must be the current map (else EPERM)", () => {
  const r = boot();
  const a = readyMap(r, 3);
  const b = readyMap(r, 3);
  const lfd = linkCreate(r, b);
  assert.equal(
    errno(() => linkUpdate(r, lfd, a, a)),
    EPERM,
  );
  assert.equal(linkUpdate(r, lfd, a, b), 0);
});

test("LINK_UPDATE refusals: flags, old_map_fd without REPLACE, non-link map, other type, no update callback", () => {
  const r = boot();
  const a = readyMap(r, 3);
  const b = readyMap(r, 3);
  const lfd = linkCreate(r, a);
  assert.equal(
    errno(() => r.k.bpf(r.proc, bpf_cmd.BPF_LINK_UPDATE, { link_fd: lfd, new_map_fd: b, flags: 1 })),
    EINVAL,
  );
  assert.equal(
    errno(() => r.k.bpf(r.proc, bpf_cmd.BPF_LINK_UPDATE, { link_fd: lfd, new_map_fd: b, old_map_fd: a })),
    EINVAL,
  );
  const plain = createMap(r, TESTMOD);
  update(r, plain, testmodValue(r, 4));
  assert.equal(
    errno(() => linkUpdate(r, lfd, plain)),
    EINVAL,
    "mixed_links: a non-link map",
  );
  const notReady = createMap(r, TESTMOD, { link: true });
  assert.equal(
    errno(() => linkUpdate(r, lfd, notReady)),
    EINVAL,
  );
  const dummy = createMap(r, "bpf_dummy_ops", { link: true });
  // A dummy map can never be READY, so another type is refused at valid_to_reg (EINVAL) too.
  assert.equal(
    errno(() => linkUpdate(r, lfd, dummy)),
    EINVAL,
  );
  // The subsystem's update refuses a value it cannot swap to (different data: tcp's "same name").
  const other = readyMap(r, 5);
  assert.equal(
    errno(() => linkUpdate(r, lfd, other)),
    EINVAL,
  );
  assert.equal(r.spy.registered.get(3), mapOf(r, a).kdata, "the failed update changed nothing");

  const r2 = boot({ noUpdate: true });
  const x = readyMap(r2, 1);
  const y = readyMap(r2, 1);
  const l2 = linkCreate(r2, x);
  assert.equal(
    errno(() => linkUpdate(r2, l2, y)),
    EOPNOTSUPP,
  );
});

test("LINK_DETACH / LINK_UPDATE on a non-link fd -> EINVAL", () => {
  const r = boot();
  const a = readyMap(r, 3);
  assert.equal(
    errno(() => linkDetach(r, a)),
    EINVAL,
  );
  assert.equal(
    errno(() => linkUpdate(r, a, a)),
    EINVAL,
  );
});
