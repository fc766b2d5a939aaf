/**
 * NDJSON reader (plain, or gzip through a zlib stream): one JSON object per line, blank lines
 * skipped (as the leaf skips them), `\r\n` accepted. Reads the file in 1 MiB pieces and yields a
 * chunk per piece, so memory holds one piece plus the partial line that straddles two pieces.
 * A line over LIMITS.loaderLineBytesMax characters is reported and skipped without being held.
 * Whole lines go out unparsed, with their bytes (RowChunk.text): the preparer checks them all at
 * once when it can (fast-check.ts) and parses them one by one (parseText) when it cannot.
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

/**
 * Bytes held back waiting for the end of a line, at most: past this (no newline in sight) they
 * go to the LineSplitter, which reports the line as too long. A UTF-16 unit, what the splitter's
 * limit counts, is at most 3 UTF-8 bytes, so a line the splitter takes always fits.
 */
const CARRY_BYTES_MAX = 3 * LIMITS.loaderLineBytesMax + 4;
const LF = 0x0a;

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
  // The file is cut at the last newline of each piece: the whole lines before it go out as one
  // unparsed chunk (the preparer checks them at once, fast-check.ts), the rest waits for the
  // next piece. The splitter and the decoder take what is not whole lines (a line too long to
  // hold, the end of the file) and hold state only until the next newline: `clean` says they
  // hold nothing, so that the next bytes start a line.
  let carry: Buffer | null = null;
  let clean = true;
  const general = (bytes: Buffer) => {
    splitter.push(decoder.write(bytes), onLine, onTooLong);
    clean = bytes.length > 0 && bytes[bytes.length - 1] === LF;
  };
  let text: RowChunk | null = null;
  try {
    for await (const piece of input) {
      const buf: Buffer = carry === null ? piece as Buffer : Buffer.concat([carry, piece as Buffer]);
      carry = null;
      const last = buf.lastIndexOf(LF);
      if (last < 0) {
        if (buf.length > CARRY_BYTES_MAX) general(buf);
        else carry = buf;
      } else {
        const lines = buf.subarray(0, last + 1);
        if (last + 1 < buf.length) carry = buf.subarray(last + 1);
        // A stretch longer than the line limit may hold a line over it: the splitter reports that.
        if (clean && lines.length <= LIMITS.loaderLineBytesMax) text = textChunk(lines, splitter, raw.bytesRead);
        else general(lines);
      }
      if (out.rows.length > 0 || out.unreadable.length > 0) {
        yield { ...out, bytesDone: raw.bytesRead };
        out = fresh();
      }
      if (text !== null) {
        yield text;
        text = null;
      }
    }
  } catch (e) {
    throw new ShoalError('SHOAL_ERR_LOAD_FORMAT', `${file}: cannot read${gzip ? ' gzip' : ''} input after line ${splitter.lineNo}: ${(e as Error).message}`);
  } finally {
    raw.destroy();
  }
  if (carry !== null) general(carry);
  splitter.push(decoder.end(), onLine, onTooLong);
  splitter.end(onLine);
  yield { ...out, bytesDone: raw.bytesRead };
}

/** Whole lines (`bytes` ends with a newline), unparsed: their text, each non-blank line with its
 * number (as the splitter numbers and trims them), and the bytes for a check at once. */
function textChunk(bytes: Buffer, splitter: LineSplitter, bytesDone: number): RowChunk {
  const lines = bytes.toString('utf8').split('\n');
  lines.pop(); // '' after the last newline
  const raws: string[] = [];
  const positions: number[] = [];
  const first = splitter.lineNo + 1;
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
    if (isBlank(line)) continue;
    raws.push(line);
    positions.push(first + i);
  }
  splitter.lineNo += lines.length;
  return { rows: [], positions, raws, unreadable: [], bytesDone, text: bytes };
}

/** A chunk's unparsed lines (RowChunk.text) parsed one by one, as the general path reads them. */
export function parseText(chunk: RowChunk): RowChunk {
  const out = fresh();
  for (let i = 0; i < chunk.raws!.length; i++) parseLine(chunk.raws![i]!, chunk.positions[i]!, out);
  return { ...out, unreadable: [...chunk.unreadable, ...out.unreadable], bytesDone: chunk.bytesDone };
}

function fresh(): { rows: Row[]; positions: number[]; raws: string[]; unreadable: RowProblem[] } {
  return { rows: [], positions: [], raws: [], unreadable: [] };
}
