// Writes report.html next to summary.json, atomically, so a reader never sees half a page.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { JobSpec } from '@tfjs-ddp/common';
import type { JobSummary } from '../coordinator.js';
import { renderReport } from './html.js';

export async function writeReport(path: string, summary: JobSummary, spec: JobSpec): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, renderReport(summary, spec));
  await rename(tmp, path);
}
