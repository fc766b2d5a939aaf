/**
 * The load report: what was read, accepted, rejected (with the first few reasons and where),
 * and how fast. Built up during a load by one ReportBuilder, frozen into a plain LoadReport
 * (JSON-ready) at the end, and printed by formatReport.
 *
 * Accounting: every row a reader saw is counted once in rowsRead and ends in exactly one of
 * rowsAccepted, rowsRejected or rowsNotSent (sent nowhere because the load stopped early).
 */
import fs from 'node:fs';
import type { ErrorCode } from '../query/errors.js';
import { LIMITS } from '../query/limits.js';
import type { Rejection } from './prepare.js';

export interface RejectedRow {
  readonly file: string;
  /** 1-based line (NDJSON, CSV) or row number (Parquet, Arrow): see positionKind. */
  readonly position: number;
  readonly positionKind: 'line' | 'row';
  readonly code: ErrorCode | string;
  readonly message: string;
}

export interface FileReport {
  readonly file: string;
  readonly format: string;
  rows: number;
  bytes: number;
  /** CSV: the column types used (inferred or from --schema). */
  columnTypes?: Record<string, string>;
}

export interface LoadReport {
  readonly table: string;
  readonly url: string;
  readonly files: FileReport[];
  readonly rowsRead: number;
  readonly rowsAccepted: number;
  readonly rowsRejected: number;
  /** Rows read but not delivered because the load stopped (error or interruption). */
  readonly rowsNotSent: number;
  /** Rows whose missing/unusable time was replaced by the current time (--missing-time now). */
  readonly rowsTimeDefaulted: number;
  readonly rejectedByCode: Record<string, number>;
  /** The first rejections (up to --show-rejected), in file order. */
  readonly rejected: RejectedRow[];
  readonly batches: number;
  /** Batches the server had already stored (a retry after a lost answer): not stored twice. */
  readonly batchesDuplicate: number;
  /** Rows of those batches (counted in rowsAccepted too: they are stored, once). */
  readonly rowsDuplicate: number;
  readonly retries: number;
  readonly bytesRead: number;
  readonly seconds: number;
  readonly rowsPerSecond: number;
  readonly interrupted: boolean;
  /** CPU time (user + system) this process spent during the load. */
  readonly cpuSeconds: number;
  /** Peak resident memory of this process so far (VmHWM, Linux), or null where unknown. */
  readonly rssPeakBytes: number | null;
  /** Why the load stopped early, or null when it ran to the end. */
  readonly error: { readonly code: string; readonly message: string } | null;
}

export class ReportBuilder {
  readonly files: FileReport[] = [];
  rowsRead = 0;
  rowsAccepted = 0;
  rowsRejected = 0;
  rowsTimeDefaulted = 0;
  batches = 0;
  batchesDuplicate = 0;
  rowsDuplicate = 0;
  /** Of rowsDuplicate: rows of batches answered `duplicate` after this run's own earlier try of
   * them lost its answer (stored by this run, once), not by an earlier run. */
  rowsDuplicateOwn = 0;
  retries = 0;
  bytesRead = 0;
  interrupted = false;
  error: { code: string; message: string } | null = null;
  private readonly byCode = new Map<string, number>();
  private readonly kept: RejectedRow[] = [];
  private readonly cpuAtStart = process.cpuUsage();

  /** Called with every rejection as it happens (a command that prints them as it goes). */
  onReject: ((r: RejectedRow) => void) | null = null;

  constructor(readonly table: string, readonly url: string, private readonly keptMax: number) {}

  reject(file: string, positionKind: 'line' | 'row', r: Rejection | { position: number; code: string; message: string }): void {
    this.rowsRejected++;
    this.onReject?.({ file, position: r.position, positionKind, code: r.code, message: r.message });
    this.byCode.set(r.code, (this.byCode.get(r.code) ?? 0) + 1);
    if (this.kept.length < Math.min(this.keptMax, LIMITS.loaderRejectionsKeptMax)) {
      this.kept.push({ file, position: r.position, positionKind, code: r.code, message: r.message });
    }
  }

  finish(seconds: number): LoadReport {
    const cpu = process.cpuUsage(this.cpuAtStart);
    const rowsNotSent = Math.max(0, this.rowsRead - this.rowsAccepted - this.rowsRejected);
    const order = new Map(this.files.map((f, i) => [f.file, i]));
    const rejected = [...this.kept].sort((a, b) => (order.get(a.file) ?? 0) - (order.get(b.file) ?? 0) || a.position - b.position);
    return {
      table: this.table,
      url: this.url,
      files: this.files,
      rowsRead: this.rowsRead,
      rowsAccepted: this.rowsAccepted,
      rowsRejected: this.rowsRejected,
      rowsNotSent,
      rowsTimeDefaulted: this.rowsTimeDefaulted,
      rejectedByCode: Object.fromEntries(this.byCode),
      rejected,
      batches: this.batches,
      batchesDuplicate: this.batchesDuplicate,
      rowsDuplicate: this.rowsDuplicate,
      retries: this.retries,
      bytesRead: this.bytesRead,
      seconds: Math.round(seconds * 1000) / 1000,
      rowsPerSecond: seconds > 0 ? Math.round(this.rowsAccepted / seconds) : 0,
      interrupted: this.interrupted,
      cpuSeconds: Math.round(((cpu.user + cpu.system) / 1e6) * 1000) / 1000,
      rssPeakBytes: rssPeakBytes(),
      error: this.error,
    };
  }
}

/** VmHWM from /proc/self/status: the process's peak RSS (the loader's memory claim is checked
 * against this in bench/load.ts). */
export function rssPeakBytes(): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

function mb(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

const int = (n: number) => n.toLocaleString('en-US');

/** The report as a person reads it. */
export function formatReport(r: LoadReport): string {
  const out: string[] = [];
  const status = r.error !== null ? 'STOPPED' : r.interrupted ? 'INTERRUPTED' : r.rowsRejected > 0 ? 'done, with rejected rows' : 'done';
  out.push(`load into ${r.table} (${r.url}): ${status}`);
  for (const f of r.files) {
    const types = f.columnTypes ? `; columns ${Object.entries(f.columnTypes).map(([k, v]) => `${k}:${v}`).join(',')}` : '';
    out.push(`  ${f.file} [${f.format}]: ${int(f.rows)} rows, ${mb(f.bytes)}${types}`);
  }
  out.push(`  rows read      ${int(r.rowsRead)}`);
  out.push(`  rows accepted  ${int(r.rowsAccepted)}`);
  out.push(`  rows rejected  ${int(r.rowsRejected)}${r.rowsRejected > 0 ? '  (' + Object.entries(r.rejectedByCode).map(([c, n]) => `${c}: ${int(n)}`).join(', ') + ')' : ''}`);
  if (r.rowsNotSent > 0) out.push(`  rows not sent  ${int(r.rowsNotSent)}`);
  if (r.rowsTimeDefaulted > 0) out.push(`  rows given the current time (missing or unusable time)  ${int(r.rowsTimeDefaulted)}`);
  out.push(`  bytes          ${mb(r.bytesRead)}`);
  out.push(`  time           ${r.seconds.toFixed(2)} s, ${int(r.rowsPerSecond)} rows/s (${int(r.batches)} batches, ${int(r.retries)} retries${r.batchesDuplicate > 0 ? `, ${r.batchesDuplicate} already stored` : ''})`);
  if (r.rssPeakBytes !== null) out.push(`  peak memory    ${mb(r.rssPeakBytes)} (RSS of the loader)`);
  if (r.rejected.length > 0) {
    out.push(`  first rejected rows:`);
    for (const x of r.rejected) out.push(`    ${x.file}:${x.positionKind === 'row' ? 'row ' : ''}${x.position}: ${x.code}: ${x.message}`);
    if (r.rowsRejected > r.rejected.length) out.push(`    ... and ${int(r.rowsRejected - r.rejected.length)} more`);
  }
  if (r.error !== null) out.push(`  error: ${r.error.code}: ${r.error.message}`);
  return out.join('\n') + '\n';
}
