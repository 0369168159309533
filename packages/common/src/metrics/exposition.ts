// A registry's metrics in the Prometheus text format, as an HTTP route answers them.
import type { Registry } from 'prom-client';

export interface MetricsText {
  contentType: string;
  body: string;
}

export async function metricsText(registry: Registry): Promise<MetricsText> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}
