// Reads a job spec from YAML or JSON text (JSON is YAML), validates it against the schema and
// returns it with defaults filled and paths made absolute; on failure throws a JobSpecError
// listing every problem found.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import YAML from 'yaml';
import { JobSpecError, toJobSpecIssues } from './issues.js';
import { jobSpecErrorMap } from './messages.js';
import { resolveSpecPaths } from './paths.js';
import { jobSpecSchema, type JobSpec } from './schema.js';

export interface JobSpecOptions {
  /** Directory that relative paths in the spec are relative to; defaults to the spec file's directory. */
  baseDir?: string;
}

/** Validates a spec that is already a JavaScript value (e.g. built in code or received as JSON). */
export function validateJobSpec(value: unknown, sourceName: string, options: JobSpecOptions = {}): JobSpec {
  const result = jobSpecSchema.safeParse(value, { error: jobSpecErrorMap, reportInput: true });
  if (!result.success) throw new JobSpecError(sourceName, toJobSpecIssues(result.error.issues));
  return resolveSpecPaths(result.data, options.baseDir ?? dirname(resolve(sourceName)));
}

export function parseJobSpec(text: string, sourceName: string, options: JobSpecOptions = {}): JobSpec {
  const doc = YAML.parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    // yaml's messages end in a code excerpt; its first line already names the line and column.
    throw new JobSpecError(
      sourceName,
      doc.errors.map((e) => ({ path: '', message: `invalid YAML: ${e.message.split('\n')[0].replace(/:$/, '')}` })),
    );
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) {
    throw new JobSpecError(sourceName, [
      { path: '', message: 'the document is empty; expected a job spec with name, model, data, optimizer, ...' },
    ]);
  }
  return validateJobSpec(value, sourceName, options);
}

export async function loadJobSpec(path: string): Promise<JobSpec> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new JobSpecError(path, [
      { path: '', message: `cannot read the job spec (${(err as Error).message}); check the path given to --job` },
    ]);
  }
  return parseJobSpec(text, path);
}
