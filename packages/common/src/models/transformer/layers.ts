// The transformer's building blocks as plain tfjs ops on [rows, width] activations, so the forward
// pass and its gradients use only kernels every backend has (gather's gradient, UnsortedSegmentSum,
// is registered for wasm in backend/). No dropout: a step is then a pure function of the weights
// and the batch, which is what lets N workers reproduce one process's parameters.
import * as tf from '@tensorflow/tfjs';

const LAYER_NORM_EPSILON = 1e-5;

export interface Linear {
  kernel: tf.Variable;
  bias: tf.Variable;
}

export interface Norm {
  gamma: tf.Variable;
  beta: tf.Variable;
}

export interface Block {
  ln1: Norm;
  qkv: Linear;
  proj: Linear;
  ln2: Norm;
  fc: Linear;
  out: Linear;
}

/**
 * a·b for 2-D tensors, with gradients dy·bᵀ and aᵀ·dy taken through explicit transposes: on the wasm
 * backend (tfjs 4.22) matMul with transposeA took 3 to 6 times as long as transpose then matMul for
 * a kernel's gradient [512, 128]ᵀ·[512, 384] (d_model 128, 512 tokens; best of 15 runs).
 */
export const matMul2d = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [left, right] = saved as tf.Tensor2D[];
      return [tf.matMul(dy as tf.Tensor2D, tf.transpose(right)), tf.matMul(tf.transpose(left), dy as tf.Tensor2D)];
    },
  };
}) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

export function linear(x: tf.Tensor2D, l: Linear): tf.Tensor2D {
  return tf.add(matMul2d(x, l.kernel as tf.Tensor2D), l.bias);
}

/** Normalises each row to zero mean and unit variance, then scales and shifts it. */
export function layerNorm(x: tf.Tensor2D, n: Norm): tf.Tensor2D {
  const centered = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centered), -1, true);
  return tf.add(tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, LAYER_NORM_EPSILON))), n.gamma), n.beta);
}

/** GELU in the tanh form GPT-2 uses: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export function gelu(x: tf.Tensor2D): tf.Tensor2D {
  const cube = tf.mul(x, tf.mul(x, x));
  const inner = tf.mul(tf.add(x, tf.mul(cube, 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/** 0 where position j may attend to position i (j ≤ i), a large negative number where it may not. */
export function causalMask(length: number): tf.Tensor2D {
  const values = new Float32Array(length * length);
  for (let i = 0; i < length; i++) values.fill(-1e9, i * length + i + 1, (i + 1) * length);
  return tf.tensor2d(values, [length, length]);
}

/**
 * Causal multi-head self-attention of x ([batch·length, dModel]) over each sequence of `length`
 * rows: one fused projection to queries, keys and values, softmax(q·kᵀ/√dHead + mask)·v per head,
 * and the output projection.
 */
export function selfAttention(
  x: tf.Tensor2D,
  block: Block,
  shape: { batch: number; length: number; heads: number },
  mask: tf.Tensor2D,
): tf.Tensor2D {
  const { batch, length, heads } = shape;
  const width = x.shape[1];
  const dHead = width / heads;
  const [q, k, v] = tf.split(linear(x, block.qkv), 3, 1);
  const perHead = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [batch, length, heads, dHead]), [0, 2, 1, 3]);
  const scores = tf.add(tf.matMul(perHead(tf.mul(q, 1 / Math.sqrt(dHead))), perHead(k), false, true), mask);
  const attended = tf.matMul(tf.softmax(scores), perHead(v));
  const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [batch * length, width]) as tf.Tensor2D;
  return linear(merged, block.proj);
}

/** One pre-norm block: x + attention(norm(x)), then + mlp(norm(·)). */
export function transformerBlock(
  x: tf.Tensor2D,
  block: Block,
  shape: { batch: number; length: number; heads: number },
  mask: tf.Tensor2D,
): tf.Tensor2D {
  const attended = tf.add(x, selfAttention(layerNorm(x, block.ln1), block, shape, mask)) as tf.Tensor2D;
  return tf.add(attended, linear(gelu(linear(layerNorm(attended, block.ln2), block.fc)), block.out));
}
