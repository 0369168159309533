// `npm run build:wasm`: assembles the WebAssembly kernels (packages/common/src/**/kernels/*.wat)
// with wabt and writes each one's bytes, base64, into the TypeScript module beside it
// (top-k.wat -> top-k-wasm.ts), so the build and bundles need no wasm tooling or asset files.
// `--check` writes nothing and fails when a committed module differs from its .wat.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import initWabt from 'wabt';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const KERNELS = path.join(ROOT, 'packages/common/src/collective/hooks/kernels');

/** The .wat files and the module each one becomes. */
export function kernelSources() {
  return readdirSync(KERNELS)
    .filter((f) => f.endsWith('.wat'))
    .map((f) => ({ wat: path.join(KERNELS, f), ts: path.join(KERNELS, f.replace(/\.wat$/, '-wasm.ts')) }));
}

/** The binary module of a .wat file (SIMD on). Throws with wabt's message, file and line. */
export async function assemble(watPath) {
  const wabt = await initWabt();
  const module = wabt.parseWat(path.basename(watPath), readFileSync(watPath, 'utf8'), { simd: true });
  try {
    module.validate();
    return Buffer.from(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

/** The TypeScript module that carries a kernel's bytes. */
export function moduleText(watPath, bytes) {
  const name = path.basename(watPath);
  const b64 = bytes.toString('base64').replace(/.{1,100}/g, (line) => `  '${line}',\n`);
  return (
    `// Generated from ${name} by \`npm run build:wasm\`; do not edit. ${bytes.length} bytes.\n` +
    `export const WASM_BASE64 = [\n${b64}].join('');\n`
  );
}

async function main(check) {
  let stale = 0;
  for (const { wat, ts } of kernelSources()) {
    const text = moduleText(wat, await assemble(wat));
    const rel = path.relative(ROOT, ts);
    let old = '';
    try {
      old = readFileSync(ts, 'utf8');
    } catch {}
    if (old === text) {
      process.stderr.write(`${rel}: up to date\n`);
    } else if (check) {
      process.stderr.write(`${rel}: differs from ${path.basename(wat)}; run npm run build:wasm\n`);
      stale++;
    } else {
      writeFileSync(ts, text);
      process.stderr.write(`${rel}: written\n`);
    }
  }
  return stale ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.includes('--check')).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`build:wasm failed: ${err.message}\n`);
      process.exit(1);
    },
  );
}
