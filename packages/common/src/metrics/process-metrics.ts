// The process metrics (CPU, memory, event loop, GC, handles) prom-client collects, in a registry
// whose default labels they then carry. prom-client's nodejs_active_{handles,requests,resources}_total
// are gauges named like counters, which Prometheus' naming rules (and `promtool check metrics`)
// reject; they are removed, since summing the per-type gauges of the same name without _total
// gives the same figure.
import { collectDefaultMetrics, type Registry } from 'prom-client';

const MISNAMED_GAUGES = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_GAUGES) registry.removeSingleMetric(name);
}
