/**
 * The file side of the tail: lines with their byte offsets, and file identity (device + inode)
 * for telling rotation from growth. Not here: following and sending (tail.ts).
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { LIMITS } from '../query/limits.js';

export interface TailLine { readonly text: string | null; readonly lineNo: number; readonly end: number }

/** Splits bytes into lines, each with the absolute byte offset just after its newline. */
export class ByteLines {
  private parts: Buffer[] = [];
  private partBytes = 0;
  private skipping = false;
  constructor(public lineNo: number, private readonly onTooLong: (lineNo: number) => void) {}

  push(buf: Buffer, bufOffset: number, out: TailLine[]): void {
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl >= 0; nl = buf.indexOf(10, start)) {
      this.lineNo++;
      const end = bufOffset + nl + 1;
      if (this.skipping) {
        out.push({ text: null, lineNo: this.lineNo, end });
        this.skipping = false;
      } else {
        const piece = buf.subarray(start, nl);
        const bytes = this.parts.length > 0 ? Buffer.concat([...this.parts, piece]) : piece;
        out.push({ text: decode(bytes), lineNo: this.lineNo, end });
      }
      this.parts = [];
      this.partBytes = 0;
      start = nl + 1;
    }
    if (start < buf.length && !this.skipping) {
      this.parts.push(Buffer.from(buf.subarray(start)));
      this.partBytes += buf.length - start;
      if (this.partBytes > LIMITS.loaderLineBytesMax) {
        this.onTooLong(this.lineNo + 1);
        this.parts = [];
        this.partBytes = 0;
        this.skipping = true;
      }
    }
  }

  /** The unterminated last line of a file that will not grow any more. */
  finish(end: number, out: TailLine[]): void {
    if (this.partBytes > 0 || this.skipping) {
      this.lineNo++;
      out.push({ text: this.skipping ? null : decode(Buffer.concat(this.parts)), lineNo: this.lineNo, end });
    }
    this.parts = [];
    this.partBytes = 0;
    this.skipping = false;
  }
}

function decode(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  return text.charCodeAt(text.length - 1) === 13 ? text.slice(0, -1) : text;
}

export interface Identity { readonly dev: string; readonly ino: string; readonly size: number }

export async function identityOf(p: string): Promise<Identity | null> {
  try {
    const st = await fsp.stat(p, { bigint: true });
    return { dev: st.dev.toString(), ino: st.ino.toString(), size: Number(st.size) };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** The file in `p`'s directory with this identity (the rotated file), if any. */
export async function findRotated(p: string, dev: string, ino: string): Promise<string | null> {
  const dir = path.dirname(p);
  let names: string[];
  try { names = await fsp.readdir(dir); } catch { return null; }
  const base = path.basename(p);
  // Rotated names usually extend the base name (app.log.1, app.log-20240501): look there first.
  names.sort((a, b) => Number(!a.startsWith(base)) - Number(!b.startsWith(base)));
  for (const name of names.slice(0, LIMITS.tailRotatedScanMax)) {
    const id = await identityOf(path.join(dir, name));
    if (id !== null && id.dev === dev && id.ino === ino) return path.join(dir, name);
  }
  return null;
}
