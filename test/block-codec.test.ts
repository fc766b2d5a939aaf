/**
 * Block images (query/storage/block-codec.ts) and lazily decoded sealed blocks: an image decodes
 * to the columns it was made from, a damaged one is refused with the place named, and a block
 * restored lazily (a shared-memory handoff: docs/durability.md) decodes on its first use into the
 * same data, or fails then when its image does not match the summary the handoff recorded.
 */
import { describe, expect, it } from 'vitest';
import { decodeBlock, encodeBlock, imageBytes } from '../query/storage/block-codec.js';
import { SealedBlock } from '../query/storage/table.js';
import type { BlockData } from '../query/storage/types.js';
import { mulberry32 } from './support/gen.js';

function sampleBlock(seed: number, rows: number): BlockData {
  const rnd = mulberry32(seed);
  const time = new Float64Array(rows);
  const latency = new Float64Array(rows);
  const codes = new Uint8Array(rows);
  const validity = new Uint8Array(Math.ceil(rows / 8));
  for (let i = 0; i < rows; i++) {
    time[i] = 1_700_000_000 + i;
    latency[i] = Math.floor(rnd() * 1000) / 10;
    codes[i] = Math.floor(rnd() * 3);
    if (rnd() < 0.8) validity[i >> 3]! |= 1 << (i & 7);
  }
  const words = ['api', 'web', 'db'];
  const bytes = new TextEncoder().encode(words.join(''));
  const offsets = new Int32Array(words.length + 1);
  for (let i = 0; i < words.length; i++) offsets[i + 1] = offsets[i]! + words[i]!.length;
  return {
    id: 7, rowCount: rows, timeMin: time[0]!, timeMax: time[rows - 1]!,
    columns: {
      time: { kind: 'number', values: time, validity: null },
      latency: { kind: 'number', values: latency, validity },
      service: { kind: 'string', codes, validity: null, dict: { offsets, bytes } },
    },
  };
}

/** The image in a SharedArrayBuffer, as a segment maps it. */
function sharedImage(data: BlockData): { sab: SharedArrayBuffer; byteSize: number } {
  const bytes = imageBytes(encodeBlock(data));
  const sab = new SharedArrayBuffer(bytes.byteLength);
  new Uint8Array(sab).set(bytes);
  return { sab, byteSize: bytes.byteLength };
}

const plain = (d: BlockData) => Object.fromEntries(Object.entries(d.columns).map(([k, c]) => [k, JSON.parse(JSON.stringify(c, (_key, v) => (ArrayBuffer.isView(v) ? Array.from(v as Uint8Array) : v)))]));

describe('block images', () => {
  it('decode to the columns they were made from, as views of the image', () => {
    const data = sampleBlock(11, 1000);
    const { sab, byteSize } = sharedImage(data);
    const back = decodeBlock(sab, 0, byteSize, 'test image');
    expect(back.rowCount).toBe(1000);
    expect([back.timeMin, back.timeMax]).toEqual([data.timeMin, data.timeMax]);
    expect(plain(back)).toEqual(plain(data));
    const latency = back.columns.latency!;
    expect(latency.kind === 'number' && latency.values.buffer).toBe(sab);
  });

  it('refuse a damaged image, naming where it came from', () => {
    const { sab, byteSize } = sharedImage(sampleBlock(12, 100));
    new Uint8Array(sab)[0] ^= 0xff;
    expect(() => decodeBlock(sab, 0, byteSize, 'segment /shoal-x-1')).toThrow(/segment \/shoal-x-1.*bad magic/);
    const { sab: short, byteSize: size } = sharedImage(sampleBlock(13, 100));
    expect(() => decodeBlock(short, 0, size - 64, 'segment /shoal-x-2')).toThrow(/\/shoal-x-2/);
  });
});

describe('lazily decoded sealed blocks', () => {
  it('decode on first use into the same data, with the summary served before', () => {
    const data = sampleBlock(21, 500);
    const { sab, byteSize } = sharedImage(data);
    const eager = new SealedBlock(decodeBlock(sab, 0, byteSize, 'eager'));
    let decodes = 0;
    const lazy = SealedBlock.lazy({ id: 99, rowCount: 500, timeMin: data.timeMin, timeMax: data.timeMax, byteSize: eager.byteSize }, () => { decodes++; return decodeBlock(sab, 0, byteSize, 'lazy'); });
    expect([lazy.id, lazy.rowCount, lazy.timeMin, lazy.timeMax, lazy.byteSize]).toEqual([99, 500, data.timeMin, data.timeMax, eager.byteSize]);
    expect(lazy.isDecoded).toBe(false);
    expect(decodes).toBe(0);
    expect(lazy.strings('service')).toEqual(eager.strings('service'));
    expect(lazy.isDecoded).toBe(true);
    expect(plain(lazy.data)).toEqual(plain(data));
    expect(lazy.data.id).toBe(99);
    void lazy.column('latency');
    expect(decodes).toBe(1);
  });

  it('fail on first use when the image does not match the recorded summary', () => {
    const data = sampleBlock(22, 300);
    const { sab, byteSize } = sharedImage(data);
    const bytes = new SealedBlock(data).byteSize;
    const wrongRows = SealedBlock.lazy({ id: 1, rowCount: 301, timeMin: data.timeMin, timeMax: data.timeMax, byteSize: bytes }, () => decodeBlock(sab, 0, byteSize, 'x'));
    expect(() => wrongRows.column('time')).toThrow(/does not match what the handoff recorded \(301 rows/);
    const wrongTime = SealedBlock.lazy({ id: 2, rowCount: 300, timeMin: data.timeMin - 1, timeMax: data.timeMax, byteSize: bytes }, () => decodeBlock(sab, 0, byteSize, 'x'));
    expect(() => wrongTime.data).toThrow(/does not match/);
  });
});
