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
 * declared first. Names in `after` that are not nodes are ignored here.
 */
export function findCycles(nodes: readonly Node[]): string[][] {
  const index = new Map(nodes.map((n, i) => [n.name, i]));
  const state = new Map<string, "active" | "done">();
  const stack: string[] = [];
  const seen = new Set<string>();
  const cycles: string[][] = [];

  const visit = (name: string) => {
    state.set(name, "active");
    stack.push(name);
    for (const dep of nodes[index.get(name)!]!.after) {
      if (!index.has(dep)) continue;
      const s = state.get(dep);
      if (s === "active") {
        const loop = stack.slice(stack.indexOf(dep));
        let first = 0;
        for (let k = 1; k < loop.length; k++) if (index.get(loop[k]!)! < index.get(loop[first]!)!) first = k;
        const rotated = [...loop.slice(first), ...loop.slice(0, first)];
        const key = rotated.join("\0");
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...rotated, rotated[0]!]);
        }
      } else if (s === undefined) {
        visit(dep);
      }
    }
    stack.pop();
    state.set(name, "done");
  };
  for (const n of nodes) if (!state.has(n.name)) visit(n.name);
  return cycles;
}

/**
 * The start level of each node: 0 without dependencies, else one more than its highest
 * dependency. Throws on a cycle (validation reports cycles before this is used).
 */
export function startLevelOf(nodes: readonly Node[]): Map<string, number> {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const level = new Map<string, number>();
  const visiting = new Set<string>();
  const compute = (n: Node): number => {
    const known = level.get(n.name);
    if (known !== undefined) return known;
    if (visiting.has(n.name)) throw new Error(`dependency cycle through "${n.name}"`);
    visiting.add(n.name);
    let l = 0;
    for (const dep of n.after) {
      const d = byName.get(dep);
      if (d) l = Math.max(l, compute(d) + 1);
    }
    visiting.delete(n.name);
    level.set(n.name, l);
    return l;
  };
  for (const n of nodes) compute(n);
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
