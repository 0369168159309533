// Summarises V8 CPU profiles (.cpuprofile files from `node --cpu-prof`): per file, the functions
// with the most self time. Forked rank processes inherit --cpu-prof, so one benchmark run under it
// profiles every rank:
//   node --cpu-prof --cpu-prof-dir=prof bench/allreduce.mjs --sizes 64 --world 4 --dtypes f32
//   node bench/compare/cpu-profile.mjs prof/*.cpuprofile
// Time a process spends waiting for a core shows up as self time of whatever it was running.
import { readFileSync } from 'node:fs';

const TOP = 12;
const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('Usage: node bench/compare/cpu-profile.mjs FILE.cpuprofile...\n');
  process.exit(2);
}
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = nodes.get(id).callFrame;
    const key = `${functionName || '(anonymous)'} ${url.split('/').pop()}:${lineNumber + 1}`;
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  process.stdout.write(`${file}: ${(total / 1000).toFixed(0)} ms sampled\n`);
  for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
    process.stdout.write(
      `  ${(us / 1000).toFixed(0).padStart(6)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${key}\n`,
    );
  }
}
