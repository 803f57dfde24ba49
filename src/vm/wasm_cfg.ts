/**
 * Structured control flow for the Wasm tier: a function's basic blocks (any jumps eBPF allows)
 * become nested `block` / `loop` / `if`, following Ramsey's "Beyond Relooper" (2022): walk the
 * dominator tree; a block with two or more forward predecessors (a merge node) is placed after
 * a Wasm `block` that the predecessors leave with `br`; a loop header is wrapped in a `loop`
 * that back edges continue; a block with one forward predecessor is emitted inline there.
 * That is exact for reducible graphs (every loop entered through its header), which is all
 * that compilers produce; an irreducible graph gets a dispatch loop over a `br_table` instead.
 */

/** What the structurer asks of the code generator. */
export interface StructEmitter {
  /** The straight-line code of block b (not its final transfer of control). */
  body(b: number): void;
  /** Push the i32 condition under which block b takes its first successor. */
  cond(b: number): void;
  /** Block b ends the function. */
  exit(b: number): void;
  block(): void;
  loop(): void;
  if(): void;
  else(): void;
  end(): void;
  br(depth: number): void;
  /** Irreducible fallback: set the dispatch variable (a position in the br_table). */
  setPc(v: number): void;
  /** Irreducible fallback: br_table over the dispatch variable to targets[0..n-1] by depth. */
  brTable(depths: number[]): void;
}

type Frame = { kind: "block"; follow: number } | { kind: "loop"; header: number } | { kind: "if" };

/**
 * Emit a function of `n` blocks, block 0 its entry; succ[b] is [] (exit), [t] (goto) or
 * [taken, fallthrough]. Only blocks reachable from 0 are emitted.
 */
export function structure(n: number, succ: readonly number[][], e: StructEmitter): void {
  // Reverse postorder from the entry (iterative DFS).
  const post: number[] = [];
  const state = new Uint8Array(n);
  const stack: [number, number][] = [[0, 0]];
  state[0] = 1;
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [b, i] = top;
    if (i < succ[b].length) {
      top[1]++;
      const s = succ[b][i];
      if (state[s] === 0) {
        state[s] = 1;
        stack.push([s, 0]);
      }
    } else {
      post.push(b);
      stack.pop();
    }
  }
  const order = post.reverse();
  const rpo = new Int32Array(n).fill(-1);
  order.forEach((b, i) => {
    rpo[b] = i;
  });
  const preds: number[][] = Array.from({ length: n }, () => []);
  for (const b of order) for (const s of succ[b]) preds[s].push(b);
  // Dominators (Cooper, Harvey, Kennedy).
  const idom = new Int32Array(n).fill(-1);
  idom[0] = 0;
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (rpo[a] > rpo[b]) a = idom[a];
      while (rpo[b] > rpo[a]) b = idom[b];
    }
    return a;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const b of order) {
      if (b === 0) continue;
      let d = -1;
      for (const p of preds[b]) if (idom[p] >= 0) d = d < 0 ? p : intersect(p, d);
      if (d !== idom[b]) {
        idom[b] = d;
        changed = true;
      }
    }
  }
  const dominates = (a: number, b: number): boolean => {
    for (;;) {
      if (a === b) return true;
      if (b === 0) return false;
      b = idom[b];
    }
  };
  const loopHeader = new Uint8Array(n);
  const fwdPreds = new Int32Array(n);
  for (const b of order) {
    for (const s of new Set(succ[b])) {
      if (rpo[s] <= rpo[b]) {
        if (!dominates(s, b)) {
          dispatch(order, succ, e);
          return;
        }
        loopHeader[s] = 1;
      } else {
        fwdPreds[s]++;
      }
    }
  }
  const children: number[][] = Array.from({ length: n }, () => []);
  for (const b of order) if (b !== 0) children[idom[b]].push(b);

  const ctx: Frame[] = [];
  const depthOf = (pred: (f: Frame) => boolean): number => {
    for (let i = ctx.length - 1; i >= 0; i--) if (pred(ctx[i])) return ctx.length - 1 - i;
    throw new Error("wasm tier: branch target not in scope");
  };
  const doBranch = (from: number, to: number): void => {
    if (rpo[to] <= rpo[from]) e.br(depthOf((f) => f.kind === "loop" && f.header === to));
    else if (fwdPreds[to] >= 2) e.br(depthOf((f) => f.kind === "block" && f.follow === to));
    else doTree(to);
  };
  const nodeWithin = (x: number, merges: number[]): void => {
    if (merges.length > 0) {
      const [y, ...rest] = merges;
      e.block();
      ctx.push({ kind: "block", follow: y });
      nodeWithin(x, rest);
      ctx.pop();
      e.end();
      doTree(y);
      return;
    }
    e.body(x);
    const s = succ[x];
    if (s.length === 0) {
      e.exit(x);
    } else if (s.length === 1 || s[0] === s[1]) {
      doBranch(x, s[0]);
    } else {
      e.cond(x);
      e.if();
      ctx.push({ kind: "if" });
      doBranch(x, s[0]);
      e.else();
      doBranch(x, s[1]);
      ctx.pop();
      e.end();
    }
  };
  const doTree = (x: number): void => {
    // Merge children, highest reverse postorder first: the first is the outermost block.
    const merges = children[x].filter((c) => fwdPreds[c] >= 2).sort((a, b) => rpo[b] - rpo[a]);
    if (loopHeader[x]) {
      e.loop();
      ctx.push({ kind: "loop", header: x });
      nodeWithin(x, merges);
      ctx.pop();
      e.end();
    } else {
      nodeWithin(x, merges);
    }
  };
  doTree(0);
}

/**
 * An irreducible graph: `loop { block ... block { br_table } code0 ... }` where each block's
 * code sets the dispatch variable and continues the loop, or falls into the next block.
 */
function dispatch(order: number[], succ: readonly number[][], e: StructEmitter): void {
  const blocks = [...order].sort((a, b) => a - b);
  const index = new Map(blocks.map((b, i) => [b, i]));
  const m = blocks.length;
  e.setPc(0);
  e.loop();
  for (let i = 0; i < m; i++) e.block();
  // Inside all m blocks: br_table to block i's code = depth i.
  e.brTable(blocks.map((_, i) => i));
  const goto = (i: number, to: number, fallOk: boolean) => {
    const k = index.get(to)!;
    if (fallOk && k === i + 1) return;
    e.setPc(k);
    // From block i's code, inside blocks i+1..m-1 and the loop.
    e.br(m - 1 - i);
  };
  for (let i = 0; i < m; i++) {
    e.end();
    const b = blocks[i];
    e.body(b);
    const s = succ[b];
    if (s.length === 0) {
      e.exit(b);
    } else if (s.length === 1 || s[0] === s[1]) {
      goto(i, s[0], true);
    } else {
      e.cond(b);
      e.if();
      // Inside the if: one more level.
      e.setPc(index.get(s[0])!);
      e.br(m - i);
      e.end();
      goto(i, s[1], true);
    }
  }
  e.end();
}
