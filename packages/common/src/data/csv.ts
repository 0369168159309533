// Reads a CSV file with a header row (RFC 4180 quoting) into a Dataset: the spec names the feature
// and label columns; every problem is reported with the file, line and column it was found at.
import { createDataset, type Dataset } from './dataset.js';
import type { CsvSource } from './source-spec.js';

interface CsvRecord {
  cells: string[];
  /** 1-based line on which the record starts. */
  line: number;
}

/** Splits CSV text into records; blank lines are skipped, unquoted cells trimmed. */
export function* csvRecords(text: string, file: string, delimiter = ','): Generator<CsvRecord> {
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // byte-order mark from spreadsheet exports
  let line = 1;
  while (i < n) {
    const start = line;
    const cells: string[] = [];
    let blank = true;
    for (;;) {
      if (text[i] === '"') {
        blank = false;
        let value = '';
        let from = i + 1;
        for (;;) {
          const q = text.indexOf('"', from);
          if (q < 0) throw new Error(`${file} line ${start}: a quoted cell is never closed`);
          const piece = text.slice(from, q);
          for (const c of piece) if (c === '\n') line++;
          value += piece;
          if (text[q + 1] === '"') {
            value += '"';
            from = q + 2;
          } else {
            i = q + 1;
            break;
          }
        }
        cells.push(value);
      } else {
        let j = i;
        while (j < n && text[j] !== delimiter && text[j] !== '\n' && text[j] !== '\r') j++;
        const cell = text.slice(i, j).trim();
        if (cell !== '') blank = false;
        cells.push(cell);
        i = j;
      }
      if (i >= n) break;
      const c = text[i];
      if (c === delimiter) {
        blank = false;
        i++;
        continue;
      }
      if (c === '\r' || c === '\n') {
        i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
        line++;
        break;
      }
      throw new Error(
        `${file} line ${line}: unexpected ${JSON.stringify(c)} after a closing quote; expected "${delimiter}" or the end of the line`,
      );
    }
    if (!blank) yield { cells, line: start };
  }
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Builds the dataset described by `spec` from the CSV text of `file`. */
export function csvDataset(text: string, spec: CsvSource, file: string): Dataset {
  const records = csvRecords(text, file, spec.delimiter);
  const first = records.next();
  if (first.done) throw new Error(`${file} is empty; expected a header row naming the columns`);
  const header = first.value.cells;
  const column = (name: string): number => {
    const c = header.indexOf(name);
    if (c < 0)
      throw new Error(
        `${file} has no column ${JSON.stringify(name)}; its header has: ${header.map((h) => JSON.stringify(h)).join(', ')}`,
      );
    return c;
  };
  const featureCols = spec.features.map(column);
  const labelCol = column(spec.label);

  const labelMap = spec.labelMap ? new Map(Object.entries(spec.labelMap)) : undefined;
  const mapped = labelMap ? Math.max(...labelMap.values()) + 1 : undefined;
  const numClasses = spec.numClasses ?? (mapped !== undefined ? Math.max(2, mapped) : undefined);
  if (mapped !== undefined && numClasses !== undefined && mapped > numClasses)
    throw new Error(`labelMap maps to class ${mapped - 1}, but numClasses is ${numClasses} (classes must be < it)`);

  const parse = (cell: string, line: number, col: string): number => {
    if (!NUMBER.test(cell))
      throw new Error(
        `${file} line ${line}, column ${JSON.stringify(col)}: ${JSON.stringify(cell)} is not a number` +
          (col === spec.label && !labelMap
            ? '; for text labels set labelMap in the data spec (e.g. {yes: 1, no: 0})'
            : ''),
      );
    return Number(cell);
  };

  const x: number[] = [];
  const y: number[] = [];
  for (const { cells, line } of records) {
    if (cells.length !== header.length)
      throw new Error(`${file} line ${line} has ${cells.length} cells but the header has ${header.length}`);
    for (let k = 0; k < featureCols.length; k++) x.push(parse(cells[featureCols[k]], line, spec.features[k]));
    const raw = cells[labelCol];
    let label: number;
    if (labelMap) {
      const m = labelMap.get(raw);
      if (m === undefined)
        throw new Error(
          `${file} line ${line}, column ${JSON.stringify(spec.label)}: ${JSON.stringify(raw)} is not in labelMap ` +
            `(it maps ${[...labelMap.keys()].map((k) => JSON.stringify(k)).join(', ')})`,
        );
      label = m;
    } else {
      label = parse(raw, line, spec.label);
    }
    if (numClasses !== undefined && !(Number.isInteger(label) && label >= 0 && label < numClasses))
      throw new Error(
        `${file} line ${line}, column ${JSON.stringify(spec.label)}: class ${raw} is not an integer in 0..${numClasses - 1}`,
      );
    y.push(label);
  }
  return createDataset({
    name: spec.name ?? file,
    count: y.length,
    featureShape: [featureCols.length],
    numClasses,
    x: Float32Array.from(x),
    y: Float32Array.from(y),
  });
}
