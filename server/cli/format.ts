/**
 * Result formatting for the CLI: aligned tables for people (times as ISO-8601 UTC, numbers right-
 * aligned), and machine-clean JSON and CSV (RFC 4180 quoting; times as unix seconds in CSV/JSON,
 * so the output loads back without parsing dates).
 */
type Cell = number | string | boolean | null | readonly string[];
export interface ResultLike { columns: { name: string; type: string }[]; rows: Cell[][] }

function show(v: Cell, type: string): string {
  if (v === null) return 'NULL';
  if (type === 'time' && typeof v === 'number') {
    const d = new Date(v * 1000);
    return Number.isNaN(d.getTime()) ? String(v) : d.toISOString().replace('.000Z', 'Z');
  }
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 1e-4 && Math.abs(v) < 1e15 ? String(Number(v.toPrecision(10))) : v.toExponential(6);
  }
  if (Array.isArray(v)) return `[${v.join(', ')}]`;
  return String(v);
}

export function formatTable(r: ResultLike): string {
  const header = r.columns.map((c) => c.name);
  const body = r.rows.map((row) => row.map((v, i) => show(v, r.columns[i]!.type).replace(/[\r\n\t]/g, ' ')));
  const width = header.map((h, i) => Math.min(60, Math.max(h.length, ...body.map((row) => [...row[i]!].length))));
  const numeric = r.columns.map((c) => c.type === 'int' || c.type === 'float');
  const cut = (s: string, w: number) => ([...s].length > w ? [...s].slice(0, w - 1).join('') + '…' : s);
  const pad = (s: string, i: number) => {
    const t = cut(s, width[i]!);
    const fill = ' '.repeat(width[i]! - [...t].length);
    return numeric[i] ? fill + t : t + fill;
  };
  const line = (cells: string[]) => cells.map(pad).join(' | ').replace(/\s+$/, '');
  const out = [line(header), width.map((w) => '-'.repeat(w)).join('-+-')];
  for (const row of body) out.push(line(row));
  return out.join('\n');
}

function csvCell(v: Cell): string {
  if (v === null) return '';
  const s = Array.isArray(v) ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function formatCsv(r: ResultLike): string {
  return [r.columns.map((c) => csvCell(c.name)).join(','), ...r.rows.map((row) => row.map(csvCell).join(','))].join('\n');
}
