/** Helpers the struct_ops kernel tests share. */
import type { BpfStructOpsLink, BpfStructOpsMap } from "../../src/kernel/struct_ops.js";
import { BpfError } from "../../src/uapi/errno.js";
import type { Rig } from "../subsys/dummy/struct_ops_fixture.js";

/** The errno of the BpfError `fn` throws, 0 when it returns; anything else it throws is rethrown. */
export function errno(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof BpfError) return e.errno;
    throw e;
  }
  return 0;
}

/** The struct_ops map behind a map fd of the rig's process. */
export const mapOf = (r: Rig, fd: number): BpfStructOpsMap => r.proc.files.get(fd).private_data as BpfStructOpsMap;

/** The struct_ops link behind a link fd of the rig's process. */
export const linkOf = (r: Rig, fd: number): BpfStructOpsLink => r.proc.files.get(fd).private_data as BpfStructOpsLink;
