// Conv2DBackpropFilter (the filter gradient of conv2d) for the wasm backend, which ships the forward
// conv and the input gradient but not this one. Built from kernels wasm does have: a depthwise
// convolution with one-hot filters unrolls the input into patches (im2col) with the conv's own
// strides and padding, and one matMul against dy gives the whole gradient, so the work runs in
// XNNPACK rather than in a JavaScript loop. Extracting patches multiplies by exactly 1, so the result
// is the plain sum over positions and samples, like the cpu backend's.
import * as tf from '@tensorflow/tfjs';
import type { Conv2DBackpropFilterAttrs, KernelFunc, TensorInfo } from '@tensorflow/tfjs';

/** Wraps a kernel input as a Tensor without taking ownership: ops hand kernels Tensors already. */
function asTensor(info: TensorInfo, backend: tf.KernelBackend): tf.Tensor {
  if (info instanceof tf.Tensor) return info;
  backend.incRef(info.dataId);
  return tf.engine().makeTensorFromTensorInfo(info, backend);
}

export const conv2dBackpropFilter: KernelFunc = ({ inputs, attrs, backend }) => {
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  const [filterHeight, filterWidth, inChannels, outChannels] = filterShape;
  const taps = filterHeight * filterWidth;
  return tf.tidy(() => {
    const given = inputs as { x: TensorInfo; dy: TensorInfo };
    let x = asTensor(given.x, backend as tf.KernelBackend) as tf.Tensor4D;
    let dy = asTensor(given.dy, backend as tf.KernelBackend) as tf.Tensor4D;
    if (dataFormat === 'NCHW') {
      x = tf.transpose(x, [0, 2, 3, 1]);
      dy = tf.transpose(dy, [0, 2, 3, 1]);
    }
    // extract[kh, kw, c, t] = 1 where t = kh·filterWidth + kw: output channel c·taps + t is tap t of channel c.
    const extract = tf.tile(tf.reshape(tf.eye(taps), [filterHeight, filterWidth, 1, taps]), [1, 1, inChannels, 1]);
    const patches = tf.depthwiseConv2d(x, extract as tf.Tensor4D, strides, pad, 'NHWC', 1, dimRoundingMode);
    const rows = patches.shape[0] * patches.shape[1] * patches.shape[2];
    // An explicit transpose: for [25088, 9]ᵀ·[25088, 32] (32 images of 28×28, 3×3, 1 → 32 channels)
    // wasm's matMul with transposeA took 6 to 9 times as long as transpose then matMul (best of 30 runs).
    const columns = tf.transpose(tf.reshape(patches, [rows, inChannels * taps]));
    const grad = tf.matMul(columns, tf.reshape(dy, [rows, outChannels]));
    return tf.transpose(tf.reshape(grad, [inChannels, filterHeight, filterWidth, outChannels]), [1, 2, 0, 3]);
  });
};
