// Public surface of the tfjs-ddp package: the local cluster for integration tests, the CLI runner,
// and the roles for embedding.
export { startLocalCluster, workerBinPath, type LocalCluster, type LocalClusterOptions } from './local-cluster.js';
export { runCli, buildCli } from './cli.js';
export {
  runCoordinator,
  Coordinator,
  type JobSummary,
  type EpochSummary,
  type ProgressEvent,
} from '@tfjs-ddp/coordinator';
export { runWorker } from '@tfjs-ddp/worker';
