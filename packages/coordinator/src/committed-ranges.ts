// The data-plan ranges whose updates were applied, as the summary and every checkpoint carry them.
// Within an epoch the applied steps tile [0, size) in order, so a step that continues the previous
// range extends it: an epoch is one entry, however many steps it has, instead of one entry a step
// copied into every checkpoint. A gap or a repeat still stands apart as an entry of its own, which
// is what a check that every sample was trained once per epoch looks for.

/** [epoch, start, count]: samples [start, start + count) of the epoch's permutation. */
export type CommittedRange = [number, number, number];

/** Records that the samples [start, start + count) of `epoch` were applied. */
export function commitRange(ranges: CommittedRange[], epoch: number, start: number, count: number): void {
  const last = ranges[ranges.length - 1];
  if (last && last[0] === epoch && last[1] + last[2] === start) last[2] += count;
  else ranges.push([epoch, start, count]);
}
