// Public surface of the data module: dataset sources addressed by URL, the in-memory Dataset and
// the seeded random numbers the data plan shares.
export * from './dataset.js';
export * from './prng.js';
export * from './source-spec.js';
export * from './load-source.js';
export * from './read-url.js';
export { defaultCacheDir, CACHE_ENV } from './http-cache.js';
export { putDataset, parseObjectUrl, type PutDatasetOptions, type PutDatasetResult } from './object-store.js';
export { sha256Hex } from './checksum.js';
export { parseIdxImages, type IdxImages } from './idx.js';
export { csvRecords } from './csv.js';
export { gunzipIfCompressed } from './gzip.js';
