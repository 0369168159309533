// How a failed zod validation reads inside an error message: one `path: message` per issue, joined
// by '; ', so every option, spec and message check words its problems the same way.
import type { z } from 'zod';

/**
 * The issues of `error` on one line; an issue about the value as a whole is named `rootLabel`
 * (e.g. '(options)'). At most `maxIssues` are listed, for details that must stay short.
 */
export function formatIssues(error: z.ZodError, rootLabel: string, maxIssues = Infinity): string {
  return error.issues
    .slice(0, maxIssues)
    .map((i) => `${i.path.length ? i.path.map(String).join('.') : rootLabel}: ${i.message}`)
    .join('; ');
}
