/**
 * UTF-8 dictionaries (Arrow Utf8 layout: offsets + bytes) and their decoding. Sealed blocks keep
 * dictionaries as bytes so a worker thread or another process can read them in place; a thread
 * decodes each entry once, into its string codes (string-codes.ts).
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

/**
 * One dictionary entry, bytes[start, end), as a string. Most dimension values are short ASCII:
 * those are built with fromCharCode (no TextDecoder call). TextDecoder cannot read a
 * SharedArrayBuffer view, so other entries of a shared block are decoded from a copy of the entry.
 */
export function decodeUtf8(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= 32) {
    let s = '';
    let ascii = true;
    for (let i = start; i < end; i++) { const b = bytes[i]!; if (b > 127) { ascii = false; break; } s += String.fromCharCode(b); }
    if (ascii) return s;
  }
  return decoder.decode(bytes.buffer instanceof SharedArrayBuffer ? bytes.slice(start, end) : bytes.subarray(start, end));
}
