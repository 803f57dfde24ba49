/**
 * Maps of maps in the verifier (kernel/bpf/verifier.c: the inner_map_meta cases of
 * check_helper_call and mark_ptr_not_null_reg, map_uid in check_func_arg and
 * process_timer_func). A lookup in an ARRAY_OF_MAPS or HASH_OF_MAPS gives a map pointer that may
 * be NULL, typed by the outer map's template (its inner_map_meta); once checked, it is a map like
 * any other for the helpers. When the template holds a timer or a work item, each lookup's result
 * is told apart by its map_uid (the lookup's id), so that a timer is only set up with its own map.
 */
import { BPF_TIMER, BPF_WORKQUEUE, btfRecordHasField } from "../btf/record.js";
import type { VerifierMap } from "./env.js";
import { CONST_PTR_TO_MAP, markPtr, PTR_MAYBE_NULL, type RegState } from "./reg_state.js";
import type { Verifier } from "./verifier.js";

/**
 * The program's maps followed by each map of maps' template, which inner map pointers and their
 * values refer to by index (`innerIndex` on the outer map). A template has no name.
 */
export function withInnerMaps(maps: readonly VerifierMap[]): readonly VerifierMap[] {
  if (!maps.some((m) => m.innerMeta)) return maps;
  const out = maps.map((m) => ({ ...m }));
  for (const m of out.slice()) {
    if (!m.innerMeta) continue;
    m.innerIndex = out.length;
    out.push({ ...m.innerMeta, name: undefined });
  }
  return out;
}

/** bpf_map_lookup_elem on a map of maps: r0 is the template's map pointer, or NULL. */
export function markInnerMapLookup(v: Verifier, r0: RegState, outer: number): boolean {
  const inner = v.maps[outer]?.innerIndex;
  if (inner === undefined) return false;
  markPtr(r0, CONST_PTR_TO_MAP | PTR_MAYBE_NULL);
  r0.map = inner;
  r0.id = v.newId();
  return true;
}

/** mark_ptr_not_null_reg for an inner map: the lookup's id becomes its map_uid where it matters. */
export function markInnerMapNotNull(v: Verifier, r: RegState): void {
  if (btfRecordHasField(v.maps[r.map]?.record, BPF_TIMER | BPF_WORKQUEUE)) r.mapUid = r.id;
}
