// Writes report.html next to summary.json, atomically, so a reader never sees half a page.
import { writeFileAtomic, type JobSpec } from '@tfjs-ddp/common';
import type { JobSummary } from '../summary.js';
import { renderReport } from './html.js';

export async function writeReport(path: string, summary: JobSummary, spec: JobSpec): Promise<void> {
  await writeFileAtomic(path, renderReport(summary, spec));
}
