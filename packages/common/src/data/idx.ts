// Parses MNIST-format IDX files (unsigned-byte images and labels, already decompressed) into a
// Dataset, checking every header field against the bytes so a corrupt or mismatched download
// fails with the file's name and what is wrong instead of training on garbage.
import { createDataset, type Dataset } from './dataset.js';

const UNSIGNED_BYTE = 0x08;

function hex32(bytes: Uint8Array): string {
  return (
    '0x' +
    Array.from(bytes.subarray(0, 4))
      .map((b) => b.toString(16).padStart(2, '0'))
      .join('')
  );
}

/** Reads and checks the magic number and dimension sizes; returns the sizes and the header length. */
function readHeader(bytes: Uint8Array, file: string, kind: 'image' | 'label'): { dims: number[]; headerBytes: number } {
  const rank = kind === 'image' ? 3 : 1;
  const expectedMagic = `0x000008${rank.toString(16).padStart(2, '0')}`;
  const layout = kind === 'image' ? '(count, rows, cols)' : '(count)';
  if (bytes.length < 4)
    throw new Error(
      `${file} is not an IDX ${kind} file: it has only ${bytes.length} bytes, less than the 4-byte magic number`,
    );
  if (bytes[0] !== 0 || bytes[1] !== 0)
    throw new Error(
      `${file} is not an IDX ${kind} file: its magic number is ${hex32(bytes)}, expected ${expectedMagic}. ` +
        `Check that the URL points at the ${kind} file (e.g. *-${kind === 'image' ? 'images-idx3' : 'labels-idx1'}-ubyte.gz)`,
    );
  if (bytes[2] !== UNSIGNED_BYTE)
    throw new Error(
      `${file}: IDX element type 0x${bytes[2].toString(16).padStart(2, '0')} is not supported; ` +
        `expected 0x08 (unsigned bytes, as in MNIST)`,
    );
  if (bytes[3] !== rank)
    throw new Error(
      `${file} has ${bytes[3]} dimension(s) (magic ${hex32(bytes)}), but an IDX ${kind} file has ${rank} ${layout}` +
        ` (magic ${expectedMagic}); are the images and labels URLs swapped?`,
    );
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes)
    throw new Error(`${file} is truncated: ${bytes.length} bytes, less than its ${headerBytes}-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let d = 0; d < rank; d++) dims.push(view.getUint32(4 + 4 * d, false));
  return { dims, headerBytes };
}

function checkLength(bytes: Uint8Array, file: string, expected: number, says: string): void {
  if (bytes.length < expected)
    throw new Error(
      `${file} is truncated: header says ${says} (${expected} bytes) but the file has ${bytes.length}; download it again`,
    );
  if (bytes.length > expected)
    throw new Error(
      `${file} is corrupt: header says ${says} (${expected} bytes) but the file has ${bytes.length}, ` +
        `${bytes.length - expected} bytes too many`,
    );
}

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  /** The pixel bytes, row-major, without the header. */
  pixels: Uint8Array;
}

export function parseIdxImages(bytes: Uint8Array, file: string): IdxImages {
  const { dims, headerBytes } = readHeader(bytes, file, 'image');
  const [count, rows, cols] = dims;
  if (rows === 0 || cols === 0) throw new Error(`${file}: header says images of ${rows}×${cols}; both must be > 0`);
  checkLength(bytes, file, headerBytes + count * rows * cols, `${count} images of ${rows}×${cols}`);
  return { count, rows, cols, pixels: bytes.subarray(headerBytes) };
}

/** The label bytes, without the header. */
export function parseIdxLabels(bytes: Uint8Array, file: string): Uint8Array {
  const { dims, headerBytes } = readHeader(bytes, file, 'label');
  checkLength(bytes, file, headerBytes + dims[0], `${dims[0]} labels`);
  return bytes.subarray(headerBytes);
}

export interface IdxDatasetOptions {
  name: string;
  imagesFile: string;
  labelsFile: string;
  /** Scale pixels to [0, 1]; false keeps 0..255. */
  normalize: boolean;
  /** Defaults to the largest label + 1. */
  numClasses?: number;
}

/** A classification dataset of [rows, cols, 1] images from the decompressed IDX files. */
export function idxDataset(imageBytes: Uint8Array, labelBytes: Uint8Array, o: IdxDatasetOptions): Dataset {
  const images = parseIdxImages(imageBytes, o.imagesFile);
  const labels = parseIdxLabels(labelBytes, o.labelsFile);
  if (labels.length !== images.count)
    throw new Error(
      `${o.imagesFile} has ${images.count} images but ${o.labelsFile} has ${labels.length} labels; ` +
        `use the labels file of the same set (e.g. t10k-images with t10k-labels)`,
    );
  let maxLabel = 0;
  for (const l of labels) if (l > maxLabel) maxLabel = l;
  const numClasses = o.numClasses ?? Math.max(2, maxLabel + 1);
  if (maxLabel >= numClasses)
    throw new Error(`${o.labelsFile} has label ${maxLabel}, but numClasses is ${numClasses} (labels must be < it)`);
  const x = new Float32Array(images.pixels.length);
  const scale = o.normalize ? 255 : 1;
  for (let i = 0; i < x.length; i++) x[i] = images.pixels[i] / scale;
  return createDataset({
    name: o.name,
    count: images.count,
    featureShape: [images.rows, images.cols, 1],
    numClasses,
    x,
    y: Float32Array.from(labels),
  });
}
