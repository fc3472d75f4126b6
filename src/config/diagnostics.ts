// Problems found in the configuration, collected (never thrown) so that one run of
// `pidone --check` lists all of them, each pointing at the line that causes it.

/** A TOML key path: table and key names, and array indexes. */
export type KeyPath = readonly (string | number)[];

/** Where a problem is: a source, and as much of a position as can be known. */
export interface Where {
  /** The file name, or the --service flag as written. */
  origin: string;
  /** Position of the source among all sources, to list problems source by source. */
  sourceIndex: number;
  line?: number;
  /** The TOML key path, shown when it adds information. */
  path?: KeyPath;
}

export interface Diagnostic extends Where {
  message: string;
}

/** `services.web.env.PATH`, `services."my app".after[1]`. */
export function formatPath(path: KeyPath): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += (out ? "." : "") + (/^[A-Za-z0-9_-]+$/.test(part) ? part : JSON.stringify(part));
  }
  return out;
}

/** `FILE:LINE: key.path: message`, or `FILE: key.path: message` when the line is unknown. */
export function formatDiagnostic(d: Diagnostic): string {
  const at = d.line === undefined ? d.origin : `${d.origin}:${d.line}`;
  const path = d.path && d.path.length > 0 ? `${formatPath(d.path)}: ` : "";
  return `${at}: ${path}${d.message}`;
}

export class Diagnostics {
  private readonly items: Diagnostic[] = [];

  add(where: Where, message: string): void {
    this.items.push({ ...where, message });
  }

  get count(): number {
    return this.items.length;
  }

  /** Source by source, then by line; problems without a line last, in the order found. */
  sorted(): Diagnostic[] {
    return this.items
      .map((d, seq) => ({ d, seq }))
      .sort((a, b) =>
        a.d.sourceIndex - b.d.sourceIndex ||
        (a.d.line ?? Number.MAX_SAFE_INTEGER) - (b.d.line ?? Number.MAX_SAFE_INTEGER) ||
        a.seq - b.seq)
      .map((x) => x.d);
  }

  formatted(): string[] {
    return this.sorted().map(formatDiagnostic);
  }
}

/** Edits between two words, a swap of neighbours counting as one (the commonest typo). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The closest candidate, if close enough to be a typo (or a known synonym from another
 * tool's vocabulary, e.g. docker-compose's depends_on).
 */
export function didYouMean(word: string, candidates: readonly string[], synonyms: Readonly<Record<string, string>> = {}): string | null {
  const lower = word.toLowerCase();
  const synonym = synonyms[lower.replace(/-/g, "_")];
  if (synonym && candidates.includes(synonym)) return synonym;
  // Words of one or two letters are too short to guess from.
  const limit = word.length < 3 ? 0 : Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const c of candidates) {
    // The distance is at least the difference in length: a candidate too long or too
    // short is no typo, and a huge word must not cost its length times every candidate.
    if (Math.abs(c.length - word.length) > limit) continue;
    const d = editDistance(lower.replace(/-/g, "_"), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== null && bestDistance <= limit ? best : null;
}

/** ` (did you mean "x"?)` or nothing. */
export function suggestion(word: string, candidates: readonly string[], synonyms?: Readonly<Record<string, string>>): string {
  const s = didYouMean(word, candidates, synonyms);
  return s ? ` (did you mean "${s}"?)` : "";
}
