// Checks, from a job summary's committed data-plan ranges, that every sample of every epoch was
// trained exactly once: per epoch the ranges must tile [0, size) with no gap and no overlap.
export function uncoveredOrRepeated(committed: [number, number, number][], epochs: number, size: number): string[] {
  const problems: string[] = [];
  for (let e = 0; e < epochs; e++) {
    const ranges = committed.filter((c) => c[0] === e).sort((a, b) => a[1] - b[1]);
    let next = 0;
    for (const [, start, count] of ranges) {
      if (start !== next) problems.push(`epoch ${e}: expected a range at ${next}, got one at ${start}`);
      next = start + count;
    }
    if (next !== size) problems.push(`epoch ${e}: ranges end at ${next}, the dataset has ${size} samples`);
  }
  return problems;
}
