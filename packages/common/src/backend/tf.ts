// The TensorFlow.js namespace type every module is handed. tfjs-node and tfjs-node-gpu re-export
// '@tensorflow/tfjs' and only register a backend on it, so one engine (one set of variables, one
// kernel registry) serves the whole process whichever backend runs.
import type * as tfjs from '@tensorflow/tfjs';

export type Tf = typeof tfjs;
