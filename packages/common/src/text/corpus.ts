// Reads a text corpus: the files a text source names, or every matching file of a directory in name
// order, so every process reads the same documents in the same order.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipIfCompressed } from '../data/gzip.js';
import { readUrl, type ReadUrlOptions } from '../data/read-url.js';
import type { TextSource } from './source-spec.js';

export interface CorpusDocument {
  /** The file it came from. */
  file: string;
  text: string;
}

async function listDirectory(dir: string, include: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new Error(`cannot list the text corpus directory ${dir}: ${(err as Error).message}; check data.*.dir`, {
      cause: err,
    });
  }
  const pattern = new RegExp(include);
  const files = names
    .filter((n) => pattern.test(n))
    .sort()
    .map((n) => join(dir, n));
  if (files.length === 0) {
    throw new Error(
      `the text corpus directory ${dir} holds no file matching /${include}/ (it has ${names.length} entries); ` +
        `check dir and include`,
    );
  }
  return files;
}

/** The documents of a text source, in order; gzip files are decompressed. */
export async function readCorpus(source: TextSource, opts: ReadUrlOptions = {}): Promise<CorpusDocument[]> {
  const files = source.files ?? (await listDirectory(source.dir as string, source.include));
  const decoder = new TextDecoder();
  return Promise.all(
    files.map(async (file) => ({
      file,
      text: decoder.decode(await gunzipIfCompressed(await readUrl({ url: file }, opts), file)),
    })),
  );
}
