// The source tree's shape, checked on every run: no import circle between modules (type-only
// imports included, since a circle of types still ties two files together), and no source file over
// 500 lines (DESIGN §8: one concern a file, no god file running the whole loop).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const packages = join(root, 'packages');
const MAX_LINES = 500;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

const files = readdirSync(packages).flatMap((pkg) => sourceFiles(join(packages, pkg, 'src')));

/** Static `import … from`, `export … from`, bare `import '…'` and `import('…')` with a literal. */
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g;

/** The files `file` imports, within the repository: relative paths and the workspace packages. */
function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  for (const [, spec] of text.matchAll(SPECIFIER)) {
    let target: string | undefined;
    if (spec.startsWith('.')) target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
    else if (spec.startsWith('@tfjs-ddp/')) {
      // A package's own entry, or one of its subpath entries (@tfjs-ddp/common/nats: src/nats.ts).
      const [pkg, ...sub] = spec.slice('@tfjs-ddp/'.length).split('/');
      target = join(packages, pkg, 'src', sub.length > 0 ? `${sub.join('/')}.ts` : 'index.ts');
    }
    if (target) out.push(target);
  }
  return out;
}

/** Every cycle of the graph, each as the files along it (Tarjan's strongly connected components). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.reverse());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('source structure', () => {
  it('has no import circle', () => {
    const graph = new Map(files.map((f) => [f, importsOf(f, readFileSync(f, 'utf8'))]));
    for (const [file, targets] of graph) {
      for (const t of targets) expect(graph.has(t), `${relative(root, file)} imports ${relative(root, t)}`).toBe(true);
    }
    const named = cycles(graph).map((c) => c.map((f) => relative(root, f)).join(' -> '));
    expect(named).toEqual([]);
  });

  it('finds a circle when there is one', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(cycles(graph)).toEqual([['a', 'b', 'c']]);
  });

  it(`keeps every source file at ${MAX_LINES} lines or fewer`, () => {
    const long = files
      .map((f) => ({ file: relative(root, f), lines: readFileSync(f, 'utf8').split('\n').length - 1 }))
      .filter((f) => f.lines > MAX_LINES);
    expect(long).toEqual([]);
  });
});
