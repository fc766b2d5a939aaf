/**
 * Keeps the loader's heap near its live set. A load allocates its input several times over
 * (decoded row groups, row objects, JSON text) and almost all of it dies within a batch; V8
 * nonetheless lets the old generation grow to several times the live set before a full
 * collection (measured: ~50 MB live, ~180 MB heap, ~330 MB RSS on a Parquet load). When the
 * heap has grown by HEAP_SLACK_BYTES since the last full collection, this asks for one. A full
 * collection of a ~50 MB live heap takes ~10-20 ms and happens every few hundred thousand rows:
 * a few percent of the load's time for a bounded RSS.
 *
 * `gc` is reached through V8's --expose-gc flag, set at run time; when that is not possible the
 * guard does nothing (V8's own heuristics still apply).
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/** Growth of the used heap, over its size after the last full collection, that triggers one. */
const HEAP_SLACK_BYTES = 64 * 1024 * 1024;

let gcFn: (() => void) | null | undefined;

function getGc(): (() => void) | null {
  if (gcFn !== undefined) return gcFn;
  try {
    v8.setFlagsFromString('--expose-gc');
    const fn = vm.runInNewContext('gc') as unknown;
    gcFn = typeof fn === 'function' ? (fn as () => void) : null;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

export class HeapGuard {
  private readonly gc = getGc();
  private baseBytes = v8.getHeapStatistics().used_heap_size;
  /** Full collections requested (for tests and benchmarks). */
  collections = 0;

  /** Call between chunks: cheap (one heap-statistics read). A reader about to decode a large
   * piece (a Parquet row group) passes a smaller slack, so the decode starts from a clean heap. */
  check(slackBytes: number = HEAP_SLACK_BYTES): void {
    if (this.gc === null) return;
    const used = v8.getHeapStatistics().used_heap_size;
    if (used - this.baseBytes < slackBytes) return;
    this.gc();
    this.collections++;
    this.baseBytes = v8.getHeapStatistics().used_heap_size;
  }
}

let shared: HeapGuard | null = null;

/** The process's guard, shared by the load loop and the readers; made on first use, so merely
 * importing the loader (as every `shoal` command does) changes no V8 flag. */
export function heapGuard(): HeapGuard {
  return (shared ??= new HeapGuard());
}
