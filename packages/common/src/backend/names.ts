// The compute backends a job may ask for, as one validated type shared by the job spec and the CLI.
import { z } from 'zod';

export const BACKEND_REQUESTS = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;

export const backendRequestSchema = z.enum(BACKEND_REQUESTS);

/** What `--backend` accepts: a backend by name, or `auto` for the fastest one that loads. */
export type BackendRequest = z.infer<typeof backendRequestSchema>;

/** The TensorFlow.js backend that ended up running (tfjs-node and tfjs-node-gpu both register 'tensorflow'). */
export type BackendName = Exclude<BackendRequest, 'auto'>;
