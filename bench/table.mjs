// The aligned plain-text tables of the benchmark reports: numbers right-aligned so their digits line
// up, names left-aligned, two spaces between columns.

/**
 * @param {string[]} header
 * @param {string[][]} rows  one cell per header column
 * @param {number[]} [left]  columns aligned left; the others are aligned right
 * @returns {string[]}  the header, a rule of dashes under it, then the rows
 */
export function table(header, rows, left = []) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) =>
    cells
      .map((cell, i) => (left.includes(i) ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}
