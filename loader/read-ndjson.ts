/**
 * NDJSON reader (plain, or gzip through a zlib stream): one JSON object per line, blank lines
 * skipped (as the leaf skips them), `\r\n` accepted. Reads the file in 1 MiB pieces and yields a
 * chunk per piece, so memory holds one piece plus the partial line that straddles two pieces.
 * A line over LIMITS.loaderLineBytesMax characters is reported and skipped without being held.
 *
 * Not here: value checks (row-check.ts); the tail's byte-exact line reader (tail.ts).
 */
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { pipeline } from 'node:stream';
import zlib from 'node:zlib';
import { ShoalError } from '../query/errors.js';
import { LIMITS } from '../query/limits.js';
import type { Row, RowChunk, RowProblem, RowSource } from './source.js';

const READ_BYTES = 1024 * 1024;

/** Splits text into lines across pieces; the caller feeds pieces and gets whole lines. */
export class LineSplitter {
  private carry = '';
  /** Line number of the last line handed out. */
  lineNo = 0;
  /** Set while skipping the rest of an over-long line. */
  private skipping = false;
  constructor(private readonly lineCharsMax: number = LIMITS.loaderLineBytesMax) {}

  /** Whole lines in `text` (after what was carried over), with their line numbers. */
  push(text: string, onLine: (line: string, lineNo: number) => void, onTooLong: (lineNo: number) => void): void {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      this.lineNo++;
      if (this.skipping) {
        this.skipping = false;
      } else {
        let line = this.carry.length > 0 ? this.carry + text.slice(start, nl) : text.slice(start, nl);
        this.carry = '';
        if (line.length > this.lineCharsMax) onTooLong(this.lineNo);
        else {
          if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
          onLine(line, this.lineNo);
        }
      }
      start = nl + 1;
    }
    if (start < text.length && !this.skipping) {
      this.carry += text.slice(start);
      if (this.carry.length > this.lineCharsMax) {
        onTooLong(this.lineNo + 1);
        this.carry = '';
        this.skipping = true;
      }
    }
  }

  /** The last line when the input does not end with a newline. */
  end(onLine: (line: string, lineNo: number) => void): void {
    if (this.carry.length > 0 && !this.skipping) {
      this.lineNo++;
      let line = this.carry;
      if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
      onLine(line, this.lineNo);
    }
    this.carry = '';
  }
}

/** Whether a line is empty or only whitespace (checked cheaply: most lines start with `{`). */
export function isBlank(line: string): boolean {
  if (line.length === 0) return true;
  const c = line.charCodeAt(0);
  return (c === 32 || c === 9 || c === 13 || c === 0xfeff) && line.trim().replace(/^\uFEFF/, '') === '';
}

/** Parses one NDJSON line into `out`, or a problem. */
export function parseLine(line: string, lineNo: number, out: { rows: Row[]; positions: number[]; raws: string[]; unreadable: RowProblem[] }): void {
  if (isBlank(line)) return;
  if (lineNo === 1 && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    out.unreadable.push({ position: lineNo, code: 'SHOAL_ERR_LOAD_ROW', message: `not valid JSON: ${(e as Error).message.slice(0, 120)}` });
    return;
  }
  out.rows.push(value as Row);
  out.positions.push(lineNo);
  out.raws.push(line);
}

export function ndjsonSource(file: string, byteSize: number, gzip: boolean): RowSource {
  return {
    file,
    format: 'ndjson',
    positionKind: 'line',
    byteSize,
    secondsColumns: new Set(),
    columnTypes: null,
    columns: null,
    chunks: () => readNdjson(file, gzip),
  };
}

async function* readNdjson(file: string, gzip: boolean): AsyncGenerator<RowChunk> {
  const raw = fs.createReadStream(file, { highWaterMark: READ_BYTES });
  let input: NodeJS.ReadableStream = raw;
  if (gzip) {
    const gunzip = zlib.createGunzip({ chunkSize: READ_BYTES });
    // pipeline() destroys both streams on an error in either; the error surfaces in the loop.
    pipeline(raw, gunzip, () => {});
    input = gunzip;
  }
  const decoder = new StringDecoder('utf8');
  const splitter = new LineSplitter();
  let out = fresh();
  const onLine = (line: string, lineNo: number) => parseLine(line, lineNo, out);
  const onTooLong = (lineNo: number) => out.unreadable.push({ position: lineNo, code: 'SHOAL_ERR_LOAD_ROW', message: `line is longer than ${LIMITS.loaderLineBytesMax} characters` });
  try {
    for await (const piece of input) {
      splitter.push(decoder.write(piece as Buffer), onLine, onTooLong);
      if (out.rows.length > 0 || out.unreadable.length > 0) {
        yield { ...out, bytesDone: raw.bytesRead };
        out = fresh();
      }
    }
  } catch (e) {
    throw new ShoalError('SHOAL_ERR_LOAD_FORMAT', `${file}: cannot read${gzip ? ' gzip' : ''} input after line ${splitter.lineNo}: ${(e as Error).message}`);
  } finally {
    raw.destroy();
  }
  splitter.push(decoder.end(), onLine, onTooLong);
  splitter.end(onLine);
  yield { ...out, bytesDone: raw.bytesRead };
}

function fresh(): { rows: Row[]; positions: number[]; raws: string[]; unreadable: RowProblem[] } {
  return { rows: [], positions: [], raws: [], unreadable: [] };
}
