// A job run inside the test process: the coordinator and its workers (cpu backend) share this
// process's tfjs, so a test can reach into them: patch the backend, start a worker at an event.
import { silentLogger, specHash, type JobSpec, type Logger } from '@tfjs-ddp/common';
import { Coordinator, type JobSummary } from '@tfjs-ddp/coordinator';
import { runWorker, type WorkerOptions } from '@tfjs-ddp/worker';

export interface InProcessJob {
  readonly coordinator: Coordinator;
  /** Starts one more worker (id `${spec.name}-${id}`), which joins at the next step boundary. */
  addWorker(id: string): void;
  /** The job's summary, once the coordinator and every worker have finished. */
  result(): Promise<JobSummary>;
}

/**
 * `workerOptions(id)` adds to or overrides the options of worker `id` (its metrics, say); `log` is the
 * coordinator's (silent by default).
 */
export function startInProcessJob(
  spec: JobSpec,
  natsUrl: string,
  workerIds: string[],
  workerOptions: (id: string) => Partial<WorkerOptions> = () => ({}),
  log: Logger = silentLogger,
): InProcessJob {
  const hash = specHash(spec);
  const nats = { servers: [natsUrl] };
  const coordinator = new Coordinator({ spec, specHash: hash, nats, log });
  const workers: Promise<unknown>[] = [];
  const addWorker = (id: string) => {
    workers.push(
      runWorker({
        spec,
        specHash: hash,
        nats,
        backend: 'cpu',
        workerId: `${spec.name}-${id}`,
        log: silentLogger,
        ...workerOptions(id),
      }),
    );
  };
  workerIds.forEach(addWorker);
  return {
    coordinator,
    addWorker,
    async result() {
      const summary = await coordinator.run();
      await Promise.all(workers);
      return summary;
    },
  };
}
