// The URL forms a dataset file may take, defined once: the source schemas validate them, readUrl
// dispatches on the scheme and a job spec resolves paths (anything without scheme://) against its
// file. It imports nothing but zod, so the data, text and job modules can all use it without an
// import cycle.
import { z } from 'zod';

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
const OBJECT_URL = /^nats-obj:\/\/[^/]+\/.+$/;

/** The scheme of `url` in lower case (`https`), or undefined for a filesystem path. */
export function urlScheme(url: string): string | undefined {
  return SCHEME.exec(url)?.[1].toLowerCase();
}

/** A filesystem path, a file:// or http(s):// URL, or nats-obj://BUCKET/NAME: the forms readUrl reads. */
export const dataUrlSchema = z
  .string()
  .min(1)
  .superRefine((url, ctx) => {
    const scheme = urlScheme(url);
    if (scheme === undefined || scheme === 'file' || scheme === 'http' || scheme === 'https') return;
    if (scheme === 'nats-obj' && OBJECT_URL.test(url)) return;
    ctx.addIssue({
      code: 'custom',
      input: url,
      message:
        scheme === 'nats-obj'
          ? `got ${JSON.stringify(url)}, expected nats-obj://BUCKET/NAME (an object in a JetStream object store)`
          : `got ${JSON.stringify(url)}, expected a path, a file:// or http(s):// URL, or nats-obj://BUCKET/NAME`,
    });
  });
