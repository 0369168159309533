// The report's charts as inline SVG strings: line charts (with markers), stacked bars and step
// lines over numeric axes with "nice" ticks. No library and no script, so report.html opens
// anywhere, offline, and a test can count what was drawn (data-chart, data-series attributes).

export interface Series {
  name: string;
  points: [number, number][];
  /** Draw a circle at every point (with its value as a tooltip). */
  markers?: boolean;
  /** Only the markers, no connecting line (a scatter). */
  lineless?: boolean;
  /** Hold each value until the next x (a step function). */
  stepped?: boolean;
}

export interface LineChartOptions {
  /** Identifies the chart in the page (data-chart). */
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** x values are whole numbers (epochs, steps): ticks at integers only. */
  integerX?: boolean;
  /** Include 0 on the y axis. */
  yFromZero?: boolean;
  /** How a value shows in tooltips and tick labels. */
  format?: (v: number) => string;
}

export interface StackedBarsOptions {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  categories: string[];
  /** One value per category for each stacked part. */
  parts: { name: string; values: number[] }[];
  format?: (v: number) => string;
}

const W = 640;
const H = 300;
const M = { left: 64, right: 140, top: 34, bottom: 46 };
const PLOT_W = W - M.left - M.right;
const PLOT_H = H - M.top - M.bottom;

/** Colour-blind-safe palette (Okabe–Ito), cycled by series index. */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'];
const DASHES = ['', '7 4', '2 3', '9 3 2 3'];

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A short, readable number: 3 significant digits, SI-style suffixes for large magnitudes. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a !== 0 && a < 1e-3) return v.toExponential(1);
  return String(+v.toPrecision(3));
}

/** About `count` evenly spaced round values (1, 2 or 5 times a power of ten) covering [min, max]. */
export function niceTicks(min: number, max: number, count = 5, integer = false): number[] {
  // A diverged run can bring Inf or NaN here; an axis of [0, 1] beats no report.
  if (!Number.isFinite(min) || !Number.isFinite(max)) return niceTicks(0, 1, count, integer);
  if (!(max > min)) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    return niceTicks(min - pad, max + pad, count, integer);
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const first = Math.floor(min / step) * step;
  const ticks: number[] = [];
  for (let t = first; t <= max + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
  if (ticks[ticks.length - 1] < max) ticks.push(+(ticks[ticks.length - 1] + step).toPrecision(12));
  return ticks;
}

interface Scale {
  x: (v: number) => number;
  y: (v: number) => number;
  xTicks: number[];
  yTicks: number[];
}

function scale(xs: number[], ys: number[], integerX: boolean, yFromZero: boolean): Scale {
  const finiteY = ys.filter(Number.isFinite);
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const yMin = Math.min(...finiteY, ...(yFromZero ? [0] : []));
  const yMax = Math.max(...finiteY, ...(yFromZero ? [0] : []));
  const xTicks = niceTicks(xMin, xMax, 6, integerX);
  const yTicks = niceTicks(yMin, yMax, 5);
  const [x0, x1] = [xTicks[0], xTicks[xTicks.length - 1]];
  const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  return {
    x: (v) => M.left + ((v - x0) / (x1 - x0)) * PLOT_W,
    y: (v) => M.top + PLOT_H - ((v - y0) / (y1 - y0)) * PLOT_H,
    xTicks,
    yTicks,
  };
}

function frame(id: string, title: string, body: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="${escapeXml(id)}" viewBox="0 0 ${W} ${H}" ` +
    `width="${W}" height="${H}" role="img" aria-label="${escapeXml(title)}">` +
    `<text class="chart-title" x="${M.left}" y="20">${escapeXml(title)}</text>${body}</svg>`
  );
}

function axes(s: Scale, xLabel: string, yLabel: string, format: (v: number) => string, xTickLabels = true): string {
  const out: string[] = [];
  for (const t of s.yTicks) {
    const y = s.y(t).toFixed(1);
    out.push(
      `<line class="grid" x1="${M.left}" x2="${M.left + PLOT_W}" y1="${y}" y2="${y}"/>`,
      `<text class="tick y-tick" x="${M.left - 6}" y="${y}" dy="0.32em" text-anchor="end">${escapeXml(format(t))}</text>`,
    );
  }
  if (xTickLabels) {
    for (const t of s.xTicks) {
      const x = s.x(t).toFixed(1);
      out.push(
        `<line class="tick-mark" x1="${x}" x2="${x}" y1="${M.top + PLOT_H}" y2="${M.top + PLOT_H + 4}"/>`,
        `<text class="tick x-tick" x="${x}" y="${M.top + PLOT_H + 16}" text-anchor="middle">${escapeXml(formatNumber(t))}</text>`,
      );
    }
  }
  out.push(
    `<line class="axis" x1="${M.left}" x2="${M.left + PLOT_W}" y1="${M.top + PLOT_H}" y2="${M.top + PLOT_H}"/>`,
    `<line class="axis" x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + PLOT_H}"/>`,
    `<text class="axis-label x-label" x="${M.left + PLOT_W / 2}" y="${H - 8}" text-anchor="middle">${escapeXml(xLabel)}</text>`,
    `<text class="axis-label y-label" transform="translate(14 ${M.top + PLOT_H / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`,
  );
  return out.join('');
}

function legend(items: { name: string; index: number; kind: 'line' | 'dot' | 'box' }[]): string {
  return items
    .map(({ name, index, kind }, i) => {
      const y = M.top + 8 + i * 18;
      const x = M.left + PLOT_W + 14;
      const colour = PALETTE[index % PALETTE.length];
      const dash = DASHES[index % DASHES.length];
      const mark =
        kind === 'line'
          ? `<line x1="${x}" x2="${x + 16}" y1="${y}" y2="${y}" stroke="${colour}" stroke-width="2.5"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`
          : kind === 'dot'
            ? `<circle cx="${x + 8}" cy="${y}" r="3.5" fill="${colour}"/>`
            : `<rect x="${x}" y="${y - 6}" width="14" height="12" fill="${colour}"/>`;
      return `<g class="legend-item">${mark}<text x="${x + 22}" y="${y}" dy="0.32em">${escapeXml(name)}</text></g>`;
    })
    .join('');
}

function noData(id: string, title: string): string {
  return frame(
    id,
    title,
    `<text class="no-data" x="${W / 2}" y="${H / 2}" text-anchor="middle">no data recorded</text>`,
  );
}

export function lineChart(o: LineChartOptions): string {
  const series = o.series.filter((s) => s.points.length > 0);
  const points = series.flatMap((s) => s.points);
  if (points.length === 0) return noData(o.id, o.title);
  const format = o.format ?? formatNumber;
  const s = scale(
    points.map((p) => p[0]),
    points.map((p) => p[1]),
    o.integerX ?? false,
    o.yFromZero ?? false,
  );
  const drawn = series.map((ser) => {
    const index = o.series.indexOf(ser);
    const colour = PALETTE[index % PALETTE.length];
    // Dashes tell apart series that lie on top of each other (ranks with equal throughput).
    const dash = DASHES[index % DASHES.length];
    const finite = ser.points.filter((p) => Number.isFinite(p[1]));
    const coords: string[] = [];
    finite.forEach(([x, y], j) => {
      if (ser.stepped && j > 0) coords.push(`${s.x(x).toFixed(1)},${s.y(finite[j - 1][1]).toFixed(1)}`);
      coords.push(`${s.x(x).toFixed(1)},${s.y(y).toFixed(1)}`);
    });
    const line = ser.lineless
      ? ''
      : `<polyline class="series-line" fill="none" stroke="${colour}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''} points="${coords.join(' ')}"/>`;
    const markers = ser.markers
      ? finite
          .map(
            ([x, y]) =>
              `<circle class="point" cx="${s.x(x).toFixed(1)}" cy="${s.y(y).toFixed(1)}" r="${ser.lineless ? 2.5 : 3.5}" fill="${colour}">` +
              `<title>${escapeXml(`${ser.name} @ ${o.xLabel} ${formatNumber(x)}: ${format(y)}`)}</title></circle>`,
          )
          .join('')
      : '';
    return `<g class="series" data-series="${escapeXml(ser.name)}">${line}${markers}</g>`;
  });
  return frame(
    o.id,
    o.title,
    axes(s, o.xLabel, o.yLabel, format) +
      drawn.join('') +
      legend(series.map((x) => ({ name: x.name, index: o.series.indexOf(x), kind: x.lineless ? 'dot' : 'line' }))),
  );
}

export function stackedBars(o: StackedBarsOptions): string {
  const n = o.categories.length;
  if (n === 0 || o.parts.length === 0) return noData(o.id, o.title);
  const format = o.format ?? formatNumber;
  const totals = o.categories.map((_, i) => o.parts.reduce((sum, p) => sum + Math.max(0, p.values[i] ?? 0), 0));
  const s = scale([0, 1], [0, ...totals], false, true);
  const slot = PLOT_W / n;
  const barW = Math.max(1, Math.min(48, slot * 0.7));
  const bars = o.parts.map((part, pi) => {
    const colour = PALETTE[pi % PALETTE.length];
    const rects = o.categories.map((cat, i) => {
      const below = o.parts.slice(0, pi).reduce((sum, p) => sum + Math.max(0, p.values[i] ?? 0), 0);
      const v = Math.max(0, part.values[i] ?? 0);
      const y = s.y(below + v);
      const h = s.y(below) - y;
      const x = M.left + slot * i + (slot - barW) / 2;
      return (
        `<rect class="bar" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${colour}">` +
        `<title>${escapeXml(`${part.name}, ${o.xLabel} ${cat}: ${format(v)}`)}</title></rect>`
      );
    });
    return `<g class="series" data-series="${escapeXml(part.name)}">${rects.join('')}</g>`;
  });
  const every = Math.ceil(n / 12);
  const labels = o.categories
    .map((cat, i) =>
      i % every === 0
        ? `<text class="tick x-tick" x="${(M.left + slot * (i + 0.5)).toFixed(1)}" y="${M.top + PLOT_H + 16}" text-anchor="middle">${escapeXml(cat)}</text>`
        : '',
    )
    .join('');
  return frame(
    o.id,
    o.title,
    axes(s, o.xLabel, o.yLabel, format, false) +
      bars.join('') +
      labels +
      legend(o.parts.map((p, index) => ({ name: p.name, index, kind: 'box' }))),
  );
}
