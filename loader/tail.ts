/**
 * `tail()`: follows a growing NDJSON file like `tail -F` and sends its new complete lines in
 * batches (when `batchRows` are ready, or `flushMs` after the first line of a batch), one batch
 * at a time, recording progress in a state file (tail-state.ts) so a restart resumes exactly
 * where the acknowledged lines end.
 *
 * Following: the file is read by byte offset until its end, then polled every `pollMs`. At the
 * end it checks the path: another inode there means the file was rotated (renamed or deleted and
 * recreated): the old file is read to its end once more (late writes), its last partial line, if
 * any, is taken as a line, and the new file is read from its start. The same inode with a size
 * below the offset means it was truncated: reading restarts at 0. A missing path is waited for.
 * A restart that finds another inode at the path looks in the same directory for the file it was
 * reading (by device and inode: `app.log.1`) and finishes it first.
 *
 * Each line goes through the same steps as `load` (parse, time, checks): bad lines are reported
 * with their line number and skipped. Nothing listening at the URL when the tail starts stops it
 * at once (contact.ts); a cluster that goes away later is retried (`retries`, hours by default).
 * Not here: the state file format (tail-state.ts).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { ShoalError, type ErrorCode } from '../query/errors.js';
import { LIMITS } from '../query/limits.js';
import { contact } from './contact.js';
import { defaultRowOptions, defaultSendOptions, validateRowOptions, validateSendOptions, type RowOptions, type SendOptions } from './options.js';
import { RowPreparer } from './prepare.js';
import { parseLine } from './read-ndjson.js';
import { ReportBuilder } from './report.js';
import { ColumnTypes } from './row-check.js';
import { Sender, type Sleep } from './sender.js';
import type { Row, RowProblem } from './source.js';
import { ByteLines, findRotated, identityOf, type TailLine } from './tail-file.js';
import { batchId, newTailState, readTailState, writeTailState, type TailState } from './tail-state.js';
import { httpTransports, serversOf, type Transport } from './transport.js';

export interface TailOptions extends RowOptions, SendOptions {
  file: string;
  stateFile: string;
  /** Send a partial batch this long after its first line arrived. */
  flushMs: number;
  /** How often the file is checked for new data at its end. */
  pollMs: number;
  /** Without a state file: read the existing content (start) or only what is appended (end). */
  from: 'start' | 'end';
}

export function defaultStateFile(file: string, table: string): string {
  const dir = process.env.XDG_STATE_HOME ?? path.join(os.homedir(), '.local', 'state');
  const hash = createHash('sha256').update(path.resolve(file)).digest('hex').slice(0, 12);
  return path.join(dir, 'shoal', `tail-${table}-${path.basename(file).replace(/[^A-Za-z0-9._-]/g, '_')}-${hash}.json`);
}

export function defaultTailOptions(file: string, table: string): TailOptions {
  return {
    ...defaultRowOptions(),
    ...defaultSendOptions(),
    table,
    file,
    stateFile: defaultStateFile(file, table),
    // A tail sends as lines come: smaller batches, one at a time (the state file records one
    // pending batch), and it keeps retrying through a cluster restart (about 3 hours at the
    // 10 s cap) before it gives up; a restart of the tail resumes from its state.
    batchRows: 5_000,
    inFlight: 1,
    retries: 1_000,
    requestTimeoutMs: 30_000,
    flushMs: 1_000,
    pollMs: 250,
    from: 'start',
  };
}

export type TailEvent =
  | { kind: 'following'; file: string; offset: number; line: number; resumed: boolean }
  | { kind: 'waiting'; file: string }
  | { kind: 'rotated'; file: string; reason: string }
  | { kind: 'truncated'; file: string }
  | { kind: 'resent'; rows: number; line: number }
  | { kind: 'sent'; rows: number; offset: number; line: number }
  | { kind: 'rejected'; file: string; line: number; code: ErrorCode | string; message: string }
  | { kind: 'lost'; file: string; message: string };

export interface TailHooks {
  transport?: Transport;
  /** Stops following: the batch being built is sent and the state saved, then tail() returns. */
  signal?: AbortSignal;
  onEvent?: (e: TailEvent) => void;
  sleep?: Sleep;
  nowSeconds?: () => number;
}

export interface TailSummary {
  readonly rowsAccepted: number;
  readonly rowsRejected: number;
  readonly batches: number;
  readonly retries: number;
  readonly offset: number;
  readonly line: number;
}

const READ_BYTES = 256 * 1024;

export async function tail(opts: TailOptions, hooks: TailHooks = {}): Promise<TailSummary> {
  validateRowOptions(opts);
  validateSendOptions(opts);
  if (!(Number.isInteger(opts.flushMs) && opts.flushMs >= 1 && opts.flushMs <= 3_600_000)) throw new ShoalError('SHOAL_ERR_LOAD_OPTION', '--flush-ms must be 1..3600000');
  if (!(Number.isInteger(opts.pollMs) && opts.pollMs >= 1 && opts.pollMs <= 60_000)) throw new ShoalError('SHOAL_ERR_LOAD_OPTION', '--poll-ms must be 1..60000');
  const transport = hooks.transport ?? httpTransports(serversOf(opts), { token: opts.token, connections: 1, requestTimeoutMs: opts.requestTimeoutMs });
  try {
    const follower = new Follower(opts, hooks, transport);
    await follower.run();
    return follower.summary();
  } finally {
    if (hooks.transport === undefined) await transport.close();
  }
}

class Follower {
  private readonly report: ReportBuilder;
  private readonly types = new ColumnTypes();
  private readonly sender: Sender;
  private readonly preparer: RowPreparer;
  private readonly path: string;
  private state!: TailState;
  private fd: fsp.FileHandle | null = null;
  /** Name the open file is read under (the path, or its rotated name after a restart). */
  private readingName = '';
  private readOffset = 0;
  private lines!: ByteLines;
  /** Lines consumed since the last acknowledged offset: the batch being built. */
  private batch = { lines: [] as string[], positions: [] as number[], end: 0, endLine: 0, firstAtMs: null as number | null };
  /** The open file is known to be replaced at the path: finish it, then switch. */
  private replaced: string | null = null;
  private readonly emit: (e: TailEvent) => void;

  constructor(private readonly opts: TailOptions, private readonly hooks: TailHooks, private readonly transport: Transport) {
    this.path = path.resolve(opts.file);
    this.emit = hooks.onEvent ?? (() => {});
    this.report = new ReportBuilder(opts.table, opts.url, 0);
    // Backoff sleeps end early on a stop, so a stopping tail does not wait out a 10 s delay.
    this.sender = new Sender(transport, { ...opts, inFlight: 1 }, this.types, this.report, hooks.sleep ?? ((ms) => this.pause(ms)), Math.random, hooks.signal);
    this.preparer = new RowPreparer(opts, this.types, new Set(), (r) => {
      this.report.reject(this.readingName, 'line', r);
      this.emit({ kind: 'rejected', file: this.readingName, line: r.position, code: r.code, message: r.message });
    }, hooks.nowSeconds);
  }

  summary(): TailSummary {
    return {
      rowsAccepted: this.report.rowsAccepted, rowsRejected: this.report.rowsRejected, batches: this.report.batches,
      retries: this.report.retries, offset: this.state?.offset ?? 0, line: this.state?.line ?? 0,
    };
  }

  private get aborted(): boolean { return this.hooks.signal?.aborted === true; }

  private save(): void {
    fs.mkdirSync(path.dirname(this.opts.stateFile), { recursive: true });
    writeTailState(this.opts.stateFile, this.state);
  }

  private async pause(ms: number): Promise<void> {
    if (this.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => { clearTimeout(timer); this.hooks.signal?.removeEventListener('abort', done); resolve(); };
      const timer = setTimeout(done, ms);
      this.hooks.signal?.addEventListener('abort', done, { once: true });
    });
  }

  async run(): Promise<void> {
    // Nothing listening at the URL fails at once; a cluster that goes away later is retried.
    await contact(this.transport, this.opts.url, this.opts.table, this.types);
    if (!(await this.start())) return;
    try {
      await this.follow();
      // Stopping: what was read is sent, so a restart has nothing pending.
      await this.flush();
    } finally {
      await this.fd?.close().catch(() => {});
    }
  }

  /** Opens the file to follow per the state file; false when stopped before the file appeared. */
  private async start(): Promise<boolean> {
    const saved = readTailState(this.opts.stateFile, this.opts.table);
    if (saved !== null && saved.file !== this.path) {
      throw new ShoalError('SHOAL_ERR_LOAD_STATE', `tail state file ${this.opts.stateFile} follows ${saved.file}, not ${this.path}; give another --state-file`);
    }
    if (saved === null) {
      this.state = newTailState(this.opts.table, this.path);
      if (!(await this.openPath())) return false;
      if (this.opts.from === 'end') await this.skipToEnd();
      this.save();
      this.emit({ kind: 'following', file: this.path, offset: this.state.offset, line: this.state.line, resumed: false });
      return true;
    }
    this.state = saved;
    const here = await identityOf(this.path);
    if (here !== null && here.dev === saved.dev && here.ino === saved.ino) {
      await this.openAt(this.path, saved.offset, saved.line);
      if (here.size < saved.offset) {
        this.emit({ kind: 'truncated', file: this.path });
        await this.restartFile();
      }
    } else {
      const old = await findRotated(this.path, saved.dev, saved.ino);
      if (old !== null) {
        await this.openAt(old, saved.offset, saved.line);
        this.replaced = 'rotated while the tail was stopped';
      } else {
        this.emit({ kind: 'lost', file: this.path, message: `the file followed before (inode ${saved.ino}) is gone; lines written to it after offset ${saved.offset} were not sent` });
        this.state.pending = null;
        if (!(await this.openPath())) return false;
        this.state.generation++;
        this.save();
      }
    }
    if (this.state.pending !== null) await this.resendPending();
    this.emit({ kind: 'following', file: this.readingName, offset: this.state.offset, line: this.state.line, resumed: true });
    return true;
  }

  /** Waits for the path to exist and opens it from its start. */
  private async openPath(): Promise<boolean> {
    let told = false;
    for (;;) {
      if (this.aborted) return false;
      try {
        await this.openAt(this.path, 0, 0);
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      if (!told) { this.emit({ kind: 'waiting', file: this.path }); told = true; }
      await this.pause(this.opts.pollMs);
    }
  }

  private async openAt(name: string, offset: number, line: number): Promise<void> {
    const fd = await fsp.open(name, 'r');
    const st = await fd.stat({ bigint: true });
    await this.fd?.close().catch(() => {});
    this.fd = fd;
    this.readingName = name;
    this.state.dev = st.dev.toString();
    this.state.ino = st.ino.toString();
    this.state.offset = offset;
    this.state.line = line;
    this.readOffset = offset;
    this.lines = new ByteLines(line, (lineNo) => this.tooLong(lineNo));
    this.batch = { lines: [], positions: [], end: offset, endLine: line, firstAtMs: null };
  }

  private tooLong(lineNo: number): void {
    const r = { position: lineNo, code: 'SHOAL_ERR_LOAD_ROW' as const, message: `line is longer than ${LIMITS.loaderLineBytesMax} bytes` };
    this.report.reject(this.readingName, 'line', r);
    this.emit({ kind: 'rejected', file: this.readingName, line: lineNo, code: r.code, message: r.message });
  }

  /** --from end: start after the last complete line present now. */
  private async skipToEnd(): Promise<void> {
    const buf = Buffer.allocUnsafe(READ_BYTES);
    let offset = 0;
    let lines = 0;
    let lastEnd = 0;
    for (;;) {
      const { bytesRead } = await this.fd!.read(buf, 0, buf.length, offset);
      if (bytesRead === 0) break;
      for (let k = buf.indexOf(10, 0); k >= 0 && k < bytesRead; k = buf.indexOf(10, k + 1)) { lines++; lastEnd = offset + k + 1; }
      offset += bytesRead;
    }
    await this.openAt(this.readingName, lastEnd, lines);
  }

  /** Reads and sends the batch that was in flight when the previous process stopped. */
  private async resendPending(): Promise<void> {
    const p = this.state.pending!;
    const size = (await this.fd!.stat()).size;
    if (size < p.end || p.start !== this.state.offset) {
      // The file no longer holds that batch (it was truncated): nothing to resend.
      this.state.pending = null;
      this.save();
      return;
    }
    const buf = Buffer.alloc(p.end - p.start);
    await this.fd!.read(buf, 0, buf.length, p.start);
    const out: TailLine[] = [];
    this.lines.push(buf, p.start, out);
    this.lines.finish(p.end, out);
    this.readOffset = p.end;
    await this.consume(out, p.id);
    await this.flush(p.id);
    this.emit({ kind: 'resent', rows: out.length, line: this.state.line });
  }

  private async follow(): Promise<void> {
    const buf = Buffer.allocUnsafe(READ_BYTES);
    while (!this.aborted) {
      const { bytesRead } = await this.fd!.read(buf, 0, buf.length, this.readOffset);
      if (bytesRead > 0) {
        const out: TailLine[] = [];
        this.lines.push(buf.subarray(0, bytesRead), this.readOffset, out);
        this.readOffset += bytesRead;
        await this.consume(out);
        if (this.due()) await this.flush();
        continue;
      }
      // At the end of the file.
      if (this.due()) await this.flush();
      if (this.replaced !== null) {
        await this.switchFile(this.replaced);
        continue;
      }
      const here = await identityOf(this.path);
      if (here !== null && (here.dev !== this.state.dev || here.ino !== this.state.ino)) {
        // Rotated: read the old file once more for late writes before switching.
        this.replaced = 'a new file is at the path';
        continue;
      }
      if (here !== null && here.size < this.readOffset) {
        this.emit({ kind: 'truncated', file: this.path });
        await this.flush();
        await this.restartFile();
        continue;
      }
      await this.pause(this.opts.pollMs);
    }
  }

  /** Finishes the old file (its unterminated last line included) and opens the new one. */
  private async switchFile(reason: string): Promise<void> {
    const out: TailLine[] = [];
    this.lines.finish(this.readOffset, out);
    await this.consume(out);
    await this.flush();
    this.replaced = null;
    if (!(await this.openPath())) return;
    this.state.generation++;
    this.state.pending = null;
    this.save();
    this.emit({ kind: 'rotated', file: this.path, reason });
  }

  /** The file at the same inode shrank: read it again from the start, as a new generation. */
  private async restartFile(): Promise<void> {
    await this.openAt(this.readingName, 0, 0);
    this.state.generation++;
    this.state.pending = null;
    this.save();
  }

  private due(): boolean {
    return this.batch.firstAtMs !== null && Date.now() - this.batch.firstAtMs >= this.opts.flushMs;
  }

  /** Runs lines through the row steps into the batch, sending full batches on the way. */
  private async consume(lines: readonly TailLine[], pendingId?: string): Promise<void> {
    if (lines.length === 0) return;
    const chunk = { rows: [] as Row[], positions: [] as number[], raws: [] as string[], unreadable: [] as RowProblem[] };
    for (const l of lines) if (l.text !== null) parseLine(l.text, l.lineNo, chunk);
    const prepared = this.preparer.prepare({ ...chunk, bytesDone: 0 });
    let k = 0;
    for (const l of lines) {
      if (k < prepared.positions.length && prepared.positions[k] === l.lineNo) {
        this.batch.lines.push(prepared.lines[k]!);
        this.batch.positions.push(l.lineNo);
        k++;
      }
      // Rejected and blank lines count too: their offset is saved at the next flush.
      this.batch.firstAtMs ??= Date.now();
      this.batch.end = l.end;
      this.batch.endLine = l.lineNo;
      // A resent batch goes out whole, under its recorded id.
      if (pendingId === undefined && this.batch.lines.length >= this.opts.batchRows) await this.flush();
    }
  }

  /** Sends the batch being built (recording it as pending first), then saves the new offset. */
  private async flush(pendingId?: string): Promise<void> {
    const b = this.batch;
    if (b.end === this.state.offset) return;
    const start = this.state.offset;
    if (b.lines.length > 0) {
      const id = pendingId ?? batchId(this.state, start, b.end);
      this.state.pending = { start, end: b.end, startLine: this.state.line, id };
      this.save();
      // A pending batch from the previous process may be stored already: its try is a resend.
      await this.sender.send({ id, file: this.readingName, positionKind: 'line', body: b.lines.join('\n'), positions: b.positions, resend: pendingId !== undefined });
    }
    const rows = b.lines.length;
    this.state.offset = b.end;
    this.state.line = b.endLine;
    this.state.pending = null;
    this.save();
    this.batch = { lines: [], positions: [], end: b.end, endLine: b.endLine, firstAtMs: null };
    if (rows > 0) this.emit({ kind: 'sent', rows, offset: b.end, line: b.endLine });
  }
}
