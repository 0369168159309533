import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clearLoadedDatasets, loadSource } from '@tfjs-ddp/common';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-csv-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => clearLoadedDatasets());

let n = 0;
async function csv(text: string | Uint8Array): Promise<string> {
  const path = join(dir, `f${n++}.csv`);
  await writeFile(path, text);
  return path;
}

describe('CSV source', () => {
  it('takes the named feature columns in spec order and the label column', async () => {
    const url = await csv('id,b,a,target\n1,0.5,-2,1.25\n2,1e-3,+3.5,-0.75\n');
    const ds = await loadSource({ type: 'csv', url, features: ['a', 'b'], label: 'target' });
    expect(ds.count).toBe(2);
    expect(ds.featureShape).toEqual([2]);
    expect(ds.numClasses).toBeUndefined();
    expect(Array.from(ds.x)).toEqual([-2, 0.5, 3.5, Math.fround(1e-3)]);
    expect(Array.from(ds.y)).toEqual([1.25, -0.75]);
  });

  it('handles quotes, CRLF line ends, a byte-order mark, blank lines and a gzip-compressed file', async () => {
    const text = '\ufeff"x, first","y"\r\n"1",2\r\n\r\n  3 ,"4"\r\n';
    const url = await csv(gzipSync(Buffer.from(text)));
    const ds = await loadSource({ type: 'csv', url, features: ['x, first'], label: 'y' });
    expect(Array.from(ds.x)).toEqual([1, 3]);
    expect(Array.from(ds.y)).toEqual([2, 4]);
  });

  it('maps text labels to classes with labelMap', async () => {
    const url = await csv('f,answer\n1,yes\n2,no\n3,"yes"\n');
    const ds = await loadSource({ type: 'csv', url, features: ['f'], label: 'answer', labelMap: { no: 0, yes: 1 } });
    expect(ds.numClasses).toBe(2);
    expect(Array.from(ds.y)).toEqual([1, 0, 1]);
  });

  it('checks class labels against numClasses', async () => {
    const url = await csv('f,c\n1,0\n2,3\n');
    await expect(loadSource({ type: 'csv', url, features: ['f'], label: 'c', numClasses: 3 })).rejects.toThrow(
      `${url} line 3, column "c": class 3 is not an integer in 0..2`,
    );
  });

  it('names a missing column and lists the header', async () => {
    const url = await csv('a,b,label\n1,2,3\n');
    await expect(loadSource({ type: 'csv', url, features: ['a', 'c'], label: 'label' })).rejects.toThrow(
      `${url} has no column "c"; its header has: "a", "b", "label"`,
    );
  });

  it('names the file, line and column of a cell that is not a number', async () => {
    const url = await csv('a,b,label\n1,2,3\n4,,6\n');
    await expect(loadSource({ type: 'csv', url, features: ['a', 'b'], label: 'label' })).rejects.toThrow(
      `${url} line 3, column "b": "" is not a number`,
    );
    const url2 = await csv('a,label\n1,maybe\n');
    await expect(loadSource({ type: 'csv', url: url2, features: ['a'], label: 'label' })).rejects.toThrow(
      /line 2, column "label": "maybe" is not a number; for text labels set labelMap/,
    );
  });

  it('rejects a label missing from labelMap, a short row and an unclosed quote', async () => {
    const url = await csv('a,label\n1,yes\n2,maybe\n');
    await expect(
      loadSource({ type: 'csv', url, features: ['a'], label: 'label', labelMap: { yes: 1, no: 0 } }),
    ).rejects.toThrow(`${url} line 3, column "label": "maybe" is not in labelMap (it maps "yes", "no")`);
    const short = await csv('a,b,label\n1,2,3\n4,5\n');
    await expect(loadSource({ type: 'csv', url: short, features: ['a'], label: 'label' })).rejects.toThrow(
      `${short} line 3 has 2 cells but the header has 3`,
    );
    const open = await csv('a,label\n1,"2\n3,4\n');
    await expect(loadSource({ type: 'csv', url: open, features: ['a'], label: 'label' })).rejects.toThrow(
      `${open} line 2: a quoted cell is never closed`,
    );
  });

  it('reads another delimiter', async () => {
    const url = await csv('a;b;label\n1;2,5;3\n');
    const ds = await loadSource({ type: 'csv', url, features: ['a'], label: 'label', delimiter: ';' });
    expect(Array.from(ds.x)).toEqual([1]);
    expect(Array.from(ds.y)).toEqual([3]);
  });

  it('rejects an invalid spec before reading anything, naming the field', async () => {
    await expect(
      loadSource({ type: 'csv', url: '/nonexistent.csv', features: [], label: 'y' } as never),
    ).rejects.toThrow(/invalid data source: features: /);
    await expect(loadSource({ type: 'parquet' } as never)).rejects.toThrow(/invalid data source: type: /);
    await expect(loadSource({ type: 'csv', url: '/nonexistent.csv', features: ['y'], label: 'y' })).rejects.toThrow(
      'invalid data source: label: got "y", which is also listed in features; a column is either a feature or the label',
    );
  });
});
