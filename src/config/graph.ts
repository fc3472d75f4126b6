// The `after` graph: cycles, start levels (each level starts in parallel once every
// level before it is ready) and stop levels (each level stops in parallel once every
// service that depends on it has stopped).

export interface Node {
  name: string;
  after: readonly string[];
}

/**
 * Every elementary cycle reachable by a depth-first walk, each once, written as a path
 * that returns to its start (["a", "b", "a"]) and rotated to start at the service
 * declared first; at most `limit` of them (each costs its length to write out, and a
 * file can hold thousands). Names in `after` that are not nodes are ignored here.
 * The walk keeps its own stack: a chain of thousands of services must not overflow
 * the runtime's.
 */
export function findCycles(nodes: readonly Node[], limit = Infinity): string[][] {
  const index = new Map(nodes.map((n, i) => [n.name, i]));
  const state = new Map<string, "active" | "done">();
  const stack: string[] = [];
  const position = new Map<string, number>(); // of each active name in `stack`
  const seen = new Set<string>();
  const cycles: string[][] = [];

  const found = (dep: string) => {
    const loop = stack.slice(position.get(dep)!);
    let first = 0;
    for (let k = 1; k < loop.length; k++) if (index.get(loop[k]!)! < index.get(loop[first]!)!) first = k;
    const rotated = [...loop.slice(first), ...loop.slice(0, first)];
    const key = rotated.join("\0");
    if (!seen.has(key)) {
      seen.add(key);
      cycles.push([...rotated, rotated[0]!]);
    }
  };
  for (const root of nodes) {
    if (state.has(root.name)) continue;
    const frames: { name: string; next: number }[] = [];
    const enter = (name: string) => {
      state.set(name, "active");
      position.set(name, stack.length);
      stack.push(name);
      frames.push({ name, next: 0 });
    };
    enter(root.name);
    while (frames.length > 0) {
      if (cycles.length >= limit) return cycles;
      const f = frames[frames.length - 1]!;
      const after = nodes[index.get(f.name)!]!.after;
      if (f.next < after.length) {
        const dep = after[f.next++]!;
        if (!index.has(dep)) continue;
        const s = state.get(dep);
        if (s === "active") found(dep);
        else if (s === undefined) enter(dep);
      } else {
        frames.pop();
        stack.pop();
        position.delete(f.name);
        state.set(f.name, "done");
      }
    }
  }
  return cycles;
}

/**
 * The start level of each node: 0 without dependencies, else one more than its highest
 * dependency. Throws on a cycle (validation reports cycles before this is used). Walks
 * with its own stack, as findCycles does.
 */
export function startLevelOf(nodes: readonly Node[]): Map<string, number> {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const level = new Map<string, number>();
  const visiting = new Set<string>();
  for (const root of nodes) {
    if (level.has(root.name)) continue;
    visiting.add(root.name);
    const frames: { node: Node; next: number; level: number }[] = [{ node: root, next: 0, level: 0 }];
    while (frames.length > 0) {
      const f = frames[frames.length - 1]!;
      if (f.next < f.node.after.length) {
        const d = byName.get(f.node.after[f.next++]!);
        if (!d) continue;
        const known = level.get(d.name);
        if (known !== undefined) {
          f.level = Math.max(f.level, known + 1);
          continue;
        }
        if (visiting.has(d.name)) throw new Error(`dependency cycle through "${d.name}"`);
        visiting.add(d.name);
        frames.push({ node: d, next: 0, level: 0 });
      } else {
        frames.pop();
        visiting.delete(f.node.name);
        level.set(f.node.name, f.level);
        const parent = frames[frames.length - 1];
        if (parent) parent.level = Math.max(parent.level, f.level + 1);
      }
    }
  }
  return level;
}

function groupByLevel<T extends Node>(nodes: readonly T[], level: ReadonlyMap<string, number>): T[][] {
  const out: T[][] = [];
  for (const n of nodes) (out[level.get(n.name)!] ??= []).push(n);
  return out.filter((l) => l !== undefined);
}

/** Stable topological order: by start level, then declaration order. */
export function topologicalOrder<T extends Node>(nodes: readonly T[]): T[] {
  return startLevels(nodes).flat();
}

/** Groups that start in parallel, first to last; within a group, declaration order. */
export function startLevels<T extends Node>(nodes: readonly T[]): T[][] {
  return groupByLevel(nodes, startLevelOf(nodes));
}

/**
 * Groups that stop in parallel, first to last. A service stops as soon as everything
 * that depends on it has stopped, so services nothing depends on all stop at once in
 * the first group (they get the most of the grace), rather than waiting behind a
 * long chain as they would in the plain reverse of the start levels.
 */
export function stopLevels<T extends Node>(nodes: readonly T[]): T[][] {
  const dependents = new Map<string, string[]>(nodes.map((n) => [n.name, []]));
  for (const n of nodes) for (const dep of n.after) dependents.get(dep)?.push(n.name);
  const reversed = nodes.map((n) => ({ name: n.name, after: dependents.get(n.name)! }));
  return groupByLevel(nodes, startLevelOf(reversed));
}
