// UnsortedSegmentSum (the gradient of gather, hence of embeddings) for the wasm backend, which lacks
// it. One pass over the rows adds each into its segment's output row, reading and writing the wasm
// heap in place: linear in the input, where a one-hot matMul would be rows × segments.
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelFunc, TensorInfo, UnsortedSegmentSumAttrs } from '@tensorflow/tfjs';

export const unsortedSegmentSum: KernelFunc = ({ inputs, attrs, backend }) => {
  const wasm = backend as BackendWasm;
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = attrs as unknown as UnsortedSegmentSumAttrs;
  const idShape = segmentIds.shape;
  for (let i = 0; i < idShape.length; i++) {
    if (idShape[i] !== x.shape[i]) {
      throw new Error(
        `UnsortedSegmentSum expects segmentIds' shape to be a prefix of x's shape; got segmentIds ` +
          `[${idShape.join(', ')}] for x [${x.shape.join(', ')}]`,
      );
    }
  }
  const rowShape = x.shape.slice(idShape.length);
  const rowSize = rowShape.reduce((a, b) => a * b, 1);
  const out = wasm.makeOutput([numSegments, ...rowShape], x.dtype);
  // Views are taken after makeOutput: allocating can grow the heap and detach earlier views.
  const outValues = wasm.typedArrayFromHeap(out);
  const xValues = wasm.typedArrayFromHeap(x);
  const ids = wasm.typedArrayFromHeap(segmentIds);
  outValues.fill(0);
  for (let row = 0; row < ids.length; row++) {
    const segment = ids[row];
    // TensorFlow drops rows whose id is negative or out of range rather than failing.
    if (segment < 0 || segment >= numSegments) continue;
    const from = row * rowSize;
    const to = segment * rowSize;
    for (let j = 0; j < rowSize; j++) outValues[to + j] += xValues[from + j];
  }
  return out;
};
