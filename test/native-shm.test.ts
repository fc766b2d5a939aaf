/**
 * The native shared-memory addon against real POSIX shared memory (/dev/shm): round trips,
 * mapping semantics, bounds and name errors, listing, a Worker mapping a segment by name, and
 * CRC-32C known answers plus a comparison with an independent JS implementation.
 *
 * Every segment is named `/shoal-test-<pid>-...` and removed in afterAll; the last test checks
 * none is left. Random data comes from a seeded PRNG; the seed is in every failure message.
 */

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

function errorOf(fn: () => unknown): Error & { code?: string; errno?: number; syscall?: string; path?: string } {
  try {
    fn();
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected an error, got none');
}

beforeAll(() => {
  const loadError = shm.nativeLoadError();
  if (loadError !== undefined) throw loadError;
});

afterAll(() => {
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

describe('native shm: cleanup', () => {
  it('leaves no segment of this test behind', () => {
    for (const name of shm.list(PREFIX)) shm.unlink(name);
    expect(shm.list(PREFIX)).toEqual([]);
  });
});
