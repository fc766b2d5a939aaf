/**
 * UTF-8 dictionaries (Arrow Utf8 layout: offsets + bytes) and their decoding. Sealed blocks keep
 * dictionaries as bytes so a worker thread or another process can read them in place; decoding
 * to JS strings happens once per block per thread and is cached by the caller.
 */
import type { DictData } from './types.js';
import { sharedArray } from './types.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeDict(strings: readonly string[]): DictData {
  let byteCount = 0;
  const encoded: Uint8Array[] = new Array(strings.length);
  for (let i = 0; i < strings.length; i++) {
    const e = encoder.encode(strings[i]!);
    encoded[i] = e;
    byteCount += e.byteLength;
  }
  const offsets = sharedArray(Int32Array, strings.length + 1);
  const bytes = sharedArray(Uint8Array, byteCount);
  let at = 0;
  for (let i = 0; i < encoded.length; i++) {
    offsets[i] = at;
    bytes.set(encoded[i]!, at);
    at += encoded[i]!.byteLength;
  }
  offsets[strings.length] = at;
  return { offsets, bytes };
}

export function decodeDict(dict: DictData): string[] {
  const entryCount = dict.offsets.length - 1;
  const out: string[] = new Array(Math.max(0, entryCount));
  // TextDecoder cannot read a SharedArrayBuffer view directly; copy the bytes once (cheap
  // against decoding) and decode each entry from the copy.
  const bytes = dict.bytes.buffer instanceof SharedArrayBuffer ? new Uint8Array(dict.bytes) : dict.bytes;
  for (let i = 0; i < entryCount; i++) {
    const start = dict.offsets[i]!;
    const end = dict.offsets[i + 1]!;
    out[i] = asciiOrUtf8(bytes, start, end);
  }
  return out;
}

/** Most dimension values are ASCII; building them with fromCharCode avoids TextDecoder's call cost. */
function asciiOrUtf8(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= 24) {
    let ascii = true;
    for (let i = start; i < end; i++) if (bytes[i]! > 127) { ascii = false; break; }
    if (ascii) {
      let s = '';
      for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
      return s;
    }
  }
  return decoder.decode(bytes.subarray(start, end));
}
