/**
 * elf: the committed objects, mutated, through libbpf's path: open, load into the simulated
 * kernel (CO-RE, verifier, maps), attach every struct_ops map, detach, exit. Any failure must be
 * a BpfError; afterwards the kernel must hold nothing of the object.
 */
import type { Kernel } from "../src/kernel/kernel.js";
import { BpfObject } from "../src/loader/object.js";
import { type BpfStructOpsLink, bpfMapAttachStructOps } from "../src/loader/struct_ops_attach.js";
import type { Prng } from "../src/sim/prng.js";
import { assertNothingLeft, bootKernel } from "./kernel.js";
import { mutate } from "./mutate.js";
import { corpusObjects } from "./repo.js";
import { type FuzzTarget, int, isRefusal, quietly } from "./target.js";

const corpus = corpusObjects();

let kernel: Kernel | undefined;
let kernelBtfs = 0;

function k(): Kernel {
  if (!kernel) {
    kernel = bootKernel();
    kernelBtfs = kernel.btf_idr.size;
  }
  return kernel;
}

export const elfTarget: FuzzTarget = {
  name: "elf",
  describe: "a committed BPF object (bpf/obj, test/fixtures/elf) with byte mutations",
  unit: 1,
  setup(): void {
    k();
  },
  generate(rng: Prng): Uint8Array {
    // The first byte picks the seed object so a reproducer names it; the rest is the object.
    const i = int(rng, corpus.length);
    const obj = corpus[i]?.bytes ?? new Uint8Array(0);
    const body = int(rng, 16) === 0 ? obj : mutate(rng, obj);
    const out = new Uint8Array(body.length + 1);
    out[0] = i;
    out.set(body, 1);
    return out;
  },
  run(input: Uint8Array): string {
    const name = corpus[input[0] ?? 0]?.name ?? "fuzz";
    const kern = k();
    const proc = kern.newProcess({ comm: "fuzz" });
    const h = { kernel: kern, process: proc };
    let outcome = "open";
    let obj: BpfObject | undefined;
    const links: BpfStructOpsLink[] = [];
    let cleanupError: unknown;
    try {
      obj = BpfObject.open(input.subarray(1), { name, print: () => {} });
      outcome = "opened";
      obj.load(h);
      outcome = "loaded";
      for (const m of obj.maps) if (m.structOps && m.autocreate) links.push(bpfMapAttachStructOps(m, h));
      outcome = links.length ? "attached" : "loaded";
    } catch (e) {
      if (!isRefusal(e)) throw e;
      outcome = `${outcome}/${e.code}`;
    } finally {
      // a detach that throws something else than a refusal is reported after the cleanup
      for (const l of links) cleanupError ??= quietly(() => l.detach());
      obj?.close();
      kern.exit(proc);
    }
    if (cleanupError) throw cleanupError;
    assertNothingLeft(kern, kernelBtfs);
    return outcome;
  },
};
