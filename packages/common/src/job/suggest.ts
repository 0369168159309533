// "Did you mean" for job-spec typos: finds the allowed name closest to what was written, so an
// unknown key or a misspelt enum value comes back with the likely intended spelling.

/** Compares names the way people misspell them: case, '_' and '-' do not count. */
function normalize(name: string): string {
  return name.toLowerCase().replace(/[-_]/g, '');
}

/** Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * The candidate closest to `given`, or undefined when none is close enough to be a plausible
 * typo (at most a third of the longer name may differ, and never more than 3 edits).
 */
export function closestMatch(given: string, candidates: readonly string[]): string | undefined {
  const g = normalize(given);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const c = normalize(candidate);
    const distance = editDistance(g, c);
    const limit = Math.min(3, Math.floor(Math.max(g.length, c.length) / 3));
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}
