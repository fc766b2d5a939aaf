/**
 * The native shared-memory addon against real POSIX shared memory (/dev/shm): round trips,
 * mapping semantics, bounds and name errors, listing, a Worker mapping a segment by name, the
 * trust check on segments (mode, owner, symbolic links, FIFOs), the data-directory lock against
 * real child processes (held, killed with SIGKILL, not inherited), and CRC-32C known answers plus
 * a comparison with an independent JS implementation.
 *
 * Every segment is named `/shoal-test-<pid>-...` and removed in afterAll; the last test checks
 * none is left (symbolic links and FIFOs, which list() skips, are removed by their own tests).
 * Lock files live in a fresh temporary directory, removed in afterAll. Random data comes from a
 * seeded PRNG; the seed is in every failure message.
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as shm from '../native/shm.js';

const SEED = Number(process.env.SHOAL_TEST_SEED ?? 0x5eed);
const PREFIX = `/shoal-test-${process.pid}-`;
let nameCount = 0;

function freshName(label: string): string {
  nameCount += 1;
  return `${PREFIX}${label}-${nameCount}`;
}

/** mulberry32: small, seeded, good enough for test bytes. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function randomBytes(byteCount: number, seed: number): Uint8Array {
  const next = prng(seed);
  const bytes = new Uint8Array(byteCount);
  for (let i = 0; i < byteCount; i += 4) {
    const word = next();
    for (let k = 0; k < 4 && i + k < byteCount; k++) bytes[i + k] = (word >>> (8 * k)) & 0xff;
  }
  return bytes;
}

/** Bitwise CRC-32C, the independent reference for the addon's hardware and table versions. */
function crc32cReference(bytes: Uint8Array, crcIn = 0): number {
  let crc = ~crcIn >>> 0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

type TestError = Error & {
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
  uid?: number;
  mode?: number;
  holderPid?: number | null;
};

function errorOf(fn: () => unknown): TestError {
  try {
    fn();
  } catch (error) {
    return error as TestError;
  }
  throw new Error('expected an error, got none');
}

/** The file glibc keeps a segment in (names start with '/'). */
function shmFile(name: string): string {
  return `/dev/shm/${name.slice(1)}`;
}

let lockDir = '';
const children: ChildProcess[] = [];

beforeAll(() => {
  const loadError = shm.nativeLoadError();
  if (loadError !== undefined) throw loadError;
  lockDir = mkdtempSync(join(tmpdir(), 'shoal-lock-test-'));
});

afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (lockDir !== '') rmSync(lockDir, { recursive: true, force: true });
  if (!shm.nativeAvailable()) return;
  for (const name of shm.list(PREFIX)) shm.unlink(name);
});

describe('native shm: round trip', () => {
  it('create / write / read / map return the bytes written, at any offset', () => {
    const name = freshName('roundtrip');
    const byteSize = (1 << 20) + 13; // not a multiple of the page size
    const data = randomBytes(byteSize, SEED);
    shm.create(name, byteSize);
    expect(shm.size(name)).toBe(byteSize);
    expect(shm.exists(name)).toBe(true);

    shm.write(name, 0, data);
    const back = new Uint8Array(byteSize);
    expect(shm.read(name, 0, back)).toBe(byteSize);
    expect(Buffer.compare(back, data), `seed ${SEED}`).toBe(0);

    const mapped = new Uint8Array(shm.map(name));
    expect(mapped.byteLength).toBe(byteSize);
    expect(Buffer.compare(mapped, data), `seed ${SEED}`).toBe(0);

    // A piece at an odd offset, through a subarray view (non-zero byteOffset) both ways.
    const piece = randomBytes(4099, SEED + 1);
    const carrier = new Uint8Array(piece.byteLength + 7);
    carrier.set(piece, 7);
    shm.write(name, 12345, carrier.subarray(7));
    const pieceBack = new Uint8Array(piece.byteLength + 3);
    shm.read(name, 12345, pieceBack.subarray(3));
    expect(Buffer.compare(pieceBack.subarray(3), piece), `seed ${SEED}`).toBe(0);
    expect(shm.crc32c(shm.map(name))).toBe(
      shm.crc32c(data.subarray(12345 + piece.byteLength), shm.crc32c(piece, shm.crc32c(data.subarray(0, 12345)))),
    );
  });

  it('a new segment reads as zeros; reserve allocates it up front', () => {
    for (const reserve of [false, true]) {
      const name = freshName(`zeros-${reserve}`);
      shm.create(name, 65536 + 1, { reserve });
      const back = new Uint8Array(65537).fill(0xaa);
      shm.read(name, 0, back);
      expect(back.every((byte) => byte === 0)).toBe(true);
      expect(new Uint8Array(shm.map(name, { populate: true })).every((byte) => byte === 0)).toBe(true);
    }
  });

  it('takes any view: Float64Array in, DataView and ArrayBuffer out', () => {
    const name = freshName('views');
    const values = Float64Array.from({ length: 1000 }, (_, index) => index * 1.5 - 7);
    shm.create(name, values.byteLength);
    shm.write(name, 0, values);
    const view = new DataView(new ArrayBuffer(values.byteLength));
    shm.read(name, 0, view);
    expect(view.getFloat64(8 * 999, true)).toBe(999 * 1.5 - 7);
    const buffer = new ArrayBuffer(16);
    shm.read(name, 8, buffer);
    expect(Array.from(new Float64Array(buffer))).toEqual([1.5 - 7, 3 - 7]);
    expect(Array.from(new Float64Array(shm.map(name)))).toEqual(Array.from(values));
  });

  it('an empty segment maps to an empty ArrayBuffer', () => {
    const name = freshName('empty');
    shm.create(name, 0);
    expect(shm.size(name)).toBe(0);
    expect(shm.map(name).byteLength).toBe(0);
    expect(shm.read(name, 0, new Uint8Array(0))).toBe(0);
  });
});

describe('native shm: mapping semantics', () => {
  it('is zero-copy: a write() after mapping shows through a shared mapping', () => {
    const name = freshName('zerocopy');
    shm.create(name, 8192);
    const shared = new Uint8Array(shm.map(name, { writable: true }));
    const privateView = new Uint8Array(shm.map(name));
    shm.write(name, 5000, Uint8Array.of(1, 2, 3));
    expect(Array.from(shared.subarray(5000, 5003))).toEqual([1, 2, 3]);
    // Linux: a private mapping shares the segment's pages until this process writes one.
    expect(Array.from(privateView.subarray(5000, 5003))).toEqual([1, 2, 3]);
  });

  it('a JS write through a shared mapping changes the segment', () => {
    const name = freshName('shared-write');
    shm.create(name, 4096, { reserve: true });
    const shared = new Uint8Array(shm.map(name, { writable: true }));
    shared[100] = 42;
    const back = new Uint8Array(1);
    shm.read(name, 100, back);
    expect(back[0]).toBe(42);
  });

  it('a JS write through the default (private, copy-on-write) mapping never reaches the segment', () => {
    const name = freshName('private-write');
    const data = randomBytes(3 * 4096, SEED + 2);
    shm.create(name, data.byteLength);
    shm.write(name, 0, data);
    const privateView = new Uint8Array(shm.map(name));
    privateView[4096 + 10] = data[4096 + 10]! ^ 0xff; // no crash: the mapping is writable
    expect(privateView[4096 + 10]).toBe(data[4096 + 10]! ^ 0xff);
    const back = new Uint8Array(data.byteLength);
    shm.read(name, 0, back);
    expect(Buffer.compare(back, data), `seed ${SEED}`).toBe(0);
    expect(Buffer.compare(new Uint8Array(shm.map(name)), data), `seed ${SEED}`).toBe(0);
  });

  it('a mapping outlives unlink()', () => {
    const name = freshName('outlive');
    const data = randomBytes(10000, SEED + 3);
    shm.create(name, data.byteLength);
    shm.write(name, 0, data);
    const mapped = new Uint8Array(shm.map(name));
    expect(shm.unlink(name)).toBe(true);
    expect(shm.exists(name)).toBe(false);
    expect(Buffer.compare(mapped, data), `seed ${SEED}`).toBe(0);
  });

  it('a Worker maps the same segment by name and shares its pages with this thread', async () => {
    const name = freshName('worker');
    const data = randomBytes(1 << 16, SEED + 4);
    shm.create(name, data.byteLength, { reserve: true });
    shm.write(name, 0, data);
    const shared = new Uint8Array(shm.map(name, { writable: true }));
    // Plain JS (a Worker does not go through vitest's TypeScript transform): load the addon by
    // its path, map by name, checksum what it sees, write a marker through its own mapping.
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require(workerData.addonPath);
      const view = new Uint8Array(addon.map(workerData.name, true, false));
      const crc = addon.crc32c(view);
      view[7] = 0xab;
      parentPort.postMessage({ crc, byteLength: view.byteLength });
    `;
    const reply = await new Promise<{ crc: number; byteLength: number }>((resolve, reject) => {
      const worker = new Worker(source, { eval: true, workerData: { addonPath: shm.nativeAddonPath(), name } });
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before replying`)));
    });
    expect(reply.byteLength).toBe(data.byteLength);
    expect(reply.crc, `seed ${SEED}`).toBe(crc32cReference(data));
    expect(shared[7]).toBe(0xab);
  });
});

describe('native shm: errors', () => {
  it('create of a taken name fails with EEXIST and names the segment', () => {
    const name = freshName('eexist');
    shm.create(name, 16);
    const error = errorOf(() => shm.create(name, 16));
    expect(error.message).toBe(`shm create "${name}": File exists (EEXIST)`);
    expect(error.code).toBe('EEXIST');
    expect(error.syscall).toBe('shm_open');
    expect(error.path).toBe(name);
    expect(shm.size(name)).toBe(16); // untouched
  });

  it('a missing segment is ENOENT for size/read/write/map, false for exists/unlink', () => {
    const name = freshName('missing');
    for (const call of [
      () => shm.size(name),
      () => shm.read(name, 0, new Uint8Array(1)),
      () => shm.write(name, 0, new Uint8Array(1)),
      () => shm.map(name),
    ]) {
      const error = errorOf(call);
      expect(error.code).toBe('ENOENT');
      expect(error.message).toContain(`"${name}": No such file or directory (ENOENT)`);
    }
    expect(shm.exists(name)).toBe(false);
    expect(shm.unlink(name)).toBe(false);
  });

  it('unlink removes a segment once', () => {
    const name = freshName('unlink');
    shm.create(name, 1);
    expect(shm.unlink(name)).toBe(true);
    expect(shm.unlink(name)).toBe(false);
    expect(shm.exists(name)).toBe(false);
  });

  it('reads and writes outside the segment are RangeErrors that say where', () => {
    const name = freshName('bounds');
    shm.create(name, 100);
    const cases: Array<[() => unknown, string]> = [
      [() => shm.write(name, 90, new Uint8Array(11)), 'offset 90 + length 11 exceeds the segment size 100'],
      [() => shm.write(name, 101, new Uint8Array(0)), 'offset 101 + length 0 exceeds the segment size 100'],
      [() => shm.read(name, 1, new Uint8Array(100)), 'offset 1 + length 100 exceeds the segment size 100'],
      [() => shm.read(name, 2 ** 40, new Uint8Array(1)), 'exceeds the segment size 100'],
    ];
    for (const [call, text] of cases) {
      const error = errorOf(call);
      expect(error).toBeInstanceOf(RangeError);
      expect(error.code).toBe('ERR_OUT_OF_RANGE');
      expect(error.message).toContain(`"${name}"`);
      expect(error.message).toContain(text);
    }
    shm.write(name, 90, new Uint8Array(10)); // exactly to the end is fine
    expect(shm.size(name)).toBe(100); // a write never grows the segment
  });

  it('rejects bad numbers and non-byte arguments', () => {
    const name = freshName('args');
    shm.create(name, 8);
    for (const bad of [-1, 1.5, Number.NaN, Infinity, 2 ** 53]) {
      expect(errorOf(() => shm.write(name, bad, new Uint8Array(1))).code).toBe('ERR_OUT_OF_RANGE');
    }
    expect(errorOf(() => shm.create(freshName('huge'), 2 ** 41)).code).toBe('ERR_OUT_OF_RANGE');
    const notBytes = errorOf(() => shm.write(name, 0, 'text' as unknown as Uint8Array));
    expect(notBytes).toBeInstanceOf(TypeError);
    expect(notBytes.code).toBe('ERR_INVALID_ARG_TYPE');
    expect(errorOf(() => shm.write(name, '0' as unknown as number, new Uint8Array(1))).code).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('validates names: leading slash, no other slash, alphabet, length', () => {
    const tooLong = '/' + 'a'.repeat(shm.nativeLimits().nameBytesMax);
    const cases: Array<[string, string]> = [
      ['shoal-x', "must start with '/'"],
      ['/', "is empty after the '/'"],
      ['/a/b', "has a '/' after the first character"],
      ['/bad name', 'has a character outside [A-Za-z0-9._-] at byte 4'],
      ['/..', "is '.' or '..'"],
      [tooLong, `is ${tooLong.length} bytes, over the limit of 200`],
    ];
    for (const [name, reason] of cases) {
      const error = errorOf(() => shm.create(name, 1));
      expect(error.code).toBe('ERR_INVALID_ARG_VALUE');
      expect(error.message).toBe(`shm create "${name}": the segment name ${reason}`);
    }
    expect(errorOf(() => shm.exists(42 as unknown as string)).code).toBe('ERR_INVALID_ARG_TYPE');
    const atLimit = '/' + 'a'.repeat(shm.nativeLimits().nameBytesMax - 1);
    expect(shm.exists(atLimit)).toBe(false);
  });
});

describe('native shm: list', () => {
  it('lists exactly the segments with a prefix, sorted', () => {
    const prefix = `${PREFIX}list-`;
    const names = [`${prefix}b`, `${prefix}a`, `${prefix}c.tmp`];
    for (const name of names) shm.create(name, 1);
    shm.create(`${PREFIX}other-list-x`, 1);
    expect(shm.list(prefix)).toEqual([...names].sort());
    expect(shm.list(`${prefix}zzz`)).toEqual([]);
    expect(shm.list('/').length).toBeGreaterThanOrEqual(4);
    expect(errorOf(() => shm.list('no-slash')).code).toBe('ERR_INVALID_ARG_VALUE');
    for (const name of names) shm.unlink(name);
    expect(shm.list(prefix)).toEqual([]);
  });
});

describe('native: crc32c and memcpy baseline', () => {
  const ascii = (text: string) => new TextEncoder().encode(text);

  it('matches the known answers (RFC 3720 B.4 and "123456789")', () => {
    const ascending = Uint8Array.from({ length: 32 }, (_, index) => index);
    const cases: Array<[Uint8Array, number]> = [
      [ascii('123456789'), 0xe3069283],
      [new Uint8Array(0), 0],
      [new Uint8Array(32), 0x8a9136aa],
      [new Uint8Array(32).fill(0xff), 0x62a8ab43],
      [ascending, 0x46dd794e],
      [ascending.slice().reverse(), 0x113fdb5c],
    ];
    for (const [bytes, expected] of cases) {
      expect(shm.crc32c(bytes)).toBe(expected);
      expect(shm.crc32cSoftware(bytes)).toBe(expected);
      expect(crc32cReference(bytes)).toBe(expected);
    }
    expect(['sse4.2', 'software']).toContain(shm.crc32cImplementation());
  });

  it('hardware, table and bitwise versions agree at every length and alignment; crc chains', () => {
    const next = prng(SEED + 5);
    const pool = randomBytes(3 * 8192 * 2 + 1000, SEED + 6);
    // Lengths around the 3-way block sizes (3 x 256 and 3 x 8192 bytes) plus random ones.
    const lengths = [0, 1, 7, 8, 9, 767, 768, 769, 24575, 24576, 24577, 3 * 8192 + 3 * 256 + 17];
    for (let i = 0; i < 40; i++) lengths.push(next() % (pool.byteLength - 8));
    for (const byteLength of lengths) {
      const start = next() % 8;
      const piece = pool.subarray(start, start + byteLength);
      const expected = crc32cReference(piece);
      const context = `seed ${SEED}, start ${start}, length ${byteLength}`;
      expect(shm.crc32c(piece), context).toBe(expected);
      expect(shm.crc32cSoftware(piece), context).toBe(expected);
      const cut = byteLength === 0 ? 0 : next() % byteLength;
      expect(shm.crc32c(piece.subarray(cut), shm.crc32c(piece.subarray(0, cut))), context).toBe(expected);
    }
    expect(errorOf(() => shm.crc32c(new Uint8Array(1), 2 ** 32)).code).toBe('ERR_OUT_OF_RANGE');
  });

  it('memcpyBench returns a positive time per copy and bounds its arguments', () => {
    const nsPerCopy = shm.memcpyBench(1 << 20, 3);
    expect(Number.isFinite(nsPerCopy)).toBe(true);
    expect(nsPerCopy).toBeGreaterThan(0);
    expect(errorOf(() => shm.memcpyBench(0, 1)).code).toBe('ERR_OUT_OF_RANGE');
    expect(errorOf(() => shm.memcpyBench(1, shm.nativeLimits().benchRepeatsMax + 1)).code).toBe('ERR_OUT_OF_RANGE');
  });
});

describe('native shm: trust', () => {
  /** Every call that reads, writes or maps an existing segment. */
  function readers(name: string): Array<[string, () => unknown]> {
    return [
      ['map', () => shm.map(name)],
      ['map', () => shm.map(name, { writable: true })],
      ['mapShared', () => shm.mapShared(name)],
      ['read', () => shm.read(name, 0, new Uint8Array(4))],
      ['size', () => shm.size(name)],
      ['write', () => shm.write(name, 0, new Uint8Array(4))],
    ];
  }

  it('refuses a segment with any group or other permission bit (EUNTRUSTED), accepts it again at 0600', () => {
    const name = freshName('mode');
    const data = randomBytes(4096, SEED + 7);
    shm.create(name, data.byteLength);
    shm.write(name, 0, data);
    const uid = process.geteuid!();
    const cases: Array<[number, string]> = [
      [0o666, 'mode 0666 (readable or writable by group or others)'],
      [0o640, 'mode 0640 (readable or writable by group or others)'],
      [0o604, 'mode 0604 (readable or writable by group or others)'],
      [0o610, 'mode 0610 (executable by group or others)'],
    ];
    for (const [mode, text] of cases) {
      chmodSync(shmFile(name), mode);
      for (const [op, call] of readers(name)) {
        const error = errorOf(call);
        expect(error.code, `${op} at ${mode.toString(8)}`).toBe('EUNTRUSTED');
        expect(error.message).toBe(`shm ${op} "${name}": not trusted: owner uid ${uid}, ${text}`);
        expect(error.path).toBe(name);
        expect(error.uid).toBe(uid);
        expect(error.mode).toBe(mode);
      }
    }
    chmodSync(shmFile(name), 0o600);
    expect(shm.size(name)).toBe(data.byteLength);
    expect(Buffer.compare(new Uint8Array(shm.map(name)), data), `seed ${SEED}`).toBe(0);
    expect(Buffer.compare(new Uint8Array(shm.mapShared(name)), data), `seed ${SEED}`).toBe(0);
    const back = new Uint8Array(data.byteLength);
    shm.read(name, 0, back);
    expect(Buffer.compare(back, data), `seed ${SEED}`).toBe(0); // the refused write changed nothing
    shm.write(name, 0, Uint8Array.of(9));
    // Neither exists nor unlink reads the segment: no check.
    chmodSync(shmFile(name), 0o666);
    expect(shm.exists(name)).toBe(true);
    expect(shm.list(name)).toEqual([name]);
    expect(shm.unlink(name)).toBe(true);
  });

  it('stat describes a segment, trusted or not, without refusing it', () => {
    const name = freshName('stat');
    const before = Date.now();
    shm.create(name, 1234);
    const trusted = shm.stat(name);
    expect(trusted).toEqual({
      size: 1234,
      uid: process.geteuid!(),
      mode: 0o600,
      mtimeMs: trusted.mtimeMs,
      trusted: true,
      untrustedReason: null,
    });
    expect(Math.abs(trusted.mtimeMs - before)).toBeLessThan(60_000);
    chmodSync(shmFile(name), 0o640);
    const untrusted = shm.stat(name);
    expect(untrusted.trusted).toBe(false);
    expect(untrusted.mode).toBe(0o640);
    expect(untrusted.untrustedReason).toBe(
      `owner uid ${process.geteuid!()}, mode 0640 (readable or writable by group or others)`,
    );
    // The reason in stat is the reason map gives.
    expect(errorOf(() => shm.map(name)).message).toBe(`shm map "${name}": not trusted: ${untrusted.untrustedReason}`);
    expect(errorOf(() => shm.stat(freshName('stat-missing'))).code).toBe('ENOENT');
    expect(errorOf(() => shm.stat('no-slash')).code).toBe('ERR_INVALID_ARG_VALUE');
  });

  it('create makes 0600 whatever the umask', () => {
    const name = freshName('umask');
    const umaskBefore = process.umask(0o277); // would leave 0400 without the fchmod
    try {
      shm.create(name, 16);
    } finally {
      process.umask(umaskBefore);
    }
    expect(statSync(shmFile(name)).mode & 0o7777).toBe(0o600);
    expect(shm.stat(name).trusted).toBe(true);
    shm.write(name, 0, Uint8Array.of(1));
  });

  it('a symbolic link under a segment name is refused (ELOOP), and stat describes the link', () => {
    const target = freshName('link-target');
    const link = freshName('link');
    shm.create(target, 4096);
    symlinkSync(shmFile(target), shmFile(link));
    try {
      for (const [op, call] of readers(link)) {
        const error = errorOf(call);
        expect(error.code, op).toBe('ELOOP');
        expect(error.message).toBe(`shm ${op} "${link}": Too many levels of symbolic links (ELOOP)`);
        expect(error.syscall).toBe('shm_open');
      }
      const described = shm.stat(link);
      expect(described.trusted).toBe(false);
      expect(described.untrustedReason).toMatch(/^a symbolic link, not a regular file, owner uid \d+, mode 0777/);
      expect(shm.list(link)).toEqual([]); // list skips links
      expect(shm.map(target).byteLength).toBe(4096); // the target itself is fine
    } finally {
      expect(shm.unlink(link)).toBe(true); // removes the link, not the target
    }
    expect(shm.exists(target)).toBe(true);
  });

  it('a FIFO under a segment name is refused at once (EUNTRUSTED), never blocks', () => {
    const name = freshName('fifo');
    try {
      execFileSync('mkfifo', ['-m', '600', shmFile(name)]);
    } catch (error) {
      console.log(`skipped the FIFO check: mkfifo failed (${(error as Error).message.split('\n')[0]})`);
      return;
    }
    try {
      // In a child with a deadline: without O_NONBLOCK, opening a FIFO that has no writer blocks
      // the thread in open() for good, which no vitest timeout can interrupt.
      const source = `
        const addon = require(process.env.ADDON_PATH);
        const name = process.env.SEGMENT;
        const calls = {
          map: () => addon.map(name, false, false),
          mapWritable: () => addon.map(name, true, false),
          mapShared: () => addon.mapShared(name),
          read: () => addon.read(name, 0, new Uint8Array(4)),
          size: () => addon.size(name),
          write: () => addon.write(name, 0, new Uint8Array(4)),
          exists: () => addon.exists(name),
        };
        const results = {};
        for (const [op, call] of Object.entries(calls)) {
          try { results[op] = { value: call() }; } catch (error) { results[op] = { code: error.code, message: error.message }; }
        }
        process.stdout.write(JSON.stringify(results));
      `;
      const output = execFileSync(process.execPath, ['-e', source], {
        env: { ...process.env, ADDON_PATH: shm.nativeAddonPath(), SEGMENT: name },
        timeout: 20_000,
        encoding: 'utf8',
      });
      const results = JSON.parse(output) as Record<string, { code?: string; message?: string; value?: unknown }>;
      const reason = `not trusted: a FIFO, not a regular file, owner uid ${process.geteuid!()}, mode 0600`;
      for (const op of ['map', 'mapWritable', 'mapShared', 'read', 'size', 'write']) {
        expect(results[op], op).toEqual({ code: 'EUNTRUSTED', message: `shm ${op.replace('Writable', '')} "${name}": ${reason}` });
      }
      expect(results.exists).toEqual({ value: true });
      expect(shm.stat(name).trusted).toBe(false);
    } finally {
      expect(shm.unlink(name)).toBe(true);
    }
  });

  it('a segment owned by another user is refused, even by root', () => {
    if (process.geteuid!() !== 0) {
      console.log(`skipped the owner check: needs root to chown a segment (running as uid ${process.geteuid!()})`);
      return;
    }
    const name = freshName('owner');
    shm.create(name, 64);
    chownSync(shmFile(name), 65534, 65534);
    for (const [op, call] of readers(name)) {
      const error = errorOf(call);
      expect(error.code, op).toBe('EUNTRUSTED');
      expect(error.message).toBe(`shm ${op} "${name}": not trusted: owner uid 65534 (this process runs as 0), mode 0600`);
      expect(error.uid).toBe(65534);
      expect(error.mode).toBe(0o600);
    }
    expect(shm.stat(name)).toMatchObject({ uid: 65534, trusted: false });
    chownSync(shmFile(name), 0, 0);
    expect(shm.size(name)).toBe(64);
  });
});

describe('native: data-directory lock', () => {
  let lockCount = 0;
  function freshLockPath(label: string): string {
    lockCount += 1;
    return join(lockDir, `${label}-${lockCount}.lock`);
  }

  /** A real process (plain JS: loads the addon by path) that runs `body` and prints a line when
   * ready; it exits on its own after a minute in case the test cannot kill it. */
  async function startChild(body: string, env: Record<string, string>): Promise<{ child: ChildProcess; line: string }> {
    const source = `
      const addon = require(process.env.ADDON_PATH);
      ${body}
      setTimeout(() => process.exit(3), 60000);
    `;
    const child = spawn(process.execPath, ['-e', source], {
      env: { ...process.env, ...env, ADDON_PATH: shm.nativeAddonPath() },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    const line = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        const end = text.indexOf('\n');
        if (end >= 0) resolve(text.slice(0, end));
      });
      child.once('error', reject);
      child.once('exit', (code, signal) => reject(new Error(`child exited (${code ?? signal}) before it was ready`)));
    });
    return { child, line };
  }

  async function killHard(child: ChildProcess): Promise<void> {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  it('a second lockFile of the same path fails in the same process too; the first lock survives it; unlock then relock works', () => {
    const path = freshLockPath('same-process');
    writeFileSync(path, 'a longer stale text than any pid\n', { mode: 0o600 }); // replaced whole
    const fd = shm.lockFile(path);
    try {
      checkSameProcess(path, fd);
    } finally {
      shm.unlockFile(fd);
    }
    const again = shm.lockFile(path);
    expect(errorOf(() => shm.lockFile(path)).code).toBe('ELOCKED');
    shm.unlockFile(again);
    expect(errorOf(() => shm.unlockFile(again)).code).toBe('ERR_INVALID_ARG_VALUE');
    shm.unlockFile(shm.lockFile(path));
  });

  function checkSameProcess(path: string, fd: number): void {
    expect(Number.isInteger(fd)).toBe(true);
    expect(readFileSync(path, 'utf8')).toBe(`${process.pid}\n`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    for (let attempt = 0; attempt < 2; attempt++) {
      // The refused attempt closes its own fd; with fcntl locks that close would drop the first
      // lock, so the second attempt is refused too only because flock is per open file description.
      const error = errorOf(() => shm.lockFile(path));
      expect(error.code).toBe('ELOCKED');
      expect(shm.isLockedError(error)).toBe(true);
      expect(error.holderPid).toBe(process.pid);
      expect(error.path).toBe(path);
      expect(error.syscall).toBe('flock');
      expect(error.message).toBe(`lock "${path}" is held by pid ${process.pid} (this process)`);
    }
  }

  it('names the holder from the pid text, or null when the file does not hold one', () => {
    const path = freshLockPath('pid-text');
    const fd = shm.lockFile(path);
    try {
      checkPidTexts(path);
    } finally {
      shm.unlockFile(fd);
    }
  });

  function checkPidTexts(path: string): void {
    const cases: Array<[string, number | null]> = [
      ['4321\n', 4321],
      ['4321', null], // a write not finished yet
      ['', null], // truncated, not yet written
      ['12ab\n', null],
      ['0\n', null],
      ['99999999999\n', null],
    ];
    for (const [text, holderPid] of cases) {
      writeFileSync(path, text);
      const error = errorOf(() => shm.lockFile(path));
      expect(error.code, JSON.stringify(text)).toBe('ELOCKED');
      expect(error.holderPid, JSON.stringify(text)).toBe(holderPid);
      if (holderPid === null) {
        expect(error.message).toBe(`lock "${path}" is held by a holder whose pid the file does not name (yet)`);
      } else {
        expect(error.message).toBe(`lock "${path}" is held by pid ${holderPid}`);
      }
    }
  }

  it('a lock held by another process is ELOCKED with its pid, and is free once that process is killed with SIGKILL', async () => {
    const path = freshLockPath('child');
    const { child, line } = await startChild(
      `const fd = addon.lockFile(process.env.LOCK_PATH); process.stdout.write('locked ' + fd + '\\n'); setInterval(() => {}, 1000);`,
      { LOCK_PATH: path },
    );
    expect(line).toMatch(/^locked \d+$/);
    expect(readFileSync(path, 'utf8')).toBe(`${child.pid}\n`);
    const error = errorOf(() => shm.lockFile(path));
    expect(error.code).toBe('ELOCKED');
    expect(error.holderPid).toBe(child.pid);
    expect(error.message).toBe(`lock "${path}" is held by pid ${child.pid}`);
    await killHard(child);
    const fd = shm.lockFile(path); // the kernel dropped the dead process's lock
    try {
      expect(readFileSync(path, 'utf8')).toBe(`${process.pid}\n`);
      // And now the other way round: a child is refused while this process holds it.
      const { child: second, line: secondLine } = await startChild(
        `try { addon.lockFile(process.env.LOCK_PATH); process.stdout.write('locked\\n'); }
         catch (error) { process.stdout.write(error.code + ' ' + error.holderPid + '\\n'); }`,
        { LOCK_PATH: path },
      );
      expect(secondLine).toBe(`ELOCKED ${process.pid}`);
      await killHard(second);
    } finally {
      shm.unlockFile(fd);
    }
  });

  it('a child process does not inherit the lock fd (O_CLOEXEC)', async () => {
    const path = freshLockPath('cloexec');
    const fd = shm.lockFile(path);
    try {
      expect(readlinkSync(`/proc/self/fd/${fd}`)).toBe(path); // the way the child is checked works
      const { child, line } = await startChild(`process.stdout.write('ready\\n'); setInterval(() => {}, 1000);`, {});
      expect(line).toBe('ready');
      const inherited: string[] = [];
      for (const entry of readdirSync(`/proc/${child.pid}/fd`)) {
        try {
          inherited.push(readlinkSync(`/proc/${child.pid}/fd/${entry}`));
        } catch {
          // closed while we looked
        }
      }
      await killHard(child);
      expect(inherited.length).toBeGreaterThan(0);
      expect(inherited).not.toContain(path);
    } finally {
      shm.unlockFile(fd);
    }
  });

  it('refuses a symbolic link (ELOOP), reports system errors with the path, and checks its arguments', () => {
    const target = freshLockPath('link-target');
    const link = freshLockPath('link');
    writeFileSync(target, '');
    symlinkSync(target, link);
    const loop = errorOf(() => shm.lockFile(link));
    expect(loop.code).toBe('ELOOP');
    expect(loop.syscall).toBe('open');
    expect(loop.path).toBe(link);
    expect(loop.message).toBe(`lock "${link}": Too many levels of symbolic links (ELOOP)`);
    const missing = join(lockDir, 'no-such-dir', 'x.lock');
    const enoent = errorOf(() => shm.lockFile(missing));
    expect(enoent.code).toBe('ENOENT');
    expect(enoent.message).toBe(`lock "${missing}": No such file or directory (ENOENT)`);
    expect(errorOf(() => shm.lockFile('')).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(errorOf(() => shm.lockFile('a\0b')).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(errorOf(() => shm.lockFile('/' + 'a'.repeat(shm.nativeLimits().lockPathBytesMax))).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(errorOf(() => shm.lockFile(42 as unknown as string)).code).toBe('ERR_INVALID_ARG_TYPE');
    // unlockFile never closes an fd it did not hand out.
    for (const bad of [0, 1, 2, -1, 1.5, 2 ** 40]) {
      expect(errorOf(() => shm.unlockFile(bad)).code, String(bad)).toBe('ERR_INVALID_ARG_VALUE');
    }
    expect(errorOf(() => shm.unlockFile('3' as unknown as number)).code).toBe('ERR_INVALID_ARG_TYPE');
  });

  it('holds at most lockFilesMax locks at once', () => {
    const fds: number[] = [];
    try {
      for (let i = 0; i < shm.nativeLimits().lockFilesMax; i++) fds.push(shm.lockFile(freshLockPath('many')));
      const error = errorOf(() => shm.lockFile(freshLockPath('many')));
      expect(error.code).toBe('ERR_OUT_OF_RANGE');
      expect(error.message).toContain(`holds ${shm.nativeLimits().lockFilesMax} locks already`);
    } finally {
      for (const fd of fds) shm.unlockFile(fd);
    }
    shm.unlockFile(shm.lockFile(freshLockPath('many')));
  });
});

describe('native shm: cleanup', () => {
  it('leaves no segment of this test behind', () => {
    for (const name of shm.list(PREFIX)) shm.unlink(name);
    expect(shm.list(PREFIX)).toEqual([]);
  });
});
