/**
 * Rows -> NDJSON batches, cut by row count and by size (in UTF-16 units, which bounds the UTF-8
 * bytes at 3x; LIMITS.loaderBatchBytesMax keeps even that under the leaf's body limit). A batch
 * never spans two files, so each of its rows has one file and one position to report.
 *
 * Not here: sending (sender.ts).
 */
import { assert } from '../query/errors.js';

export interface Batch {
  /** Idempotency key sent as `x-shoal-batch-id`: a leaf drops a batch id it already stored. */
  readonly id: string;
  readonly file: string;
  readonly positionKind: 'line' | 'row';
  /** The rows as NDJSON, joined by '\n' (a JSON line never holds a raw newline, so splitting
   * the body on '\n' gives the rows back, as bad-row isolation does). */
  readonly body: string;
  /** Position in the file of each row (see RowChunk.positions). */
  readonly positions: number[];
  /** An earlier run may have stored this batch (the tail's batch that was in flight when it
   * stopped): its first try is marked a resend (loader/transport.ts, PostOptions). */
  readonly resend?: boolean;
}

export class Batcher {
  private lines: string[] = [];
  private positions: number[] = [];
  private chars = 0;
  private seq = 0;

  constructor(
    private readonly idPrefix: string,
    private readonly rowsMax: number,
    private readonly charsMax: number,
  ) {
    assert(rowsMax >= 1 && charsMax >= 1, 'batch bounds are positive');
  }

  /** Adds one row; returns a full batch when this row filled one (the row is in it). */
  add(file: string, positionKind: 'line' | 'row', line: string, position: number): Batch | null {
    if (this.lines.length > 0 && this.chars + line.length + 1 > this.charsMax) {
      const full = this.take(file, positionKind);
      this.push(line, position);
      return full;
    }
    this.push(line, position);
    return this.lines.length >= this.rowsMax || this.chars >= this.charsMax ? this.take(file, positionKind) : null;
  }

  /** The partial batch, if any (at the end of a file). */
  flush(file: string, positionKind: 'line' | 'row'): Batch | null {
    return this.lines.length > 0 ? this.take(file, positionKind) : null;
  }

  get pendingRows(): number { return this.lines.length; }

  private push(line: string, position: number): void {
    this.lines.push(line);
    this.positions.push(position);
    this.chars += line.length + 1;
  }

  private take(file: string, positionKind: 'line' | 'row'): Batch {
    // join() makes one flat string: the batch then holds no reference to the reader's 1 MiB
    // pieces that the lines were sliced from, so those die young (a scavenge frees them) and
    // the heap stays small while batches wait in flight.
    const batch: Batch = { id: `${this.idPrefix}-${this.seq++}`, file, positionKind, body: this.lines.join('\n'), positions: this.positions };
    this.lines = [];
    this.positions = [];
    this.chars = 0;
    return batch;
  }
}
