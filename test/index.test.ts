import assert from "node:assert/strict";
import { test } from "node:test";
import {
  BpfObject,
  bpf_map_create,
  bpf_map_lookup_elem,
  bpf_map_type,
  bpf_map_update_elem,
  bpfDummyStructOpsSubsystem,
  bpfTcpCaSubsystem,
  E2BIG,
  Kernel,
  TcpKernel,
  tcpSubsystem,
} from "../src/index.js";

test("the package entry point: a kernel, libbpf's bpf.h API and the loader work together", () => {
  const tcp = new TcpKernel();
  const kernel = new Kernel({
    subsystems: [tcpSubsystem(tcp), bpfTcpCaSubsystem(() => tcp.cong), bpfDummyStructOpsSubsystem],
  });
  const h = { kernel, process: kernel.newProcess() };
  const fd = bpf_map_create(h, bpf_map_type.BPF_MAP_TYPE_ARRAY, "arr", 4, 8, 2, {});
  assert.ok(fd >= 0);
  const key = new Uint8Array(4);
  const val = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(bpf_map_update_elem(h, fd, key, val, 0), 0);
  const out = new Uint8Array(8);
  assert.equal(bpf_map_lookup_elem(h, fd, key, out), 0);
  assert.deepEqual(out, val);
  // libbpf 1.0 convention: a negative errno, never a throw, for a user error.
  assert.equal(bpf_map_update_elem(h, fd, new Uint8Array([2, 0, 0, 0]), val, 0), -E2BIG);

  // Tests run from the repository root.
  const obj = BpfObject.open("bpf/obj/tcp_reno.bpf.o");
  obj.load(h);
  const map = obj.maps.find((m) => m.structOps)!;
  const link = map.attachStructOps();
  assert.ok(tcp.cong.tcp_ca_find("so_reno"), "the BPF Reno is registered with TCP");
  link.detach();
  obj.close();
});
