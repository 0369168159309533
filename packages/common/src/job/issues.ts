// Job-spec problems as one list of `file: field.path: message` lines, so a user fixes every
// mistake in one pass. Zod reports a failed union as one issue per alternative; here the
// alternative the user evidently meant is chosen, so they read about their typo and not about
// the shapes they never intended.
import type { z } from 'zod';

/** One problem in a job spec: the dotted field path (empty for the whole document) and what is wrong. */
export interface JobSpecIssue {
  path: string;
  message: string;
}

export class JobSpecError extends Error {
  constructor(
    /** The file (or other source name) the spec came from. */
    readonly source: string,
    readonly issues: readonly JobSpecIssue[],
  ) {
    super(issues.map((i) => `${source}: ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n'));
    this.name = 'JobSpecError';
  }
}

type Issue = z.core.$ZodIssue;

/** `data.train.w[0]`: keys joined by dots, array indices in brackets. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

/**
 * How badly an alternative of a union misfits: wrong or missing keys at its top level weigh far
 * more than a bad value deeper in, since they mean the user was not writing that alternative.
 */
function misfit(issues: readonly Issue[]): number {
  let score = 0;
  for (const issue of issues) {
    const depth = issue.path.length;
    const missing = depth === 1 && issue.input === undefined;
    if (issue.code === 'unrecognized_keys' && depth === 0) score += 10 * issue.keys.length;
    else if (missing || (issue.code === 'invalid_type' && depth === 0)) score += 10;
    else if (issue.code === 'invalid_union' && issue.discriminator !== undefined && depth <= 1) score += 10;
    else score += 1;
  }
  return score;
}

/** The alternative that fits best, or undefined when two fit equally well. */
function bestAlternative(alternatives: readonly (readonly Issue[])[]): readonly Issue[] | undefined {
  const ranked = alternatives.map((issues) => ({ issues, score: misfit(issues) })).sort((a, b) => a.score - b.score);
  if (ranked.length === 0 || (ranked.length > 1 && ranked[0].score === ranked[1].score)) return undefined;
  return ranked[0].issues;
}

/** Flattens zod issues (already worded by the job-spec error map) into one issue per bad field. */
export function toJobSpecIssues(issues: readonly Issue[], prefix: readonly PropertyKey[] = []): JobSpecIssue[] {
  const out: JobSpecIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union' && issue.discriminator === undefined) {
      const best = bestAlternative(issue.errors);
      if (best) {
        out.push(...toJobSpecIssues(best, path));
        continue;
      }
    }
    if (issue.code === 'unrecognized_keys') {
      const lines = issue.message.split('\n');
      issue.keys.forEach((key, i) => out.push({ path: formatPath([...path, key]), message: lines[i] ?? lines[0] }));
      continue;
    }
    out.push({ path: formatPath(path), message: issue.message });
  }
  return out;
}
