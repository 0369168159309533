// Entry of the bundle's `tfjs-ddp` command.
import './provide.mjs';
import '../../packages/cli/dist/bin.js';
