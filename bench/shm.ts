/**
 * Shared-memory handoff primitives against memcpy: how fast a leaf can move a column into POSIX
 * shared memory and get it back (native/shm.ts).
 *
 *   node dist/bench/shm.js [--bytes N[K|M|G]] [--repeats N] [--seed N] [--json]
 *
 * For each size (default 256 MiB and 1 GiB, or the one --bytes gives) it measures, best of
 * --repeats runs, each into a fresh segment as a handoff would: pwrite into a new sparse segment,
 * posix_fallocate + pwrite, a copy through a writable mapping, map (lazy and populated), the first
 * scan of a mapping, read (pread) back into a fresh and into a warm heap buffer, CRC-32C hardware
 * and table; and memcpy between two warm buffers as the baseline every copy is quoted against.
 * Data is seeded; it prints the CRC-32C of the data and checks that every path gives it back.
 * GB/s is 10^9 bytes per second.
 */

import * as shm from '../native/shm.js';

const MiB = 1 << 20;
const DEFAULT_SIZES_BYTES = [256 * MiB, 1024 * MiB];
/** The random pattern is this long and tiled over the buffer: generating 1 GiB byte by byte in JS
 * would take longer than the measurements, and tiling does not help any of the copies. */
const PATTERN_BYTES = 4 * MiB;
const REPEATS_MAX = 20;

interface Options { sizesBytes: number[]; repeats: number; seed: number; json: boolean }

interface Row { metric: string; ms: number; gbPerS: number | null; vsMemcpy: number | null; note: string }

function parseBytes(text: string): number {
  const match = /^(\d+)([KMG]?)$/i.exec(text);
  if (match === null) throw new Error(`--bytes: expected an integer with an optional K, M or G suffix, got "${text}"`);
  const unit = { '': 1, K: 1024, M: MiB, G: 1024 * MiB }[match[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  const byteCount = Number(match[1]) * unit;
  if (byteCount < 1 || byteCount > shm.nativeLimits().benchBytesMax) {
    throw new Error(`--bytes: must be between 1 and ${shm.nativeLimits().benchBytesMax}, got ${byteCount}`);
  }
  return byteCount;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { sizesBytes: DEFAULT_SIZES_BYTES, repeats: 3, seed: 42, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg}: missing value`);
      return next;
    };
    if (arg === '--bytes') options.sizesBytes = [parseBytes(value())];
    else if (arg === '--repeats') options.repeats = Number(value());
    else if (arg === '--seed') options.seed = Number(value());
    else if (arg === '--json') options.json = true;
    else throw new Error(`unknown argument "${arg}" (expected --bytes N, --repeats N, --seed N, --json)`);
  }
  if (!Number.isInteger(options.repeats) || options.repeats < 1 || options.repeats > REPEATS_MAX) {
    throw new Error(`--repeats: must be an integer from 1 to ${REPEATS_MAX}`);
  }
  if (!Number.isInteger(options.seed)) throw new Error('--seed: must be an integer');
  return options;
}

/** mulberry32 */
function seededBytes(byteCount: number, seed: number): Uint8Array {
  let state = seed >>> 0;
  const bytes = new Uint8Array(byteCount);
  const pattern = new Uint32Array(Math.min(PATTERN_BYTES, byteCount) >>> 2);
  for (let i = 0; i < pattern.length; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    pattern[i] = (t ^ (t >>> 14)) >>> 0;
  }
  const patternBytes = new Uint8Array(pattern.buffer);
  for (let offset = 0; offset < byteCount; offset += patternBytes.byteLength) {
    bytes.set(patternBytes.subarray(0, Math.min(patternBytes.byteLength, byteCount - offset)), offset);
  }
  return bytes;
}

function nowMs(): number {
  return performance.now();
}

/** Best (lowest) time of `repeats` runs of `run`, which returns the ms of the part it measures
 * (setup and cleanup of each run excluded). */
function best(repeats: number, run: () => number): number {
  let msMin = Infinity;
  for (let r = 0; r < repeats; r++) msMin = Math.min(msMin, run());
  return msMin;
}

function collect(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function benchSize(byteSize: number, options: Options, prefix: string): { rows: Row[]; crc: number; ok: boolean } {
  const data = seededBytes(byteSize, options.seed);
  const crc = shm.crc32c(data);
  let ok = true;
  let segmentCount = 0;
  const fresh = (): string => `${prefix}${byteSize}-${++segmentCount}`;
  const check = (what: string, got: number): void => {
    if (got !== crc) {
      ok = false;
      console.error(`MISMATCH ${what}: crc32c ${got.toString(16)} != ${crc.toString(16)}`);
    }
  };

  const memcpyRepeats = Math.max(1, Math.min(shm.nativeLimits().benchRepeatsMax, Math.round((4 * 1024 * MiB) / byteSize)));
  const memcpyMs = shm.memcpyBench(byteSize, memcpyRepeats) / 1e6;

  const pwriteMs = best(options.repeats, () => {
    const name = fresh();
    shm.create(name, byteSize);
    const start = nowMs();
    shm.write(name, 0, data);
    const ms = nowMs() - start;
    shm.unlink(name);
    return ms;
  });

  let fallocateMs = Infinity;
  const pwriteReservedMs = best(options.repeats, () => {
    const name = fresh();
    const start = nowMs();
    shm.create(name, byteSize, { reserve: true });
    const mid = nowMs();
    shm.write(name, 0, data);
    const ms = nowMs() - mid;
    fallocateMs = Math.min(fallocateMs, mid - start);
    shm.unlink(name);
    return ms;
  });

  const mapSetMs = best(options.repeats, () => {
    const name = fresh();
    shm.create(name, byteSize, { reserve: true });
    const start = nowMs();
    new Uint8Array(shm.map(name, { writable: true })).set(data);
    const ms = nowMs() - start;
    shm.unlink(name); // the mapping (and its memory) goes when the ArrayBuffer is collected
    collect();
    return ms;
  });

  // One published segment for the read side, as the next process would find it.
  const name = fresh();
  shm.create(name, byteSize);
  shm.write(name, 0, data);

  const mapMs = best(options.repeats, () => {
    const start = nowMs();
    shm.map(name);
    return nowMs() - start;
  });
  const mapPopulateMs = best(options.repeats, () => {
    const start = nowMs();
    shm.map(name, { populate: true });
    return nowMs() - start;
  });
  collect();
  let firstScanMs = Infinity;
  const mapScanMs = best(options.repeats, () => {
    const start = nowMs();
    const mapped = shm.map(name);
    const mid = nowMs();
    check('map + crc32c', shm.crc32c(mapped));
    const end = nowMs();
    firstScanMs = Math.min(firstScanMs, end - mid);
    return end - start;
  });
  collect();

  const readFreshMs = best(options.repeats, () => {
    const start = nowMs();
    const target = new Uint8Array(byteSize);
    shm.read(name, 0, target);
    const ms = nowMs() - start;
    check('read into a fresh buffer', shm.crc32c(target));
    return ms;
  });
  collect();
  const warm = new Uint8Array(byteSize);
  shm.read(name, 0, warm);
  const readWarmMs = best(options.repeats, () => {
    const start = nowMs();
    shm.read(name, 0, warm);
    return nowMs() - start;
  });
  check('read into a warm buffer', shm.crc32c(warm));
  shm.unlink(name);

  const crcHardwareMs = best(options.repeats, () => {
    const start = nowMs();
    shm.crc32c(data);
    return nowMs() - start;
  });
  let crcSoftware = 0;
  const crcSoftwareMs = best(options.repeats, () => {
    const start = nowMs();
    crcSoftware = shm.crc32cSoftware(data);
    return nowMs() - start;
  });
  check('crc32c table version', crcSoftware);

  const round3 = (value: number): number => Math.round(value * 1000) / 1000;
  const row = (metric: string, ms: number, note: string, copies = true): Row => ({
    metric,
    ms: round3(ms),
    gbPerS: copies ? round3(byteSize / (ms * 1e6)) : null,
    vsMemcpy: copies ? round3(ms / memcpyMs) : null,
    note,
  });
  const rows: Row[] = [
    row('memcpy (baseline)', memcpyMs, `warm buffers, mean of ${memcpyRepeats}`),
    row('pwrite -> shm', pwriteMs, 'new sparse segment (allocates pages)'),
    row('posix_fallocate', fallocateMs, 'create({ reserve: true })', false),
    row('pwrite -> shm (reserved)', pwriteReservedMs, 'pages already allocated'),
    row('map(writable) + set', mapSetMs, 'reserved segment, page faults included'),
    row('map', mapMs, 'MAP_PRIVATE, lazy', false),
    row('map({ populate })', mapPopulateMs, 'MADV_POPULATE_READ', false),
    row('map + first crc32c scan', mapScanMs, `scan alone ${firstScanMs.toFixed(1)} ms`),
    row('read -> fresh heap buffer', readFreshMs, 'alloc + pread (the copy path)'),
    row('read -> warm heap buffer', readWarmMs, 'pread only'),
    row(`crc32c (${shm.crc32cImplementation()})`, crcHardwareMs, 'heap data'),
    row('crc32c (table)', crcSoftwareMs, 'portable fallback'),
  ];
  return { rows, crc, ok };
}

function formatSize(byteSize: number): string {
  return byteSize % (1024 * MiB) === 0 ? `${byteSize / (1024 * MiB)} GiB` : byteSize % MiB === 0 ? `${byteSize / MiB} MiB` : `${byteSize} B`;
}

function main(): void {
  const options = parseArgs(process.argv.slice(2));
  const loadError = shm.nativeLoadError();
  if (loadError !== undefined) throw loadError;
  const prefix = `/shoal-bench-${process.pid}-`;
  const results: Array<{ byteSize: number; crc32c: string; ok: boolean; rows: Row[] }> = [];
  try {
    for (const byteSize of options.sizesBytes) {
      const { rows, crc, ok } = benchSize(byteSize, options, prefix);
      results.push({ byteSize, crc32c: crc.toString(16).padStart(8, '0'), ok, rows });
    }
  } finally {
    for (const name of shm.list(prefix)) shm.unlink(name);
  }
  const allOk = results.every((result) => result.ok);
  if (options.json) {
    console.log(JSON.stringify({ bench: 'shm', seed: options.seed, repeats: options.repeats, node: process.version, ok: allOk, results }, null, 2));
  } else {
    console.log(`shm bench: seed ${options.seed}, best of ${options.repeats}, node ${process.version}, GB/s = 1e9 B/s`);
    for (const result of results) {
      console.log(`\n${formatSize(result.byteSize)}  crc32c ${result.crc32c}  ${result.ok ? 'verified' : 'MISMATCH'}`);
      console.log(`${'operation'.padEnd(28)}${'ms'.padStart(10)}${'GB/s'.padStart(8)}${'x memcpy'.padStart(10)}  note`);
      for (const r of result.rows) {
        const gb = r.gbPerS === null ? '' : r.gbPerS.toFixed(2);
        const ratio = r.vsMemcpy === null ? '' : r.vsMemcpy.toFixed(2);
        console.log(`${r.metric.padEnd(28)}${r.ms.toFixed(1).padStart(10)}${gb.padStart(8)}${ratio.padStart(10)}  ${r.note}`);
      }
    }
  }
  if (!allOk) process.exitCode = 1;
}

try {
  main();
} catch (error) {
  console.error(`bench/shm: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 2;
}
