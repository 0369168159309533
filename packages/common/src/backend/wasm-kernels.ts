// Registers the gradient kernels the wasm backend lacks, so every zoo model trains on it: conv2d's
// filter gradient (CNNs) and UnsortedSegmentSum (gather's gradient: embeddings, transformers).
// Kernels a later tfjs release ships itself are left alone.
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc } from '@tensorflow/tfjs';
import { conv2dBackpropFilter } from './conv2d-backprop-filter.js';
import { unsortedSegmentSum } from './unsorted-segment-sum.js';

const WASM_GRADIENT_KERNELS: Record<string, KernelFunc> = {
  Conv2DBackpropFilter: conv2dBackpropFilter,
  UnsortedSegmentSum: unsortedSegmentSum,
};

/** Returns the names of the kernels it registered (empty when all were already there). */
export function registerWasmGradientKernels(): string[] {
  const added: string[] = [];
  for (const [kernelName, kernelFunc] of Object.entries(WASM_GRADIENT_KERNELS)) {
    if (tf.getKernel(kernelName, 'wasm') != null) continue;
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
    added.push(kernelName);
  }
  return added;
}
