// All-reduce bandwidth as NCCL-tests defines it, so figures compare with published GPU numbers:
// algbw = bytes / time, busbw = algbw · 2(N−1)/N (what each rank's link carried).

/** Bus bandwidth in bytes/s of an all-reduce of `bytes` (the fp32 buffer) over `worldSize` ranks. */
export function busBandwidth(bytes: number, seconds: number, worldSize: number): number {
  if (!(seconds > 0) || worldSize < 1) return 0;
  return (bytes / seconds) * ((2 * (worldSize - 1)) / worldSize);
}
