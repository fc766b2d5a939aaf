/**
 * UTF-8 dictionaries (Arrow Utf8 layout: offsets + bytes) and their decoding. Sealed blocks keep
 * dictionaries as bytes so a worker thread or another process can read them in place; a thread
 * decodes each entry once, into its string codes (string-codes.ts). The bytes are written by
 * the open block's dictionaries (byte-dict.ts), which hold them from the first append.
 */

const decoder = new TextDecoder();

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
