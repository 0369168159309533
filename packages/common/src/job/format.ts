// Renders a resolved job spec for people (YAML, with a header saying what was resolved) or for
// programs (JSON).
import YAML from 'yaml';
import type { JobSpec } from './schema.js';

export function formatJobSpec(spec: JobSpec, format: 'yaml' | 'json'): string {
  if (format === 'json') return `${JSON.stringify(spec, null, 2)}\n`;
  return `# resolved job spec: defaults filled in, paths absolute\n${YAML.stringify(spec)}`;
}
