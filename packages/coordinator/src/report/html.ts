// report.html: one self-contained page per job (inline CSS and SVG, no script, no network) with
// the loss and validation curves, the per-step loss, samples/s per worker, the step-time
// breakdown by phase, the world size over time, the fitted line of a one-feature regression, the
// key figures, the workers flagged as stragglers and the job spec. Everything it draws comes from the job summary.
import { STEP_PHASES, formatJobSpec, type JobSpec } from '@tfjs-ddp/common';
import type { JobSummary } from '../summary.js';
import { escapeXml, formatNumber, lineChart, stackedBars, type Series } from './svg.js';

const STYLE = `
:root { color-scheme: light; --fg: #1d2430; --muted: #5b6472; --line: #d9dee6; --card: #fff; --bg: #f4f6f9; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 12px; }
.sub { color: var(--muted); margin: 0 0 20px; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; vertical-align: middle; background: #dff3e7; color: #17663a; }
.status.stopped-early { background: #fff1d6; color: #8a5a00; }
.fact.straggler { border-color: #e0a100; background: #fff8e6; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; }
.fact { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.fact .k { color: var(--muted); font-size: 12px; }
.fact .v { font-size: 17px; font-weight: 600; overflow-wrap: anywhere; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(660px, 1fr)); gap: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
.chart { width: 100%; height: auto; display: block; font-size: 11px; }
.chart .chart-title { font-size: 14px; font-weight: 600; fill: var(--fg); }
.chart .grid { stroke: #eceff3; }
.chart .axis, .chart .tick-mark { stroke: #8a93a1; }
.chart .tick { fill: var(--muted); }
.chart .axis-label { fill: var(--fg); font-size: 12px; }
.chart .legend-item text { fill: var(--fg); font-size: 12px; }
.chart .no-data { fill: var(--muted); font-size: 13px; }
.chart circle.point { stroke: #fff; stroke-width: 1; }
table { border-collapse: collapse; background: var(--card); border: 1px solid var(--line); }
th, td { padding: 5px 12px; border-bottom: 1px solid var(--line); text-align: right; font-variant-numeric: tabular-nums; }
th:first-child, td:first-child { text-align: left; }
pre { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; overflow: auto; font-size: 12.5px; }
`;

const ms = (seconds: number) => `${formatNumber(seconds * 1000)} ms`;

function lossCharts(summary: JobSummary): string[] {
  const epochs = summary.epochs;
  const at = (i: number) => epochs[i].epoch;
  const train: Series = { name: 'train', markers: true, points: epochs.map((e, i) => [at(i), e.trainLoss]) };
  const validation: Series = {
    name: 'validation',
    markers: true,
    points: epochs.flatMap((e, i) => (e.validation?.loss !== undefined ? [[at(i), e.validation.loss]] : [])) as [
      number,
      number,
    ][],
  };
  const charts = [
    lineChart({
      id: 'loss',
      title: 'Loss per epoch',
      xLabel: 'epoch',
      yLabel: 'loss',
      integerX: true,
      series: [train, validation],
    }),
  ];
  const metricNames = [...new Set(epochs.flatMap((e) => Object.keys(e.validation ?? {})))].filter((m) => m !== 'loss');
  if (metricNames.length > 0) {
    charts.push(
      lineChart({
        id: 'validation',
        title: 'Validation metrics per epoch',
        xLabel: 'epoch',
        yLabel: 'value',
        integerX: true,
        series: metricNames.map((m) => ({
          name: m,
          markers: true,
          points: epochs.flatMap((e, i) => (e.validation?.[m] !== undefined ? [[at(i), e.validation[m]]] : [])) as [
            number,
            number,
          ][],
        })),
      }),
    );
  }
  charts.push(
    lineChart({
      id: 'step-loss',
      title: 'Training loss per step',
      xLabel: 'step',
      yLabel: 'loss',
      series: [{ name: 'train', points: summary.history.stepLoss.map((p) => [p.step + 1, p.loss]) }],
    }),
  );
  return charts;
}

function throughputChart(summary: JobSummary): string {
  return lineChart({
    id: 'throughput',
    title: 'Samples/s per worker',
    xLabel: 'epoch',
    yLabel: 'samples/s',
    integerX: true,
    yFromZero: true,
    series: summary.history.workerSamplesPerSec.map((w) => ({
      name: w.workerId,
      markers: true,
      points: w.perEpoch.flatMap((v, i) => (v === null ? [] : [[summary.history.epochs[i], v]])) as [number, number][],
    })),
  });
}

function phaseChart(summary: JobSummary): string {
  const means = summary.history.phaseMeans;
  return stackedBars({
    id: 'phases',
    title: 'Step time by phase (mean per rank)',
    xLabel: 'epoch',
    yLabel: 'ms per step',
    categories: summary.history.epochs.map((e) => String(e)),
    parts: STEP_PHASES.map((p) => ({ name: p, values: means.map((m) => m[p] * 1000) })),
    format: (v) => `${formatNumber(v)}`,
  });
}

function worldSizeChart(summary: JobSummary): string {
  const changes = summary.history.worldSize;
  const points: [number, number][] = changes.map((c) => [c.step, c.worldSize]);
  const last = changes[changes.length - 1];
  if (last && summary.steps > last.step) points.push([summary.steps, last.worldSize]);
  return lineChart({
    id: 'world-size',
    title: 'World size over the run',
    xLabel: 'step',
    yLabel: 'workers',
    integerX: true,
    yFromZero: true,
    series: [{ name: 'workers', stepped: true, markers: true, points }],
  });
}

function fitChart(summary: JobSummary): string | undefined {
  const fit = summary.fit;
  if (!fit || fit.length === 0) return undefined;
  const sorted = [...fit].sort((a, b) => a[0] - b[0]);
  return lineChart({
    id: 'fit',
    title: 'Fitted line over the test data',
    xLabel: 'x',
    yLabel: 'y',
    series: [
      { name: 'model', points: sorted.map(([x, , p]) => [x, p]) },
      { name: 'data', markers: true, lineless: true, points: sorted.map(([x, y]) => [x, y]) },
    ],
  });
}

function facts(summary: JobSummary): string {
  const backends = [...new Set(Object.values(summary.backends))].join(', ');
  const items: [string, string][] = [
    ['epochs', String(summary.epochs.length)],
    ['steps', summary.steps.toLocaleString('en-US')],
    ['workers', String(summary.worldSize)],
    ['generation', String(summary.generation)],
    ['samples/s', formatNumber(summary.samplesPerSec)],
    ['wall time', `${formatNumber(summary.wallSeconds)} s`],
    ['backend', backends || 'n/a'],
  ];
  if (summary.bestEpoch !== undefined) items.push(['best epoch', String(summary.bestEpoch)]);
  for (const [k, v] of Object.entries(summary.test ?? {})) items.push([`test ${k}`, formatNumber(v)]);
  const slow = [...new Set(summary.stragglers.map((s) => s.workerId))];
  const straggler: [string, string][] = slow.length > 0 ? [['stragglers', slow.join(', ')]] : [];
  const fact = ([k, v]: [string, string], cls = '') =>
    `<div class="fact${cls}"><div class="k">${escapeXml(k)}</div><div class="v">${escapeXml(v)}</div></div>`;
  return `<div class="facts">${items.map((i) => fact(i)).join('')}${straggler.map((i) => fact(i, ' straggler')).join('')}</div>`;
}

/** The workers flagged as stragglers, one row per spell; nothing when none was. */
function stragglerTable(summary: JobSummary, spec: JobSpec): string {
  if (summary.stragglers.length === 0) return '';
  const { factor, minSeconds, steps } = spec.stragglers;
  const head = ['worker', 'rank', 'steps', 'slow steps in a row', 'compute', "others' median"];
  const rows = summary.stragglers.map((s) =>
    [
      s.workerId,
      String(s.rank),
      `${s.fromStep}–${s.toStep}`,
      String(s.steps),
      ms(s.computeSeconds),
      ms(s.othersMedianSeconds),
    ]
      .map((c) => `<td>${escapeXml(c)}</td>`)
      .join(''),
  );
  return `<h2 id="stragglers">Stragglers</h2>
<p class="sub">${escapeXml(
    `A worker is flagged when its compute phase exceeds the other ranks' median by ${factor}× and by at least ` +
      `${ms(minSeconds)} for ${steps} steps in a row; compute and median at the step it lagged most.`,
  )}</p>
<table class="stragglers"><thead><tr>${head.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r}</tr>`)
    .join('')}</tbody></table>`;
}

function epochTable(summary: JobSummary): string {
  const metrics = [...new Set(summary.epochs.flatMap((e) => Object.keys(e.validation ?? {})))];
  const head = ['epoch', 'train loss', ...metrics.map((m) => `val ${m}`), 'samples/s', 'seconds'];
  const rows = summary.epochs.map((e) =>
    [
      String(e.epoch),
      formatNumber(e.trainLoss),
      ...metrics.map((m) => (e.validation?.[m] !== undefined ? formatNumber(e.validation[m]) : '')),
      formatNumber(e.samplesPerSec),
      formatNumber(e.seconds),
    ]
      .map((c) => `<td>${escapeXml(c)}</td>`)
      .join(''),
  );
  return `<table><thead><tr>${head.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r}</tr>`)
    .join('')}</tbody></table>`;
}

/** The whole page for a finished job. */
export function renderReport(summary: JobSummary, spec: JobSpec, generatedAt = new Date()): string {
  const charts = [
    ...lossCharts(summary),
    throughputChart(summary),
    phaseChart(summary),
    worldSizeChart(summary),
    fitChart(summary),
  ].filter((c): c is string => c !== undefined);
  const phaseTotals = summary.history.phaseMeans.at(-1);
  const lastBreakdown = phaseTotals
    ? STEP_PHASES.map((p) => `${p} ${ms(phaseTotals[p])}`).join(' · ')
    : 'no steps recorded';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(`${summary.job} — tfjs-ddp run report`)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeXml(summary.job)} <span class="status ${escapeXml(summary.status)}">${escapeXml(summary.status)}</span></h1>
<p class="sub">tfjs-ddp run report · generated ${escapeXml(generatedAt.toISOString())} · output ${escapeXml(summary.output)}</p>
${facts(summary)}
<h2>Charts</h2>
<div class="charts">${charts.map((c) => `<div class="card">${c}</div>`).join('\n')}</div>
<p class="sub">Last epoch, mean per rank and step: ${escapeXml(lastBreakdown)}</p>
${stragglerTable(summary, spec)}
<h2>Epochs</h2>
${epochTable(summary)}
<h2>Job spec</h2>
<pre>${escapeXml(formatJobSpec(spec, 'yaml'))}</pre>
</body>
</html>
`;
}
