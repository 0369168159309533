// The job's progress where `kubectl` shows it: in Kubernetes the coordinator writes epoch, step,
// ETA and state as annotations on its own Job, with a JSON merge patch to the API server, at most
// every `minIntervalMs` (the newest progress is written when the interval has passed) and once more
// at the end. The Job, not the Pod: a Job outlives a restarted pod (backoffLimit), and `kubectl get
// job` is what a user watches. It never fails the job: the first failed write is logged as a warning
// that says what to check, later ones at debug level.
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '@tfjs-ddp/common';
import { formatDuration, formatProgress, type ProgressEvent } from './progress.js';

/** The annotation keys, as `kubectl get job -o jsonpath='{.metadata.annotations.tfjs-ddp/eta}'` reads them. */
export const JOB_ANNOTATIONS = {
  state: 'tfjs-ddp/state',
  epoch: 'tfjs-ddp/epoch',
  step: 'tfjs-ddp/step',
  eta: 'tfjs-ddp/eta',
  etaSeconds: 'tfjs-ddp/eta-seconds',
  progress: 'tfjs-ddp/progress',
  updated: 'tfjs-ddp/updated',
} as const;

/** Where Kubernetes mounts a pod's service-account token and the cluster CA (here a projected volume). */
export const IN_CLUSTER_CREDENTIALS = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface JobAnnotatorOptions {
  /** The API server's base URL: https://HOST:PORT in a pod (http:// only for a test's stand-in). */
  apiServer: string;
  namespace: string;
  /** The coordinator's own Job. */
  job: string;
  /** The bearer token's file, read at every write: projected tokens are rotated by the kubelet. */
  tokenFile: string;
  /** The cluster CA the API server's certificate is checked against. */
  caFile?: string;
  /** Writes are at least this far apart; default 10 s. */
  minIntervalMs?: number;
  /** How long one write may take; default 5 s. */
  timeoutMs?: number;
  log: Logger;
}

/** The options for the coordinator's own Job from inside its pod: the API server from the variables every pod gets. */
export function inClusterAnnotatorOptions(
  env: Readonly<Record<string, string | undefined>>,
  job: string,
  namespace: string,
  log: Logger,
): JobAnnotatorOptions {
  const host = env.KUBERNETES_SERVICE_HOST ?? 'kubernetes.default.svc';
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  return {
    apiServer: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    namespace,
    job,
    tokenFile: `${IN_CLUSTER_CREDENTIALS}/token`,
    caFile: `${IN_CLUSTER_CREDENTIALS}/ca.crt`,
    log,
  };
}

export class JobAnnotator {
  private readonly minIntervalMs: number;
  private lastWrite = -Infinity;
  private pending?: Record<string, string>;
  private timer?: NodeJS.Timeout;
  private inFlight?: Promise<void>;
  private warned = false;
  private closed = false;

  constructor(private readonly o: JobAnnotatorOptions) {
    this.minIntervalMs = o.minIntervalMs ?? 10_000;
  }

  /** The API path of the Job (what the Role's resourceNames allows). */
  get path(): string {
    return `/apis/batch/v1/namespaces/${encodeURIComponent(this.o.namespace)}/jobs/${encodeURIComponent(this.o.job)}`;
  }

  /** The newest progress; written now if the last write is `minIntervalMs` old, else when it is. */
  progress(p: ProgressEvent): void {
    if (this.closed) return;
    this.pending = annotationsOf('training', p);
    this.schedule();
  }

  /** Writes the final state (with the last progress) at once and stops; resolves when the write ended. */
  async close(state: 'completed' | 'failed', last?: ProgressEvent): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    await this.inFlight;
    await this.write(annotationsOf(state, last));
  }

  private schedule(): void {
    if (this.timer || this.inFlight) return;
    const wait = this.lastWrite + this.minIntervalMs - performance.now();
    if (wait <= 0) {
      this.flush();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
    this.timer.unref();
  }

  private flush(): void {
    const annotations = this.pending;
    if (!annotations || this.closed) return;
    this.pending = undefined;
    this.inFlight = this.write(annotations).finally(() => {
      this.inFlight = undefined;
      if (this.pending) this.schedule();
    });
  }

  private async write(annotations: Record<string, string>): Promise<void> {
    this.lastWrite = performance.now();
    try {
      const token = (await readFile(this.o.tokenFile, 'utf8')).trim();
      const ca = this.o.caFile ? await readFile(this.o.caFile) : undefined;
      await patch(new URL(this.path, this.o.apiServer), token, ca, JSON.stringify({ metadata: { annotations } }), {
        timeoutMs: this.o.timeoutMs ?? 5_000,
      });
    } catch (err) {
      const message = (err as Error).message;
      if (this.warned) {
        this.o.log.debug('could not annotate the Job with the progress', { error: message });
        return;
      }
      this.warned = true;
      this.o.log.warn(
        `could not write the progress to Job ${this.o.namespace}/${this.o.job} (${message}); training goes on, ` +
          `and /status still has it. Check that the pod mounts a service-account token and that the Role ` +
          `tfjs-ddp-coordinator-progress allows patch on this Job (kubectl auth can-i patch job/${this.o.job} ` +
          `--as=system:serviceaccount:${this.o.namespace}:tfjs-ddp-coordinator); further failures are logged at debug level`,
      );
    }
  }
}

function annotationsOf(state: string, p?: ProgressEvent): Record<string, string> {
  const out: Record<string, string> = {
    [JOB_ANNOTATIONS.state]: state,
    [JOB_ANNOTATIONS.updated]: new Date().toISOString(),
  };
  if (!p) return out;
  const eta = state === 'training' ? p.etaSec : 0;
  out[JOB_ANNOTATIONS.epoch] = `${p.epoch + 1}/${p.epochs}`;
  out[JOB_ANNOTATIONS.step] = `${p.step}/${p.stepsPerEpoch}`;
  out[JOB_ANNOTATIONS.eta] = formatDuration(eta);
  out[JOB_ANNOTATIONS.etaSeconds] = Number.isFinite(eta) ? String(Math.round(eta)) : '';
  out[JOB_ANNOTATIONS.progress] = formatProgress({ ...p, etaSec: eta });
  return out;
}

function patch(url: URL, token: string, ca: Buffer | undefined, body: string, o: { timeoutMs: number }): Promise<void> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'PATCH',
        ca,
        timeout: o.timeoutMs,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/merge-patch+json',
          accept: 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (text.length < 2048) text += chunk;
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(new Error(`PATCH ${url.pathname} answered ${status}: ${apiMessage(text)}`));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`PATCH ${url.pathname} got no answer within ${o.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The API server's Status message, or the start of whatever came. */
function apiMessage(text: string): string {
  try {
    const status = JSON.parse(text) as { message?: unknown };
    if (typeof status.message === 'string') return status.message;
  } catch {
    // not JSON: shown as it came
  }
  return text.slice(0, 200) || 'no body';
}
