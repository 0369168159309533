// Entry of the bundle's worker process (what `tfjs-ddp local` starts for each worker).
import './provide.mjs';
import '../../packages/worker/dist/bin.js';
