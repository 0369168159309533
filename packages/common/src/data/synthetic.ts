// Seeded synthetic datasets with known structure, for examples, tests and benchmarks that need
// no download: the same spec gives bit-identical samples in every process.
import { createDataset, type Dataset } from './dataset.js';
import { createPrng, PRNG_STREAM } from './prng.js';
import type { SyntheticBinarySource, SyntheticLinearSource } from './source-spec.js';

export function syntheticLinear(spec: SyntheticLinearSource): Dataset {
  const rng = createPrng(spec.seed, PRNG_STREAM.synthetic);
  const d = spec.w.length;
  const x = new Float32Array(spec.n * d);
  const y = new Float32Array(spec.n);
  for (let i = 0; i < spec.n; i++) {
    let t = spec.b;
    for (let j = 0; j < d; j++) {
      const v = rng.normal();
      x[i * d + j] = v;
      t += spec.w[j] * v;
    }
    y[i] = spec.noise > 0 ? t + spec.noise * rng.normal() : t;
  }
  return createDataset({
    name: spec.name ?? `synthetic-linear(n=${spec.n}, d=${d}, seed=${spec.seed})`,
    count: spec.n,
    featureShape: [d],
    x,
    y,
  });
}

export function syntheticBinary(spec: SyntheticBinarySource): Dataset {
  const rng = createPrng(spec.seed, PRNG_STREAM.synthetic);
  const x = new Float32Array(spec.n * 2);
  const y = new Float32Array(spec.n);
  for (let i = 0; i < spec.n; i++) {
    const x0 = rng.normal();
    const x1 = rng.normal();
    x[2 * i] = x0;
    x[2 * i + 1] = x1;
    const margin = (x0 + x1) / Math.SQRT2;
    y[i] = margin + (spec.noise > 0 ? spec.noise * rng.normal() : 0) > 0 ? 1 : 0;
  }
  return createDataset({
    name: spec.name ?? `synthetic-binary(n=${spec.n}, seed=${spec.seed})`,
    count: spec.n,
    featureShape: [2],
    numClasses: 2,
    x,
    y,
  });
}
